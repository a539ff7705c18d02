"""The tutorial site builds without a warning, and what it builds holds together."""

import hashlib
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.repo

COURSE_OUTLINE = {
    "Home": "index.md",
    "Getting started": "getting-started.md",
    "Phase 1 · Echo": "phase1.md",
    "Phase 2 · Threads": "phase2.md",
    "Phase 3 · Usernames": "phase3.md",
    "Phase 4 · select()": "phase4.md",
    "Extensions": "extensions.md",
    "Protocol reference": "protocol.md",
    "Grading guide": "grading.md",
    "Performance": "performance.md",
    "Troubleshooting": "troubleshooting.md",
    "Going further": "going-further.md",
}


def test_nav_is_the_course_outline(nav_pages):
    assert list(nav_pages.items()) == list(COURSE_OUTLINE.items())


def test_every_nav_page_is_built(nav_pages, built_page):
    missing = [source for source in nav_pages.values() if not built_page(source).is_file()]
    assert not missing, f"pages in the nav but not in the built site: {missing}"


def test_internal_links_and_anchors_resolve(nav_pages, built_page, site_dir, html):
    broken = {}
    for source in nav_pages.values():
        problems = html(built_page(source)).broken_links(site_dir, html)
        if problems:
            broken[source] = problems
    assert not broken, f"broken links: {broken}"


def test_pages_load_nothing_from_other_hosts(nav_pages, built_page, html):
    """The site works offline: no script, stylesheet, font or image from a CDN."""
    external = {
        source: remote
        for source in nav_pages.values()
        if (remote := [r for r in html(built_page(source)).resources if urlsplit(r).netloc])
    }
    assert not external, f"resources from other hosts: {external}"


@pytest.mark.parametrize("phase", [1, 2, 3, 4])
def test_chapter_has_diagram_diff_and_check_command(phase, built_page, html):
    facts = html(built_page(f"phase{phase}.md"))
    missing = []
    if "mermaid" not in facts.classes:
        missing.append("a ```mermaid diagram")
    if phase > 1 and "phase-diff" not in facts.classes:  # phase 1 has nothing before it
        missing.append("a diff from a <!-- phase-diff: ... --> marker")
    if f"pytest --phase {phase}" not in facts.text:
        missing.append(f"its check command, `pytest --phase {phase}`")
    assert not missing, f"phase{phase}.md lacks " + ", ".join(missing)


def test_home_page_has_the_diagram_and_the_terminals(built_page, html):
    facts = html(built_page("index.md"))
    assert {"mermaid", "terminal"} <= facts.classes
    assert any(r.endswith("javascripts/mermaid.min.js") for r in facts.resources)


def test_vendored_mermaid_matches_its_notice(repo_root):
    folder = repo_root / "docs" / "javascripts"
    digest = hashlib.sha256((folder / "mermaid.min.js").read_bytes()).hexdigest()
    assert digest in (folder / "mermaid.NOTICE.txt").read_text(encoding="utf-8"), (
        "mermaid.min.js changed: update its version, size and sha256 in mermaid.NOTICE.txt"
    )


def test_build_hooks_are_not_published(site_dir):
    assert not (site_dir / "hooks").exists()


def test_diagram_source_is_not_searchable(site_dir):
    index = (site_dir / "search" / "search_index.json").read_text(encoding="utf-8")
    assert "flowchart LR" not in index  # the home page's diagram, see docs/hooks/search_exclude.py
