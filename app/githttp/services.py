"""Git over HTTP: request bodies, authorising pushes, spawning git, recording results.

Views stay thin; everything here works on plain values (the actor, the document, the
WSGI input) and never reads ``flask.request``.
"""

from __future__ import annotations

import sys
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

import gitstore
from app.activity.services import record_ref_updates
from app.auth.permissions import grant_for
from app.config import PROJECT_ROOT
from app.documents.protection import can_update_ref
from app.ops import metrics
from app.ops.logs import subprocess_env
from app.storage import get_store

if TYPE_CHECKING:
    from flask import Flask

    from app.accounts.models import User
    from app.documents.models import Document

HOOKS_DIR = Path(__file__).resolve().parent / "hooks"
CHUNK = 64 * 1024
#: Shown for refs of a push that were fine but not applied because another was refused.
NOT_ATTEMPTED = "not updated: another ref in this push was refused"

#: git settings for fetches: partial clone (``--filter``) and the lazy fetches of the
#: blobs it left out, which ask for objects that are not ref tips.
UPLOAD_CONFIG = (
    ("uploadpack.allowFilter", "true"),
    ("uploadpack.allowAnySHA1InWant", "true"),
)


class BodyTooLarge(Exception):
    """The request body is over the configured limit."""


class UnsupportedEncoding(Exception):
    """A Content-Encoding other than gzip or identity."""


def is_zero_oid(oid: str) -> bool:
    return set(oid) == {"0"}


class RequestBody:
    """The (decoded) request body as a stream, read in bounded chunks.

    Reads the raw WSGI input (never ``request.data``, which would buffer it), honours
    Content-Length when given (chunked bodies have none), decodes gzip on the fly and
    raises :class:`BodyTooLarge` once more than ``limit`` bytes were sent or decoded
    (the decoded count also stops gzip bombs).
    """

    def __init__(self, stream: IO[bytes], *, length: int | None, encoding: str, limit: int):
        encoding = encoding.strip().lower()
        if encoding in ("gzip", "x-gzip"):
            self._decoder: zlib._Decompress | None = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding in ("", "identity"):
            self._decoder = None
        else:
            raise UnsupportedEncoding(encoding)
        if length is not None and length > limit:
            raise BodyTooLarge
        self._stream = stream
        self._remaining = length
        self._limit = limit
        self._raw = 0
        self._decoded = 0
        self._pending = b""
        self._eof = False

    def _read_raw(self) -> bytes:
        size = CHUNK if self._remaining is None else min(CHUNK, self._remaining)
        if size <= 0:
            return b""
        data = self._stream.read(size)
        if self._remaining is not None:
            self._remaining -= len(data)
        self._raw += len(data)
        if self._raw > self._limit:
            raise BodyTooLarge
        return data

    def _fill(self) -> None:
        while not self._pending and not self._eof:
            decoder = self._decoder
            if decoder is not None and decoder.unconsumed_tail:
                out = decoder.decompress(decoder.unconsumed_tail, CHUNK)
            else:
                raw = self._read_raw()
                if not raw:
                    self._eof = True
                    if decoder is not None and not decoder.eof:
                        raise gitstore.ProtocolError("the gzip-compressed body is truncated")
                    out = b""
                elif decoder is not None:
                    if decoder.eof:
                        raise gitstore.ProtocolError("data after the end of the gzip body")
                    try:
                        out = decoder.decompress(raw, CHUNK)
                    except zlib.error as exc:
                        raise gitstore.ProtocolError(f"malformed gzip body: {exc}") from None
                else:
                    out = raw
            self._decoded += len(out)
            if self._decoded > self._limit:
                raise BodyTooLarge
            self._pending = out

    @property
    def bytes_read(self) -> int:
        """Bytes read from the client so far (as sent, before gzip decoding)."""
        return self._raw

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes; ``b""`` at the end of the body."""
        self._fill()
        out, self._pending = self._pending[:n], self._pending[n:]
        return out

    def chunks(self) -> Iterator[bytes]:
        while True:
            chunk = self.read(CHUNK)
            if not chunk:
                return
            yield chunk

    def read_all(self) -> bytes:
        return b"".join(self.chunks())

    def drain(self) -> None:
        for _ in self.chunks():
            pass


def repo_path(document: Document) -> Path:
    return get_store().path_for(document.repo_id)


@dataclass(frozen=True)
class PushOutcome:
    """What to answer a push: git's own output, or our report when we refused it."""

    body: bytes
    statuses: list[gitstore.RefStatus]


