"""Git over HTTP in process: the ref-update rules, limits, aliases and the signal.

The real git client against gunicorn is in tests/interop/test_git_http.py; these run
through Flask's test client (git itself still runs, with the pre-receive hook).
"""

from __future__ import annotations

import base64
import gzip
import io
import subprocess

import pytest
from flask import Flask

import gitstore
from app import db
from app.accounts.services import get_user_by_username
from app.activity.signals import ref_updated
from app.documents import services
from app.documents.protection import BranchProtection, can_update_ref
from gitstore.protocol import encode_pkt

Z = "0" * 40
EMPTY_PACK = subprocess.run(
    ["git", "pack-objects", "--stdout"], input=b"", capture_output=True, check=True
).stdout
RECEIVE = "application/x-git-receive-pack-request"


@pytest.fixture
def doc(app: Flask, accounts) -> str:
    accounts.create("olga")
    for name in ("mo", "ed", "rev", "vi", "stranger"):
        accounts.create(name)
    with app.app_context():
        owner = get_user_by_username("olga")
        document = services.create_document(owner, "Rules")
        for name, role in (("mo", "maintainer"), ("ed", "editor"), ("rev", "reviewer")):
            services.set_member(owner, document, name, role)
        services.set_member(owner, document, "vi", "viewer")
        return document.slug


def _check(app: Flask, username: str | None, slug: str, ref: str, old: str, new: str, ff=None):
    with app.app_context():
        actor = get_user_by_username(username) if username else None
        return can_update_ref(actor, services.get_document(slug), ref, old, new, ff)


A, B = "a" * 40, "b" * 40


@pytest.mark.parametrize(
    ("user", "ref", "old", "new", "ff", "reason"),
    [
        ("ed", "refs/heads/topic", Z, A, None, None),
        ("ed", "refs/heads/topic", A, B, False, None),  # unprotected: anything goes
        ("ed", "refs/heads/topic", A, Z, None, None),
        ("ed", "refs/heads/main", A, B, True, "branch 'main' is protected"),
        ("mo", "refs/heads/main", A, B, True, None),
        ("olga", "refs/heads/main", A, B, None, None),  # unknown yet: the hook decides
        ("olga", "refs/heads/main", A, B, False, "non-fast-forward"),
        ("olga", "refs/heads/main", A, Z, None, "cannot be deleted"),
        ("mo", "refs/tags/v1", Z, A, None, None),
        ("mo", "refs/tags/v1", A, Z, None, "only site admins can delete tags"),
        ("olga", "refs/tags/v1", A, Z, None, None),  # the first account: a site admin
        ("mo", "refs/tags/v1", A, B, None, "tags are never moved"),
        ("ed", "refs/tags/v1", Z, A, None, "only maintainers"),
        ("olga", "refs/merge-requests/1/head", Z, A, None, "refs/merge-requests/*"),
        ("olga", "refs/notes/x", Z, A, None, "only branches"),
        ("olga", "refs/heads/a..b", Z, A, None, "invalid branch name"),
        ("olga", "refs/heads/x.lock", Z, A, None, "invalid branch name"),
        ("rev", "refs/heads/topic", Z, A, None, "permission to push"),
        ("vi", "refs/heads/topic", Z, A, None, "permission to push"),
        ("stranger", "refs/heads/topic", Z, A, None, "not found"),
        (None, "refs/heads/topic", Z, A, None, "not found"),
    ],
)
def test_can_update_ref(app: Flask, doc: str, user, ref, old, new, ff, reason) -> None:
    result = _check(app, user, doc, ref, old, new, ff)
    if reason is None:
        assert result is None
    else:
        assert result is not None and reason in result


def test_protection_rules_by_pattern_and_role(app: Flask, doc: str) -> None:
    with app.app_context():
        document = services.get_document(doc)
        db.session().add_all(
            [
                BranchProtection(document_id=document.id, pattern="release/*"),
                BranchProtection(document_id=document.id, pattern="main", push_role="editor"),
            ]
        )
        db.session().commit()
    assert "protected" in _check(app, "ed", doc, "refs/heads/release/1", A, B, True)
    assert _check(app, "mo", doc, "refs/heads/release/1", A, B, True) is None
    assert "cannot be deleted" in _check(app, "mo", doc, "refs/heads/release/1", A, Z)
    # An explicit rule for the default branch replaces the implicit one.
    assert _check(app, "ed", doc, "refs/heads/main", A, B, True) is None
    assert "non-fast-forward" in _check(app, "ed", doc, "refs/heads/main", A, B, False)


def _auth(accounts, username: str) -> dict[str, str]:
    token = accounts.token(username)
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{token}".encode()).decode()}


def _head(app: Flask, slug: str, branch: str = "main") -> str:
    with app.app_context():
        return services.repo(services.get_document(slug)).resolve(branch)


