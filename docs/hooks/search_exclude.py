"""MkDocs hook: keep the source text of ```mermaid diagrams out of the search index.

Material indexes a diagram's source (`flowchart LR`, `<br>`, ...) like prose, which
clutters search results. Its search plugin skips any element that carries
`data-search-exclude`, so every diagram gets that attribute.
"""

MERMAID = '<pre class="mermaid">'


def on_page_content(html: str, **kwargs) -> str:
    return html.replace(MERMAID, MERMAID[:-1] + " data-search-exclude>")
