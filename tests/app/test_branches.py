"""The branch list (ahead/behind), create from any version, rename and delete, web and API."""

from __future__ import annotations

import re
import subprocess

from flask import Flask

import gitstore
from app import db
from app.activity.models import ActivityEvent
from app.documents import services
from app.documents.protection import BranchProtection

API = "/api/v1"
AUTHOR = gitstore.Author("Ada", "ada@example.com")


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _commit(app: Flask, slug: str, branch: str, text: str) -> str:
    with app.app_context():
        repo = services.repo(services.get_document(slug))
        return repo.write(
            branch,
            [gitstore.Put("document.md", text)],
            parent=repo.head(branch),
            author=AUTHOR,
            message=text.strip(),
        )


def _branch(app: Flask, slug: str, name: str, start: str = "main") -> str:
    with app.app_context():
        return services.repo(services.get_document(slug)).create_branch(name, start)


def _protect(app: Flask, slug: str, pattern: str) -> None:
    with app.app_context():
        document = services.get_document(slug)
        db.session().add(BranchProtection(document_id=document.id, pattern=pattern))
        db.session().commit()


def _heads(app: Flask, slug: str) -> dict[str, str]:
    with app.app_context():
        return {b.name: b.head for b in services.repo(services.get_document(slug)).branches()}


def _flash(client, response) -> str:
    return client.get(response.headers["Location"]).get_data(as_text=True)


# --- the list -------------------------------------------------------------------------


def test_ahead_behind_on_a_hand_built_history(app: Flask, client, accounts, team) -> None:
    slug = team
    _branch(app, slug, "draft")
    _branch(app, slug, "stale")
    for i in range(2):
        _commit(app, slug, "draft", f"draft {i}\n")
    for i in range(3):
        _commit(app, slug, "main", f"main {i}\n")
    _branch(app, slug, "fresh")  # at main's head: 0 ahead, 0 behind
    _commit(app, slug, "fresh", "fresh 0\n")
    accounts.login(client, "vic")
    page = client.get(f"/d/{slug}/branches").get_data(as_text=True)

    def numbers(name: str) -> tuple[str, str]:
        row = re.search(rf'<tr id="branch-{name}">(.*?)</tr>', page, re.S).group(1)
        return (
            re.search(r'data-ahead="(\d+)"', row).group(1),
            re.search(r'data-behind="(\d+)"', row).group(1),
        )

    assert numbers("draft") == ("2", "3")
    assert numbers("stale") == ("0", "3")
    assert numbers("fresh") == ("1", "0")
    assert "data-ahead" not in re.search(r'<tr id="branch-main">(.*?)</tr>', page, re.S).group(1)
    # The list links each branch to the compare page against the default branch.
    assert f"/d/{slug}/compare?from=main&amp;to=draft" in page
    # A viewer sees no write actions.
    assert "Rename" not in page and "New branch" not in page
    token = accounts.token("vic")
    listed = client.get(f"{API}/documents/{slug}/branches", headers=auth(token)).json["branches"]
    by_name = {b["name"]: b for b in listed}
    assert listed[0]["name"] == "main" and by_name["main"]["ahead"] is None
    assert (by_name["draft"]["ahead"], by_name["draft"]["behind"]) == (2, 3)
    assert (by_name["fresh"]["ahead"], by_name["fresh"]["behind"]) == (1, 0)
    assert by_name["main"]["protected"] is True and by_name["draft"]["protected"] is False


def test_create_branch_from_a_tag_or_commit_id(app: Flask, client, accounts, team) -> None:
    slug = team
    first = _heads(app, slug)["main"]
    second = _commit(app, slug, "main", "second\n")
    with app.app_context():
        repo = services.repo(services.get_document(slug))
        repo.create_tag("v1", first, tagger=AUTHOR, message="one")
    accounts.login(client, "ed")
    url = f"/d/{slug}/branches"
    assert client.submit(url, {"name": "from-tag", "from": "v1"}).status_code == 302
    assert client.submit(url, {"name": "from-oid", "from": second[:10]}).status_code == 302
    heads = _heads(app, slug)
    assert heads["from-tag"] == first and heads["from-oid"] == second
    refused = client.submit(url, {"name": "nowhere", "from": "no-such-thing"})
    assert "Could not create the branch" in _flash(client, refused)
    assert "nowhere" not in _heads(app, slug)
    with app.app_context():
        kinds = {
            e.ref
            for e in db.session()
            .query(ActivityEvent)
            .filter(ActivityEvent.ref.like("refs/heads/from-%"))
        }
    assert kinds == {"refs/heads/from-tag", "refs/heads/from-oid"}


