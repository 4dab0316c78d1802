"""Backups and restores of a whole installation (``scripts/backup``, ``scripts/restore``)."""

from app.backup.core import BackupError, BackupResult, backup, restore, verify

__all__ = ["BackupError", "BackupResult", "backup", "restore", "verify"]
