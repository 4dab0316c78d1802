"""Debian's Chromium for the browser tests: where it is, how to start it, when to skip.

Imported first by every browser test module: without Playwright or the browser the
module is skipped with the reason, except under ``CI=true`` where that is a failure.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("QUIRE_CHROMIUM", "/usr/bin/chromium"))
IN_CI = os.environ.get("CI", "").lower() == "true"
#: Headless as root on a machine with no network beyond the package registries.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def require_browser() -> None:
    """Skip the calling module (fail under CI) when Playwright or Chromium is missing."""
    if importlib.util.find_spec("playwright") is None:
        if IN_CI:
            pytest.fail("playwright is not installed; CI=true requires it", pytrace=False)
        pytest.skip("playwright is not installed", allow_module_level=True)
    if not CHROMIUM.exists():
        message = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
        if IN_CI:
            pytest.fail(f"{message}; CI=true requires the browser tests to run", pytrace=False)
        pytest.skip(message, allow_module_level=True)