def refusals(
    actor: User | None, document: Document, push: gitstore.PushRequest
) -> list[str | None]:
    """Per update, None or why it is refused, before git has the pack.

    Fast-forward is unknown here (the new commits are still in the body); the
    pre-receive hook decides it with the same rule.
    """
    grant = grant_for(actor, document)
    return [
        can_update_ref(actor, document, u.ref, u.old, u.new, None, grant=grant)
        for u in push.updates
    ]


def refused_report(push: gitstore.PushRequest, reasons: list[str | None]) -> bytes:
    statuses = [
        gitstore.RefStatus(u.ref, reason or NOT_ATTEMPTED)
        for u, reason in zip(push.updates, reasons, strict=True)
    ]
    return gitstore.build_report(statuses, side_band=push.side_band)


def git_env() -> dict[str, str | None]:
    """For every git child: the request id (so hook logs carry it), and no metrics
    directory (a hook importing the app would leave metric files nobody cleans up)."""
    return {**subprocess_env(), "PROMETHEUS_MULTIPROC_DIR": None}


def hook_env(app: Flask, actor: User | None, document: Document) -> dict[str, str | None]:
    """What the pre-receive hook needs to re-check the push as the same person."""
    python_path = str(PROJECT_ROOT)
    return {
        **git_env(),
        "QUIRE_PYTHON": sys.executable,
        "QUIRE_DOCUMENT_ID": str(document.id),
        "QUIRE_ACTOR_ID": str(actor.id) if actor is not None else "",
        "QUIRE_DATABASE_URL": str(app.config["DATABASE_URL"]),
        "PYTHONPATH": python_path,
    }


def fetch_operation(request: bytes) -> str:
    """``clone``, ``fetch`` or ``ls-refs`` (protocol v2's ref listing) for an upload-pack
    request: a fetch says what it already has (``have`` lines), a clone does not."""
    if b"command=ls-refs" in request:
        return "ls-refs"
    return "fetch" if b"have " in request else "clone"


class GitOperation:
    """Metrics of one smart-HTTP operation (count by outcome, duration, bytes both ways).

    Bytes out are counted as they stream (:meth:`sent`), bytes in from the request body
    at the end. As a context manager it records on leaving: an error if an exception
    escapes, otherwise the outcome set in ``ok``.
    """

    def __init__(self, operation: str, body: RequestBody) -> None:
        self.operation = operation
        self.body = body
        self.ok = False
        self.started = time.monotonic()
        self._out = metrics.GIT_BYTES.labels(operation=operation, direction="out")

    def __enter__(self) -> GitOperation:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.done(self.ok and exc_type is None)

    def sent(self, chunk: bytes) -> bytes:
        self._out.inc(len(chunk))
        return chunk

    def done(self, ok: bool) -> None:
        outcome = "ok" if ok else "error"
        metrics.GIT_OPERATIONS.labels(operation=self.operation, outcome=outcome).inc()
        metrics.GIT_DURATION.labels(operation=self.operation).observe(
            time.monotonic() - self.started
        )
        metrics.GIT_BYTES.labels(operation=self.operation, direction="in").inc(self.body.bytes_read)


def receive_config() -> tuple[tuple[str, str], ...]:
    return (
        ("core.hooksPath", str(HOOKS_DIR)),
        # Every object is checked before it lands: repositories stay `git fsck` clean.
        ("receive.fsckObjects", "true"),
        ("receive.advertisePushOptions", "false"),
    )


def record_push(
    document: Document,
    actor: User | None,
    push: gitstore.PushRequest,
    output: bytes,
) -> list[gitstore.RefStatus]:
    """Record the updates git reports as done (events, last change, ``ref_updated``)."""
    try:
        statuses = gitstore.parse_report(output, side_band=push.side_band)
    except gitstore.ProtocolError:
        statuses = []
    accepted = {s.ref for s in statuses if s.ok}
    record_ref_updates(
        document,
        actor,
        [(u.ref, u.old, u.new) for u in push.updates if u.ref in accepted],
        source="push",
    )
    return statuses
