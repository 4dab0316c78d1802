"""Git's pkt-line framing and the parts of the smart protocol Quire must understand.

The server never interprets packs: it only needs to read the ref-update commands at the
front of a receive-pack request (to authorise them before git runs), to validate fetch
requests, to answer a refused push with a report git clients understand, and to read
git's own report back (to record which updates were accepted). Everything here works on
bytes and is independent of the web framework.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .errors import GitStoreError

__all__ = [
    "DELIM_PKT",
    "FLUSH_PKT",
    "RESPONSE_END_PKT",
    "ZERO_OID",
    "ProtocolError",
    "PushRequest",
    "RefStatus",
    "RefUpdate",
    "build_report",
    "encode_pkt",
    "iter_pkts",
    "parse_report",
    "read_push_commands",
    "sideband",
    "validate_pkt_stream",
]

FLUSH_PKT = b"0000"
DELIM_PKT = b"0001"  # protocol v2: separates sections
RESPONSE_END_PKT = b"0002"  # protocol v2, stateless: end of a response
ZERO_OID = "0" * 40
#: A pkt-line carries at most 65520 bytes including its 4-byte length.
MAX_PKT_LEN = 65520
#: Bands of the side-band-64k channel: data, progress, fatal error.
BAND_DATA, BAND_PROGRESS, BAND_ERROR = 1, 2, 3
_OID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_HEX4 = re.compile(rb"[0-9a-f]{4}")
#: How many ref updates one push may carry before we refuse to parse further.
MAX_COMMANDS = 10_000


class ProtocolError(GitStoreError):
    """The client sent something that is not a well-formed smart-protocol request."""


@dataclass(frozen=True)
class RefUpdate:
    """One ``<old> <new> <ref>`` command of a push."""

    old: str
    new: str
    ref: str

    @property
    def is_create(self) -> bool:
        return _is_zero(self.old)

    @property
    def is_delete(self) -> bool:
        return _is_zero(self.new)


@dataclass(frozen=True)
class PushRequest:
    """The command section of a receive-pack request.

    ``raw`` holds the exact bytes read, so they can be handed to git unchanged before
    the rest of the body (the pack) is streamed after them.
    """

    updates: list[RefUpdate]
    capabilities: frozenset[str]
    raw: bytes

    @property
    def side_band(self) -> bool:
        return "side-band-64k" in self.capabilities or "side-band" in self.capabilities


@dataclass(frozen=True)
class RefStatus:
    """A ref's outcome in a push report: ``reason`` is None when it was updated."""

    ref: str
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None


def _is_zero(oid: str) -> bool:
    return set(oid) == {"0"}


def encode_pkt(data: bytes | str) -> bytes:
    """Frame ``data`` as one pkt-line (a 4-hex-digit length that counts itself)."""
    if isinstance(data, str):
        data = data.encode()
    if len(data) + 4 > MAX_PKT_LEN:
        raise ValueError(f"pkt-line payload too long: {len(data)} bytes")
    return b"%04x" % (len(data) + 4) + data


def sideband(band: int, data: bytes) -> bytes:
    """``data`` wrapped in side-band-64k pkt-lines of ``band``, split as needed."""
    step = MAX_PKT_LEN - 5
    return b"".join(
        encode_pkt(bytes([band]) + data[i : i + step]) for i in range(0, len(data), step)
    )


def _read_exact(read: Callable[[int], bytes], n: int, buf: bytearray) -> bytes:
    """Read exactly ``n`` bytes (appending them to ``buf``); ProtocolError on a short read."""
    out = bytearray()
    while len(out) < n:
        chunk = read(n - len(out))
        if not chunk:
            raise ProtocolError("the request ended in the middle of a pkt-line")
        out += chunk
    buf += out
    return bytes(out)


def _read_pkt(read: Callable[[int], bytes], buf: bytearray) -> bytes | None:
    """One pkt-line's payload, or None for a flush/delim packet."""
    header = _read_exact(read, 4, buf)
    if not _HEX4.fullmatch(header):
        raise ProtocolError(f"malformed pkt-line length {header!r}")
    length = int(header, 16)
    if length in (0, 1, 2):
        return None
    if length < 4 or length > MAX_PKT_LEN:
        raise ProtocolError(f"invalid pkt-line length {length}")
    return _read_exact(read, length - 4, buf)


