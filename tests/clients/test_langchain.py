"""The LangChain retriever: langchain-tests' standard retriever integration tests against
the real stack, and the citations it puts in each Document's metadata."""

import asyncio
from typing import Any, ClassVar

import pytest
from conftest import PHRASE
from langchain_core.documents import Document
from langchain_tests.integration_tests import RetrieversIntegrationTests

from rag_client import Client
from rag_client.langchain import RagRetriever

pytestmark = [pytest.mark.stack, pytest.mark.timeout(3600)]


# The standard suite's async test is unmarked: pytest-asyncio (strict) runs it by the class's
# mark, which the sync tests ignore.
@pytest.mark.asyncio
@pytest.mark.filterwarnings("ignore:.*marked with '@pytest.mark.asyncio':pytest.PytestWarning")
class TestRagRetrieverStandard(RetrieversIntegrationTests):
    _params: ClassVar[dict[str, Any]] = {}

    @pytest.fixture(autouse=True)
    def _on_the_stack(self, paper: dict[str, str], client_stack: Any) -> None:
        type(self)._params = {
            "base_url": paper["url"],
            "api_key": client_stack.admin_key,
            "collections": [paper["collection"]],
        }

    @property
    def retriever_constructor(self) -> type[RagRetriever]:
        return RagRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return self._params

    @property
    def retriever_query_example(self) -> str:
        return PHRASE


def test_documents_cite_their_source(paper: dict[str, str], client_stack: Any) -> None:
    with Client(paper["url"], client_stack.admin_key) as client:
        retriever = RagRetriever(
            client=client,
            collections=[paper["collection"]],
            filter={"kind": "paper"},
            k=2,
            mode="lexical",
        )
        docs = retriever.invoke(PHRASE)
        chunks = {c.chunk_no: c for c in client.chunks(paper["id"], limit=500).items}
        nothing = RagRetriever(
            client=client, collections=[paper["collection"]], filter={"kind": "novel"}
        ).invoke(PHRASE)
    assert len(docs) == 2 and all(isinstance(d, Document) for d in docs)
    top = docs[0]
    assert PHRASE in top.page_content.replace("\n", " ")
    meta = top.metadata
    assert (meta["document_id"], meta["collection"], meta["page"]) == (
        paper["id"],
        paper["collection"],
        3,
    )
    assert meta["filename"] == "pdfminer_naacl06-shinyama.pdf"
    assert meta["score"] >= docs[1].metadata["score"] > 0
    cited = chunks[meta["chunk_no"]]
    assert (cited.char_start, cited.char_end, cited.text) == (
        meta["char_start"],
        meta["char_end"],
        top.page_content,
    )
    assert top.id == f"{paper['id']}:{meta['chunk_no']}"
    assert meta["document_metadata"] == {"kind": "paper"}

    assert nothing == []


def test_async_retrieval_finds_what_sync_finds(paper: dict[str, str], client_stack: Any) -> None:
    retriever = RagRetriever(
        base_url=paper["url"],
        api_key=client_stack.admin_key,
        collections=[paper["collection"]],
        k=3,
        mode="lexical",
    )
    found = asyncio.run(retriever.ainvoke(PHRASE))
    assert [d.id for d in found] == [d.id for d in retriever.invoke(PHRASE)]
    assert len(found) == 3 and found[0].metadata["page"] == 3
