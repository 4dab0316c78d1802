"""The branch graph as server-rendered SVG, from :func:`gitstore.graph.layout`.

Built with f-strings (each field escaped once) rather than a Jinja loop: a page holds
up to 1,000 rows, and the page must stay quick to render at that size. Every row of
the SVG lines up with a row of the table next to it (same height), which is the
graph's text alternative.
"""

from __future__ import annotations

from collections.abc import Callable

from markupsafe import Markup, escape

from gitstore.graph import GraphPage, Segment

ROW = 28  # px per commit: the table rows use the same height (see releases.css)
LANE = 16  # px between lanes
RADIUS = 5
#: Lane colours with enough contrast on white; lane n uses COLOURS[n % len].
COLOURS = ("#3552c8", "#c2410c", "#15803d", "#9333ea", "#be123c", "#0e7490", "#a16207")
_CHAR = 7.2  # px, an estimate of a label character at 12px


def _x(lane: int) -> float:
    return LANE / 2 + lane * LANE + 4


def _colour(lane: int) -> str:
    return COLOURS[lane % len(COLOURS)]


def _path(seg: Segment, y_top: float, y_bottom: float) -> str:
    """A vertical line, or a curve from one lane to another between two rows."""
    x1, x2 = _x(seg.start), _x(seg.end)
    # A line keeps its lane's colour as it moves over; a new edge takes the branch's.
    lane = seg.start if seg.kind == "pass" else max(seg.start, seg.end)
    dash = ' stroke-dasharray="4 3"' if seg.kind == "merge" else ""
    if x1 == x2:
        d = f"M{x1:g} {y_top:g}V{y_bottom:g}"
    else:
        mid = (y_top + y_bottom) / 2
        d = f"M{x1:g} {y_top:g}C{x1:g} {mid:g} {x2:g} {mid:g} {x2:g} {y_bottom:g}"
    return (
        f'<path class="graph-edge graph-edge-{seg.kind}" d="{d}" stroke="{_colour(lane)}"{dash}/>'
    )


def render_graph(page: GraphPage, commit_url: Callable[[str], str]) -> Markup:
    """The SVG for one page; each node links to ``commit_url(oid)``."""
    rows = len(page.nodes)
    label_x = _x(max(page.lanes, 1)) + LANE
    longest = 0
    parts: list[str] = []
    for index, node in enumerate(page.nodes):
        y = index * ROW + ROW / 2
        y_above = y - ROW if index else 0.0
        for seg in node.incoming:
            parts.append(_path(seg, y_above, y))
    bottom = rows * ROW
    if rows:
        y_last = (rows - 1) * ROW + ROW / 2
        for seg in page.outgoing:
            parts.append(_path(seg, y_last, bottom))
    for index, node in enumerate(page.nodes):
        y = index * ROW + ROW / 2
        x = _x(node.lane)
        c = node.commit
        title = escape(f"{c.short} {c.summary} — {c.author.name}")
        shape = (
            f'<circle class="graph-node{" graph-merge" if node.is_merge else ""}" cx="{x:g}" '
            f'cy="{y:g}" r="{RADIUS + (1 if node.is_merge else 0)}" fill="{_colour(node.lane)}"/>'
        )
        parts.append(
            f'<a class="graph-link" href="{escape(commit_url(c.oid))}" '
            f'aria-label="Version {c.short}: {escape(c.summary)}"><title>{title}</title>{shape}</a>'
        )
        labels = [("branch", name) for name in node.branches] + [("tag", t) for t in node.tags]
        lx = label_x
        for kind, name in labels:
            width = len(name) * _CHAR + 12
            parts.append(
                f'<g class="graph-label graph-label-{kind}"><rect x="{lx:g}" y="{y - 9:g}" '
                f'width="{width:g}" height="18" rx="4"/><text x="{lx + 6:g}" y="{y + 4:g}">'
                f"{escape(name)}</text></g>"
            )
            lx += width + 4
        longest = max(longest, int(lx - label_x))
    width = int(label_x + longest + 8)
    height = max(bottom, ROW)
    return Markup(
        f'<svg class="branch-graph" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" '
        f'aria-label="Branch graph of {rows} versions; the table lists the same versions">'
        + "".join(parts)
        + "</svg>"
    )
