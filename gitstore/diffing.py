"""Line diffs (from libgit2) enriched with word-level highlights (from difflib).

Word spans are computed only for lines libgit2 already reported as changed, pairing the
n-th deleted line of a run with the n-th added line that follows it; running
SequenceMatcher over whole files would be slow and pair unrelated lines.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher

import pygit2

from .types import Diff, DiffLine, FileDiff, Hunk, WordSpan

_TOKEN = re.compile(r"\s+|\w+|[^\w\s]")

_STATUS = {
    pygit2.enums.DeltaStatus.ADDED: "added",
    pygit2.enums.DeltaStatus.DELETED: "deleted",
    pygit2.enums.DeltaStatus.RENAMED: "renamed",
}


def tokenize(text: str) -> list[str]:
    """Whitespace runs, word-character runs and single punctuation marks."""
    return _TOKEN.findall(text)


def _append(spans: list[WordSpan], kind: str, text: str) -> None:
    if not text:
        return
    if spans and spans[-1].kind == kind:
        spans[-1] = WordSpan(kind, spans[-1].text + text)  # type: ignore[arg-type]
    else:
        spans.append(WordSpan(kind, text))  # type: ignore[arg-type]


def word_diff(old_text: str, new_text: str) -> list[WordSpan]:
    """Word-level spans turning ``old_text`` into ``new_text`` (equal/delete/insert)."""
    old, new = tokenize(old_text), tokenize(new_text)
    spans: list[WordSpan] = []
    matcher = SequenceMatcher(None, old, new, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            _append(spans, "equal", "".join(old[i1:i2]))
        else:
            _append(spans, "delete", "".join(old[i1:i2]))
            _append(spans, "insert", "".join(new[j1:j2]))
    return spans


def _side(spans: list[WordSpan], drop: str) -> list[WordSpan]:
    out: list[WordSpan] = []
    for span in spans:
        if span.kind != drop:
            _append(out, span.kind, span.text)
    return out


def _strip_eol(text: str) -> str:
    return text[:-1] if text.endswith("\n") else text


def _pair_words(lines: list[DiffLine]) -> list[DiffLine]:
    """Attach word spans to each run of deletions immediately followed by additions."""
    out = list(lines)
    i = 0
    while i < len(out):
        if out[i].kind != "delete":
            i += 1
            continue
        d_start = i
        while i < len(out) and out[i].kind == "delete":
            i += 1
        a_start = i
        while i < len(out) and out[i].kind == "add":
            i += 1
        for k in range(min(a_start - d_start, i - a_start)):
            old, new = out[d_start + k], out[a_start + k]
            spans = word_diff(old.text, new.text)
            out[d_start + k] = DiffLine(
                old.kind, old.old_no, old.new_no, old.text, _side(spans, "insert")
            )
            out[a_start + k] = DiffLine(
                new.kind, new.old_no, new.new_no, new.text, _side(spans, "delete")
            )
    return out


def _hunk(hunk: pygit2.DiffHunk, word_level: bool) -> Hunk:
    lines: list[DiffLine] = []
    for line in hunk.lines:
        kind = {" ": "context", "+": "add", "-": "delete"}.get(line.origin)
        if kind is None:  # "\ No newline at end of file" markers and the like
            continue
        lines.append(
            DiffLine(
                kind=kind,  # type: ignore[arg-type]
                old_no=line.old_lineno if line.old_lineno > 0 else None,
                new_no=line.new_lineno if line.new_lineno > 0 else None,
                text=_strip_eol(line.content),
            )
        )
    if word_level:
        lines = _pair_words(lines)
    return Hunk(
        header=hunk.header.rstrip("\n"),
        old_start=hunk.old_start,
        old_lines=hunk.old_lines,
        new_start=hunk.new_start,
        new_lines=hunk.new_lines,
        lines=lines,
    )


def _matches(paths: list[str] | None, *candidates: str | None) -> bool:
    if paths is None:
        return True
    for cand in candidates:
        if cand is None:
            continue
        for p in paths:
            if cand == p or cand.startswith(p + "/"):
                return True
    return False


def convert(
    diff: pygit2.Diff, old: str, new: str, *, paths: list[str] | None, word_level: bool
) -> Diff:
    """Turn a pygit2 Diff (renames already found) into our value types."""
    files: list[FileDiff] = []
    for patch in diff:
        if patch is None:
            continue
        delta = patch.delta
        status = _STATUS.get(delta.status, "modified")
        old_path = None if status == "added" else delta.old_file.path
        new_path = None if status == "deleted" else delta.new_file.path
        if not _matches(paths, old_path, new_path):
            continue
        binary = bool(delta.is_binary)
        if binary:
            files.append(FileDiff(old_path, new_path, status, 0, 0, True, []))  # type: ignore[arg-type]
            continue
        _, additions, deletions = patch.line_stats
        hunks = [_hunk(h, word_level) for h in patch.hunks]
        files.append(FileDiff(old_path, new_path, status, additions, deletions, False, hunks))  # type: ignore[arg-type]
    return Diff(old=old, new=new, files=files)
