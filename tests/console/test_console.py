"""The console in a real browser: Debian's chromium driven through Playwright, against the
real stack (the API served by uvicorn, the Dagster daemon and its run worker, Chroma).

One journey, as a document owner and then a reader: sign in, create a collection, upload
three files (one damaged) and watch their rows turn indexed and failed with no reload,
filter the documents by metadata and retry the failed one, search and open a hit, read its
chunks and reprocess it; a reader key sees no upload control and no other
collection. /docs shows the operations with no internet. Each main view is written to
pytest's temporary folder at 1440 and 360 px wide, or into docs/screenshots/ with
`UPDATE_SCREENSHOTS=1` (so a run of the suite never changes the checkout).
"""

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.env import REPO, running_api

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = (
    REPO / "docs" / "screenshots"
    if os.environ.get("UPDATE_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / "rag-console-screenshots"
)
ROOT_KEY = "console-root-key"
PHRASE = "we let each article belong to several different clusters"
# Chromium with nothing that reaches out to the network on its own.
ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture()
def api_url(daemon, daemon_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    with running_api(daemon_env, tmp_path / "api.log", ROOT_KEY) as url:
        yield url


@pytest.fixture()
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def shoot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    """The view as it is, at 1440 px and at 360 px wide."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for width in (1440, 360):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=SCREENSHOTS / f"{name}-{width}.png", full_page=True)
    page.set_viewport_size({"width": 1440, "height": 900})


def sign_in(page, url: str, key: str) -> None:  # type: ignore[no-untyped-def]
    """By keyboard alone: Tab reaches the key field, Enter signs in."""
    page.goto(f"{url}/console/")
    for _ in range(5):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "signin-key":
            break
    assert page.evaluate("document.activeElement.id") == "signin-key"
    page.keyboard.type(key)
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Collections").wait_for()


def run_ids(page) -> set[str]:  # type: ignore[no-untyped-def]
    """The runs the document's page links to."""
    links = page.locator("#document-runs li a")
    return {links.nth(n).get_attribute("href").rsplit("/", 1)[-1] for n in range(links.count())}


def after_run(url: str, page, known: set[str], state: str) -> str:  # type: ignore[no-untyped-def]
    """Once the document on the page has been taken to `state` (failed or materialized) by the
    one run its page links to beyond `known`, as the API reports it: that time as the console
    shows times (toLocaleString in the page's browser)."""
    doc_id = page.locator("#view-document").get_attribute("data-id")
    [newest] = run_ids(page) - known
    headers = {"Authorization": f"Bearer {ROOT_KEY}"}
    deadline = time.monotonic() + 180
    while True:
        doc = httpx.get(f"{url}/documents/{doc_id}", headers=headers, timeout=30).json()
        stages = [s for s in doc["stages"].values() if s["run_id"] == newest]
        done = [s for s in stages if s["state"] == state]
        if doc["status"] in ("indexed", "failed") and done:
            at = done[-1]["failed_at" if state == "failed" else "materialized_at"]
            return str(page.evaluate("(iso) => new Date(iso).toLocaleString()", at))
        assert time.monotonic() < deadline, f"run {newest} did not end: {doc}"
        time.sleep(0.5)


# The fast deterministic embedder: the journey is about the console, the stack is real.
@pytest.mark.parametrize("daemon_env", [{"RAG_EMBEDDING_MODEL": "hash-384"}], indirect=True)
def test_a_document_owner_uploads_watches_searches_and_reprocesses_in_a_browser(
    api_url: str, browser, corpus: Path, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    files = tmp_path / "files"
    files.mkdir()
    paper = files / "naacl.pdf"
    shutil.copyfile(corpus / "pdf/pdfminer_naacl06-shinyama.pdf", paper)
    note = files / "norwich.txt"
    shutil.copyfile(corpus / "text/uns_norwich-city.txt", note)
    damaged = files / "damaged.pdf"
    shutil.copyfile(corpus / "pdf_problem/pdfjs_Pages-tree-refs.pdf", damaged)

    page = browser.new_page(viewport={"width": 1440, "height": 900})  # type: ignore[attr-defined]
    page.set_default_timeout(20_000)
    page.on("dialog", lambda dialog: dialog.accept())

    page.goto(f"{api_url}/docs")
    expect(page.locator(".opblock-summary-path", has_text="/search").first).to_be_visible()
    shoot(page, "api-docs")

    page.goto(f"{api_url}/console/")
    shoot(page, "sign-in")
    sign_in(page, api_url, ROOT_KEY)

    page.locator("#collection-name").fill("lab")
    page.locator("#collection-description").fill("Papers and notes")
    page.get_by_role("button", name="Create collection").click()
    expect(page.locator("tr[data-collection=lab]")).to_be_visible()

    page.get_by_role("link", name="Upload").click()
    page.locator("#upload-collection").select_option("lab")
    page.evaluate("window.notReloaded = true")
    page.locator("#upload-files").set_input_files([paper, note, damaged])
    page.locator("#upload-metadata").fill('{"team": "lab"}')
    page.get_by_role("button", name="Upload", exact=True).click()
    rows = page.locator("#upload-rows tr")
    expect(rows).to_have_count(3)
    expect(page.locator("#upload-rows tr[data-status=indexed]")).to_have_count(2, timeout=150_000)
    failed = page.locator("#upload-rows tr[data-status=failed]")
    expect(failed).to_have_count(1, timeout=60_000)
    expect(failed).to_contain_text("damaged.pdf")
    expect(failed.locator(".detail")).to_contain_text("damaged_pdf")
    assert page.evaluate("window.notReloaded") is True  # the rows moved by themselves
    shoot(page, "upload")

    page.get_by_role("link", name="Collections").click()
    expect(page.locator("tr[data-collection=lab] .counts")).to_contain_text("indexed 2")
    expect(page.locator("tr[data-collection=lab] .counts")).to_contain_text("failed 1")
    shoot(page, "collections")

    page.get_by_role("link", name="Documents").click()
    expect(page.locator("#documents-rows tr")).to_have_count(3)
    shoot(page, "documents")
    # The metadata filter of search narrows the list; a bad one says why, in place.
    page.locator("#documents-metadata").fill('{"year": {"$gt": "soon"}}')
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#documents-error")).to_contain_text("invalid_filter")
    page.locator("#documents-metadata").fill('{"filename": {"$ne": "damaged.pdf"}, "team": "lab"}')
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#documents-rows tr")).to_have_count(2)
    expect(page.locator("#documents-rows")).not_to_contain_text("damaged.pdf")
    expect(page.locator("#documents-error")).to_be_empty()
    shoot(page, "documents-filtered")
    # One failed document is retried by itself, from its own page.
    page.locator("#documents-metadata").fill('{"filename": "damaged.pdf"}')
    page.get_by_role("button", name="Filter").click()
    page.get_by_role("link", name="damaged.pdf").click()
    expect(page.locator("#view-document")).to_have_attribute("data-status", "failed")
    expect(page.locator("#document-chunks-range")).to_have_text("No chunks yet.")
    tried = run_ids(page)
    page.get_by_role("button", name="Retry").click()
    expect(page.locator("#flash")).to_contain_text("Retrying from")
    expect(page.locator("#document-runs li")).to_have_count(len(tried) + 1, timeout=60_000)
    # The status read "failed" before the retry too: wait for the retry's own run to fail the
    # document again, then for the page to show that failure's time.
    ended = after_run(api_url, page, tried, "failed")
    expect(page.locator("#document-stages")).to_contain_text(ended, timeout=60_000)
    expect(page.locator("#view-document")).to_have_attribute("data-status", "failed")

    page.get_by_role("link", name="Search").click()
    page.locator("#search-q").fill(PHRASE)
    page.locator("#search-collection").select_option("lab")
    page.get_by_role("button", name="Search", exact=True).click()
    top = page.locator("#search-hits li").first
    expect(top).to_contain_text("naacl.pdf")
    expect(top).to_contain_text("page 3")
    expect(top.locator("mark").first).to_be_visible()
    shoot(page, "search")

    top.get_by_role("link", name="naacl.pdf").click()
    expect(page.get_by_role("heading", name="naacl.pdf")).to_be_visible()
    runs = page.locator("#document-runs li")
    known = run_ids(page)
    before = len(known)
    assert before >= 1
    page.get_by_role("button", name="Reprocess").click()
    expect(page.locator("#flash")).to_contain_text("Reprocessing from")
    expect(runs).to_have_count(before + 1, timeout=60_000)
    # "indexed" was true before the reprocess too: the same evidence as for the retry.
    ended = after_run(api_url, page, known, "materialized")
    expect(page.locator("#document-stages")).to_contain_text(ended, timeout=60_000)
    expect(page.locator("#view-document")).to_have_attribute("data-status", "indexed")
    # Its chunks as they were embedded, with where each came from.
    chunks = page.locator("#document-chunks li")
    expect(chunks.first).to_contain_text("Chunk 0 · page")
    expect(chunks.first).to_contain_text("tokens")
    expect(page.locator("#document-chunks-range")).to_contain_text("Chunks 1–")
    shoot(page, "document")

    page.get_by_role("link", name="Schedules").click()
    expect(page.locator("#schedules-rows tr").first).to_be_visible()
    shoot(page, "schedules")

    page.get_by_role("link", name="Collections").click()
    page.locator("#key-name").fill("lab reader")
    page.locator("#key-role").select_option("reader")
    page.locator("#key-collections").fill("lab")
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("#key-secret-value")
    expect(secret).not_to_be_empty()
    reader_key = secret.inner_text()

    page.get_by_role("button", name="Sign out").click()
    sign_in(page, api_url, reader_key)
    expect(page.locator("#who")).to_contain_text("reader")
    expect(page.get_by_role("link", name="Upload")).to_be_hidden()
    expect(page.locator("#collections-rows tr")).to_have_count(1)
    expect(page.locator("tr[data-collection=lab]")).to_be_visible()
    page.goto(f"{api_url}/console/#/upload")
    expect(page.get_by_role("heading", name="Collections")).to_be_visible()
    expect(page.locator("#upload-files")).to_be_hidden()
    shoot(page, "reader")