# --- rename ---------------------------------------------------------------------------


def test_rename_in_the_web(app: Flask, client, accounts, team) -> None:
    slug = team
    head = _branch(app, slug, "draft")
    accounts.login(client, "ed")
    url = f"/d/{slug}/branches"
    done = client.submit(f"{url}/rename", {"name": "draft", "new_name": "final"}, page=url)
    assert "Branch draft renamed to final." in _flash(client, done)
    heads = _heads(app, slug)
    assert "draft" not in heads and heads["final"] == head
    # Refusals keep everything as it was, with a clear message.
    _branch(app, slug, "other")
    for form, message in (
        ({"name": "main", "new_name": "trunk"}, "default branch cannot be renamed"),
        ({"name": "final", "new_name": "other"}, "already exists"),
        ({"name": "final", "new_name": "bad..name"}, "not a valid branch name"),
        ({"name": "final", "new_name": ""}, "not a valid branch name"),
    ):
        response = client.submit(f"{url}/rename", form, page=url)
        assert message in _flash(client, response), form
    assert set(_heads(app, slug)) == {"main", "final", "other"}
    missing = client.submit(f"{url}/rename", {"name": "ghost", "new_name": "x"}, page=url)
    assert missing.status_code == 404
    # Reviewers cannot rename (403); strangers do not see the document (404).
    client.submit("/logout", page="/documents")
    accounts.login(client, "rita")
    assert (
        client.submit(f"{url}/rename", {"name": "final", "new_name": "x"}, page=url).status_code
        == 403
    )
    client.submit("/logout", page="/documents")
    accounts.login(client, "stranger")
    hidden = client.submit(f"{url}/rename", {"name": "final", "new_name": "x"}, page="/documents")
    assert hidden.status_code == 404


def test_rename_protected_branches_needs_the_right_to_protect(app, client, accounts, team):
    slug = team
    _branch(app, slug, "release/1")
    _branch(app, slug, "scratch")
    _protect(app, slug, "release/*")
    editor, maintainer = accounts.token("ed"), accounts.token("maria")
    url = f"{API}/documents/{slug}/branches"
    refused = client.patch(f"{url}/release/1", json={"name": "old-1"}, headers=auth(editor))
    assert refused.status_code == 422 and refused.json["error"]["code"] == "protected_branch"
    onto = client.patch(f"{url}/scratch", json={"name": "release/2"}, headers=auth(editor))
    assert onto.status_code == 422 and onto.json["error"]["code"] == "protected_branch"
    done = client.patch(f"{url}/release/1", json={"name": "release/one"}, headers=auth(maintainer))
    assert done.status_code == 200 and done.json["name"] == "release/one"
    assert "release/one" in _heads(app, slug) and "release/1" not in _heads(app, slug)
    # The web page offers rename of a protected branch only to those allowed.
    accounts.login(client, "ed")
    page = client.get(f"/d/{slug}/branches").get_data(as_text=True)
    row = re.search(r'<tr id="branch-release/one">(.*?)</tr>', page, re.S).group(1)
    assert "protected" in row and "Rename" not in row and "Delete" not in row


