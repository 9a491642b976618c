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

from rag_pipeline.core.registry import Collection, Registry
from rag_pipeline.core.registry.tenancy import Facet
from rag_pipeline.core.retrieval.filters import Filter, Postings
from rag_pipeline.core.retrieval.search import Part, Scope

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
        self._scopes: dict[tuple[str, tuple[tuple[str, str], ...], bool], Scope] = {}
        self._orders: dict[tuple[str, tuple[str, ...]], list[str]] = {}
        # Every live document in arrival order, kept as documents come: a new one arrives
        # last almost always, so it is appended; anything else sorts it again on next use.
        self._arrival: list[tuple[float, str]] = []
        self._placed: dict[str, float] = {}
        self._in_order = True

    def refresh(self) -> None:
        last = self.registry.tenancy.last_change()
        with self._lock:
            if last == self._seen:
                return
            since = max(0.0, self._seen - OVERLAP_SECONDS)
        changed = self.registry.tenancy.facets_since(since)
        with self._lock:
            for facet in changed:
                self._put(facet)
            self._seen = max(self._seen, last)
            if changed:
                self._cache.clear()
                self._scopes.clear()
                self._orders.clear()

    def _put(self, facet: Facet) -> None:
        old = self._docs.pop(facet.id, None)
        if old is not None:
            self._postings.remove(old.id, fields_of(old))
            self._by_collection.get(old.collection, set()).discard(old.id)
        if not facet.live:
            return
        self._docs[facet.id] = facet
        self._place(facet)
        self._postings.add(facet.id, fields_of(facet))
        self._by_collection.setdefault(facet.collection, set()).add(facet.id)

    def _place(self, facet: Facet) -> None:
        placed = self._placed.get(facet.id)
        if placed == facet.registered_at:
            return
        entry = (facet.registered_at, facet.id)
        if placed is not None or (self._arrival and entry < self._arrival[-1]):
            self._in_order = False
        self._placed[facet.id] = facet.registered_at
        self._arrival.append(entry)

    def _arrival_order(self) -> list[tuple[float, str]]:
        """Under the lock: the arrival list, sorted again if a change broke its order (and
        with documents no longer live dropped then)."""
        if not self._in_order:
            self._arrival = sorted((f.registered_at, f.id) for f in self._docs.values())
            self._placed = {doc_id: at for at, doc_id in self._arrival}
            self._in_order = True
        return self._arrival

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
        `everything`: the search asked for every collection there is, now or made while it
        runs (a key over every collection naming none), so without a filter no document is left
        out. Never for a list of names, even one covering every collection of the moment."""
        admitted = self.select([home.name for home in homes], where)
        # The generation each collection serves is in the key: a model switch's swap changes it.
        served = tuple(sorted((home.name, home.index_suffix) for home in homes))
        key = (where.text if where is not None else "", served, everything)
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

    def page(
        self,
        collections: Sequence[str],
        where: Filter,
        status: str | None,
        limit: int,
        offset: int,
    ) -> tuple[list[str], int]:
        """One page of the live documents of these collections that the filter admits (of
        this status, if given), in arrival order, and how many there are in all.

        The admitted documents are taken from the arrival order in one pass per filter, kept
        until any document changes, so a page costs a slice and only its rows are read from
        the registry; a status costs one more pass."""
        admitted = self.select(collections, where)
        key = (where.text, tuple(sorted(set(collections))))
        with self._lock:
            order = self._orders.get(key)
            if order is None:
                every = set().union(*admitted.values())
                order = [doc_id for _, doc_id in self._arrival_order() if doc_id in every]
                if len(self._orders) > 64:
                    self._orders.clear()
                self._orders[key] = order
            if status is not None:
                order = [i for i in order if (f := self._docs.get(i)) and f.status == status]
        return order[offset : offset + limit], len(order)

    def facet(self, doc_id: str) -> Facet | None:
        with self._lock:
            return self._docs.get(doc_id)
