"""The built site in a real browser: diagrams render offline, search and copy work.

Drives Debian's Chromium headless through Playwright. Screenshots go to
build/screenshots/ for a person to look at.
"""

from pathlib import Path
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.repo

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
TIMEOUT_MS = 15_000
COPY_BUTTON = ".md-clipboard, .md-code__button[data-md-type='copy']"  # Material <9.7, >=9.7
# Material draws each diagram inside a closed shadow root; open it so the test can see
# the <svg>. Nothing else about the page changes.
OPEN_SHADOW_ROOTS = """
const attachShadow = Element.prototype.attachShadow;
Element.prototype.attachShadow = function (init) {
  return attachShadow.call(this, { ...init, mode: "open" });
};
"""


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright is missing: run `python -m pip install -r requirements.txt`")
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"Chromium is missing at {CHROMIUM}: run `apt-get install -y chromium`")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, site_url):
    """A fresh page that may load nothing but the local site; see page.external."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    context.add_init_script(OPEN_SHADOW_ROOTS)
    page = context.new_page()
    page.external = []
    local = urlsplit(site_url).netloc

    def only_local(route):
        if urlsplit(route.request.url).netloc == local:
            route.continue_()
        else:
            page.external.append(route.request.url)
            route.abort()

    page.route("**/*", only_local)
    yield page
    context.close()


@pytest.fixture(scope="module")
def screenshots(repo_root):
    folder = repo_root / "build" / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_home_renders_its_diagram_offline(page, site_url, screenshots):
    page.goto(site_url + "index.html")
    diagram = page.wait_for_selector("div.mermaid svg")  # rendered by the local mermaid
    box = diagram.bounding_box()
    assert box and box["width"] > 200 and box["height"] > 40
    page.wait_for_selector(COPY_BUTTON, state="attached")
    page.screenshot(path=screenshots / "site-home.png", full_page=True)
    assert page.external == [], "the page tried to reach other hosts"


def test_dark_palette(page, site_url, screenshots):
    page.emulate_media(color_scheme="dark")
    page.goto(site_url + "index.html")
    assert page.get_attribute("body", "data-md-color-scheme") == "slate"
    page.wait_for_selector("div.mermaid svg")
    page.screenshot(path=screenshots / "site-home-dark.png")


def test_search_finds_select(page, site_url, screenshots):
    page.goto(site_url + "index.html")
    search = page.locator("input.md-search__input")
    search.click()
    # The index loads in a web worker; a query typed before it is ready is lost.
    page.wait_for_function(
        "!document.querySelector('.md-search-result__meta').textContent.includes('Initializing')"
    )
    search.press_sequentially("select")
    # Results update as each letter arrives: wait for a result of the whole word.
    result = page.locator(".md-search-result__item", has_text="select").first
    result.wait_for()
    assert "select" in result.inner_text().lower()
    page.screenshot(path=screenshots / "site-search.png")


def test_footer_link_navigates_instantly(page, site_url):
    page.goto(site_url + "index.html")
    page.evaluate("window.__stillHere = true")
    page.click("a.md-footer__link--next")
    page.wait_for_url("**/getting-started.html")
    page.wait_for_selector("h1#getting-started")
    assert page.evaluate("window.__stillHere") is True, "a full reload: navigation.instant is off"
