"""HTML fragments that pages repeat many times, built in Python for speed.

A history page has up to 50 rows; rendered through Jinja each row cost about
50 µs (some 40 escaped pieces), which made a full page twice as slow as a short
one. Here a row is one f-string with each field escaped once, so the page's cost
barely depends on how many rows it has (see docs/BENCHMARKS.md, history).
"""

from __future__ import annotations

from datetime import UTC, datetime

from markupsafe import Markup, escape

import gitstore
from app.templating import ago


def history_rows(commits: list[gitstore.CommitInfo], base: str) -> Markup:
    """The ``<li>`` rows of a history page; ``base`` is the document's URL."""
    now = datetime.now(UTC)
    base = escape(base)
    rows = []
    for index, c in enumerate(commits):
        oid = c.oid  # hex digits: safe as is
        short = c.short
        rows.append(
            f'<li class="history-item"><div class="history-pick">'
            f'<label class="visually-hidden" for="from-{oid}">Compare from {short}</label>'
            f'<input type="radio" id="from-{oid}" name="from" value="{oid}"'
            f"{' checked' if index == 1 else ''}>"
            f'<label class="visually-hidden" for="to-{oid}">Compare to {short}</label>'
            f'<input type="radio" id="to-{oid}" name="to" value="{oid}"'
            f"{' checked' if index == 0 else ''}></div>"
            f'<div class="history-main"><a class="history-summary" href="{base}/commit/{oid}">'
            f"{escape(c.summary)}</a>"
            f'<div class="muted">{escape(c.byline)} · <time datetime="{c.authored_at.isoformat()}">'
            f"{ago(c.authored_at, now)}</time></div></div>"
            f'<div class="history-actions"><code class="oid">{short}</code>'
            f'<a href="{base}?ref={oid}">View</a></div></li>'
        )
    return Markup("\n".join(rows))
