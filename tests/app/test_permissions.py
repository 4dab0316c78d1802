"""Every role x every action x both visibilities, then the same rules over HTTP.

The expected table is written out literally: it is not derived from the rank
logic in :mod:`app.auth.permissions`, so a wrong rank there shows up here.
"""

from __future__ import annotations

import re

import pytest
from flask import Flask

from app import db
from app.accounts.services import get_user_by_username
from app.auth.permissions import Action, PermissionDenied, can, require
from app.documents.services import create_document, get_document, set_member

ROLES = ("anonymous", "stranger", "viewer", "reviewer", "editor", "maintainer", "owner", "admin")
# The username that plays each role (anonymous is nobody).
PLAYERS = {
    "stranger": "stan",
    "viewer": "vera",
    "reviewer": "rita",
    "editor": "eddie",
    "maintainer": "mona",
    "owner": "olga",
    "admin": "root",
}

# One column per role, in the order of ROLES: Y = allowed, . = refused.
#                            anon  strg  view  revw  edit  mtnr  ownr  admn
EXPECTED_PRIVATE = {
    Action.READ:               ".     .     Y     Y     Y     Y     Y     Y",
    Action.COMMENT:            ".     .     .     Y     Y     Y     Y     Y",
    Action.APPROVE:            ".     .     .     Y     Y     Y     Y     Y",
    Action.EDIT:               ".     .     .     .     Y     Y     Y     Y",
    Action.CREATE_BRANCH:      ".     .     .     .     Y     Y     Y     Y",
    Action.PUSH:               ".     .     .     .     Y     Y     Y     Y",
    Action.OPEN_MERGE_REQUEST: ".     .     .     .     Y     Y     Y     Y",
    Action.CLOSE_MERGE_REQUEST:".     .     .     .     Y     Y     Y     Y",
    Action.RESOLVE_THREAD:     ".     .     .     Y     Y     Y     Y     Y",
    Action.MERGE:              ".     .     .     .     .     Y     Y     Y",
    Action.PROTECT_BRANCH:     ".     .     .     .     .     Y     Y     Y",
    Action.TAG_RELEASE:        ".     .     .     .     .     Y     Y     Y",
    Action.MANAGE_MEMBERS:     ".     .     .     .     .     Y     Y     Y",
    Action.EDIT_SETTINGS:      ".     .     .     .     .     Y     Y     Y",
    Action.CHANGE_VISIBILITY:  ".     .     .     .     .     .     Y     Y",
    Action.DELETE_DOCUMENT:    ".     .     .     .     .     .     Y     Y",
    Action.DELETE_RELEASE:     ".     .     .     .     .     .     .     Y",
}  # fmt: skip
EXPECTED_PUBLIC = {
    Action.READ:               "Y     Y     Y     Y     Y     Y     Y     Y",
    Action.COMMENT:            ".     .     .     Y     Y     Y     Y     Y",
    Action.APPROVE:            ".     .     .     Y     Y     Y     Y     Y",
    Action.EDIT:               ".     .     .     .     Y     Y     Y     Y",
    Action.CREATE_BRANCH:      ".     .     .     .     Y     Y     Y     Y",
    Action.PUSH:               ".     .     .     .     Y     Y     Y     Y",
    Action.OPEN_MERGE_REQUEST: ".     .     .     .     Y     Y     Y     Y",
    Action.CLOSE_MERGE_REQUEST:".     .     .     .     Y     Y     Y     Y",
    Action.RESOLVE_THREAD:     ".     .     .     Y     Y     Y     Y     Y",
    Action.MERGE:              ".     .     .     .     .     Y     Y     Y",
    Action.PROTECT_BRANCH:     ".     .     .     .     .     Y     Y     Y",
    Action.TAG_RELEASE:        ".     .     .     .     .     Y     Y     Y",
    Action.MANAGE_MEMBERS:     ".     .     .     .     .     Y     Y     Y",
    Action.EDIT_SETTINGS:      ".     .     .     .     .     Y     Y     Y",
    Action.CHANGE_VISIBILITY:  ".     .     .     .     .     .     Y     Y",
    Action.DELETE_DOCUMENT:    ".     .     .     .     .     .     Y     Y",
    Action.DELETE_RELEASE:     ".     .     .     .     .     .     .     Y",
}  # fmt: skip
ALL_ACTION_NAMES = {
    "READ", "COMMENT", "APPROVE", "EDIT", "CREATE_BRANCH", "PUSH", "OPEN_MERGE_REQUEST",
    "CLOSE_MERGE_REQUEST", "RESOLVE_THREAD", "MERGE", "PROTECT_BRANCH", "TAG_RELEASE",
    "MANAGE_MEMBERS", "EDIT_SETTINGS", "CHANGE_VISIBILITY", "DELETE_DOCUMENT", "DELETE_RELEASE",
}  # fmt: skip


