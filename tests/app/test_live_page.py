"""The live editor page, the built bundle's URL and its cache headers (no browser)."""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

import pytest
from flask import Flask

from app.accounts.services import get_user_by_username
from app.assets import IMMUTABLE, Manifest
from app.documents.services import create_document, set_member

LIVE = "/d/notes/live/main/document.md"


@pytest.fixture
def people(app: Flask, accounts) -> None:
    """olga owns the private 'notes'; eddie edits it, vera views it, stan is a stranger."""
    app.config["LOGIN_RATE_LIMIT"] = "1000 per minute"
    for name in ("olga", "eddie", "vera", "stan"):
        accounts.create(name)
    with app.app_context():
        owner = get_user_by_username("olga")
        document = create_document(owner, "Notes", visibility="private")
        set_member(owner, document, "eddie", "editor")
        set_member(owner, document, "vera", "viewer")


@pytest.fixture
def built(app: Flask, tmp_path: Path) -> str:
    """A fake built bundle in a static folder of its own."""
    dist = tmp_path / "static" / "dist"
    dist.mkdir(parents=True)
    (dist / "editor-ABC123.js").write_text("export {}\n")
    (dist / "manifest.json").write_text(json.dumps({"editor.js": "editor-ABC123.js"}))
    app.static_folder = str(tmp_path / "static")
    app.extensions["quire.assets"] = Manifest(tmp_path / "static")
    return "/static/dist/editor-ABC123.js"


def _root(html: str) -> dict[str, str]:
    match = re.search(r"<section class=\"live\"[^>]*data-live-editor-root[^>]*>", html, re.S)
    assert match, html
    return dict(re.findall(r'data-([a-z-]+)="([^"]*)"', match.group(0)))


def test_editor_gets_a_writable_live_page(app, client, accounts, people, built) -> None:
    accounts.login(client, "eddie")
    html = client.get(LIVE).get_data(as_text=True)
    attrs = _root(html)
    assert attrs["read-only"] == "false"
    assert attrs["ws-url"] == "/live"
    assert attrs["room"] == "notes/main/document.md"
    assert attrs["user-name"] == "eddie"
    assert re.fullmatch(r"#[0-9a-f]{6}", attrs["user-color"])
    assert f'<script type="module" src="{built}"></script>' in html
    assert "<noscript>" in html and "/d/notes/edit/main/document.md" in html
    assert 'aria-labelledby="editor-title"' in html and 'aria-labelledby="preview-title"' in html

    show = client.get("/d/notes").get_data(as_text=True)
    assert ">Edit live</a>" in show and ">Edit without live sync</a>" in show


def test_viewer_gets_a_read_only_page_and_strangers_nothing(app, client, accounts, people) -> None:
    accounts.login(client, "vera")
    assert _root(client.get(LIVE).get_data(as_text=True))["read-only"] == "true"
    show = client.get("/d/notes").get_data(as_text=True)
    assert ">Watch live</a>" in show and "Edit without live sync" not in show
    client.submit("/logout", page="/d/notes")
    accounts.login(client, "stan")
    assert client.get(LIVE).status_code == 404
    assert client.get("/d/notes/live/nope/document.md").status_code == 404


def test_bundle_is_cached_forever_under_its_hashed_name(app, client, built) -> None:
    response = client.get(built)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == IMMUTABLE
    manifest = client.get("/static/dist/manifest.json")
    assert manifest.headers.get("Cache-Control") != IMMUTABLE
    assert client.get("/static/css/quire.css").headers.get("Cache-Control") != IMMUTABLE


def test_without_a_built_bundle_the_page_still_works(
    app, client, accounts, people, tmp_path, caplog
) -> None:
    app.extensions["quire.assets"] = Manifest(tmp_path / "nothing-built")
    accounts.login(client, "eddie")
    with caplog.at_level(logging.WARNING, logger="app.assets"):
        first = client.get(LIVE)
        client.get(LIVE)
    html = first.get_data(as_text=True)
    assert first.status_code == 200
    assert '<script type="module"' not in html
    assert "/d/notes/edit/main/document.md" in html  # the form editor remains
    warnings = [r for r in caplog.records if "manifest.json" in r.getMessage()]
    assert len(warnings) == 1


def test_a_rebuild_is_picked_up_without_a_restart(app, built, tmp_path) -> None:
    from app.assets import asset_url

    manifest = tmp_path / "static" / "dist" / "manifest.json"
    with app.test_request_context("/"):
        assert asset_url("editor.js") == built
        assert asset_url("missing.js") is None
        manifest.write_text(json.dumps({"editor.js": "editor-NEW456.js"}))
        stat = manifest.stat()
        os.utime(manifest, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        assert asset_url("editor.js") == "/static/dist/editor-NEW456.js"
