"""`RagRetriever`: the API's search as a LlamaIndex retriever (`pip install
rag-ingest-client[llama-index]`)."""

from typing import Any

from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from rag_client.client import Client
from rag_client.models import SearchHit, SearchMode
from rag_client.retrieval import SearchSource


def _node(hit: SearchHit) -> NodeWithScore:
    node = TextNode(
        id_=hit.chunk_id,
        text=hit.text,
        metadata=hit.citation(),
        start_char_idx=hit.char_start,
        end_char_idx=hit.char_end,
    )
    return NodeWithScore(node=node, score=hit.score)


class RagRetriever(BaseRetriever):
    """The top `k` chunks for a query as `NodeWithScore`s, each node citing its document id,
    filename, page, character offsets, score and collection in `metadata`.

    Build it with `base_url` and `api_key`, or from a `Client` with `client=`.
    """

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        client: Client | None = None,
        collections: list[str] | None = None,
        filter: dict[str, Any] | None = None,
        k: int = 4,
        mode: SearchMode | str = SearchMode.hybrid,
        **kwargs: Any,
    ) -> None:
        self.source = SearchSource.build(
            client=client,
            base_url=base_url,
            api_key=api_key,
            collections=collections,
            filter=filter,
            k=k,
            mode=mode,
        )
        super().__init__(**kwargs)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return [_node(hit) for hit in self.source.search(query_bundle.query_str)]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return [_node(hit) for hit in await self.source.asearch(query_bundle.query_str)]