def test_rename_through_the_api(app: Flask, client, accounts, team) -> None:
    slug = team
    head = _branch(app, slug, "draft")
    _branch(app, slug, "taken")
    token = accounts.token("ed")
    url = f"{API}/documents/{slug}/branches"
    renamed = client.patch(f"{url}/draft", json={"name": "feature/x"}, headers=auth(token))
    assert renamed.status_code == 200
    assert renamed.json["name"] == "feature/x" and renamed.json["head"] == head
    cases = [
        ("main", {"name": "trunk"}, 422, "default_branch"),
        ("feature/x", {"name": "taken"}, 409, "branch_exists"),
        ("feature/x", {"name": "a b"}, 422, "invalid_ref_name"),
        ("feature/x", {"name": 3}, 422, "invalid"),
        ("feature/x", {}, 422, "invalid"),
        ("ghost", {"name": "y"}, 404, "not_found"),
    ]
    for name, body, status, code in cases:
        response = client.patch(f"{url}/{name}", json=body, headers=auth(token))
        assert (response.status_code, response.json["error"]["code"]) == (status, code), name
    assert client.patch(f"{url}/feature/x", json={"name": "y"}).status_code == 401
    viewer = client.patch(
        f"{url}/feature/x", json={"name": "y"}, headers=auth(accounts.token("vic"))
    )
    assert viewer.status_code == 403
    stranger = accounts.token("stranger")
    hidden = client.patch(f"{url}/feature/x", json={"name": "y"}, headers=auth(stranger))
    assert hidden.status_code == 404
    assert set(_heads(app, slug)) == {"main", "feature/x", "taken"}


def _lock(app: Flask, slug: str, branch: str):
    """Hold ``branch``'s ref lock the way a concurrent git process would."""
    with app.app_context():
        path = services.repo(services.get_document(slug)).path
    lock = path / "refs" / "heads" / f"{branch}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text("")
    return lock


def test_rename_refusals_from_the_repository_reach_the_user(app, client, accounts, team):
    """Refusals only gitstore can see (its HEAD, a held or moved ref) are messages, not 500s."""
    slug = team
    head = _branch(app, slug, "draft")
    token = accounts.token("ed")
    api = f"{API}/documents/{slug}/branches"
    accounts.login(client, "ed")
    url = f"/d/{slug}/branches"

    def web(old: str, new: str) -> str:
        response = client.submit(f"{url}/rename", {"name": old, "new_name": new}, page=url)
        assert response.status_code == 302, (old, new)
        return _flash(client, response)

    def patch(old: str, new: str):
        response = client.patch(f"{api}/{old}", json={"name": new}, headers=auth(token))
        return response.status_code, response.json["error"]["code"], response.json["error"]

    # The default branch named by its full ref passes the row's check; gitstore refuses it.
    assert "The default branch cannot be renamed." in web("refs/heads/main", "trunk")
    status, code, error = patch("refs/heads/main", "trunk")
    assert (status, code) == (422, "default_branch")
    assert error["message"] == "The default branch cannot be renamed."
    # Someone else holds the branch's (or the new name's) lock: a clear 409, nothing moved.
    for locked in ("draft", "final"):
        lock = _lock(app, slug, locked)
        try:
            assert "Nothing was renamed" in web("draft", "final")
            status, code, error = patch("draft", "final")
            assert (status, code) == (409, "conflict"), locked
            assert "Nothing was renamed" in error["message"]
        finally:
            lock.unlink()
    # A name Git refuses for the branch being renamed.
    assert "not a valid branch name" in web("a..b", "c")
    assert patch("a..b", "c")[:2] == (422, "invalid_ref_name")
    assert _heads(app, slug) == {"main": _heads(app, slug)["main"], "draft": head}
    # With the lock gone the same rename goes through.
    assert "Branch draft renamed to final." in web("draft", "final")
    assert _heads(app, slug)["final"] == head


# --- delete ---------------------------------------------------------------------------


