"""Backups to, and restores from, an S3-compatible bucket (``s3://bucket/prefix``).

The backup is written to a local temporary directory exactly as for a directory target
(:func:`app.backup.core.backup`, so it is verified before anything leaves the host), then
uploaded under ``<prefix>/<UTC timestamp>/``: every file first (``upload_file``: multipart for
big bundles), ``manifest.json`` **last** (so a partial upload is never a complete backup),
and only then ``<prefix>/LATEST`` (the manifest plus the backup's URL) is replaced.

A restore downloads the manifest first, then every file it names, refusing any whose size or
sha256 differ, and hands the verified directory to :func:`app.backup.core.restore`.

The client is configured from the environment: ``S3_ENDPOINT_URL`` (empty for AWS itself),
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION`` (boto3 reads the
last three itself). Temporary files go to ``TMPDIR`` (it must hold one whole backup).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from app.backup import core
from app.backup.core import LATEST, MANIFEST, BackupError, BackupResult

SCHEME = "s3://"


def is_s3_url(target: str | os.PathLike[str]) -> bool:
    return str(target).startswith(SCHEME)


def parse_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix/`` -> ``("bucket", "some/prefix")`` (prefix may be empty)."""
    if not is_s3_url(url):
        raise BackupError(f"not an s3:// URL: {url}")
    bucket, _, prefix = url[len(SCHEME) :].partition("/")
    if not bucket:
        raise BackupError(f"no bucket in {url}")
    return bucket, prefix.strip("/")


def _key(prefix: str, *parts: str) -> str:
    return "/".join(p for p in (prefix, *parts) if p)


def client() -> Any:
    try:
        import boto3
    except ImportError as exc:  # pragma: no cover - boto3 is in requirements.txt
        raise BackupError("S3 backups need boto3 (pip install -r requirements.txt)") from exc
    return boto3.client("s3", endpoint_url=os.environ.get("S3_ENDPOINT_URL") or None)


def _s3_errors() -> tuple[type[BaseException], ...]:
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError, S3UploadFailedError)


# --- backup ----------------------------------------------------------------------------------


def backup(
    url: str,
    *,
    repos_root: Path,
    database_url: str,
    git: str = "git",
    keep: int | None = None,
    textfile: Path | None = None,
    s3: Any = None,
) -> BackupResult:
    """Back up into ``s3://bucket/prefix/<timestamp>/``; returns the URL (as path) and manifest."""
    bucket, prefix = parse_url(url)
    s3 = s3 or client()
    staging = Path(tempfile.mkdtemp(prefix="quire-backup-"))
    try:
        local = core.backup(staging, repos_root=repos_root, database_url=database_url, git=git)
        manifest = local.manifest
        base = _key(prefix, manifest["name"])
        try:
            for rel, meta in sorted(manifest["files"].items()):
                _upload(s3, local.path / rel, bucket, _key(base, rel), meta["size"])
            manifest_path = local.path / MANIFEST
            _upload(s3, manifest_path, bucket, _key(base, MANIFEST), manifest_path.stat().st_size)
            backup_url = f"{SCHEME}{bucket}/{base}"
            latest = json.dumps({**manifest, "path": backup_url}, indent=2, sort_keys=True)
            s3.put_object(
                Bucket=bucket,
                Key=_key(prefix, LATEST),
                Body=(latest + "\n").encode(),
                ContentType="application/json",
            )
        except _s3_errors() as exc:
            raise BackupError(f"upload to {SCHEME}{bucket}/{base} failed: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if textfile is not None:
        from app.ops.metrics import write_backup_textfile

        textfile.parent.mkdir(parents=True, exist_ok=True)
        write_backup_textfile(textfile, manifest["finished_at_unix"])
    if keep:
        prune(url, keep, s3=s3)
    return BackupResult(backup_url, manifest)


def _upload(s3: Any, path: Path, bucket: str, key: str, size: int) -> None:
    s3.upload_file(str(path), bucket, key)  # multipart above 8 MiB (s3transfer's default)
    stored = s3.head_object(Bucket=bucket, Key=key)["ContentLength"]
    if stored != size:
        raise BackupError(f"{SCHEME}{bucket}/{key}: uploaded {stored} bytes, expected {size}")


def list_backups(url: str, *, s3: Any = None) -> list[str]:
    """Names of the complete backups (those with a manifest) under ``url``, oldest first."""
    bucket, prefix = parse_url(url)
    s3 = s3 or client()
    names = []
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(
        Bucket=bucket, Prefix=f"{prefix}/" if prefix else "", Delimiter="/"
    ):
        for common in page.get("CommonPrefixes", []):
            name = common["Prefix"].rstrip("/").rsplit("/", 1)[-1]
            if _exists(s3, bucket, _key(prefix, name, MANIFEST)):
                names.append(name)
    return sorted(names)


def prune(url: str, keep: int, *, s3: Any = None) -> list[str]:
    """Delete all but the ``keep`` newest complete backups under ``url``; returns their names."""
    bucket, prefix = parse_url(url)
    s3 = s3 or client()
    names = list_backups(url, s3=s3)
    removed = []
    for name in names[: max(len(names) - keep, 0)]:
        # The manifest first: a half-deleted backup must not look complete.
        s3.delete_object(Bucket=bucket, Key=_key(prefix, name, MANIFEST))
        paginator = s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=_key(prefix, name) + "/"):
            objects = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if objects:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
        removed.append(name)
    return removed


