"""Consistent backups of a Quire installation, and restores into an empty one.

A backup is a directory ``<root>/<UTC timestamp>/``:

- ``database.dump`` (PostgreSQL, ``pg_dump --format=custom``) or ``database.sqlite3``
  (SQLite's online backup API): a consistent snapshot while the app writes;
- ``repos/<shard>/<id>.bundle``: ``git bundle create --all`` of every repository, checked
  with ``git bundle verify``, plus ``<id>.config`` (the repository's own git config);
- ``manifest.json``: every file's size and sha256, every repository's refs and HEAD, the
  database kind, the release, start and finish times.

The database is dumped first and the repositories after, so every document row in the dump
has its repository in the backup (Git is the source of truth for content; a push that lands
during the backup is simply in the next one). Nothing is locked: each repository's refs are
read once and bundled from that snapshot (see :func:`_bundle_repository`). When everything is verified the manifest is copied to
``<root>/LATEST`` (atomically): monitoring reads its ``finished_at``.

An ``s3://bucket/prefix`` target is written through a local directory like this one and then
uploaded, manifest last: see :mod:`app.backup.s3`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
LATEST = "LATEST"
FORMAT_VERSION = 1


class BackupError(RuntimeError):
    """A backup or restore step failed; the message says which."""


@dataclass
class BackupResult:
    path: Path | str  # a directory, or an s3:// URL
    manifest: dict[str, Any]


# --- helpers ---------------------------------------------------------------------------------


def _git(git: str, *args: str, cwd: Path | None = None, check: bool = True) -> str:
    result = subprocess.run(
        [git, *args], cwd=cwd, capture_output=True, text=True, timeout=3600, check=False
    )
    if check and result.returncode != 0:
        raise BackupError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _libpq_url(url: str) -> str:
    for prefix in ("postgresql+psycopg://", "postgresql+psycopg2://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


def _sqlite_path(url: str) -> Path:
    path = url.split("///", 1)[-1]
    if not path or path == ":memory:":
        raise BackupError(f"cannot back up an in-memory SQLite database ({url})")
    return Path(path)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def list_repositories(repos_root: Path) -> list[Path]:
    """Every ``<shard>/<id>.git`` under ``repos_root`` (scratch dirs start with a dot)."""
    if not repos_root.is_dir():
        return []
    return sorted(
        repo
        for shard in repos_root.iterdir()
        if shard.is_dir() and not shard.name.startswith(".")
        for repo in shard.iterdir()
        if repo.is_dir() and repo.name.endswith(".git") and not repo.name.startswith(".")
    )


def read_refs(git: str, repo: Path) -> dict[str, str]:
    out = _git(git, "for-each-ref", "--format=%(objectname) %(refname)", cwd=repo)
    refs = {}
    for line in out.splitlines():
        oid, _, name = line.partition(" ")
        refs[name] = oid
    return refs


# --- backup ----------------------------------------------------------------------------------


def backup(
    dest_root: Path,
    *,
    repos_root: Path,
    database_url: str,
    git: str = "git",
    keep: int | None = None,
    textfile: Path | None = None,
) -> BackupResult:
    """Write a verified backup under ``dest_root``; returns its directory and manifest."""
    started = _now()
    t0 = time.time()
    dest_root.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    work = Path(tempfile.mkdtemp(prefix=f".{stamp}-", dir=dest_root))
    try:
        database = _dump_database(database_url, work)
        repositories = [
            _bundle_repository(git, repo, repos_root, work)
            for repo in list_repositories(repos_root)
        ]
        files = {
            str(path.relative_to(work)): {"sha256": sha256_file(path), "size": path.stat().st_size}
            for path in sorted(work.rglob("*"))
            if path.is_file()
        }
        manifest = {
            "format": FORMAT_VERSION,
            "name": stamp,
            "started_at": started,
            "finished_at": _now(),
            "finished_at_unix": time.time(),
            "duration_seconds": round(time.time() - t0, 3),
            "release": os.environ.get("QUIRE_RELEASE") or os.environ.get("GIT_SHA") or "",
            "database": database,
            "repositories": repositories,
            "files": files,
        }
        _write_json(work / MANIFEST, manifest)
        final = dest_root / stamp
        os.rename(work, final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    _write_json(dest_root / LATEST, {**manifest, "path": str(final)})
    if textfile is not None:
        from app.ops.metrics import write_backup_textfile

        textfile.parent.mkdir(parents=True, exist_ok=True)
        write_backup_textfile(textfile, manifest["finished_at_unix"])
    if keep:
        prune(dest_root, keep)
    return BackupResult(final, manifest)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _dump_database(url: str, work: Path) -> dict[str, Any]:
    if url.startswith("sqlite"):
        source = _sqlite_path(url)
        if not source.exists():
            raise BackupError(f"no SQLite database at {source}")
        target = work / "database.sqlite3"
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)  # a consistent snapshot, even while the app writes
        finally:
            dst.close()
            src.close()
        return {"kind": "sqlite", "file": target.name}
    target = work / "database.dump"
    result = subprocess.run(
        [
            "pg_dump",
            "--format=custom",
            "--no-owner",
            "--no-privileges",
            "--file",
            str(target),
            _libpq_url(url),
        ],
        capture_output=True,
        text=True,
        timeout=6 * 3600,
        check=False,
    )
    if result.returncode != 0:
        raise BackupError(f"pg_dump failed: {result.stderr.strip()}")
    return {"kind": "postgresql", "file": target.name}


def _bundle_repository(git: str, repo: Path, repos_root: Path, work: Path) -> dict[str, Any]:
    rel = repo.relative_to(repos_root)
    out_dir = work / "repos" / rel.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = rel.name[: -len(".git")]
    head = _git(git, "symbolic-ref", "-q", "HEAD", cwd=repo, check=False).strip()
    entry: dict[str, Any] = {"path": str(rel), "head": head, "bundle": None, "refs": {}}
    config = repo / "config"
    if config.exists():
        shutil.copyfile(config, out_dir / f"{stem}.config")
        entry["config"] = str((out_dir / f"{stem}.config").relative_to(work))
    refs = read_refs(git, repo)  # the snapshot this backup holds for the repository
    if not refs:
        return entry  # an empty repository: nothing to bundle
    bundle = out_dir / f"{stem}.bundle"
    # `git bundle create --all` on the live repository re-reads each ref after walking the
    # history and silently drops any ref a push moved in between (or refuses an "empty
    # bundle"). So bundle a frozen view instead: a scratch repository whose refs are the
    # snapshot and whose objects are the live repository's (alternates; objects are
    # immutable, so nothing is copied and nothing is locked).
    snap = Path(tempfile.mkdtemp(prefix=".snapshot-", dir=work.parent))
    try:
        _git(git, "init", "--quiet", "--bare", str(snap))
        (snap / "objects" / "info" / "alternates").write_text(f"{(repo / 'objects').resolve()}\n")
        commands = "".join(f"create {name} {oid}\n" for name, oid in refs.items())
        subprocess.run(
            [git, "update-ref", "--stdin"],
            cwd=snap,
            input=commands,
            text=True,
            check=True,
            capture_output=True,
        )
        if head:
            _git(git, "symbolic-ref", "HEAD", head, cwd=snap)
        _git(git, "bundle", "create", "--quiet", str(bundle), "--all", cwd=snap)
        _git(git, "bundle", "verify", "--quiet", str(bundle), cwd=snap)
        heads = {}
        for line in _git(git, "bundle", "list-heads", str(bundle), cwd=snap).splitlines():
            oid, _, name = line.partition(" ")
            if name.startswith("refs/"):
                heads[name] = oid
    finally:
        shutil.rmtree(snap, ignore_errors=True)
    if heads != refs:
        raise BackupError(f"{rel}: the bundle does not hold the snapshot's refs")
    entry["bundle"] = str(bundle.relative_to(work))
    entry["refs"] = refs
    return entry


def prune(dest_root: Path, keep: int) -> list[Path]:
    """Delete all but the ``keep`` newest complete backups; never the one LATEST names."""
    backups = sorted(p for p in dest_root.iterdir() if p.is_dir() and (p / MANIFEST).exists())
    removed = []
    for old in backups[: max(len(backups) - keep, 0)]:
        shutil.rmtree(old)
        removed.append(old)
    return removed


# --- restore ---------------------------------------------------------------------------------


def verify(backup_dir: Path) -> dict[str, Any]:
    """Check every file against the manifest; returns the manifest or raises BackupError."""
    manifest_path = backup_dir / MANIFEST
    if not manifest_path.exists():
        raise BackupError(f"{backup_dir} has no {MANIFEST}: not a Quire backup")
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("format") != FORMAT_VERSION:
        raise BackupError(f"unknown backup format {manifest.get('format')!r}")
    problems = []
    for rel, meta in manifest["files"].items():
        path = backup_dir / rel
        if not path.is_file():
            problems.append(f"{rel}: missing")
        elif path.stat().st_size != meta["size"] or sha256_file(path) != meta["sha256"]:
            problems.append(f"{rel}: checksum mismatch")
    if problems:
        raise BackupError("the backup is damaged:\n  " + "\n  ".join(problems))
    return manifest


def restore(
    backup_dir: Path, *, repos_root: Path, database_url: str, git: str = "git"
) -> dict[str, Any]:
    """Rebuild an empty installation from ``backup_dir``; refuses to overwrite anything."""
    manifest = verify(backup_dir)
    check_target_empty(repos_root, database_url)
    _restore_database(manifest["database"], backup_dir, database_url)
    for entry in manifest["repositories"]:
        _restore_repository(git, entry, backup_dir, repos_root)
    return manifest


def check_target_empty(repos_root: Path, database_url: str) -> None:
    """Refuse to restore over anything: no repositories, no tables."""
    existing = list_repositories(repos_root)
    if existing:
        raise BackupError(f"REPOS_ROOT {repos_root} already holds {len(existing)} repositories")
    _check_database_empty(database_url)


def _check_database_empty(url: str) -> None:
    from sqlalchemy import create_engine, inspect

    if url.startswith("sqlite"):
        path = _sqlite_path(url)
        if not path.exists() or path.stat().st_size == 0:
            return
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        tables = inspect(engine).get_table_names()
    finally:
        engine.dispose()
    if tables:
        raise BackupError(
            f"the database is not empty ({len(tables)} tables): restore needs an empty one"
        )


def _restore_database(database: dict[str, Any], backup_dir: Path, url: str) -> None:
    source = backup_dir / database["file"]
    if database["kind"] == "sqlite":
        if not url.startswith("sqlite"):
            raise BackupError("the backup holds a SQLite database; DATABASE_URL must be SQLite too")
        target = _sqlite_path(url)
        target.parent.mkdir(parents=True, exist_ok=True)
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            dst.close()
            src.close()
        return
    if url.startswith("sqlite"):
        raise BackupError("the backup holds a PostgreSQL dump; DATABASE_URL must be PostgreSQL too")
    result = subprocess.run(
        [
            "pg_restore",
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            "--dbname",
            _libpq_url(url),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=6 * 3600,
        check=False,
    )
    if result.returncode != 0:
        raise BackupError(f"pg_restore failed: {result.stderr.strip()}")


def _restore_repository(
    git: str, entry: dict[str, Any], backup_dir: Path, repos_root: Path
) -> None:
    final = repos_root / entry["path"]
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".restore-{final.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    _git(git, "init", "--quiet", "--bare", str(tmp))
    try:
        if entry.get("config"):
            shutil.copyfile(backup_dir / entry["config"], tmp / "config")
        if entry["bundle"]:
            bundle = str(backup_dir / entry["bundle"])
            _git(git, "bundle", "verify", "--quiet", bundle, cwd=tmp)
            _git(git, "fetch", "--quiet", "--no-tags", bundle, "refs/*:refs/*", cwd=tmp)
        if entry.get("head"):
            _git(git, "symbolic-ref", "HEAD", entry["head"], cwd=tmp)
        restored = read_refs(git, tmp)
        if restored != entry["refs"]:
            raise BackupError(f"{entry['path']}: restored refs differ from the manifest")
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
