"""@mentions in review comments: find them, resolve them to users, link them.

A mention is ``@`` followed by a username as :mod:`app.accounts.services` allows it
(letters, digits, ``_`` and ``-``, starting and ending with a letter or digit, at
most 40 characters), not glued to a preceding word (so ``ann@example.com`` is an
address, not a mention). Mentions are looked for in the *rendered* text, outside
code and links, so that what is linked on the page and who is notified are the same
set: ``@ann`` inside a code span neither links nor notifies.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable
from html.parser import HTMLParser

from markupsafe import Markup
from sqlalchemy import func, select

from app import db
from app.accounts.models import User
from app.rendering.markdown import render_markdown, sanitize

MENTION_RE = re.compile(
    r"(?<![A-Za-z0-9_.+\-/@`])@([A-Za-z0-9](?:[A-Za-z0-9_-]{0,38}[A-Za-z0-9])?)(?!-?[A-Za-z0-9_])"
)
#: At most this many distinct people are notified from one comment.
MAX_MENTIONS = 50
_SKIP = frozenset({"a", "code", "pre"})


class _TextRewriter(HTMLParser):
    """Re-emit sanitized HTML unchanged except text outside ``a``/``code``/``pre``."""

    def __init__(self, rewrite: Callable[[str], str]) -> None:
        super().__init__(convert_charrefs=False)
        self.rewrite = rewrite
        self.out: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skipping += 1
        self.out.append(self.get_starttag_text() or "")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.out.append(self.get_starttag_text() or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP and self.skipping:
            self.skipping -= 1
        self.out.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        self.out.append(data if self.skipping else self.rewrite(data))

    def handle_entityref(self, name: str) -> None:
        self.out.append(f"&{name};")

    def handle_charref(self, name: str) -> None:
        self.out.append(f"&#{name};")

    def handle_comment(self, data: str) -> None:
        """Dropped: sanitized HTML carries none, and text inside one is never a mention."""


def _walk(rendered: str, rewrite: Callable[[str], str]) -> str:
    parser = _TextRewriter(rewrite)
    parser.feed(rendered)
    parser.close()
    return "".join(parser.out)


def usernames(body: str) -> list[str]:
    """The usernames mentioned in Markdown ``body``, lower-cased, in order, once each."""
    found: dict[str, None] = {}

    def collect(text: str) -> str:
        for match in MENTION_RE.finditer(html.unescape(text)):
            found.setdefault(match.group(1).lower(), None)
        return text

    _walk(render_markdown(body), collect)
    return list(found)[:MAX_MENTIONS]


def resolve(names: Iterable[str]) -> list[User]:
    """Active users for ``names`` (case-insensitive); unknown names are ignored."""
    wanted = sorted({n.lower() for n in names})[:MAX_MENTIONS]
    if not wanted:
        return []
    users = db.session().scalars(
        select(User).where(func.lower(User.username).in_(wanted)).order_by(User.id)
    )
    return [u for u in users if u.is_active]


def render(body: str, link_for: Callable[[User], str]) -> Markup:
    """``body`` as sanitized HTML with each mention of a known user linked to ``link_for(user)``.

    Mentions of names nobody holds stay plain text. The result passes the sanitizer
    once more, so the rewriting can never be a way around it.
    """
    rendered = render_markdown(body)
    users = {u.username.lower(): u for u in resolve(usernames(body))}
    if not users:
        return Markup(rendered)

    def link(text: str) -> str:
        def replace(match: re.Match[str]) -> str:
            user = users.get(match.group(1).lower())
            if user is None:
                return match.group(0)
            href = html.escape(link_for(user), quote=True)
            name = html.escape(user.username)
            return f'<a class="mention" href="{href}">@{name}</a>'

        return MENTION_RE.sub(replace, text)

    return Markup(sanitize(_walk(rendered, link)))
