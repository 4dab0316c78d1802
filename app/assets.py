"""The built front-end bundles: ``asset_url('editor.js')`` and their cache headers.

``npm run build`` (run by ``scripts/setup``) writes ``static/dist/<name>-<hash>.js``
and ``static/dist/manifest.json`` mapping ``editor.js`` to the hashed file. The
manifest is re-read only when it changes; hashed names never change content, so they
are served with a one-year immutable cache. Without a manifest (bundle not built) pages
still render: ``asset_url`` returns None and the form editor remains.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from flask import Flask, Response, current_app, request, url_for

log = logging.getLogger(__name__)

DIST = "dist"
IMMUTABLE = "public, max-age=31536000, immutable"


class Manifest:
    """``manifest.json``, re-read only when the file changes (a rebuild under a running server)."""

    def __init__(self, static_folder: Path) -> None:
        self.path = static_folder / DIST / "manifest.json"
        self._entries: dict[str, str] = {}
        self._mtime: float | None = None
        self._warned = False

    def entries(self) -> dict[str, str]:
        try:
            mtime = self.path.stat().st_mtime
            if mtime != self._mtime:
                loaded = json.loads(self.path.read_text())
                self._entries = {str(k): str(v) for k, v in loaded.items()}
                self._mtime = mtime
        except (OSError, ValueError, AttributeError):
            if not self._warned:
                self._warned = True
                log.warning(
                    "assets: %s is missing or unreadable; run `npm ci && npm run build` "
                    "(scripts/setup does) for the live editor",
                    self.path,
                )
            self._entries, self._mtime = {}, None
        return self._entries

    def lookup(self, name: str) -> str | None:
        return self.entries().get(name)


def asset_url(name: str) -> str | None:
    """URL of the built ``name`` (``editor.js``), or None when the bundle is not built."""
    hashed = current_app.extensions["quire.assets"].lookup(name)
    if hashed is None:
        return None
    return url_for("static", filename=f"{DIST}/{hashed}")


def _cache_headers(response: Response) -> Response:
    hashed = request.path.startswith(f"/static/{DIST}/") and not request.path.endswith(".json")
    if hashed and response.status_code in (200, 304):
        response.headers["Cache-Control"] = IMMUTABLE
        response.headers.pop("Expires", None)
    return response


def init_app(app: Flask) -> None:
    app.extensions["quire.assets"] = Manifest(Path(app.static_folder or "static"))
    app.jinja_env.globals["asset_url"] = asset_url
    app.after_request(_cache_headers)
