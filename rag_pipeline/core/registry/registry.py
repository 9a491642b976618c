"""The registry: one facade over its database, lifecycle, projection and reads."""

from rag_pipeline.core.registry.lifecycle import Lifecycle
from rag_pipeline.core.registry.projection import Projection
from rag_pipeline.core.registry.reads import Reads
from rag_pipeline.core.registry.tenancy import Tenancy


class Registry(Lifecycle, Projection, Reads, Tenancy):
    """Documents and their status projection in one SQL database (see the package docstring)."""
