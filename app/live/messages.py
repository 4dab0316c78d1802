"""The y-websocket wire format: decoding what clients send, encoding what we send.

The protocol is y-websocket's, unchanged, so that any stock Yjs client can join:
a frame starts with a varuint message type (0 sync, 1 awareness, 2 auth,
3 query-awareness); a sync frame carries a varuint sub-type (step 1, step 2,
update) and one length-prefixed payload. Decoding is strict (a frame that does
not parse raises :class:`ProtocolError`) because a room must never apply half
of a malformed message.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from pycrdt import (
    Decoder,
    YMessageType,
    YSyncMessageType,
    create_awareness_message,
    create_update_message,
)
from pycrdt._sync import create_sync_step1_message, create_sync_step2_message

__all__ = [
    "Kind",
    "Message",
    "ProtocolError",
    "decode",
    "encode_awareness",
    "encode_sync_step1",
    "encode_sync_step2",
    "encode_update",
]

#: y-websocket's "query awareness" message type (not in pycrdt's enum).
_QUERY_AWARENESS = 3
_AUTH = 2


class ProtocolError(ValueError):
    """The frame is not a y-websocket message we can decode."""


class Kind(enum.Enum):
    SYNC_STEP1 = "sync_step1"
    SYNC_STEP2 = "sync_step2"
    UPDATE = "update"
    AWARENESS = "awareness"
    QUERY_AWARENESS = "query_awareness"
    IGNORED = "ignored"


@dataclass(frozen=True)
class Message:
    """One decoded frame: its kind and its payload (state vector, update or awareness)."""

    kind: Kind
    payload: bytes = b""

    @property
    def is_document_update(self) -> bool:
        """Step 2 and update both carry a Yjs update that changes the document."""
        return self.kind in (Kind.SYNC_STEP2, Kind.UPDATE)


_SYNC_KINDS = {
    YSyncMessageType.SYNC_STEP1: Kind.SYNC_STEP1,
    YSyncMessageType.SYNC_STEP2: Kind.SYNC_STEP2,
    YSyncMessageType.SYNC_UPDATE: Kind.UPDATE,
}


def _read_payload(decoder: Decoder) -> bytes:
    message = decoder.read_message()
    if message is None or decoder.length != 0:
        raise ProtocolError("payload length does not match the frame")
    return bytes(message)


def decode(frame: bytes | str) -> Message:
    """Decode one websocket frame; raises :class:`ProtocolError` on anything malformed."""
    if not isinstance(frame, bytes | bytearray) or not frame:
        raise ProtocolError("expected a non-empty binary frame")
    decoder = Decoder(bytes(frame))
    try:
        message_type = decoder.read_var_uint()
        if message_type == YMessageType.SYNC:
            sync_type = decoder.read_var_uint()
            kind = _SYNC_KINDS.get(sync_type)  # type: ignore[call-overload]
            if kind is None:
                raise ProtocolError(f"unknown sync message type {sync_type}")
            return Message(kind, _read_payload(decoder))
        if message_type == YMessageType.AWARENESS:
            return Message(Kind.AWARENESS, _read_payload(decoder))
        if message_type == _QUERY_AWARENESS:
            return Message(Kind.QUERY_AWARENESS)
        if message_type == _AUTH:
            return Message(Kind.IGNORED)  # authentication happens on the upgrade
    except (IndexError, RuntimeError) as exc:  # pycrdt's Decoder ran off the end
        raise ProtocolError("truncated frame") from exc
    raise ProtocolError(f"unknown message type {message_type}")


def encode_sync_step1(state_vector: bytes) -> bytes:
    return create_sync_step1_message(state_vector)


def encode_sync_step2(update: bytes) -> bytes:
    return create_sync_step2_message(update)


def encode_update(update: bytes) -> bytes:
    return create_update_message(update)


def encode_awareness(awareness_update: bytes) -> bytes:
    return create_awareness_message(awareness_update)
