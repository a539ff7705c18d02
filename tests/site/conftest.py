"""Fixtures and helpers shared by the checks of the tutorial site (tests/site/).

Everything the site tests share lives here, as fixtures, so the test modules import
nothing from each other and work under any pytest import mode.
"""

from __future__ import annotations

import functools
import http.server
import importlib.util
import os
import subprocess
import sys
import threading
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT = 120  # seconds; the build takes about one
NOT_LOADED = ("canonical", "alternate")  # <link rel> that name a page, not a resource


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


def build_site(out: Path, site_url: str | None = None) -> Path:
    """Run `mkdocs build --strict` into `out`; fail the test on an error or a warning."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # silence Material's banner
    env.pop("SITE_URL", None)
    if site_url:
        env["SITE_URL"] = site_url  # read by mkdocs.yml
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)]
    try:
        result = subprocess.run(
            command, cwd=REPO, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT
        )
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"mkdocs build took more than {BUILD_TIMEOUT} s:\n{error.stderr or ''}")
    output = result.stdout + result.stderr
    if result.returncode != 0:
        pytest.fail(f"mkdocs build --strict failed:\n{output}")
    warnings = [line for line in output.splitlines() if line.startswith("WARNING")]
    if warnings:
        pytest.fail("mkdocs build printed warnings:\n" + "\n".join(warnings))
    return out


@pytest.fixture(scope="session")
def site_dir(tmp_path_factory) -> Path:
    """The site as `mkdocs build` makes it on a learner's machine, built once."""
    return build_site(tmp_path_factory.mktemp("site"))


@pytest.fixture(scope="session")
def site_url(tmp_path_factory):
    """The site built for, and served at, a free loopback port, as if published there.

    It gets its own build because a published site knows its address (site_url), which
    Material's instant navigation needs; the port is only known once the server is bound.
    """
    root = tmp_path_factory.mktemp("served")
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root))
    )
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        build_site(root, site_url=url)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        yield url
        server.shutdown()
    finally:
        server.server_close()


@pytest.fixture(scope="session")
def nav_pages() -> dict[str, str]:
    """{title: source file} for every page in mkdocs.yml's nav, in order."""
    from mkdocs.config import load_config

    config = load_config(str(REPO / "mkdocs.yml"))
    pages: dict[str, str] = {}

    def walk(items):
        for item in items:
            if isinstance(item, str):  # a bare "page.md" entry
                pages[item] = item
                continue
            for title, value in item.items():
                if isinstance(value, list):  # a section
                    walk(value)
                else:
                    pages[title] = value

    walk(config["nav"])
    return pages


@pytest.fixture(scope="session")
def html():
    """html(path) -> HtmlFacts of a built file, parsed once."""
    return functools.cache(HtmlFacts.parse)


@pytest.fixture(scope="session")
def phase_diff():
    """The docs/hooks/phase_diff.py hook, imported as a module."""
    path = REPO / "docs" / "hooks" / "phase_diff.py"
    spec = importlib.util.spec_from_file_location("phase_diff_hook", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


class HtmlFacts(HTMLParser):
    """What the checks need from one HTML file: ids, classes, links and text."""

    def __init__(self, path: Path):
        super().__init__(convert_charrefs=True)
        self.path = path
        self.ids: set[str] = set()
        self.classes: set[str] = set()
        self.links: list[str] = []  # <a href>
        self.resources: list[str] = []  # <link href>, <script src>, <img src>
        self._text: list[str] = []

    @classmethod
    def parse(cls, path: Path) -> "HtmlFacts":
        facts = cls(Path(path))
        facts.feed(Path(path).read_text(encoding="utf-8"))
        facts.close()
        return facts

    @property
    def text(self) -> str:
        return "".join(self._text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name"):  # <a name> is a valid target too
            if attrs.get(key) and (key == "id" or tag == "a"):
                self.ids.add(attrs[key])
        self.classes.update((attrs.get("class") or "").split())
        if tag == "a" and attrs.get("href") is not None:
            self.links.append(attrs["href"])
        elif tag == "link" and attrs.get("href") and attrs.get("rel") not in NOT_LOADED:
            self.resources.append(attrs["href"])
        elif tag in ("script", "img") and attrs.get("src"):
            self.resources.append(attrs["src"])

    def handle_data(self, data):
        self._text.append(data)

    def broken_links(self, site_root: Path, parse) -> list[str]:
        """Internal links and resources of this page that lead nowhere, with the reason."""
        problems = []
        refs = [(ref, True) for ref in self.links] + [(ref, False) for ref in self.resources]
        for ref, is_link in refs:
            parts = urlsplit(ref)
            if parts.scheme or parts.netloc:
                continue  # another site, mailto: and the like: not ours to check
            if parts.path.startswith("/"):
                problems.append(f"{ref}: absolute path (breaks when the site is moved)")
                continue
            target = (self.path.parent / unquote(parts.path)).resolve() if parts.path else self.path
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file() or not target.is_relative_to(site_root.resolve()):
                problems.append(f"{ref}: no such file in the site")
            elif is_link and parts.fragment and target.suffix == ".html":
                if unquote(parts.fragment) not in parse(target).ids:
                    problems.append(f"{ref}: no element with id {parts.fragment!r}")
        return problems


@pytest.fixture(scope="session")
def built_page(site_dir):
    """built_page('phase1.md') -> its HTML file in the built site (use_directory_urls
    is false in mkdocs.yml, so a.md becomes a.html)."""
    return lambda source: site_dir / Path(source).with_suffix(".html")
