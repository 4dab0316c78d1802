"""Markdown to safe HTML.

markdown-it-py renders CommonMark with GitHub-style tables, strikethrough,
footnotes and task lists; raw HTML in the source is escaped by the parser, and
the result is then cleaned by nh3 (the Ammonia sanitizer) with an allow-list,
so that a bug in either layer alone cannot let a script through.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import nh3
from markdown_it import MarkdownIt
from mdit_py_plugins.footnote import footnote_plugin
from mdit_py_plugins.tasklists import tasklists_plugin

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "details", "div", "dl", "dt",
    "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "input", "ins", "kbd", "li",
    "mark", "ol", "p", "pre", "s", "section", "span", "strong", "sub", "summary", "sup",
    "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "*": {"class", "id"},
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "input": {"type", "checked", "disabled"},
    "td": {"style"},
    "th": {"style"},
    "ol": {"start"},
}
URL_SCHEMES = {"http", "https", "mailto"}
_ALIGN_RE = re.compile(r"^text-align:\s*(left|right|center)$")


def _build_parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": True, "typographer": False})
    md.enable(["table", "strikethrough", "linkify"])
    md.use(footnote_plugin)
    md.use(tasklists_plugin)
    return md


_parser = _build_parser()


def _filter_attribute(tag: str, attr: str, value: str) -> str | None:
    if attr == "style":
        return value if _ALIGN_RE.match(value.strip()) else None
    if tag == "input" and attr == "type":
        return value if value == "checkbox" else None
    return value


def sanitize(html: str) -> str:
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        attribute_filter=_filter_attribute,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def render_markdown(text: str, *, resolve_url: Callable[[str], str] | None = None) -> str:
    """Render Markdown source to sanitized HTML.

    ``resolve_url`` rewrites relative image and link targets, so that an image
    committed next to the document is shown inline from the repository.
    """
    tokens = _parser.parse(text)
    if resolve_url is not None:
        for token in tokens:
            for child in token.children or ():
                if child.type == "image":
                    src = child.attrGet("src")
                    if isinstance(src, str) and _is_relative(src):
                        child.attrSet("src", resolve_url(src))
                elif child.type == "link_open":
                    href = child.attrGet("href")
                    if isinstance(href, str) and _is_relative(href):
                        child.attrSet("href", resolve_url(href))
    html = _parser.renderer.render(tokens, _parser.options, {})
    return sanitize(html)


def _is_relative(url: str) -> bool:
    return bool(url) and not re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*:|/|#)", url)
