"""What search scopes and filters by, kept in memory and in step with the registry.

For each live document: its collection, and the fields filters see (`document_id`,
`filename`, `media_type` and its metadata), indexed by value (`filters.Postings`). A search
first asks the registry when any document last changed (one lookup in an index) and reads
only the rows changed since, so a metadata change, a new document or a deletion counts from
the next query, in this process or any other.
"""

import threading
from collections.abc import Sequence
from typing import Any

from rag_pipeline.core.filters import Filter, Postings
from rag_pipeline.core.registry import Collection, Registry
from rag_pipeline.core.registry.tenancy import Facet
from rag_pipeline.core.search import Part, Scope

# Rows are re-read from a little before the last change seen: a transaction that took its
# time before committing may carry an older timestamp than one that committed first, and
# clocks of writers on other hosts may lag.
OVERLAP_SECONDS = 5.0


def fields_of(facet: Facet) -> dict[str, Any]:
    return {
        **facet.metadata,
        "document_id": facet.id,
        "filename": facet.filename,
        "media_type": facet.media_type,
    }


class Facets:
    """Live documents by collection, and their fields by value; safe to share between
    threads."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._lock = threading.Lock()
        self._docs: dict[str, Facet] = {}
        self._by_collection: dict[str, set[str]] = {}
        self._postings = Postings()
        self._seen = -1.0
        self._cache: dict[tuple[str, tuple[str, ...]], dict[str, set[str]]] = {}
        self._scopes: dict[tuple[str, tuple[str, ...], bool], Scope] = {}

    def refresh(self) -> None:
        last = self.registry.last_change()
        with self._lock:
            if last == self._seen:
                return
            since = max(0.0, self._seen - OVERLAP_SECONDS)
        changed = self.registry.facets_since(since)
        with self._lock:
            for facet in changed:
                self._put(facet)
            self._seen = max(self._seen, last)
            if changed:
                self._cache.clear()
                self._scopes.clear()

    def _put(self, facet: Facet) -> None:
        old = self._docs.pop(facet.id, None)
        if old is not None:
            self._postings.remove(old.id, fields_of(old))
            self._by_collection.get(old.collection, set()).discard(old.id)
        if not facet.live:
            return
        self._docs[facet.id] = facet
        self._postings.add(facet.id, fields_of(facet))
        self._by_collection.setdefault(facet.collection, set()).add(facet.id)

    def select(self, collections: Sequence[str], where: Filter | None) -> dict[str, set[str]]:
        """By collection, its live documents that the filter admits (all without one). The
        answer is shared: callers must not change the sets."""
        self.refresh()
        key = (where.text if where is not None else "", tuple(sorted(set(collections))))
        with self._lock:
            found = self._cache.get(key)
            if found is None:
                found = {}
                for name in key[1]:
                    own = self._by_collection.get(name, set())
                    found[name] = where.select(self._postings, own) if where else set(own)
                if len(self._cache) > 256:
                    self._cache.clear()
                self._cache[key] = found
            return found

    def scope(self, homes: Sequence[Collection], where: Filter | None, everything: bool) -> Scope:
        """Where a search of these collections, with this filter, looks (see `search.Scope`).
        `everything`: the collections are all there are, so without a filter no document is
        left out."""
        admitted = self.select([home.name for home in homes], where)
        key = (where.text if where is not None else "", tuple(sorted(admitted)), everything)
        with self._lock:
            found = self._scopes.get(key)
            if found is not None:
                return found
            parts = []
            for home in homes:
                own = admitted[home.name]
                if where is None:
                    parts.append(Part(home.name, home.index_suffix))
                    continue
                # The shorter list for the vector index: the documents in, or those left out.
                every = self._by_collection.get(home.name, set())
                left_out = every - own
                share = len(own) / len(every) if every else 0.0
                if len(left_out) < len(own):
                    parts.append(
                        Part(home.name, home.index_suffix, excluding=left_out, share=share)
                    )
                else:
                    parts.append(Part(home.name, home.index_suffix, only=own, share=share))
            documents = None if everything and where is None else set().union(*admitted.values())
            found = Scope(parts, documents)
            if len(self._scopes) > 256:
                self._scopes.clear()
            self._scopes[key] = found
            return found

    def facet(self, doc_id: str) -> Facet | None:
        with self._lock:
            return self._docs.get(doc_id)
