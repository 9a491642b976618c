"""Whether anything was lost: what the stores hold against what the API says.

Each part of the suite audits only its own documents, so a part that fails leaves nothing
behind that fails the parts after it on the shared stack.
"""

from dataclasses import dataclass, field
from typing import Any

import httpx
from reliability.harness import Stack, all_documents, request

from rag_pipeline.core.storage.data_dir import DocumentStore, slugify


@dataclass(frozen=True)
class Scope:
    """The documents one part answers for: the ids it was given, and, when the part names
    its files `<part>-...`, every id those names lead to (one made by a request whose answer
    was lost, too)."""

    ids: frozenset[str]
    part: str | None = None

    def __contains__(self, doc_id: object) -> bool:
        if doc_id in self.ids:
            return True
        return self.part is not None and str(doc_id).startswith(f"{slugify(self.part)}-")


@dataclass
class Audit:
    """What the stores hold against what the API says, for the documents of one scope."""

    documents: int
    chroma_count: int
    catalog_chunks_live: int
    orphan_vectors: list[str] = field(default_factory=list)
    mismatched: dict[str, str] = field(default_factory=dict)
    same_bytes_twice: list[list[str]] = field(default_factory=list)

    @property
    def duplicates(self) -> int:
        """Vectors that should not be there, plus documents ingested twice from the same bytes."""
        return len(self.orphan_vectors) + sum(len(g) - 1 for g in self.same_bytes_twice)

    def to_dict(self) -> dict[str, Any]:
        return {
            "audited_documents": self.documents,
            "chroma_count": self.chroma_count,
            "catalog_chunks_of_live_documents": self.catalog_chunks_live,
            "duplicates": self.duplicates,
            "orphan_vectors": len(self.orphan_vectors),
            "status_mismatches": len(self.mismatched),
        }


def chroma_ids(stack: Stack) -> list[str]:
    """Every vector id in the stack's indexes: `default`'s and every other collection's."""
    import chromadb
    from chromadb.config import Settings

    host, port = stack.chroma_url.removeprefix("http://").split(":")
    client = chromadb.HttpClient(
        host=host, port=int(port), settings=Settings(anonymized_telemetry=False)
    )
    base = stack.env["RAG_CHROMA_COLLECTION"]
    ids: list[str] = []
    for found in client.list_collections():
        if found.name != base and not found.name.startswith(f"{base}--"):
            continue
        collection = client.get_collection(found.name)
        own: list[str] = []
        while True:
            batch = collection.get(include=[], limit=5000, offset=len(own))
            own.extend(batch["ids"])
            if len(batch["ids"]) < 5000:
                break
        ids.extend(own)
    return ids


def scoped_documents(client: httpx.Client, scope: Scope) -> dict[str, dict[str, Any]]:
    """The scope's documents as the API reports them; deleted ones are asked for by id."""
    docs = {i: d for i, d in all_documents(client).items() if i in scope}
    for doc_id in scope.ids - set(docs):
        one = request(client, "GET", f"/documents/{doc_id}")
        docs[doc_id] = one.json() if one.status_code == 200 else {"status": "missing"}
    return docs


def _instance_disagrees(stack: Stack, docs: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The registry's projection against the instance: every document the registry calls
    indexed has a vector_index materialization since it was registered, every failed one a
    failed stage or run."""
    from datetime import datetime

    from dagster import AssetKey, AssetRecordsFilter

    wrong: dict[str, str] = {}
    with stack.instance() as instance:
        for doc_id, doc in docs.items():
            if doc["status"] not in ("indexed", "failed") or doc_id.startswith("rejected:"):
                continue
            since = datetime.fromisoformat(doc["created_at"]).timestamp()
            stage = "vector_index" if doc["status"] == "indexed" else doc["error"]["stage"]
            records_filter = AssetRecordsFilter(
                asset_key=AssetKey(stage), asset_partitions=[doc_id], after_timestamp=since
            )
            if doc["status"] == "indexed":
                found = instance.fetch_materializations(records_filter, limit=1).records
            elif doc["error"]["code"] == "run_failed":
                # The run it names ended without success in the instance too.
                runs = (instance.get_run_by_id(r) for r in doc["run_ids"])
                found = [r for r in runs if r is not None and r.is_finished and not r.is_success]
            else:
                found = instance.fetch_observations(records_filter, limit=1).records
            if not found:
                wrong[doc_id] = f"{doc['status']} in the registry, not so in the instance"
    return wrong


def audit(stack: Stack, client: httpx.Client, scope: Scope) -> Audit:
    """The scope's documents and the vectors named after them, checked against each other."""
    import pyarrow.parquet as pq

    docs = scoped_documents(client, scope)
    registry = DocumentStore(stack.data).registry
    ids = [v for v in chroma_ids(stack) if v.rsplit(":", 1)[0] in scope]
    by_doc: dict[str, set[str]] = {}
    for vector_id in ids:
        by_doc.setdefault(vector_id.rsplit(":", 1)[0], set()).add(vector_id)
    catalog = stack.data / "catalog"
    live_chunks = 0
    mismatched: dict[str, str] = {}
    by_sha: dict[str, list[str]] = {}
    for doc_id, doc in docs.items():
        status = doc["status"]
        vectors = by_doc.get(doc_id, set())
        if status == "indexed":
            path = catalog / "chunks" / f"{doc_id}.parquet"
            chunks = pq.read_metadata(path).num_rows if path.exists() else 0
            live_chunks += chunks
            expected = {f"{doc_id}:{n}" for n in range(chunks)}
            if not chunks or vectors != expected or doc.get("chunks") != chunks:
                mismatched[doc_id] = (
                    f"indexed, status says {doc.get('chunks')} chunks, catalog {chunks}, "
                    f"{len(vectors)} vectors"
                )
            row = registry.reads.get(doc_id)
            if row is not None and row.sha256:
                by_sha.setdefault(row.sha256, []).append(doc_id)
        elif status in ("queued", "processing", "missing"):
            mismatched[doc_id] = f"{status} after ingestion settled"
        elif vectors:
            mismatched[doc_id] = f"{status} but {len(vectors)} vectors"
    mismatched.update(_instance_disagrees(stack, docs))
    listed = {d for d, doc in docs.items() if doc["status"] == "indexed"}
    orphans = sorted(v for d, vs in by_doc.items() if d not in listed for v in vs)
    return Audit(
        documents=len(docs),
        chroma_count=len(ids),
        catalog_chunks_live=live_chunks,
        orphan_vectors=orphans,
        mismatched=mismatched,
        same_bytes_twice=[g for g in by_sha.values() if len(g) > 1],
    )
