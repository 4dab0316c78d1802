"""The branch graph: every commit of a document laid out in lanes, like ``git log --graph``.

One topological walk over every branch and tag head assigns each commit a row and a
lane, and says which line segments join each row to the one above it. The result is
plain data (lanes are small integers, rows are positions on the page), so the web
app only has to turn numbers into SVG, and the layout can be tested without a
browser.

The algorithm keeps one slot per lane holding the commit the lane is waiting for.
A commit takes the leftmost lane waiting for it (other lanes waiting for it join it:
that is where branches meet), its first parent continues in its lane, and each further
parent of a merge gets the lane already waiting for it or a free one. Pages are cut
from the same walk (``offset``/``limit``), so lanes stay where they are from page to
page: the lanes of commits before the page are computed but not returned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import pygit2
from pygit2.enums import SortMode

from .commits import commit_info
from .types import CommitInfo

if TYPE_CHECKING:
    from .document import Document

__all__ = ["GraphEdge", "GraphNode", "GraphPage", "Segment", "layout", "MAX_GRAPH_PAGE"]

#: A page never holds more rows than this (the page stays readable and cheap).
MAX_GRAPH_PAGE = 1000

EdgeKind = Literal["parent", "merge", "pass"]


@dataclass(frozen=True)
class Segment:
    """A line from lane ``start`` on one row to lane ``end`` on the next row down.

    ``kind`` is ``parent`` for the first step from a commit to its first parent,
    ``merge`` for the first step to a merge's further parents, ``pass`` for a lane
    that continues past a row.
    """

    start: int
    end: int
    kind: EdgeKind


@dataclass(frozen=True)
class GraphEdge:
    """From a commit to one of its parents: the lane the parent line goes into."""

    parent: str
    lane: int
    is_merge: bool


@dataclass(frozen=True)
class GraphNode:
    """One commit on one row: where it sits and how lines reach it from above."""

    row: int
    lane: int
    commit: CommitInfo
    #: Segments between the previous row (or the page's top edge) and this row.
    incoming: tuple[Segment, ...]
    #: One edge per parent, first parent first.
    edges: tuple[GraphEdge, ...]
    branches: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    @property
    def is_merge(self) -> bool:
        return len(self.commit.parents) > 1


@dataclass(frozen=True)
class GraphPage:
    """Rows ``offset`` .. ``offset + len(nodes) - 1`` of the whole graph."""

    nodes: list[GraphNode]
    #: Segments from the last row down to the page's bottom edge (lines to later pages).
    outgoing: tuple[Segment, ...]
    #: Lanes the page needs: one more than the highest lane any node or line uses.
    lanes: int
    offset: int
    limit: int
    has_more: bool
    branches: dict[str, str] = field(default_factory=dict)


@dataclass
class _Slot:
    """A lane waiting for ``oid``; ``origins`` are where its lines start on the row above.

    A reserved slot (``started`` False) holds a lane for a commit before any line
    leads to it: the default branch's head keeps lane 0 even when other branches
    have newer commits, and nothing is drawn in the lane above that head.
    """

    oid: str
    origins: list[tuple[int, EdgeKind]]
    started: bool = True


class _Lanes:
    """The running state of the walk: which lane waits for which commit."""

    def __init__(self) -> None:
        self.slots: list[_Slot | None] = []

    def _free(self) -> int:
        for index, slot in enumerate(self.slots):
            if slot is None:
                return index
        self.slots.append(None)
        return len(self.slots) - 1

    def _find(self, oid: str) -> int | None:
        for index, slot in enumerate(self.slots):
            if slot is not None and slot.oid == oid:
                return index
        return None

    def incoming(self, oid: str) -> tuple[int, tuple[Segment, ...]]:
        """The lane for ``oid`` and the segments that reach this row.

        Does not change the state; :meth:`place` does.
        """
        lane = self._find(oid)
        if lane is None:
            lane = next((i for i, s in enumerate(self.slots) if s is None), len(self.slots))
        segments = []
        for index, slot in enumerate(self.slots):
            if slot is None:
                continue
            end = lane if slot.oid == oid else index
            segments.extend(Segment(origin, end, kind) for origin, kind in slot.origins)
        return lane, tuple(segments)

    def place(self, oid: str, lane: int, parents: tuple[str, ...]) -> tuple[GraphEdge, ...]:
        """Put ``oid`` on ``lane``: its lane(s) end here and its parents' lines begin."""
        for index, slot in enumerate(self.slots):
            if slot is None:
                continue
            if slot.oid == oid:
                self.slots[index] = None
            else:
                slot.origins = [(index, "pass")] if slot.started else []
        while len(self.slots) <= lane:
            self.slots.append(None)
        edges = []
        for position, parent in enumerate(parents):
            kind: EdgeKind = "parent" if position == 0 else "merge"
            target = self._find(parent)
            if target is not None and position == 0 and target > lane:
                # Another line already waits for this parent further right: bring it
                # here, so a branch's first-parent line keeps its lane (main stays 0).
                moved = self.slots[target]
                assert moved is not None
                self.slots[target] = None
                moved.origins.append((lane, kind))
                moved.started = True
                self.slots[lane] = moved
                target = lane
            elif target is not None:
                slot = self.slots[target]
                assert slot is not None
                slot.origins.append((lane, kind))
                slot.started = True
            else:
                target = lane if position == 0 and self.slots[lane] is None else self._free()
                self.slots[target] = _Slot(parent, [(lane, kind)])
            edges.append(GraphEdge(parent, target, position > 0))
        while self.slots and self.slots[-1] is None:
            self.slots.pop()
        return tuple(edges)

    def reserve(self, oid: str) -> None:
        """Keep the next free lane for ``oid`` until the walk reaches it."""
        self.slots[self._free()] = _Slot(oid, [], started=False)

    def outgoing(self) -> tuple[Segment, ...]:
        """Lines that leave the last row towards commits not yet placed."""
        return tuple(
            Segment(origin, index, kind)
            for index, slot in enumerate(self.slots)
            if slot is not None
            for origin, kind in slot.origins
        )