def test_delete_refusals_and_success(app: Flask, client, accounts, team) -> None:
    slug = team
    _branch(app, slug, "draft")
    _branch(app, slug, "release/1")
    _protect(app, slug, "release/*")
    url = f"{API}/documents/{slug}/branches"
    maintainer = accounts.token("maria")
    default = client.delete(f"{url}/main", headers=auth(maintainer))
    assert default.status_code == 422 and default.json["error"]["code"] == "default_branch"
    protected = client.delete(f"{url}/release/1", headers=auth(maintainer))
    assert protected.status_code == 422 and protected.json["error"]["code"] == "protected_branch"
    assert client.delete(f"{url}/ghost", headers=auth(maintainer)).status_code == 404
    reviewer = client.delete(f"{url}/draft", headers=auth(accounts.token("rita")))
    assert reviewer.status_code == 403
    assert set(_heads(app, slug)) == {"main", "draft", "release/1"}
    # In the web: the same refusals as messages.
    accounts.login(client, "maria")
    page = f"/d/{slug}/branches"
    response = client.submit(f"{page}/delete", {"name": "release/1"}, page=page)
    assert "protected" in _flash(client, response)
    response = client.submit(f"{page}/delete", {"name": "main"}, page=page)
    assert "default branch cannot be deleted" in _flash(client, response)
    response = client.submit(f"{page}/delete", {"name": "draft"}, page=page)
    assert "Branch draft deleted." in _flash(client, response)
    assert set(_heads(app, slug)) == {"main", "release/1"}
    with app.app_context():
        deleted = (
            db.session()
            .query(ActivityEvent)
            .filter(
                ActivityEvent.ref == "refs/heads/draft", ActivityEvent.new_oid == gitstore.ZERO_OID
            )
            .count()
        )
    assert deleted == 1


# --- history across merges ------------------------------------------------------------


def _merged_history(app: Flask, slug: str, each: int) -> list[str]:
    """``each`` commits on a draft branch and on main meanwhile, then a merge commit.

    Returns every commit of main as ``git rev-list`` lists them (made within seconds,
    so many share a commit time).
    """
    with app.app_context():
        repo = services.repo(services.get_document(slug))
        repo.create_branch("draft", "main")
        for i in range(each):
            for branch, path in (("draft", "draft.md"), ("main", "main.md")):
                repo.write(
                    branch,
                    [gitstore.Put(path, f"{branch} {i}\n")],
                    parent=repo.head(branch),
                    author=AUTHOR,
                    message=f"{branch} {i}",
                )
        repo.merge(
            "main",
            "draft",
            style="merge",
            expected_target=repo.head("main"),
            author=AUTHOR,
            message="Merge draft",
        )
        out = subprocess.run(
            ["git", "-C", str(repo.path), "rev-list", "main"],
            capture_output=True,
            text=True,
            check=True,
        )
    return out.stdout.split()


def test_api_pages_through_a_merged_history(app: Flask, client, accounts, team) -> None:
    slug = team
    everything = _merged_history(app, slug, 6)
    token = accounts.token("vic")
    url = f"{API}/documents/{slug}/commits"
    whole = client.get(f"{url}?limit=100", headers=auth(token)).json
    assert whole["next_cursor"] is None
    unpaged = [c["oid"] for c in whole["commits"]]
    assert sorted(unpaged) == sorted(everything) and len(unpaged) == 14
    for limit in (1, 2, 3, 5):
        seen, cursor = [], None
        while True:
            query = f"?limit={limit}" + (f"&after={cursor}" if cursor else "")
            page = client.get(url + query, headers=auth(token))
            assert page.status_code == 200
            seen.extend(c["oid"] for c in page.json["commits"])
            cursor = page.json["next_cursor"]
            if cursor is None:
                break
        assert seen == unpaged, limit
    for bad in ("nope", everything[0][:10], "0" * 40, f"{everything[0]}.x"):
        response = client.get(f"{url}?after={bad}", headers=auth(token))
        assert response.status_code == 400, bad
        assert response.json["error"]["code"] == "invalid_cursor"


def test_history_page_pages_through_a_merged_history(app: Flask, client, accounts, team) -> None:
    slug = team
    everything = _merged_history(app, slug, 30)  # 62 commits: two pages of 50
    accounts.login(client, "vic")
    url = f"/d/{slug}/history"
    first = client.get(url).get_data(as_text=True)
    cursor = re.search(r"after=([0-9a-f.]+)", first).group(1)
    second = client.get(f"{url}?after={cursor}").get_data(as_text=True)
    shown = [re.findall(rf"/d/{slug}/commit/([0-9a-f]{{40}})", page) for page in (first, second)]
    assert len(shown[0]) == 50 and len(shown[1]) == 12
    assert len(set(shown[0] + shown[1])) == 62 and set(shown[0] + shown[1]) == set(everything)
    assert "Older →" not in second
    assert client.get(f"{url}?after=not-a-cursor").status_code == 400
