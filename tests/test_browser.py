"""The published book in a real browser: headless Chromium (Debian's) driven by Playwright.

Needs the built HTML (`python -m visionbook.tools.bookbuild`) and Debian's Chromium
(`apt-get install chromium`). Without either the tests are skipped with that reason, unless
VISIONBOOK_REQUIRE_HTML=1 and VISIONBOOK_REQUIRE_BROWSER=1 (CI sets both), which turn the missing
piece into a failure. Requests to other hosts (the theme's CDN scripts, e.g. MathJax) are answered
with an empty response, because the test machine has no network; they are recorded, not counted
as errors.
"""

import functools
import http.server
import json
import os
import re
import shutil
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
REPO_URL = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"].rstrip("/")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def _toc_pages() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [toc["root"]]
    for part in toc.get("parts", []):
        pages += [chapter["file"] for chapter in part["chapters"]]
    return pages


PAGES = _toc_pages()
CHAPTERS = [p for p in PAGES if (ROOT / f"{p}.ipynb").exists()]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site():
    if not (HTML / "index.html").exists():
        if os.environ.get("VISIONBOOK_REQUIRE_HTML") == "1":
            pytest.fail(f"no built book at {HTML}: run python -m visionbook.tools.bookbuild first")
        pytest.skip("no browser test: the book is not built (python -m visionbook.tools.bookbuild)")
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _no_browser(reason: str):
    """Skip, saying why; with VISIONBOOK_REQUIRE_BROWSER=1 (.ci/run sets it) fail instead."""
    if os.environ.get("VISIONBOOK_REQUIRE_BROWSER") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright import sync_api
    except ImportError:
        _no_browser(
            "no browser test: Playwright is not installed (pip install -r requirements.txt)"
        )
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        _no_browser(
            "no browser test: Debian's chromium is not installed (apt-get install chromium)"
        )
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


class Visit:
    """One page load with its console errors, page errors and the external hosts it asked for."""

    def __init__(self, browser, url: str):
        self.errors: list[str] = []
        self.external: set[str] = set()
        self.page = browser.new_page()
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.route("**/*", self._route)
        self.response = self.page.goto(url, wait_until="load")

    def _route(self, route):
        host = urlparse(route.request.url).hostname
        if host in ("127.0.0.1", "localhost"):
            return route.continue_()
        self.external.add(host)
        return route.fulfill(status=200, body="", content_type="application/javascript")


def _page_url(site: str, page: str) -> str:
    return f"{site}/{page}.html"


@pytest.mark.parametrize("page", PAGES)
def test_page_loads_without_errors_or_broken_images(site, browser, page):
    visit = Visit(browser, _page_url(site, page))
    assert visit.response.status == 200
    assert visit.errors == [], f"console errors on {page}: {visit.errors}"
    images = visit.page.eval_on_selector_all(
        "main img", "els => els.map(e => [e.getAttribute('src'), e.naturalWidth])"
    )
    for src, width in images:
        assert width > 0, f"broken image {src} on {page}"
        assert visit.page.request.get(visit.page.url.rsplit("/", 1)[0] + "/" + src).status == 200
    assert visit.external <= {"cdn.jsdelivr.net", "cdnjs.cloudflare.com", "unpkg.com"}, (
        visit.external
    )
    visit.page.close()


@pytest.mark.parametrize("page", PAGES)
def test_headings_in_order_and_images_described(site, browser, page):
    visit = Visit(browser, _page_url(site, page))
    levels = visit.page.eval_on_selector_all(
        "main article :is(h1,h2,h3,h4,h5,h6)", "els => els.map(e => +e.tagName[1])"
    )
    assert levels and levels[0] == 1, f"{page} must start with one h1, got {levels[:3]}"
    assert levels.count(1) == 1, f"{page} has {levels.count(1)} h1 headings"
    for before, after in zip(levels, levels[1:]):
        assert after <= before + 1, f"{page}: heading level jumps from h{before} to h{after}"
    # Alt text comes from the cell's metadata (mystnb.image.alt); without it MyST-NB writes the
    # image's file name, which a screen reader would read out.
    described = visit.page.eval_on_selector_all(
        "main img",
        "els => els.map(e => [e.getAttribute('src'), (e.alt || '').trim(), "
        "!!e.closest('figure')?.querySelector('figcaption')])",
    )
    missing = [
        src
        for src, alt, caption in described
        if not caption and (not alt or alt.endswith((".png", ".jpg", ".svg")))
    ]
    assert not missing, f"{page}: images without alt text or caption: {missing}"
    visit.page.close()


def test_next_links_follow_the_table_of_contents(site, browser):
    visit = Visit(browser, _page_url(site, PAGES[0]))
    for expected in PAGES[1:]:
        visit.page.click("a.right-next")
        visit.page.wait_for_load_state("load")
        assert visit.page.url.split("#")[0].endswith(f"/{expected}.html"), (
            f"next after ... went to {visit.page.url}"
        )
    visit.page.close()


def test_search_finds_a_chapter(site, browser):
    visit = Visit(browser, f"{site}/search.html?q=perceptron")
    visit.page.wait_for_selector("#search-results li a", timeout=15000)
    hits = visit.page.eval_on_selector_all(
        "#search-results li a", "els => els.map(e => e.getAttribute('href'))"
    )
    assert any("perceptron" in h for h in hits), hits
    visit.page.close()


@pytest.mark.parametrize("page", CHAPTERS)
def test_launch_and_download_buttons_point_at_the_notebook(site, browser, page):
    visit = Visit(browser, _page_url(site, page))
    hrefs = visit.page.eval_on_selector_all("a", "els => els.map(e => e.href)")
    slug = REPO_URL.removeprefix("https://github.com/")
    assert f"https://colab.research.google.com/github/{slug}/blob/main/{page}.ipynb" in hrefs
    assert any(
        h.startswith(f"https://mybinder.org/v2/gh/{slug}/main?") and f"{page}.ipynb" in h
        for h in hrefs
    )
    assert any(h.endswith(f"/_sources/{page}.ipynb") for h in hrefs), (
        "no download link to the notebook"
    )
    visit.page.close()


def _has_solutions(page: str) -> bool:
    cells = json.loads((ROOT / f"{page}.ipynb").read_text())["cells"]
    return any(
        re.search(r"^[`:]{3,}\{solution\}", "".join(c["source"]), re.MULTILINE)
        for c in cells
        if c["cell_type"] == "markdown"
    )


@pytest.mark.parametrize("page", [p for p in CHAPTERS if _has_solutions(p)])
def test_solutions_are_collapsed(site, browser, page):
    visit = Visit(browser, _page_url(site, page))
    solutions = visit.page.locator("main .solution")
    assert solutions.count() > 0, f"{page} has solutions in its source but none on the page"
    for i in range(solutions.count()):
        body = solutions.nth(i).locator(".admonition-title ~ *").first
        assert not body.is_visible(), f"solution {i} of {page} is open by default"
    # The chevron is the control: the middle of the title is the link back to the exercise, which
    # navigates there instead of toggling (sphinx-togglebutton only handles clicks off the link).
    solutions.first.locator(".admonition-title .toggle-button").click()
    body = solutions.first.locator(".admonition-title ~ *").first
    body.wait_for(state="visible", timeout=5000)  # raises if the solution never opens
    visit.page.close()