def _labels(repo: pygit2.Repository) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Branch and tag names by the commit they point at (tags peeled)."""
    branches: dict[str, list[str]] = {}
    tags: dict[str, list[str]] = {}
    for refname in repo.references:
        if refname.startswith("refs/heads/"):
            into, name = branches, refname.removeprefix("refs/heads/")
        elif refname.startswith("refs/tags/"):
            into, name = tags, refname.removeprefix("refs/tags/")
        else:
            continue
        ref = repo.references.get(refname)
        if ref is None:
            continue
        try:
            oid = str(ref.peel(pygit2.Commit).id)
        except (pygit2.GitError, KeyError, ValueError):
            continue  # a tag on a tree or blob is not a version
        into.setdefault(oid, []).append(name)
    return branches, tags


def layout(document: Document, *, offset: int = 0, limit: int = 200) -> GraphPage:
    """Rows ``offset`` to ``offset + limit`` of the graph of every branch and tag.

    Newest first in topological order (a commit always above its parents), ties by
    commit time, as ``git log --graph --all`` orders them.
    """
    offset = max(0, int(offset))
    limit = max(1, min(MAX_GRAPH_PAGE, int(limit)))
    repo = document.repo
    branches, tags = _labels(repo)
    heads = {oid for names in (branches, tags) for oid in names}
    default = document.default_branch
    state = _Lanes()
    nodes: list[GraphNode] = []
    outgoing: tuple[Segment, ...] = ()
    has_more = False
    widest = 0
    if heads:
        walker = repo.walk(None, SortMode.TOPOLOGICAL | SortMode.TIME)
        for oid in heads:
            walker.push(oid)
        default_head = next((o for o, names in branches.items() if default in names), None)
        if default_head is not None:
            state.reserve(default_head)  # the default branch's line is always lane 0
        for row, commit in enumerate(walker):
            oid = str(commit.id)
            parents = tuple(str(p) for p in commit.parent_ids)
            lane, incoming = state.incoming(oid)
            if row >= offset + limit:
                has_more = True
                outgoing = incoming
                break
            edges = state.place(oid, lane, parents)
            if row < offset:
                continue
            widest = max(
                widest,
                lane + 1,
                *(max(s.start, s.end) + 1 for s in incoming),
                *(e.lane + 1 for e in edges),
            )
            nodes.append(
                GraphNode(
                    row=row,
                    lane=lane,
                    commit=commit_info(commit),
                    incoming=incoming,
                    edges=edges,
                    branches=tuple(sorted(branches.get(oid, []))),
                    tags=tuple(sorted(tags.get(oid, []))),
                )
            )
        else:
            outgoing = state.outgoing() if nodes else ()
    if nodes:
        widest = max([widest, *(max(s.start, s.end) + 1 for s in outgoing)])
    return GraphPage(
        nodes=nodes,
        outgoing=outgoing,
        lanes=widest,
        offset=offset,
        limit=limit,
        has_more=has_more,
        branches={name: oid for oid, names in branches.items() for name in names},
    )
