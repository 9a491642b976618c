"""Collections (knowledge bases): create, change and delete them, with everything they hold.

A collection's name is a slug: lowercase letters and digits in words joined by single hyphens,
at most 48 characters. Its chunk settings are the defaults for the documents added to it.
Deleting one removes every document in it (vectors, artifacts, lexical data, files, registry
rows and partitions), then its vector index, its landing folder and its name on API keys.
"""

import re
from dataclasses import dataclass

from rag_pipeline.core.documents import landing
from rag_pipeline.core.documents.service import DocumentsService, Partitions
from rag_pipeline.core.registry import DEFAULT_COLLECTION, Collection, CollectionNotFound
from rag_pipeline.core.retrieval.vector_index import VectorIndex
from rag_pipeline.core.storage.data_dir import DocumentStore

NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
MAX_NAME = 48
# Folders of the landing zone that are not collections.
RESERVED_NAMES = frozenset({landing.PROCESSED, landing.REJECTED})
# Documents removed per hold of the index-write pool: a run's index write waits for one group.
DELETE_GROUP = 64

__all__ = [
    "CollectionExists",
    "CollectionNotFound",
    "CollectionProtected",
    "CollectionsService",
    "InvalidCollectionName",
    "check_name",
]


class InvalidCollectionName(ValueError):
    pass


class CollectionExists(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(f"a collection named {name!r} exists already")
        self.name = name


class CollectionProtected(ValueError):
    pass


def check_name(name: str) -> str:
    if len(name) > MAX_NAME or not NAME.fullmatch(name):
        raise InvalidCollectionName(
            f"a collection name is lowercase letters and digits, words joined by single "
            f"hyphens, at most {MAX_NAME} characters; not {name!r}"
        )
    if name in RESERVED_NAMES:
        raise InvalidCollectionName(f"{name!r} is a folder of the landing zone; choose another")
    return name


@dataclass(frozen=True)
class Removed:
    documents: int
    vectors: int


class CollectionsService:
    def __init__(self, store: DocumentStore) -> None:
        self.store = store
        self.registry = store.registry

    def create(
        self,
        name: str,
        description: str = "",
        chunk_size: int | None = None,
        chunk_overlap: int | None = None,
        embedding_model: str | None = None,
    ) -> Collection:
        created = self.registry.tenancy.create_collection(
            check_name(name), description, chunk_size, chunk_overlap, embedding_model
        )
        if created is None:
            raise CollectionExists(name)
        return created

    def get(self, name: str) -> Collection:
        found = self.registry.tenancy.collection(name)
        if found is None:
            raise CollectionNotFound(name)
        return found

    def delete(self, name: str, index: VectorIndex, partitions: Partitions) -> Removed:
        """Remove the collection and everything in it; see the module's docstring.

        The collection takes no new document once its row is gone, so its documents are
        removed before (a DELETE that stopped part-way can be sent again) and once more after
        (one registered meanwhile)."""
        if name == DEFAULT_COLLECTION:
            raise CollectionProtected(f"{DEFAULT_COLLECTION!r} holds uploads without a collection")
        collection = self.get(name)
        documents, vectors = self._remove_documents(name, index, partitions)
        self.registry.tenancy.remove_collection(name)
        more_documents, more_vectors = self._remove_documents(name, index, partitions)
        with partitions.index_write("delete collection"):
            index.drop(collection.index_suffix)
            if collection.pending_suffix is not None:  # a model switch's generation
                index.drop(collection.pending_suffix)
        self.registry.tenancy.remove_collection(name)
        for folder in (name, f"{landing.PROCESSED}/{name}", f"{landing.REJECTED}/{name}"):
            landing.remove_folder(self.store, folder)
        return Removed(documents + more_documents, vectors + more_vectors)

    def _remove_documents(
        self, name: str, index: VectorIndex, partitions: Partitions
    ) -> tuple[int, int]:
        service = DocumentsService(self.store)
        ids = self.registry.tenancy.collection_document_ids(name)
        documents = vectors = 0
        for start in range(0, len(ids), DELETE_GROUP):
            group = self.registry.reads.documents(ids[start : start + DELETE_GROUP])
            retired = []
            with partitions.index_write("delete collection"):
                for doc in group:
                    if doc.live:
                        removed = service.retire(doc.id, index, f"collection {name!r} deleted")
                        if removed is not None:
                            retired.append(doc.id)
                            vectors += removed
                    elif doc.status == "rejected":
                        service.forget_rejection(doc)
            for doc_id in retired:
                partitions.release(doc_id)
            documents += len(retired)
        return documents, vectors
