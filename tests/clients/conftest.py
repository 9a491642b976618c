"""One real stack for the client's tests: Chroma, the daemon and its warm run worker, and the
API under uvicorn, as `make run` starts them (with the deterministic hash-384 embedder).

The stack is shared by the session's client tests, and each test module works in its own
collection. It stops once the last of them is done (`pytest_runtest_teardown`), not at the end
of the session: its daemon would otherwise tick through every test after them.

The API is started with RAG_API_KEY as its root key, and the tests use an admin key made with
it through POST /keys, so they hold whether or not the API is open without keys.
"""

import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.env import BIN, CORPUS, INIT_INSTANCE, REPO, make_dagster_home, running_api
from support.web import Site

from bench.harness.processes import process_group
from rag_client import Client

ROOT_KEY = "client-tests-root-key"
# Seconds a test waits for ingestion: generous, as the stack shares two cores with others.
WAIT = 900
PAPER = "pdf/pdfminer_naacl06-shinyama.pdf"
# A sentence on page 3 of PAPER, in no other corpus file.
PHRASE = "we let each article belong to several different clusters"


HERE = Path(__file__).parent
_RUNNING: list[ExitStack] = []


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """After the last client test (the tests of a folder run one after another), stop the
    stack; its fixture's own teardown then finds nothing left to stop."""
    if nextitem is None or HERE not in Path(nextitem.path).parents:
        while _RUNNING:
            _RUNNING.pop().close()


@dataclass(frozen=True)
class Stack:
    url: str
    admin_key: str
    log_dir: Path
    site: Site  # a web site on loopback the API may fetch from (RAG_FETCH_ALLOW_HOSTS)


@pytest.fixture(scope="session")
def client_stack(tmp_path_factory: pytest.TempPathFactory, chroma_url: str) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("client-stack")
    home = tmp / "dagster_home"
    make_dagster_home(home, "sqlite")
    site = Site(CORPUS)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "RAG_DATA_DIR": str(tmp / "data"),
        "RAG_CHROMA_URL": chroma_url,
        "RAG_CHROMA_COLLECTION": f"client-{uuid.uuid4().hex[:10]}",
        "RAG_EMBEDDING_MODEL": "hash-384",
        "RAG_MAX_DOCS_PER_RUN": "4",
        "RAG_EXTRACTION_TIMEOUT_SECONDS": "20",
        # Keep-alives often enough that a wait's deadline is enforced promptly.
        "RAG_EVENTS_KEEPALIVE_SECONDS": "1",
        "RAG_FETCH_ALLOW_HOSTS": f"127.0.0.1:{site.port}",
    }
    subprocess.run([str(BIN / "python"), "-c", INIT_INSTANCE], env=env, check=True)
    commands = {
        "worker": [str(BIN / "rag-pipeline"), "worker"],
        "daemon": [str(BIN / "dagster-daemon"), "run", "-w", str(REPO / "workspace.yaml")],
    }
    with ExitStack() as stack:
        _RUNNING.append(stack)
        site.start()
        stack.callback(site.stop)
        # The API first, with ten minutes to start: on a busy machine its start-up (the
        # instance, the indexes, the embedder) is what the tests wait for.
        url = stack.enter_context(running_api(env, tmp / "api.log", ROOT_KEY, timeout=600))
        for name, command in commands.items():
            stack.enter_context(process_group(command, env, tmp / f"{name}.log"))
        with Client(url, ROOT_KEY) as root:
            admin = root.create_key("client-tests-admin", "admin", "*")
        yield Stack(url=url, admin_key=admin.secret, log_dir=tmp, site=site)


@pytest.fixture()
def admin(client_stack: Stack) -> Iterator[Client]:
    with Client(client_stack.url, client_stack.admin_key) as client:
        yield client


@pytest.fixture(scope="session")
def paper(client_stack: Stack, corpus: Path) -> dict[str, str]:
    """The paper, indexed in a collection of its own: what the retriever tests search."""
    collection = "client-paper"
    with Client(client_stack.url, client_stack.admin_key) as client:
        client.create_collection(collection, description="the retrievers' corpus")
        [doc] = client.upload(corpus / PAPER, collection=collection, metadata={"kind": "paper"})
        client.wait_until_indexed(doc.id, timeout=WAIT)
    return {"id": doc.id, "collection": collection, "url": client_stack.url}
