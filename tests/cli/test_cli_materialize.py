"""Entry point 4: `rag-pipeline add`, then `dagster asset materialize ... --partition ID`.

With hash-384: what the real model finds in this PDF is test_e2e_real_model.py's concern.
"""

import json
import os
import subprocess
from pathlib import Path

import pypdf
from support.env import BIN, REPO
from support.runs import copy_corpus, materialize_args


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True, timeout=600)


def _pages_with(pdf: Path, phrase: str) -> list[int]:
    """The 1-based pages of the PDF whose text, as pypdf reads it, holds the phrase."""
    reader = pypdf.PdfReader(pdf)
    return [
        number
        for number, page in enumerate(reader.pages, start=1)
        if " ".join(phrase.split()) in " ".join(page.extract_text().split())
    ]


def test_dagster_cli_materializes_an_added_document(
    instance, rag_env, corpus: Path, tmp_path: Path
) -> None:
    env = {**os.environ, **rag_env, "DAGSTER_HOME": os.environ["DAGSTER_HOME"]}
    pdf = copy_corpus(corpus, "pdf/pdfminer_naacl06-shinyama.pdf", tmp_path)
    added = _run([str(BIN / "rag-pipeline"), "add", str(pdf)], env)
    assert added.returncode == 0, added.stderr
    doc_id = added.stdout.strip()

    run = _run(
        [str(BIN / "dagster"), *materialize_args(doc_id)],
        env,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    # No warm worker here: the command executes the step itself, and says why.
    assert "no warm worker is alive" in run.stdout + run.stderr

    status = _run([str(BIN / "rag-pipeline"), "status", doc_id, "--json"], env)
    record = json.loads(status.stdout)
    assert record["status"] == "indexed"
    assert record["chunks"] > 0

    phrase = "only using basic patterns sometimes gives undesired results"
    [page] = _pages_with(pdf, phrase)
    found = _run([str(BIN / "rag-pipeline"), "search", phrase, "--mode", "lexical", "--json"], env)
    assert found.returncode == 0, found.stderr
    top = json.loads(found.stdout.splitlines()[0])
    assert (top["document_id"], top["page"]) == (doc_id, page)
