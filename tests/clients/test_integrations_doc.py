"""The RAG chains in docs/integrations.md run as written against the real stack, with the
chat model swapped for one that echoes its prompt: what the model would be asked to answer
from must hold the cited chunk."""

import re
from typing import Any

import pytest
from support.env import REPO

pytestmark = [pytest.mark.stack, pytest.mark.timeout(3600)]

PAGE = REPO / "docs" / "integrations.md"


def snippet(section: str) -> str:
    """The one Python block under `## <section>`."""
    text = PAGE.read_text()
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    [code] = re.findall(r"```python\n(.*?)```", body, re.S)
    return code


def run(code: str, url: str, swaps: dict[str, str]) -> dict[str, Any]:
    for old, new in {"http://127.0.0.1:8000": url, **swaps}.items():
        assert old in code, old
        code = code.replace(old, new)
    scope: dict[str, Any] = {}
    exec(compile(code, str(PAGE), "exec"), scope)
    return scope


def test_the_langchain_chain_cites_the_chunk_it_answers_from(
    paper: dict[str, str], client_stack: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv("INGEST_API_KEY", client_stack.admin_key)
    echo = "RunnableLambda(lambda prompt: AIMessage(prompt.to_string()))"
    run(
        snippet("LangChain"),
        paper["url"],
        {
            "from langchain_openai import ChatOpenAI": "from langchain_core.messages import "
            "AIMessage\nfrom langchain_core.runnables import RunnableLambda",
            'ChatOpenAI(model="gpt-4o-mini")': echo,
        },
    )
    asked = capsys.readouterr().out
    assert "[pdfminer_naacl06-shinyama.pdf p.3]" in asked, asked
    assert "each article belong to several different clusters" in asked.replace("\n", " ")
