"""Entry point 4: `rag-pipeline add`, then `dagster asset materialize ... --partition ID`."""

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import BIN, REPO, copy_corpus


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True, timeout=600)


@pytest.mark.e2e
def test_dagster_cli_materializes_an_added_document(
    instance, real_model, corpus: Path, tmp_path: Path
) -> None:
    env = {**os.environ, **real_model, "DAGSTER_HOME": os.environ["DAGSTER_HOME"]}
    pdf = copy_corpus(corpus, "pdf/pdfminer_naacl06-shinyama.pdf", tmp_path)
    added = _run([str(BIN / "rag-pipeline"), "add", str(pdf)], env)
    assert added.returncode == 0, added.stderr
    doc_id = added.stdout.strip()

    run = _run(
        [
            str(BIN / "dagster"),
            "asset",
            "materialize",
            "-m",
            "rag_pipeline.definitions",
            "--select",
            "raw_document*",
            "--partition",
            doc_id,
        ],
        env,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    status = _run([str(BIN / "rag-pipeline"), "status", doc_id, "--json"], env)
    record = json.loads(status.stdout)
    assert record["status"] == "indexed"
    assert (
        record["stages"]["chunk_embeddings"]["metadata"]["model"]
        == real_model["RAG_EMBEDDING_MODEL"]
    )

    found = _run(
        [
            str(BIN / "rag-pipeline"),
            "search",
            "basic patterns that are syntactically connected to an entity",
            "--json",
        ],
        env,
    )
    top = json.loads(found.stdout.splitlines()[0])
    assert top["document_id"] == doc_id
    assert top["page"] in (2, 3)