def _row(spec: str) -> dict[str, bool]:
    cells = spec.split()
    assert len(cells) == len(ROLES) and set(cells) <= {"Y", "."}
    return {role: cell == "Y" for role, cell in zip(ROLES, cells, strict=True)}


@pytest.fixture
def cast(app: Flask, accounts) -> dict[str, str]:
    """Users for every role and two documents, 'secret' (private) and 'open' (public)."""
    app.config["LOGIN_RATE_LIMIT"] = "1000 per minute"
    accounts.create("root", admin=True)  # first account: site admin
    for role, username in PLAYERS.items():
        if role != "admin":
            accounts.create(username)
    with app.app_context():
        owner = get_user_by_username("olga")
        assert not owner.is_admin and not get_user_by_username("stan").is_admin
        for title, visibility in (("Secret", "private"), ("Open", "public")):
            document = create_document(owner, title, visibility=visibility)
            for role in ("viewer", "reviewer", "editor", "maintainer"):
                set_member(owner, document, PLAYERS[role], role)
    return PLAYERS


def test_every_action_is_in_the_table() -> None:
    """Actions that share a rank must stay distinct members, not Enum aliases."""
    assert {a.name for a in Action} == ALL_ACTION_NAMES
    assert set(EXPECTED_PRIVATE) == set(EXPECTED_PUBLIC) == set(Action)
    assert Action.APPROVE is not Action.COMMENT
    assert Action.PUSH is not Action.EDIT
    assert (
        str(PermissionDenied(Action.DELETE_DOCUMENT, hide=False)) == "not allowed: delete_document"
    )


def test_permission_matrix(app: Flask, cast) -> None:
    mismatches = []
    checked = 0
    with app.app_context():
        actors = {"anonymous": None}
        actors.update({role: get_user_by_username(name) for role, name in cast.items()})
        for slug, table in (("secret", EXPECTED_PRIVATE), ("open", EXPECTED_PUBLIC)):
            document = get_document(slug)
            for action, spec in table.items():
                for role, allowed in _row(spec).items():
                    actor = actors[role]
                    checked += 1
                    if can(actor, action, document) != allowed:
                        mismatches.append(f"{slug}: {role} {action.name} expected {allowed}")
                    try:
                        require(actor, action, document)
                    except PermissionDenied as exc:
                        assert not allowed, f"{slug}: {role} {action.name} raised"
                        assert exc.action is action
                        # Hidden (404) exactly when the actor cannot even read.
                        can_read = _row(table[Action.READ])[role]
                        assert exc.hide is (not can_read), (slug, role, action)
                    else:
                        assert allowed, f"{slug}: {role} {action.name} did not raise"
    assert checked == 2 * len(Action) * 8
    assert not mismatches, "\n".join(mismatches)


def test_inactive_users_lose_their_rights(app: Flask, cast) -> None:
    with app.app_context():
        for name in ("root", "olga", "eddie"):
            get_user_by_username(name).is_active = False
        db.session().commit()
        secret, public = get_document("secret"), get_document("open")
        for name in ("root", "olga", "eddie"):
            user = get_user_by_username(name)
            assert not can(user, Action.READ, secret)
            assert can(user, Action.READ, public)
            assert not can(user, Action.EDIT, public)


# --- over HTTP -------------------------------------------------------------------


def _client(app: Flask, accounts, role: str):
    from tests.conftest import Browserish

    app.test_client_class = Browserish
    client = app.test_client()
    if role != "anonymous":
        response = accounts.login(client, PLAYERS[role])
        assert response.status_code == 302
    return client


READ_PAGES = ("/d/{slug}", "/d/{slug}/history", "/d/{slug}/raw/main/document.md")


def _api(app: Flask, accounts, role: str, slug: str) -> int:
    headers = {}
    if role != "anonymous":
        headers["Authorization"] = f"Bearer {accounts.token(PLAYERS[role])}"
    return app.test_client().get(f"/api/v1/documents/{slug}", headers=headers).status_code


@pytest.mark.parametrize("role", ["anonymous", "stranger"])
def test_private_document_is_404_without_read(app: Flask, accounts, cast, role) -> None:
    client = _client(app, accounts, role)
    for page in (*READ_PAGES, "/d/{slug}/edit/main/document.md", "/d/{slug}/settings"):
        assert client.get(page.format(slug="secret")).status_code == 404, page
    # Same answer as a document that does not exist.
    assert client.get("/d/no-such-doc").status_code == 404
    assert _api(app, accounts, role, "secret") == 404
    assert _api(app, accounts, role, "no-such-doc") == 404
    html = client.get("/documents").get_data(as_text=True)
    assert "Secret" not in html


