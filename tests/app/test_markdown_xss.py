"""Markdown rendering against an XSS corpus, checked with a real HTML parser."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from flask import Flask

from app.accounts.services import get_user_by_username
from app.documents.services import create_document, repo, save_file
from app.rendering.markdown import render_markdown, sanitize

CORPUS = [
    # script tags
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<scr<script>ipt>alert(1)</script>",
    "<script\n>alert(1)</script\n>",
    "<<script>alert(1);//<</script>",
    "text <script>alert(1)</script> inline",
    "<div>\n<script>alert(1)</script>\n</div>",
    "```\n</code></pre><script>alert(1)</script>\n```",
    "`<script>alert(1)</script>`",
    # event handlers
    '<img src=x onerror="alert(1)">',
    "<img src=x onerror=alert(1)//",
    "<IMG SRC=x OnErRoR=alert(1)>",
    '<body onload="alert(1)">',
    '<div onmouseover="alert(1)">hover</div>',
    '<a onmouseover="alert(1)">x</a>',
    "<details open ontoggle=alert(1)>",
    '<input autofocus onfocus="alert(1)">',
    '<video><source onerror="alert(1)"></video>',
    "<audio src=x onerror=alert(1)>",
    '<marquee onstart="alert(1)">x</marquee>',
    '![x](x" onerror="alert(1))',
    '[x](http://example.com "title\\" onmouseover=\\"alert(1)")',
    # javascript:/vbscript:/data: links and images
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](javascript&#58;alert(1))",
    "[click](&#106;avascript:alert(1))",
    "[click](&#x6A;&#x61;&#x76;&#x61;&#x73;&#x63;&#x72;&#x69;&#x70;&#x74;&#x3A;alert(1))",
    "[click](jav&#x09;ascript:alert(1))",
    "[click](java%0ascript:alert(1))",
    "[click]( javascript:alert(1))",
    "[click](<javascript:alert(1)>)",
    "[click](vbscript:msgbox(1))",
    "[click](VBScript:msgbox(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[click](DATA:text/html,<script>alert(1)</script>)",
    "![img](javascript:alert(1))",
    "![img](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    "![img](vbscript:alert(1))",
    '<a href="javascript:alert(1)">x</a>',
    '<a href="jav&#x09;ascript:alert(1)">x</a>',
    '<a href="&#14;javascript:alert(1)">x</a>',
    '<a href=" JaVaScRiPt:alert(1)">x</a>',
    '<img src="javascript:alert(1)">',
    '<img src="data:text/html,<script>alert(1)</script>">',
    # reference definitions and autolinks
    "[ref]\n\n[ref]: javascript:alert(1)",
    '[ref][r]\n\n[r]: data:text/html,alert(1) "t"',
    "![ref][i]\n\n[i]: vbscript:alert(1)",
    "<javascript:alert(1)>",
    "<vbscript:alert(1)>",
    "<data:text/html,alert(1)>",
    "javascript:alert(1)",
    "www.example.com/<script>alert(1)</script>",
    # embedded documents and active elements
    "<svg><script>alert(1)</script></svg>",
    "<svg onload=alert(1)>",
    "<svg><a xlink:href=javascript:alert(1)><text>x</text></a></svg>",
    '<iframe src="javascript:alert(1)"></iframe>',
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    '<object data="javascript:alert(1)"></object>',
    '<embed src="javascript:alert(1)">',
    "<style>body{background:url(javascript:alert(1))}</style>",
    "<style>@import 'http://evil.example/x.css';</style>",
    '<link rel="stylesheet" href="http://evil.example/x.css">',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<math href="javascript:alert(1)">x</math>',
    "<math><maction actiontype=statusline xlink:href=javascript:alert(1)>x</maction></math>",
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<form action="javascript:alert(1)"><button>go</button></form>',
    '<button formaction="javascript:alert(1)">x</button>',
    '<base href="javascript:alert(1)//">',
    '<isindex action="javascript:alert(1)" type=image>',
    # style attributes
    '<div style="width: expression(alert(1))">x</div>',
    '<p style="background:url(javascript:alert(1))">x</p>',
    '<span style="behavior: url(x.htc)">x</span>',
    '<td style="text-align:left;background:url(javascript:alert(1))">x</td>',
    # comments, CDATA, nesting
    "<!-- <script>alert(1)</script> -->",
    "<!--><script>alert(1)</script>-->",
    "<![CDATA[<script>alert(1)</script>]]>",
    "<div><p><b><i><script>alert(1)",
    "<img src=x onerror=alert(1)",
    '<a href="x" <script>alert(1)</script>',
    "<<img src=x onerror=alert(1)>>",
    # unicode and escapes
    "[x](\\u006aavascript:alert(1))",
    "[x](java\u0000script:alert(1))",
    "[x](\u200bjavascript:alert(1))",
    "<scr\u0000ipt>alert(1)</scr\u0000ipt>",
    "\uff1cscript\uff1ealert(1)\uff1c/script\uff1e",
    # tables, footnotes and task lists (plugins)
    "| a |\n|:-:|\n| <script>alert(1)</script> |",
    "| [x](javascript:alert(1)) |\n|---|\n| y |",
    "Text[^1]\n\n[^1]: <img src=x onerror=alert(1)> [y](javascript:alert(1))",
    "- [ ] <img src=x onerror=alert(1)>\n- [x] [z](javascript:alert(1))",
]

FORBIDDEN_TAGS = {
    "script", "iframe", "object", "embed", "style", "form", "meta", "base", "svg", "math",
    "link", "frame", "frameset", "applet", "video", "audio", "source", "button", "textarea",
    "select", "isindex", "marquee", "body", "html", "head", "template", "noscript",
}  # fmt: skip
URL_ATTRS = {"href", "src", "action", "formaction", "xlink:href", "data", "srcdoc", "poster"}
_INVISIBLE = re.compile(r"[\x00-\x20\x7f-\x9f\u200b-\u200f\u2028\u2029\ufeff]")
_SAFE_STYLE = re.compile(r"^text-align:\s*(left|right|center);?$")


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag, attrs) -> None:  # noqa: ANN001
        self.elements.append((tag, attrs))

    def handle_startendtag(self, tag, attrs) -> None:  # noqa: ANN001
        self.elements.append((tag, attrs))


def elements(html: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    parser = _Collector()
    parser.feed(html)
    parser.close()
    return parser.elements


def problems(html: str) -> list[str]:
    """Everything dangerous in ``html``, as found by a real HTML parser."""
    found = []
    for tag, attrs in elements(html):
        if tag in FORBIDDEN_TAGS:
            found.append(f"<{tag}> element")
        for name, value in attrs:
            value = value or ""
            if name.startswith("on"):
                found.append(f"<{tag} {name}> event handler")
            if name in URL_ATTRS:
                cleaned = _INVISIBLE.sub("", value).lower()
                if cleaned.startswith(("javascript:", "vbscript:", "data:")):
                    found.append(f"<{tag} {name}={value!r}>")
                if name in {"srcdoc", "formaction", "action"}:
                    found.append(f"<{tag} {name}> attribute")
            if name == "style" and not _SAFE_STYLE.match(value.strip().lower()):
                found.append(f"<{tag} style={value!r}>")
    return found


def test_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 60
    assert len(set(CORPUS)) == len(CORPUS)


def test_checker_catches_the_payloads_it_is_meant_to() -> None:
    """The checker itself must be able to fail: raw payloads are flagged."""
    assert problems("<script>alert(1)</script>")
    assert problems('<img src=x onerror="alert(1)">')
    assert problems('<a href=" Java&#x09;Script:alert(1)">x</a>')
    assert problems('<a href="DATA:text/html,x">x</a>')
    assert problems('<td style="color:red">x</td>')
    assert problems("<svg></svg><math></math><meta><base><form><link>")
    assert not problems('<td style="text-align:center">x</td><a href="/d/x">x</a>')


@pytest.mark.parametrize("payload", CORPUS, ids=range(len(CORPUS)))
def test_payload_is_neutralised(payload: str) -> None:
    for resolve_url in (None, lambda url: "/d/doc/raw/main/" + url):
        html = render_markdown(payload, resolve_url=resolve_url)
        assert problems(html) == [], (payload, html)


@pytest.mark.parametrize("payload", CORPUS, ids=range(len(CORPUS)))
def test_sanitizer_alone_neutralises_raw_html(payload: str) -> None:
    """The second layer on its own: nh3 must clean the payload even as raw HTML."""
    html = sanitize(payload)
    assert problems(html) == [], (payload, html)


def test_safe_markdown_still_renders() -> None:
    html = render_markdown(
        "# Title\n\n[ok](https://example.com) ![i](pic.png) <https://example.com/a>\n\n"
        "| l | c | r |\n|:--|:-:|--:|\n| 1 | 2 | 3 |\n\n- [x] done\n",
        resolve_url=lambda url: "/raw/" + url,
    )
    tags = elements(html)
    assert ("a", [("href", "https://example.com"), ("rel", "noopener noreferrer nofollow")]) in [
        (t, sorted(a)) for t, a in tags
    ]
    assert ("img", [("alt", "i"), ("src", "/raw/pic.png")]) in [(t, sorted(a)) for t, a in tags]
    styles = sorted(v for t, a in tags for n, v in a if n == "style")
    assert styles == [
        "text-align:center",
        "text-align:center",
        "text-align:left",
        "text-align:left",
        "text-align:right",
        "text-align:right",
    ]
    assert any(t == "input" and ("type", "checkbox") in a for t, a in tags)


class _MainCollector(_Collector):
    """Collects only the elements inside ``<main>``."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.all_scripts = 0

    def handle_starttag(self, tag, attrs) -> None:  # noqa: ANN001
        # The page may load Quire's own static modules (the copy button); any other
        # script, inline or from elsewhere, counts.
        if tag == "script" and not (dict(attrs).get("src") or "").startswith("/static/js/"):
            self.all_scripts += 1
        if tag == "main":
            self.depth += 1
        elif self.depth:
            self.elements.append((tag, attrs))

    def handle_endtag(self, tag) -> None:  # noqa: ANN001
        if tag == "main" and self.depth:
            self.depth -= 1


def test_whole_corpus_in_a_document_page(app: Flask, client, accounts) -> None:
    accounts.create("ada")
    corpus = "\n\n".join(CORPUS) + "\n"
    with app.app_context():
        ada = get_user_by_username("ada")
        document = create_document(ada, "Payloads", visibility="public")
        save_file(
            ada,
            document,
            branch="main",
            path="document.md",
            content=corpus,
            message="Add the corpus",
            parent=repo(document).head("main"),
        )
    response = client.get("/d/payloads")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Add the corpus" in page or "alert(1)" in page  # the corpus really is shown
    parser = _MainCollector()
    parser.feed(page)
    parser.close()
    assert parser.elements, "no <main> on the page"
    assert parser.all_scripts == 0  # the page's own markup has no scripts either
    assert problems_in(parser.elements) == []


def problems_in(found: list[tuple[str, list[tuple[str, str | None]]]]) -> list[str]:
    from html import escape

    html = "".join(
        f"<{tag} "
        + " ".join(f'{name}="{escape(value or "", quote=True)}"' for name, value in attrs)
        + ">"
        for tag, attrs in found
    )
    return problems(html)
