"""What the LangChain and LlamaIndex retrievers share: where to search and how."""

from dataclasses import dataclass
from typing import Any

from rag_client.client import AsyncClient, Client
from rag_client.models import SearchHit, SearchMode


@dataclass
class SearchSource:
    """A `Client` and the search options a retriever was built with."""

    client: Client
    collections: list[str] | None = None
    filter: dict[str, Any] | None = None
    k: int = 4
    mode: SearchMode | str = SearchMode.hybrid

    @classmethod
    def build(
        cls,
        *,
        client: Client | None,
        base_url: str | None,
        api_key: str | None,
        **options: Any,
    ) -> "SearchSource":
        if client is None:
            if base_url is None:
                raise ValueError("a retriever needs base_url (and api_key) or client")
            client = Client(base_url, api_key)
        return cls(client=client, **options)

    def _options(self, k: int | None) -> dict[str, Any]:
        return {
            "k": self.k if k is None else k,
            "mode": self.mode,
            "collections": self.collections,
            "filter": self.filter,
        }

    def search(self, query: str, k: int | None = None) -> list[SearchHit]:
        return self.client.search(query, **self._options(k)).results

    async def asearch(self, query: str, k: int | None = None) -> list[SearchHit]:
        # A client per call: each event loop needs its own connections.
        async with AsyncClient(
            self.client.base_url,
            self.client.api_key,
            timeout=self.client.timeout,
            retry=self.client.retry,
        ) as client:
            return (await client.search(query, **self._options(k))).results