@pytest.mark.parametrize("role", ["viewer", "reviewer"])
def test_private_document_readers(app: Flask, accounts, cast, role) -> None:
    client = _client(app, accounts, role)
    for page in READ_PAGES:
        assert client.get(page.format(slug="secret")).status_code == 200, page
    assert _api(app, accounts, role, "secret") == 200
    assert client.get("/d/secret/edit/main/document.md").status_code == 403
    assert client.get("/d/secret/settings").status_code == 403
    # A forged save is refused too, whatever the CSRF token.
    token = client.csrf_token("/d/secret")
    response = client.post(
        "/d/secret/edit/main/document.md",
        data={"csrf_token": token, "content": "# hijacked\n", "parent": "0" * 40},
    )
    assert response.status_code == 403
    assert "hijacked" not in client.get("/d/secret/raw/main/document.md").get_data(as_text=True)


def _save(client, slug: str, content: str):
    edit = client.get(f"/d/{slug}/edit/main/document.md")
    assert edit.status_code == 200
    parent = re.search(r'name="parent" value="([0-9a-f]{40})"', edit.get_data(as_text=True))
    return client.submit(
        f"/d/{slug}/edit/main/document.md",
        {"content": content, "message": "edit", "parent": parent.group(1)},
    )


def _general(client, slug: str, visibility: str, title: str):
    return client.submit(
        f"/d/{slug}/settings",
        {"form": "general", "title": title, "slug": slug, "visibility": visibility},
        page=f"/d/{slug}/settings",
    )


def _delete(client, slug: str, page_slug: str | None = None):
    return client.submit(
        f"/d/{slug}/settings",
        {"form": "delete", "confirm": slug},
        page=f"/d/{page_slug or slug}" if page_slug else f"/d/{slug}/settings",
    )


def test_editor_edits_but_no_settings(app: Flask, accounts, cast) -> None:
    client = _client(app, accounts, "editor")
    assert _save(client, "secret", "# Secret\n\nEdited by eddie.\n").status_code == 302
    raw = client.get("/d/secret/raw/main/document.md").get_data(as_text=True)
    assert "Edited by eddie." in raw
    assert client.get("/d/secret/settings").status_code == 403
    token = client.csrf_token("/d/secret")
    response = client.post(
        "/d/secret/settings", data={"csrf_token": token, "form": "delete", "confirm": "secret"}
    )
    assert response.status_code == 403
    assert client.get("/d/secret").status_code == 200


def test_maintainer_settings_but_not_visibility_or_delete(app: Flask, accounts, cast) -> None:
    client = _client(app, accounts, "maintainer")
    assert client.get("/d/secret/settings").status_code == 200
    assert _general(client, "secret", "private", "Secret, renamed").status_code == 302
    assert _general(client, "secret", "public", "Secret, renamed").status_code == 403
    assert _delete(client, "secret").status_code == 403
    response = client.submit(
        "/d/secret/settings", {"form": "member", "username": "stan", "role": "viewer"}
    )
    assert response.status_code == 302
    with app.app_context():
        document = get_document("secret")
        assert document is not None
        assert document.title == "Secret, renamed"
        assert document.visibility == "private"
        assert can(get_user_by_username("stan"), Action.READ, document)


def test_owner_changes_visibility_and_deletes(app: Flask, accounts, cast) -> None:
    client = _client(app, accounts, "owner")
    assert _general(client, "secret", "public", "Secret").status_code == 302
    assert app.test_client().get("/d/secret").status_code == 200  # now public
    assert _delete(client, "secret").status_code == 302
    assert client.get("/d/secret").status_code == 404
    with app.app_context():
        assert get_document("secret") is None


def test_site_admin_can_do_everything(app: Flask, accounts, cast) -> None:
    client = _client(app, accounts, "admin")
    for page in (*READ_PAGES, "/d/{slug}/settings", "/d/{slug}/edit/main/document.md"):
        assert client.get(page.format(slug="secret")).status_code == 200, page
    assert _api(app, accounts, "admin", "secret") == 200
    assert _save(client, "secret", "# Secret\n\nAdmin was here.\n").status_code == 302
    assert _general(client, "secret", "public", "Secret").status_code == 302
    assert _delete(client, "secret").status_code == 302
    with app.app_context():
        assert get_document("secret") is None


@pytest.mark.parametrize("role", ["anonymous", "stranger"])
def test_public_document_read_only_for_outsiders(app: Flask, accounts, cast, role) -> None:
    client = _client(app, accounts, role)
    for page in READ_PAGES:
        assert client.get(page.format(slug="open")).status_code == 200, page
    assert _api(app, accounts, role, "open") == 200
    edit = client.get("/d/open/edit/main/document.md")
    if edit.status_code == 302:
        assert "/login" in edit.headers["Location"]
    else:
        assert edit.status_code == 403
    assert client.get("/d/open/settings").status_code in (302, 403)
    token = client.csrf_token("/login")
    response = client.post(
        "/d/open/edit/main/document.md",
        data={"csrf_token": token, "content": "# defaced\n", "parent": "0" * 40},
    )
    assert response.status_code in (302, 403)
    assert "defaced" not in client.get("/d/open/raw/main/document.md").get_data(as_text=True)