def read_push_commands(read: Callable[[int], bytes]) -> PushRequest:
    """Read the command list of a receive-pack request, up to and including its flush.

    Only the command section is consumed: the pack that follows stays unread in the
    stream, so the caller can stream it to git without holding it in memory.
    """
    buf = bytearray()
    updates: list[RefUpdate] = []
    capabilities: frozenset[str] = frozenset()
    while True:
        payload = _read_pkt(read, buf)
        if payload is None:
            break
        if len(updates) >= MAX_COMMANDS:
            raise ProtocolError(f"a push may update at most {MAX_COMMANDS} refs")
        line = payload.rstrip(b"\n")
        if b"\0" in line:
            line, _, caps = line.partition(b"\0")
            if not updates:
                capabilities = frozenset(caps.decode("ascii", "replace").split())
        text = line.decode("utf-8", "strict") if line.isascii() else None
        if text is None:
            raise ProtocolError("ref names in a push must be ASCII")
        if text.startswith("shallow ") and not updates:
            continue  # a push from a shallow clone names its shallow roots first
        if text.startswith("push-cert"):
            raise ProtocolError("signed pushes are not supported")
        parts = text.split(" ")
        if len(parts) != 3 or not _OID.fullmatch(parts[0]) or not _OID.fullmatch(parts[1]):
            raise ProtocolError(f"malformed push command {text[:100]!r}")
        updates.append(RefUpdate(parts[0], parts[1], parts[2]))
    return PushRequest(updates, capabilities, bytes(buf))


def iter_pkts(data: bytes) -> Iterable[bytes | None]:
    """Split a buffer into pkt-line payloads (None for flush/delim/response-end)."""
    pos = 0
    view = memoryview(data)

    def read(n: int) -> bytes:
        nonlocal pos
        chunk = bytes(view[pos : pos + n])
        pos += len(chunk)
        return chunk

    while pos < len(data):
        yield _read_pkt(read, bytearray())


def validate_pkt_stream(data: bytes) -> None:
    """Raise ProtocolError unless ``data`` is a sequence of well-formed pkt-lines.

    Fetch requests (wants, haves, v2 commands) are small and pure pkt-lines, so they
    are checked whole before git sees them; a clear 400 beats git's terse failure.
    """
    if not data:
        raise ProtocolError("the request body is empty")
    for _ in iter_pkts(data):
        pass


def build_report(statuses: Iterable[RefStatus], *, side_band: bool, unpack: str = "ok") -> bytes:
    """A report-status answer: ``unpack ok`` then ``ok <ref>`` / ``ng <ref> <reason>``.

    Clients print an ``ng`` as ``! [remote rejected] <ref> (<reason>)``.
    """
    lines = [encode_pkt(f"unpack {unpack}\n")]
    for status in statuses:
        if status.ok:
            lines.append(encode_pkt(f"ok {status.ref}\n"))
        else:
            reason = " ".join(str(status.reason).split())[:500]
            lines.append(encode_pkt(f"ng {status.ref} {reason}\n"))
    report = b"".join(lines) + FLUSH_PKT
    if side_band:
        return sideband(BAND_DATA, report) + FLUSH_PKT
    return report


def parse_report(output: bytes, *, side_band: bool) -> list[RefStatus]:
    """The per-ref outcomes from git receive-pack's (possibly side-band) report."""
    if side_band:
        inner = bytearray()
        for payload in iter_pkts(output):
            if payload and payload[0] == BAND_DATA:
                inner += payload[1:]
        output = bytes(inner)
    statuses: list[RefStatus] = []
    for payload in iter_pkts(output):
        if payload is None:
            continue
        line = payload.decode("utf-8", "replace").rstrip("\n")
        if line.startswith("ok "):
            statuses.append(RefStatus(line[3:]))
        elif line.startswith("ng "):
            ref, _, reason = line[3:].partition(" ")
            statuses.append(RefStatus(ref, reason or "rejected"))
    return statuses
