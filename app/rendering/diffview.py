"""Diffs for people: side-by-side rows and the rendered Markdown diff."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from markupsafe import Markup, escape

import gitstore
from app.rendering.markdown import render_markdown, sanitize

# Private-use characters survive Markdown rendering and sanitizing untouched and
# never appear in real prose; they mark inserted and deleted words until the HTML
# is safe, then become <ins>/<del>.
INS_OPEN, INS_CLOSE, DEL_OPEN, DEL_CLOSE = "\ue000", "\ue001", "\ue002", "\ue003"
_MARKERS = re.compile("[\ue000-\ue003]")


@dataclass(frozen=True)
class SideBySideRow:
    left: gitstore.DiffLine | None
    right: gitstore.DiffLine | None


def side_by_side(hunk: gitstore.Hunk) -> list[SideBySideRow]:
    """Pair a hunk's deleted and added lines so that the changed ones face each other."""
    rows: list[SideBySideRow] = []
    deleted: list[gitstore.DiffLine] = []
    added: list[gitstore.DiffLine] = []

    def flush() -> None:
        for i in range(max(len(deleted), len(added))):
            rows.append(
                SideBySideRow(
                    deleted[i] if i < len(deleted) else None, added[i] if i < len(added) else None
                )
            )
        deleted.clear()
        added.clear()

    for line in hunk.lines:
        if line.kind == "delete":
            if added:
                flush()
            deleted.append(line)
        elif line.kind == "add":
            added.append(line)
        else:
            flush()
            rows.append(SideBySideRow(line, line))
    flush()
    return rows


def _blocks(text: str) -> list[str]:
    """Markdown blocks: runs of lines separated by blank lines (fences kept whole)."""
    blocks: list[str] = []
    current: list[str] = []
    in_fence = False
    for line in text.split("\n"):
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        if not line.strip() and not in_fence:
            if current:
                blocks.append("\n".join(current))
                current = []
            continue
        current.append(line)
    if current:
        blocks.append("\n".join(current))
    return blocks


def _marked(spans: list[gitstore.WordSpan]) -> str:
    out: list[str] = []
    for span in spans:
        clean = _MARKERS.sub("", span.text)
        if span.kind == "equal":
            out.append(clean)
        elif span.kind == "insert":
            out.append(INS_OPEN + clean + INS_CLOSE if clean.strip() else clean)
        else:
            out.append(DEL_OPEN + clean + DEL_CLOSE if clean.strip() else "")
    return "".join(out)


def _markers_to_tags(html: str) -> str:
    return (
        html.replace(INS_OPEN, '<ins class="diff-ins">')
        .replace(INS_CLOSE, "</ins>")
        .replace(DEL_OPEN, '<del class="diff-del">')
        .replace(DEL_CLOSE, "</del>")
    )


def rendered_diff(before: str, after: str) -> Markup:
    """Render both versions' Markdown and show what changed in the rendered page.

    Blocks are compared first; inside a changed block the words are compared, so a
    reader sees the formatted paragraph with only the changed words highlighted.
    """
    old_blocks, new_blocks = _blocks(_MARKERS.sub("", before)), _blocks(_MARKERS.sub("", after))
    matcher = difflib.SequenceMatcher(a=old_blocks, b=new_blocks, autojunk=False)
    parts: list[str] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            parts.extend(render_markdown(block) for block in new_blocks[j1:j2])
            continue
        old_part, new_part = old_blocks[i1:i2], new_blocks[j1:j2]
        if op == "replace" and len(old_part) == len(new_part):
            for old_block, new_block in zip(old_part, new_part, strict=True):
                spans = gitstore.word_diff(old_block, new_block)
                html = render_markdown(_marked(spans))
                parts.append(f'<div class="rdiff-changed">{_markers_to_tags(sanitize(html))}</div>')
            continue
        for block in old_part:
            parts.append(f'<div class="rdiff-removed">{render_markdown(block)}</div>')
        for block in new_part:
            parts.append(f'<div class="rdiff-added">{render_markdown(block)}</div>')
    return Markup("\n".join(parts))


def words_html(line: gitstore.DiffLine) -> Markup:
    """A diff line's text with its changed words wrapped for highlighting."""
    if not line.words:
        return escape(line.text)
    out: list[str] = []
    for span in line.words:
        if span.kind == "equal":
            out.append(str(escape(span.text)))
        elif span.kind == "insert" and line.kind == "add":
            out.append(f'<ins class="word-ins">{escape(span.text)}</ins>')
        elif span.kind == "delete" and line.kind == "delete":
            out.append(f'<del class="word-del">{escape(span.text)}</del>')
    return Markup("".join(out))