def test_push_through_the_test_client_with_gzip_and_hook(app: Flask, client, accounts, doc) -> None:
    head = _head(app, doc)
    received: list[dict] = []

    def receiver(sender, **kwargs) -> None:
        received.append({"document": sender.slug, **kwargs})

    commands = encode_pkt(f"{Z} {head} refs/heads/copy\0report-status side-band-64k\n") + b"0000"
    with ref_updated.connected_to(receiver):
        response = client.post(
            f"/{doc}.git/git-receive-pack",
            data=gzip.compress(commands + EMPTY_PACK),
            headers={**_auth(accounts, "ed"), "Content-Type": RECEIVE, "Content-Encoding": "gzip"},
        )
    assert response.status_code == 200, response.data
    statuses = gitstore.parse_report(response.data, side_band=True)
    assert statuses == [gitstore.RefStatus("refs/heads/copy")]
    assert _head(app, doc, "copy") == head
    assert [(r["ref"], r["old"], r["new"], r["source"]) for r in received] == [
        ("refs/heads/copy", Z, head, "push")
    ]
    assert received[0]["actor"].username == "ed"


def test_refused_push_answers_a_report_without_running_git(app: Flask, client, accounts, doc):
    head = _head(app, doc)
    commands = (
        encode_pkt(f"{head} {Z} refs/heads/main\0report-status\n")
        + encode_pkt(f"{Z} {head} refs/heads/fine\n")
        + b"0000"
    )
    response = client.post(
        f"/{doc}.git/git-receive-pack",
        data=commands + EMPTY_PACK,
        headers={**_auth(accounts, "olga"), "Content-Type": RECEIVE},
    )
    statuses = gitstore.parse_report(response.data, side_band=False)
    assert statuses[0].reason == "protected branch 'main' cannot be deleted"
    assert "another ref in this push was refused" in statuses[1].reason
    assert _head(app, doc) == head


def test_probe_and_body_limit(app: Flask, client, accounts, doc) -> None:
    headers = {**_auth(accounts, "olga"), "Content-Type": RECEIVE}
    probe = client.post(f"/{doc}.git/git-receive-pack", data=b"0000", headers=headers)
    assert probe.status_code == 200 and probe.data == b""
    app.config["GIT_MAX_BODY_BYTES"] = 1000
    head = _head(app, doc)
    commands = encode_pkt(f"{Z} {head} refs/heads/huge\0report-status\n") + b"0000"

    # No Content-Length (as for a chunked body): the limit is found while streaming.
    stream = io.BytesIO(commands + b"P" * 5000)
    response = client.post(
        f"/{doc}.git/git-receive-pack",
        input_stream=stream,
        headers=headers,
        environ_overrides={"CONTENT_LENGTH": ""},
    )
    assert response.status_code == 413 and b"larger than this server accepts" in response.data
    with app.app_context():
        repo = services.repo(services.get_document(doc))
        assert "huge" not in [b.name for b in repo.branches()]
        assert not list((repo.path / "objects").glob("tmp_objdir-incoming-*"))


def test_renamed_document_serves_git_under_its_old_slug(app: Flask, client, accounts, doc):
    with app.app_context():
        document = services.get_document(doc)
        services.update_settings(document.owner, document, slug="rules-renamed")
    response = client.get(
        f"/{doc}.git/info/refs?service=git-upload-pack", headers=_auth(accounts, "olga")
    )
    assert response.status_code == 200
    assert response.content_type == "application/x-git-upload-pack-advertisement"
    with app.app_context():
        document = services.get_document("rules-renamed")
        services.update_settings(document.owner, document, slug=doc)  # and back again
        assert services.get_document_by_alias(doc) is None
        assert services.resolve_slug("rules-renamed").slug == doc


def test_web_saves_send_the_signal(app: Flask, doc: str) -> None:
    received: list[dict] = []

    def receiver(sender, **kwargs) -> None:
        received.append(kwargs)

    head = _head(app, doc)
    with app.app_context(), ref_updated.connected_to(receiver):
        document = services.get_document(doc)
        owner = document.owner
        result = services.save_file(
            owner,
            document,
            branch="main",
            path="document.md",
            content="x\n",
            message="m",
            parent=head,
        )
    assert received == [
        {
            "actor": received[0]["actor"],
            "ref": "refs/heads/main",
            "old": head,
            "new": result.commit,
            "source": "web",
        }
    ]


def test_pages_show_the_clone_url_and_the_clone_line(app: Flask, client, accounts, doc) -> None:
    accounts.login(client, "olga")
    page = client.get(f"/d/{doc}").get_data(as_text=True)
    assert f'value="http://localhost/{doc}.git"' in page and "Clone with a token" in page
    created = client.submit("/settings/tokens", {"name": "laptop"}).get_data(as_text=True)
    assert "git clone http://olga:qt_" in created and "@localhost/&lt;slug&gt;.git" in created
