"""The registry: one database, and an object per concern over it.

`registry.lifecycle` registers, rejects, retires and claims documents; `registry.projection`
records what runs did to them; `registry.reads` answers questions about them; and
`registry.tenancy` holds collections, metadata, facets and API keys; `registry.sources` the
buckets a collection is synced from, with each one's cursor; `registry.switches` a
collection's model switch and its pending index generation. Each part takes the shared
`Database` rather than inheriting from it, so a caller names the concern it uses.
"""

from rag_pipeline.core.registry.database import Database
from rag_pipeline.core.registry.lifecycle import Lifecycle
from rag_pipeline.core.registry.projection import Projection
from rag_pipeline.core.registry.reads import Reads
from rag_pipeline.core.registry.sources import Sources
from rag_pipeline.core.registry.switches import Switches
from rag_pipeline.core.registry.tenancy import Tenancy


class Registry:
    """Documents and their status projection in one SQL database (see the package docstring)."""

    def __init__(self, url: str) -> None:
        self.db = Database(url)
        self.lifecycle = Lifecycle(self.db)
        self.projection = Projection(self.db)
        self.reads = Reads(self.db)
        self.tenancy = Tenancy(self.db)
        self.sources = Sources(self.db)
        self.switches = Switches(self.db)

    @property
    def url(self) -> str:
        return self.db.url

    def get_state(self, name: str) -> str | None:
        """A named value kept beside the documents (a sensor's cursor, a schema mark)."""
        return self.db.get_state(name)

    def set_state(self, name: str, value: str) -> None:
        self.db.set_state(name, value)

    def close(self) -> None:
        self.db.close()
