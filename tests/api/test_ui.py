"""What a browser opens: /docs and /redoc load their scripts from the app itself, never from
a CDN, and the console is served at /console."""

import re

import pytest
from fastapi.testclient import TestClient

pytest_plugins = ["support.api"]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_api_docs_need_no_internet(client: TestClient, page: str) -> None:
    html = client.get(page).text
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets and all(url.startswith("/") for url in assets), assets
    for url in assets:
        assert client.get(url).status_code == 200, url


def test_the_console_is_served_with_its_assets(client: TestClient) -> None:
    html = client.get("/console/").text
    assets = re.findall(r'(?:src|href)="([^"#]+)"', html)
    assert "console.js" in " ".join(assets)
    for url in assets:
        absolute = url if url.startswith("/") else f"/console/{url}"
        assert client.get(absolute).status_code == 200, url
    assert client.get("/", follow_redirects=False).headers["location"] == "/console/"
