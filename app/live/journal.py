"""The durable side of a live room: a journal of updates and Yjs checkpoints in SQL.

Every accepted update is appended here *before* anyone else sees it, so a crash
never loses a keystroke that was broadcast. A checkpoint holds the room's whole
Yjs state and the commit it is based on: a room is re-opened from its checkpoint
plus the journal, never re-created from plain text (which would duplicate the
text when two copies merge). Journal rows are trimmed only once a commit covers
them. Replaying a row that the checkpoint already contains is harmless: applying
a Yjs update twice is a no-op.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    delete,
    func,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, Session, mapped_column

from app.db import Base, UTCDateTime, utcnow
from app.ops import metrics


class JournalEntry(Base):
    __tablename__ = "live_journal"

    #: Global and increasing; within a room it orders the updates.
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    room_key: Mapped[str] = mapped_column(String(400), index=True)
    update: Mapped[bytes] = mapped_column(LargeBinary)
    #: Who typed it (None for the server's own merges of external changes).
    actor_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Checkpoint(Base):
    __tablename__ = "live_checkpoints"

    room_key: Mapped[str] = mapped_column(String(400), primary_key=True)
    state: Mapped[bytes] = mapped_column(LargeBinary)
    base_commit: Mapped[str] = mapped_column(String(40))
    #: The state contains every journal entry up to this seq (of this room).
    covered_seq: Mapped[int] = mapped_column(Integer, default=0)
    #: Fencing token of the lock holder that wrote it; lower tokens are refused.
    fence: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


@dataclass(frozen=True)
class Entry:
    seq: int
    update: bytes
    actor_id: int | None


@dataclass(frozen=True)
class Snapshot:
    state: bytes
    base_commit: str
    covered_seq: int
    fence: int = 0


class StaleFence(Exception):
    """A checkpoint write with a fencing token older than the stored one (lost lock)."""


class Journal:
    """SQL storage for rooms; one per application, safe to share between greenlets.

    Each call opens and commits its own short session: the live layer runs
    outside request contexts, and a journal write must be committed (durable)
    when the call returns.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def append(self, room_key: str, items: Sequence[tuple[bytes, int | None]]) -> list[int]:
        """Durably append updates in one transaction (group commit); returns their seqs."""
        if not items:
            return []
        # expire_on_commit=False: reading the new seqs must not cost a SELECT per row.
        with Session(self.engine, expire_on_commit=False) as session:
            rows = [JournalEntry(room_key=room_key, update=u, actor_id=a) for u, a in items]
            session.add_all(rows)
            session.commit()
            metrics.LIVE_JOURNAL_UNCOMMITTED.inc(len(rows))
            return [row.seq for row in rows]

    def entries(self, room_key: str, after: int = 0) -> list[Entry]:
        with Session(self.engine) as session:
            rows = session.execute(
                select(JournalEntry.seq, JournalEntry.update, JournalEntry.actor_id)
                .where(JournalEntry.room_key == room_key, JournalEntry.seq > after)
                .order_by(JournalEntry.seq)
            )
            return [Entry(seq, bytes(update), actor) for seq, update, actor in rows]

    def snapshot(self, room_key: str) -> Snapshot | None:
        with Session(self.engine) as session:
            row = session.get(Checkpoint, room_key)
            if row is None:
                return None
            return Snapshot(bytes(row.state), row.base_commit, row.covered_seq, row.fence or 0)

    def check_fence(self, room_key: str, fence: int | None) -> None:
        """Raise :class:`StaleFence` if a newer lock holder already wrote this room."""
        if fence is None:
            return
        with Session(self.engine) as session:
            stored = session.scalar(select(Checkpoint.fence).where(Checkpoint.room_key == room_key))
        if stored is not None and stored > fence:
            raise StaleFence(f"{room_key}: fencing token {fence} < {stored}")

    def save_snapshot(
        self,
        room_key: str,
        snapshot: Snapshot,
        *,
        trim: Sequence[int] = (),
        fence: int | None = None,
    ) -> None:
        """Store the checkpoint and, in the same transaction, trim committed entries.

        Trimming happens only here, after the caller has created the commit that
        covers the ``trim`` seqs: if we crash before, the entries are replayed again.
        With a ``fence`` (the lock's fencing token) this is compare-and-swap: the row
        is locked and a token lower than the stored one raises :class:`StaleFence`.
        """
        with Session(self.engine) as session:
            row = session.get(Checkpoint, room_key, with_for_update=fence is not None)
            if row is None:
                row = Checkpoint(room_key=room_key, fence=0)
                session.add(row)
            if fence is not None:
                if (row.fence or 0) > fence:
                    raise StaleFence(f"{room_key}: fencing token {fence} < {row.fence}")
                row.fence = fence
            row.state = snapshot.state
            row.base_commit = snapshot.base_commit
            row.covered_seq = max(row.covered_seq or 0, snapshot.covered_seq)
            seqs, trimmed = sorted(set(trim)), 0
            for i in range(0, len(seqs), 500):
                trimmed += session.execute(
                    delete(JournalEntry).where(
                        JournalEntry.room_key == room_key, JournalEntry.seq.in_(seqs[i : i + 500])
                    )
                ).rowcount
            session.commit()
        metrics.LIVE_JOURNAL_UNCOMMITTED.dec(trimmed)

    def create_snapshot(self, room_key: str, snapshot: Snapshot) -> bool:
        """Insert the first checkpoint of a room; False if one exists already (seeded)."""
        from sqlalchemy.exc import IntegrityError

        with Session(self.engine) as session:
            session.add(
                Checkpoint(
                    room_key=room_key,
                    state=snapshot.state,
                    base_commit=snapshot.base_commit,
                    covered_seq=snapshot.covered_seq,
                    fence=snapshot.fence,
                )
            )
            try:
                session.commit()
            except IntegrityError:
                return False
            return True

    def rooms_with_entries(self) -> list[str]:
        """Rooms whose journal holds uncommitted entries (for recovery after a crash)."""
        with Session(self.engine) as session:
            return list(session.scalars(select(JournalEntry.room_key).distinct()))

    def max_seq(self) -> int:
        with Session(self.engine) as session:
            return session.scalar(select(func.max(JournalEntry.seq))) or 0


def editors_of(entries: Iterable[Entry]) -> list[int]:
    """Distinct actor ids in the order they first edited (the first becomes the author)."""
    seen: dict[int, None] = {}
    for entry in entries:
        if entry.actor_id is not None:
            seen.setdefault(entry.actor_id, None)
    return list(seen)
