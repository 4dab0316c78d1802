"""Backups to and restores from an S3-compatible bucket, against a real HTTP S3 endpoint
(moto's ThreadedMotoServer on a free local port), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from app.backup import BackupError
from app.backup import s3 as s3backup
from app.backup.core import MANIFEST, list_repositories
from tests.deploy.test_backup import ROOT, _seed, assert_same_installation
from tests.ops.test_ready import free_port

BUCKET = "quire-backups"


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A local S3-compatible server with an empty bucket; the AWS_* / S3_* environment set."""
    server_mod = pytest.importorskip("moto.server")
    port = free_port()
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("S3_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "quire-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "quire-test-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    # moto keeps its state per process, not per server: start from an empty one.
    reset = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    try:
        urllib.request.urlopen(reset, timeout=10).close()
        s3backup.client().create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        server.stop()


def _keys(prefix: str) -> list[str]:
    listing = s3backup.client().list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(o["Key"] for o in listing.get("Contents", []))


def test_backup_to_s3_and_restore_from_it(
    app: Flask,
    accounts,  # noqa: ANN001
    tmp_path: Path,
    restore_url: str,
    s3_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _seed(app, accounts)
    repos_root = Path(app.config["REPOS_ROOT"])
    source_engine = app.extensions["quire.db"].engine
    url = f"s3://{BUCKET}/nightly/quire"

    # Record the order objects reach the bucket: the manifest after every file, LATEST last.
    uploads: list[str] = []
    client = s3backup.client()
    real_upload, real_put = client.upload_file, client.put_object

    def upload_file(filename: str, bucket: str, key: str, **kw: Any) -> None:
        uploads.append(key)
        real_upload(filename, bucket, key, **kw)

    def put_object(**kw: Any) -> Any:
        if not uploads or uploads[-1] != kw["Key"]:  # upload_file puts small files itself
            uploads.append(kw["Key"])
        return real_put(**kw)

    monkeypatch.setattr(client, "upload_file", upload_file)
    monkeypatch.setattr(client, "put_object", put_object)

    result = s3backup.backup(
        url,
        repos_root=repos_root,
        database_url=app.config["DATABASE_URL"],
        textfile=tmp_path / "metrics" / "quire_backup.prom",
        s3=client,
    )
    manifest = result.manifest
    base = f"nightly/quire/{manifest['name']}"
    assert result.path == f"s3://{BUCKET}/{base}"
    assert uploads[-2:] == [f"{base}/{MANIFEST}", "nightly/quire/LATEST"]
    assert sorted(uploads[:-2]) == sorted(f"{base}/{rel}" for rel in manifest["files"])
    assert _keys("nightly/") == sorted([*uploads[:-1], "nightly/quire/LATEST"])
    assert len(manifest["repositories"]) == 4
    assert any(rel.endswith(".bundle") for rel in manifest["files"])
    latest = json.loads(client.get_object(Bucket=BUCKET, Key="nightly/quire/LATEST")["Body"].read())
    assert latest["name"] == manifest["name"] and latest["path"] == result.path
    assert (
        "quire_backup_last_success_timestamp_seconds"
        in (tmp_path / "metrics" / "quire_backup.prom").read_text()
    )
    assert s3backup.verify(url)["name"] == manifest["name"]

    # Restore from the prefix (LATEST is followed) into a fresh directory and database.
    new_root = tmp_path / "restored-repos"
    restored = s3backup.restore(url, repos_root=new_root, database_url=restore_url)
    assert restored["name"] == manifest["name"]
    assert_same_installation(repos_root, new_root, source_engine, restore_url)


def test_restore_from_s3_refuses_a_corrupted_object(
    app: Flask,
    accounts,  # noqa: ANN001
    tmp_path: Path,
    restore_url: str,
    s3_endpoint: str,
) -> None:
    _seed(app, accounts)
    url = f"s3://{BUCKET}/b"
    result = s3backup.backup(
        url, repos_root=Path(app.config["REPOS_ROOT"]), database_url=app.config["DATABASE_URL"]
    )
    client = s3backup.client()
    base = f"b/{result.manifest['name']}"
    bundle = next(rel for rel in sorted(result.manifest["files"]) if rel.endswith(".bundle"))
    body = client.get_object(Bucket=BUCKET, Key=f"{base}/{bundle}")["Body"].read()
    client.put_object(Bucket=BUCKET, Key=f"{base}/{bundle}", Body=body[:-1] + b"X")

    new_root = tmp_path / "new"
    with pytest.raises(BackupError, match=rf"{bundle}: checksum mismatch"):
        s3backup.restore(url, repos_root=new_root, database_url=restore_url)
    assert not list_repositories(new_root)
    with pytest.raises(BackupError, match="checksum mismatch"):
        s3backup.verify(f"s3://{BUCKET}/{base}")

    # A backup whose manifest never arrived (an interrupted upload) is not a backup.
    client.delete_object(Bucket=BUCKET, Key=f"{base}/{MANIFEST}")
    client.delete_object(Bucket=BUCKET, Key="b/LATEST")
    with pytest.raises(BackupError, match="not a \\(complete\\) Quire backup"):
        s3backup.restore(url, repos_root=new_root, database_url=restore_url)


def test_scripts_backup_and_restore_with_s3(
    app: Flask,
    accounts,  # noqa: ANN001
    tmp_path: Path,
    restore_url: str,
    s3_endpoint: str,
) -> None:
    _seed(app, accounts)
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"QUIRE_ENV"}},
        "DATABASE_URL": str(app.config["DATABASE_URL"]),
        "REPOS_ROOT": str(app.config["REPOS_ROOT"]),
    }
    url = f"s3://{BUCKET}/scripted"
    for _ in range(3):
        out = subprocess.run(
            [str(ROOT / "scripts" / "backup"), url, "--keep", "2"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 0, out.stderr
        assert f"backup written to s3://{BUCKET}/scripted/" in out.stdout
    assert len(s3backup.list_backups(url)) == 2  # --keep prunes in the bucket too
    env.update(DATABASE_URL=restore_url, REPOS_ROOT=str(tmp_path / "restored"))
    out = subprocess.run(
        [str(ROOT / "scripts" / "restore"), url],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert len(list_repositories(tmp_path / "restored")) == 4


def test_big_files_go_up_in_parts_and_come_back_intact(tmp_path: Path, s3_endpoint: str) -> None:
    big = tmp_path / "big.bundle"
    big.write_bytes(os.urandom(9 * 1024 * 1024))  # above s3transfer's 8 MiB multipart threshold
    client = s3backup.client()
    s3backup._upload(client, big, BUCKET, "x/big.bundle", big.stat().st_size)
    assert "-" in client.head_object(Bucket=BUCKET, Key="x/big.bundle")["ETag"]  # multipart
    client.download_file(BUCKET, "x/big.bundle", str(tmp_path / "back"))
    assert (tmp_path / "back").read_bytes() == big.read_bytes()