def _exists(s3: Any, bucket: str, key: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
            return False
        raise
    return True


# --- restore ---------------------------------------------------------------------------------


def resolve(url: str, *, s3: Any = None) -> str:
    """A backup's URL, or a backups prefix whose ``LATEST`` names one."""
    bucket, prefix = parse_url(url)
    s3 = s3 or client()
    try:
        if _exists(s3, bucket, _key(prefix, MANIFEST)):
            return f"{SCHEME}{bucket}/{prefix}"
        if _exists(s3, bucket, _key(prefix, LATEST)):
            body = s3.get_object(Bucket=bucket, Key=_key(prefix, LATEST))["Body"].read()
            return f"{SCHEME}{bucket}/{_key(prefix, json.loads(body)['name'])}"
    except _s3_errors() as exc:
        raise BackupError(f"cannot read {url}: {exc}") from exc
    raise BackupError(f"{url} has no {MANIFEST} and no {LATEST}: not a (complete) Quire backup")


def download(url: str, dest: Path, *, s3: Any = None) -> dict[str, Any]:
    """Download the backup at ``url`` (or the one its ``LATEST`` names) into ``dest``,
    manifest first, checking every file's size and sha256; returns the manifest."""
    s3 = s3 or client()
    url = resolve(url, s3=s3)
    bucket, base = parse_url(url)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        s3.download_file(bucket, _key(base, MANIFEST), str(dest / MANIFEST))
        manifest = json.loads((dest / MANIFEST).read_text())
        if manifest.get("format") != core.FORMAT_VERSION:
            raise BackupError(f"unknown backup format {manifest.get('format')!r}")
        problems = []
        for rel, meta in sorted(manifest["files"].items()):
            target = dest / rel
            if Path(rel).is_absolute() or ".." in Path(rel).parts:
                raise BackupError(f"{url}: the manifest names a file outside the backup: {rel}")
            target.parent.mkdir(parents=True, exist_ok=True)
            if not _exists(s3, bucket, _key(base, rel)):
                problems.append(f"{url}/{rel}: missing from the bucket")
                continue
            s3.download_file(bucket, _key(base, rel), str(target))
            if target.stat().st_size != meta["size"] or core.sha256_file(target) != meta["sha256"]:
                problems.append(f"{url}/{rel}: checksum mismatch")
    except _s3_errors() as exc:
        raise BackupError(f"download of {url} failed: {exc}") from exc
    if problems:
        raise BackupError("the backup is damaged:\n  " + "\n  ".join(problems))
    return core.verify(dest)


def verify(url: str, *, s3: Any = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="quire-verify-") as tmp:
        return download(url, Path(tmp), s3=s3)


def restore(
    url: str,
    *,
    repos_root: Path,
    database_url: str,
    git: str = "git",
    s3: Any = None,
) -> dict[str, Any]:
    """Rebuild an empty installation from the backup at ``url`` (or its prefix's LATEST)."""
    core.check_target_empty(repos_root, database_url)  # before downloading gigabytes
    with tempfile.TemporaryDirectory(prefix="quire-restore-") as tmp:
        download(url, Path(tmp), s3=s3)
        return core.restore(Path(tmp), repos_root=repos_root, database_url=database_url, git=git)
