"""`RagRetriever`: the API's search as a LangChain retriever (`pip install
rag-ingest-client[langchain]`)."""

from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, PrivateAttr

from rag_client.client import Client
from rag_client.models import SearchHit, SearchMode
from rag_client.retrieval import SearchSource


def _document(hit: SearchHit) -> Document:
    return Document(id=hit.chunk_id, page_content=hit.text, metadata=hit.citation())


class RagRetriever(BaseRetriever):
    """The top `k` chunks for a query as `Document`s, each citing its document id,
    filename, page, character offsets, score and collection in `metadata`.

    Build it with `base_url` and `api_key`, or from a `Client` with `client=`; `k` can also
    be given per call: `retriever.invoke("query", k=8)`.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    base_url: str | None = None
    api_key: str | None = None
    client: Client | None = None
    collections: list[str] | None = None
    filter: dict[str, Any] | None = None
    k: int = 4
    mode: SearchMode | str = SearchMode.hybrid

    _source: SearchSource = PrivateAttr()

    def model_post_init(self, context: Any, /) -> None:
        self._source = SearchSource.build(
            client=self.client,
            base_url=self.base_url,
            api_key=self.api_key,
            collections=self.collections,
            filter=self.filter,
            k=self.k,
            mode=self.mode,
        )

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, k: int | None = None
    ) -> list[Document]:
        return [_document(hit) for hit in self._source.search(query, k)]

    async def _aget_relevant_documents(
        self,
        query: str,
        *,
        run_manager: AsyncCallbackManagerForRetrieverRun,
        k: int | None = None,
    ) -> list[Document]:
        return [_document(hit) for hit in await self._source.asearch(query, k)]
