"""The LlamaIndex retriever, through llama-index-core's own retriever API (`retrieve`,
`aretrieve`, and a query engine built on it) against the real stack."""

import asyncio
from typing import Any

import pytest
from conftest import PHRASE
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from rag_client import Client
from rag_client.llama_index import RagRetriever

pytestmark = [pytest.mark.stack, pytest.mark.timeout(3600)]


def test_nodes_cite_their_source(paper: dict[str, str], client_stack: Any) -> None:
    retriever = RagRetriever(
        base_url=paper["url"],
        api_key=client_stack.admin_key,
        collections=[paper["collection"]],
        k=3,
        mode="lexical",
    )
    nodes = retriever.retrieve(PHRASE)
    assert len(nodes) == 3 and all(isinstance(n, NodeWithScore) for n in nodes)
    top = nodes[0]
    assert isinstance(top.node, TextNode)
    assert PHRASE in top.node.get_content().replace("\n", " ")
    meta = top.node.metadata
    assert (meta["document_id"], meta["collection"], meta["page"]) == (
        paper["id"],
        paper["collection"],
        3,
    )
    assert top.score == meta["score"] and top.score >= (nodes[1].score or 0) > 0
    assert (top.node.start_char_idx, top.node.end_char_idx) == (
        meta["char_start"],
        meta["char_end"],
    )
    assert top.node.node_id == f"{paper['id']}:{meta['chunk_no']}"

    again = asyncio.run(retriever.aretrieve(QueryBundle(PHRASE)))
    assert [n.node.node_id for n in again] == [n.node.node_id for n in nodes]


def test_built_from_a_client_with_a_filter(paper: dict[str, str], client_stack: Any) -> None:
    with Client(paper["url"], client_stack.admin_key) as client:
        kept = RagRetriever(client=client, filter={"kind": "paper"}, k=2).retrieve(PHRASE)
        assert len(kept) == 2
        assert {n.node.metadata["document_id"] for n in kept} == {paper["id"]}
        assert RagRetriever(client=client, filter={"kind": "novel"}).retrieve(PHRASE) == []
