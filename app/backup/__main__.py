"""``python -m app.backup backup|restore|verify`` (``scripts/backup``, ``scripts/restore``).

``REPOS_ROOT`` and ``DATABASE_URL`` come from the environment, as for the app. A target or
source ``s3://bucket/prefix`` uses an S3-compatible bucket (``S3_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``; see app/backup/s3.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.backup import s3
from app.backup.core import BackupError, backup, restore, verify
from app.config import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.backup")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser(
        "backup", help="write a verified backup into DIR/<timestamp>/ (or s3://bucket/prefix)"
    )
    b.add_argument("dir", help="a directory, or s3://bucket/prefix")
    b.add_argument("--keep", type=int, default=None, help="keep only the N newest backups")
    b.add_argument(
        "--textfile",
        type=Path,
        default=None,
        help="also write quire_backup_last_success_timestamp_seconds here (node_exporter)",
    )
    r = sub.add_parser("restore", help="rebuild an empty installation from a backup")
    r.add_argument(
        "dir", help="a backup directory or s3:// URL (or its parent/prefix: LATEST is used)"
    )
    v = sub.add_parser("verify", help="check a backup's checksums")
    v.add_argument("dir", help="a backup directory or s3:// URL")
    args = parser.parse_args(argv)

    settings = Settings.from_env()
    try:
        remote = s3.is_s3_url(args.dir)
        if args.command == "backup":
            result = (s3.backup if remote else backup)(
                args.dir if remote else Path(args.dir),
                repos_root=settings.repos_root,
                database_url=settings.database_url,
                git=settings.git_binary,
                keep=args.keep,
                textfile=args.textfile,
            )
            count = len(result.manifest["repositories"])
            print(f"backup written to {result.path} ({count} repositories)")
        elif args.command == "restore":
            target = s3.resolve(args.dir) if remote else _resolve(Path(args.dir))
            manifest = (s3.restore if remote else restore)(
                target,
                repos_root=settings.repos_root,
                database_url=settings.database_url,
                git=settings.git_binary,
            )
            print(
                f"restored {target} ({len(manifest['repositories'])} repositories, "
                f"{manifest['database']['kind']} database) into {settings.repos_root}"
            )
        else:
            if remote:
                s3.verify(args.dir)
            else:
                verify(_resolve(Path(args.dir)))
            print(f"{args.dir}: every checksum matches")
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _resolve(path: Path) -> Path:
    """A backup directory, or a backups root whose LATEST names one."""
    if (path / "manifest.json").exists():
        return path
    latest = path / "LATEST"
    if latest.exists():
        import json

        return Path(json.loads(latest.read_text())["path"])
    return path


if __name__ == "__main__":
    sys.exit(main())
