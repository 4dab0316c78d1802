"""Merge requests: services, mergeability, protection rules, pages, head refresh.

Every test runs on SQLite and on PostgreSQL (the ``app`` fixture). Repositories are
real; pushes go through the git HTTP route (git itself runs, hook included).
"""

from __future__ import annotations

import base64
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pygit2
import pytest
from flask import Flask

import gitstore
from app import db
from app.accounts.services import get_user_by_username
from app.auth.permissions import PermissionDenied
from app.documents import protection
from app.documents import services as documents
from app.mergerequests import reviews, services
from app.mergerequests.models import MergeRequest, MergeRequestEvent
from gitstore.protocol import encode_pkt

Z = "0" * 40
BASE = (
    "# Plan\n\n"
    "We ship on Friday. The review is on Thursday. Everyone signs off.\n\n"
    "Budget: ten thousand.\n"
)
RECEIVE = "application/x-git-receive-pack-request"
EMPTY_PACK = subprocess.run(
    ["git", "pack-objects", "--stdout"], input=b"", capture_output=True, check=True
).stdout


@pytest.fixture(autouse=True)
def repositories_stay_clean(app: Flask) -> Iterator[None]:
    """Whatever a test did, every repository is ``git fsck --strict`` clean afterwards."""
    yield
    for repo in sorted(Path(app.config["REPOS_ROOT"]).glob("*/*.git")):
        fsck = subprocess.run(
            ["git", "fsck", "--strict", "--no-progress"], cwd=repo, capture_output=True, text=True
        )
        assert fsck.returncode == 0, f"{repo}: {fsck.stdout}{fsck.stderr}"


@pytest.fixture
def doc(app: Flask, accounts) -> str:
    """A document owned by olga, with mo (maintainer), ed (editor), rev, vi and a stranger."""
    for name in ("olga", "mo", "ed", "rev", "rev2", "vi", "stranger"):
        accounts.create(name)
    with app.app_context():
        owner = get_user_by_username("olga")
        document = documents.create_document(owner, "Plan")
        for name, role in (
            ("mo", "maintainer"),
            ("ed", "editor"),
            ("rev", "reviewer"),
            ("rev2", "reviewer"),
            ("vi", "viewer"),
        ):
            documents.set_member(owner, document, name, role)
        git = documents.repo(document)
        documents.save_file(
            owner,
            document,
            branch="main",
            path="document.md",
            content=BASE,
            message="Plan",
            parent=git.head("main"),
        )
        return document.slug


@contextmanager
def ctx(app: Flask) -> Iterator[None]:
    with app.app_context():
        try:
            yield
        finally:
            db.get_db().remove()


def user(name: str):
    return get_user_by_username(name)


def document(slug: str):
    return documents.get_document(slug)


def branch(slug: str, name: str, text: str, *, by: str = "ed", base: str = "main") -> str:
    """Create ``name`` from ``base`` and save ``text`` on it; returns the new head."""
    d = document(slug)
    git = documents.repo(d)
    if name not in {b.name for b in git.branches()}:
        documents.create_branch(user(by), d, name, base)
    return save(slug, name, text, by=by)


def save(slug: str, branch_name: str, text: str, *, by: str = "ed", path="document.md") -> str:
    d = document(slug)
    git = documents.repo(d)
    result = documents.save_file(
        user(by),
        d,
        branch=branch_name,
        path=path,
        content=text,
        message=f"edit {branch_name}",
        parent=git.head(branch_name),
    )
    return result.commit


def open_mr(slug: str, source: str, *, by: str = "ed", target: str = "main", **kw) -> int:
    mr = services.open_merge_request(
        user(by), document(slug), source=source, target=target, title=f"Take {source}", **kw
    )
    return mr.number


def get(slug: str, number: int) -> MergeRequest:
    mr = services.get_merge_request(document(slug), number)
    assert mr is not None
    return mr


def git_of(slug: str) -> gitstore.Document:
    return documents.repo(document(slug))


# --- opening ------------------------------------------------------------------------


def test_open_numbers_pins_the_head_and_records_the_event(app: Flask, doc: str) -> None:
    with ctx(app):
        head = branch(doc, "friday", BASE.replace("Friday", "Monday"))
        n1 = open_mr(doc, "friday", description="Moves *the date*")
        branch(doc, "budget", BASE.replace("ten", "twelve"))
        n2 = open_mr(doc, "budget")
        assert (n1, n2) == (1, 2)
        mr = get(doc, 1)
        assert mr.head_oid == head
        assert git_of(doc).resolve("refs/merge-requests/1/head") == head
        assert mr.mergeability == "mergeable"
        assert mr.base_oid == git_of(doc).head("main")
        kinds = [e.kind for e in services.events(mr)]
        assert kinds == ["opened"]
        assert "<em>the date</em>" in services.description_html(mr)


@pytest.mark.parametrize(
    ("source", "target", "title", "message"),
    [
        ("main", "main", "t", "must differ"),
        ("nope", "main", "t", "no branch 'nope'"),
        ("draft", "nope", "t", "no branch 'nope'"),
        ("draft", "main", "  ", "title"),
        ("", "main", "t", "Choose a source"),
    ],
)
def test_open_refuses_bad_input(app: Flask, doc: str, source, target, title, message) -> None:
    with ctx(app):
        branch(doc, "draft", BASE + "More.\n")
        with pytest.raises(services.MergeRequestError, match=message):
            services.open_merge_request(
                user("ed"), document(doc), source=source, target=target, title=title
            )


def test_only_editors_and_above_open(app: Flask, doc: str) -> None:
    with ctx(app):
        branch(doc, "draft", BASE + "More.\n")
        for name, hide in (("rev", False), ("vi", False), ("stranger", True)):
            with pytest.raises(PermissionDenied) as denied:
                services.open_merge_request(
                    user(name), document(doc), source="draft", target="main", title="x"
                )
            assert denied.value.hide is hide


# --- mergeability ---------------------------------------------------------------------


def test_mergeability_states_in_order(app: Flask, doc: str) -> None:
    with ctx(app):
        d = document(doc)
        # draft wins over everything
        branch(doc, "d1", BASE.replace("Friday", "Monday"))
        n = open_mr(doc, "d1", draft=True)
        assert get(doc, n).mergeability == "draft"
        services.update(user("ed"), get(doc, n), draft=False)
        assert get(doc, n).mergeability == "mergeable"

        # up to date: the source holds nothing the target lacks
        documents.create_branch(user("ed"), d, "same", "main")
        n_same = open_mr(doc, "same")
        assert get(doc, n_same).mergeability == "up_to_date"

        # conflicts: both sides change the same word
        branch(doc, "c1", BASE.replace("Friday", "Sunday"))
        n_conf = open_mr(doc, "c1")
        assert get(doc, n_conf).mergeability == "mergeable"
        save(doc, "main", BASE.replace("Friday", "Saturday"), by="olga")
        mr = get(doc, n_conf)
        assert mr.mergeability == "conflicts"  # refreshed by the save on the target
        assert mr.conflicts == ["document.md"]

        # a rule on main: approvals, unresolved threads, behind
        protection.save_rule(
            user("mo"),
            d,
            pattern="main",
            push_role="maintainer",
            required_approvals=1,
            block_unresolved=True,
            block_behind=True,
        )
        branch(doc, "r1", get_text(doc, "main").replace("ten", "twelve"))
        n_rule = open_mr(doc, "r1")
        assert services.refresh(get(doc, n_rule)).reason == "needs_approvals"
        reviews.start_thread(user("rev"), get(doc, n_rule), "Why twelve?")
        reviews.submit_review(user("rev"), get(doc, n_rule), "approved")
        assert get(doc, n_rule).mergeability == "unresolved_threads"
        thread = reviews.conversation(get(doc, n_rule)).general[0]
        reviews.set_resolved(user("ed"), get(doc, n_rule), thread, True)
        assert get(doc, n_rule).mergeability == "mergeable"
        # a reviewer asking for changes blocks, whatever the count
        reviews.submit_review(user("rev2"), get(doc, n_rule), "changes_requested")
        assert get(doc, n_rule).mergeability == "needs_approvals"
        reviews.submit_review(user("rev2"), get(doc, n_rule), "approved")
        assert get(doc, n_rule).mergeability == "mergeable"
        # the target moves on elsewhere: the source is behind
        save(doc, "main", "Preface.\n\n" + get_text(doc, "main"), by="olga")
        assert get(doc, n_rule).mergeability == "behind"
        with pytest.raises(services.NotMergeable) as refused:
            services.merge(user("mo"), get(doc, n_rule))
        assert refused.value.reason == "behind"


def get_text(slug: str, ref: str) -> str:
    return git_of(slug).read("document.md", ref).text


def test_prose_aware_merge_is_not_a_conflict(app: Flask, doc: str) -> None:
    """Different sentences of one paragraph line: Git conflicts, Quire merges."""
    with ctx(app):
        branch(doc, "monday", BASE.replace("Friday", "Monday"))
        n = open_mr(doc, "monday")
        save(doc, "main", BASE.replace("Thursday", "Wednesday"), by="olga")
        mr = get(doc, n)
        assert mr.mergeability == "mergeable"
        commit = services.merge(user("mo"), mr, style="merge")
        text = get_text(doc, commit)
        assert "ship on Monday" in text and "on Wednesday" in text


def test_default_branch_has_an_implicit_rule_without_requirements(app: Flask, doc: str) -> None:
    with ctx(app):
        rule = protection.protection_for(document(doc), "main")
        assert rule is not None and rule.pattern is None
        assert (rule.required_approvals, rule.block_unresolved, rule.block_behind) == (
            0,
            False,
            False,
        )
        assert protection.protection_for(document(doc), "topic") is None


def test_protection_rules_exact_beats_pattern(app: Flask, doc: str) -> None:
    with ctx(app):
        d = document(doc)
        protection.save_rule(
            user("olga"), d, pattern="release/*", push_role="maintainer", required_approvals=2
        )
        protection.save_rule(
            user("olga"), d, pattern="release/1", push_role="owner", required_approvals=1
        )
        assert protection.protection_for(d, "release/2").required_approvals == 2
        exact = protection.protection_for(d, "release/1")
        assert exact.required_approvals == 1 and exact.push_role.label == "owner"
        # live editing follows the push role unless the rule names one
        grant_ed = protection.grant_for(user("ed"), d)
        grant_mo = protection.grant_for(user("mo"), d)
        assert not protection.can_edit_live(grant_ed, d, "release/2")
        assert protection.can_edit_live(grant_mo, d, "release/2")
        assert protection.can_edit_live(grant_ed, d, "main")  # the implicit rule leaves it
        assert protection.can_edit_live(grant_ed, d, "topic")
        rule = next(r for r in protection.list_rules(d) if r.pattern == "release/*")
        protection.save_rule(
            user("olga"), d, pattern="release/*", push_role="maintainer", live_role="editor",
            rule_id=rule.id,
        )  # fmt: skip
        assert protection.can_edit_live(grant_ed, d, "release/2")
        with pytest.raises(protection.ProtectionError, match="already a rule"):
            protection.save_rule(user("olga"), d, pattern="release/1", push_role="maintainer")
        with pytest.raises(protection.ProtectionError, match="Name a branch"):
            protection.save_rule(user("olga"), d, pattern="a..b", push_role="maintainer")
        with pytest.raises(protection.ProtectionError, match="between 0 and"):
            protection.save_rule(
                user("olga"), d, pattern="x", push_role="maintainer", required_approvals=-1
            )
        with pytest.raises(protection.ProtectionError, match="Who may push"):
            protection.save_rule(user("olga"), d, pattern="x", push_role="viewer")
        with pytest.raises(PermissionDenied):
            protection.save_rule(user("ed"), d, pattern="x", push_role="maintainer")
        protection.delete_rule(user("olga"), d, rule.id)
        assert protection.protection_for(d, "release/2") is None


# --- merging ----------------------------------------------------------------------------


def _parents(slug: str, oid: str) -> list[str]:
    return [str(p) for p in git_of(slug).repo[oid].parent_ids]


def test_merge_styles_give_the_expected_history(app: Flask, doc: str) -> None:
    with ctx(app):
        # merge commit: two parents, the target head first
        branch(doc, "a", BASE.replace("Friday", "Monday"))
        save(doc, "main", BASE + "\nNotes.\n", by="olga")
        main_before = git_of(doc).head("main")
        n = open_mr(doc, "a")
        head_a = get(doc, n).head_oid
        merged = services.merge(user("mo"), get(doc, n), style="merge", delete_source=True)
        assert _parents(doc, merged) == [main_before, head_a]
        mr = get(doc, n)
        assert (mr.state, mr.merge_style, mr.merge_commit, mr.merged_from) == (
            "merged", "merge", merged, main_before,
        )  # fmt: skip
        assert "a" not in {b.name for b in git_of(doc).branches()}
        assert [e.kind for e in services.events(mr)][-2:] == ["merged", "source_deleted"]

        # squash: one new commit with one parent, crediting the authors
        branch(doc, "b", get_text(doc, "main").replace("ten", "twelve"))
        save(doc, "b", get_text(doc, "b") + "\nMore.\n")
        n = open_mr(doc, "b")
        before = git_of(doc).head("main")
        squashed = services.merge(user("mo"), get(doc, n), style="squash")
        assert _parents(doc, squashed) == [before]
        info = git_of(doc).commit(squashed)
        assert "ed@example.com" in [a.email for a in info.co_authors]
        assert "b" in {b.name for b in git_of(doc).branches()}  # kept: not asked to delete

        # fast-forward: the target becomes the source head, no new commit
        branch(doc, "c", get_text(doc, "main") + "\nC.\n")
        n = open_mr(doc, "c")
        head_c = get(doc, n).head_oid
        assert services.merge(user("mo"), get(doc, n), style="ff") == head_c
        assert git_of(doc).head("main") == head_c

        # ff refused when the target moved on
        branch(doc, "d", get_text(doc, "main") + "\nD.\n")
        n = open_mr(doc, "d")
        save(doc, "main", "# Other\n" + get_text(doc, "main"), by="olga")
        with pytest.raises(services.NotMergeable) as refused:
            services.merge(user("mo"), get(doc, n), style="ff")
        assert refused.value.reason == "behind"
        assert get(doc, n).state == "open"


def test_merge_needs_the_merge_right_and_an_open_request(app: Flask, doc: str) -> None:
    with ctx(app):
        branch(doc, "a", BASE.replace("Friday", "Monday"))
        n = open_mr(doc, "a")
        for name in ("ed", "rev", "vi"):
            with pytest.raises(PermissionDenied):
                services.merge(user(name), get(doc, n))
        services.close(user("ed"), get(doc, n))  # authors may close their own
        with pytest.raises(services.NotMergeable) as refused:
            services.merge(user("mo"), get(doc, n))
        assert refused.value.reason == "closed"
        services.reopen(user("ed"), get(doc, n))
        with pytest.raises(services.NotMergeable) as stale:
            services.merge(user("mo"), get(doc, n), expected_head="f" * 40)
        assert stale.value.reason == "checking"
        services.merge(user("mo"), get(doc, n))
        with pytest.raises(services.MergeRequestError):
            services.close(user("mo"), get(doc, n))


def test_close_rules(app: Flask, doc: str) -> None:
    with ctx(app):
        branch(doc, "a", BASE.replace("Friday", "Monday"))
        n = open_mr(doc, "a", by="mo")
        with pytest.raises(PermissionDenied):
            services.close(user("rev"), get(doc, n))  # not the author, not an editor
        services.close(user("ed"), get(doc, n))  # CLOSE_MERGE_REQUEST
        with pytest.raises(services.MergeRequestError, match="not open"):
            services.close(user("ed"), get(doc, n))
        assert [e.kind for e in services.events(get(doc, n))] == ["opened", "closed"]


def test_revert_a_merged_request(app: Flask, doc: str) -> None:
    with ctx(app):
        branch(doc, "a", BASE.replace("Friday", "Monday"))
        n = open_mr(doc, "a")
        services.merge(user("mo"), get(doc, n), style="squash")
        save(doc, "main", get_text(doc, "main").replace("ten", "nine"), by="olga")
        reverted = services.revert(user("mo"), get(doc, n))
        text = get_text(doc, "main")
        assert "ship on Friday" in text and "nine" in text  # later work survives
        assert git_of(doc).head("main") == reverted
        assert services.reverted_by(get(doc, n)) == reverted
        with pytest.raises(PermissionDenied):
            services.revert(user("ed"), get(doc, n))


def test_resolved_conflict_merges_with_two_parents(app: Flask, doc: str) -> None:
    with ctx(app):
        branch(doc, "sun", BASE.replace("Friday", "Sunday"))
        save(doc, "main", BASE.replace("Friday", "Saturday"), by="olga")
        n = open_mr(doc, "sun")
        mr = get(doc, n)
        assert mr.mergeability == "conflicts"
        with pytest.raises(services.NotMergeable):
            services.merge(user("mo"), mr, style="merge")
        target = git_of(doc).head("main")
        preview = git_of(doc).preview_merge(target, mr.head_oid)
        (file,) = [f for f in preview.files if f.conflicts]
        edits = {r.index: r.ours.replace("Saturday", "Sunday or Saturday") for r in file.conflicts}
        resolved = file.resolve({r.index: "edit" for r in file.conflicts}, edits)
        with pytest.raises(services.NotMergeable, match="merge commit"):
            services.merge(user("mo"), mr, style="squash", resolutions={"document.md": resolved})
        commit = services.merge(
            user("mo"), mr, style="merge", resolutions={"document.md": resolved}
        )
        assert _parents(doc, commit) == [target, mr.head_oid]
        assert "ship on Sunday or Saturday." in get_text(doc, commit)


# --- the head follows the source branch -------------------------------------------------


def _auth(accounts, username: str) -> dict[str, str]:
    token = accounts.token(username)
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{token}".encode()).decode()}


def test_head_refresh_on_web_save_api_save_and_push(app: Flask, client, accounts, doc) -> None:
    with ctx(app):
        first = branch(doc, "topic", BASE.replace("Friday", "Monday"))
        n = open_mr(doc, "topic")
    accounts.login(client, "ed")

    # a save through the edit form
    with ctx(app):
        parent = git_of(doc).head("topic")
    response = client.submit(
        f"/d/{doc}/edit/topic/document.md",
        {"content": BASE.replace("Friday", "Tuesday"), "message": "web", "parent": parent},
    )
    assert response.status_code == 302
    with ctx(app):
        web = git_of(doc).head("topic")
        assert web != first and get(doc, n).head_oid == web
        assert git_of(doc).resolve(f"refs/merge-requests/{n}/head") == web

    # a save through the API
    token = accounts.token("ed")
    response = client.put(
        f"/api/v1/documents/{doc}/files/document.md",
        json={"content": BASE.replace("Friday", "Wednesday"), "parent": web, "branch": "topic"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201, response.json
    api = response.json["commit"]
    with ctx(app):
        assert get(doc, n).head_oid == api

    # a push: the commit is written into the repository, git receive-pack moves the ref
    with ctx(app):
        repo = git_of(doc).repo
        tree = repo[api].tree
        sig = pygit2.Signature("Ed", "ed@example.com")
        blob = repo.create_blob(BASE.replace("Friday", "Thursday").encode())
        builder = repo.TreeBuilder(tree)
        builder.insert("document.md", blob, pygit2.GIT_FILEMODE_BLOB)
        pushed = str(repo.create_commit(None, sig, sig, "pushed", builder.write(), [api]))
    commands = encode_pkt(f"{api} {pushed} refs/heads/topic\0report-status\n") + b"0000"
    response = client.post(
        f"/{doc}.git/git-receive-pack",
        data=commands + EMPTY_PACK,
        headers={**_auth(accounts, "ed"), "Content-Type": RECEIVE},
    )
    assert response.status_code == 200
    assert gitstore.parse_report(response.data, side_band=False) == [
        gitstore.RefStatus("refs/heads/topic")
    ]
    with ctx(app):
        mr = get(doc, n)
        assert mr.head_oid == pushed
        pushes = [e for e in services.events(mr) if e.kind == "pushed"]
        assert [e.data["new"] for e in pushes] == [web, api, pushed]
        assert pushes[-1].data["commits"][0]["summary"] == "pushed"
        repo_path = git_of(doc).path
    fsck = subprocess.run(
        ["git", "fsck", "--strict", "--no-progress"], cwd=repo_path, capture_output=True, text=True
    )
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr


def test_receiver_never_raises(app: Flask, doc: str, monkeypatch) -> None:
    with ctx(app):
        branch(doc, "topic", BASE.replace("Friday", "Monday"))
        n = open_mr(doc, "topic")

        def broken(mr, git=None):  # noqa: ANN001, ARG001
            raise RuntimeError("boom")

        monkeypatch.setattr(services, "_recompute", broken)
        save(doc, "topic", BASE.replace("Friday", "Sunday"))  # the save itself succeeds
        monkeypatch.undo()
        assert get(doc, n).state == "open"


# --- pages ------------------------------------------------------------------------------


def test_pages_list_open_show_and_filter(app: Flask, client, accounts, doc) -> None:
    with ctx(app):
        branch(doc, "topic", BASE.replace("Friday", "Monday"))
        branch(doc, "other", BASE.replace("ten", "nine"), by="mo")
    accounts.login(client, "ed")
    page = client.get(f"/d/{doc}/merge-requests/new?source=topic").get_data(as_text=True)
    assert 'name="source"' in page and "Open merge request" in page
    bad = client.submit(
        f"/d/{doc}/merge-requests/new", {"source": "topic", "target": "topic", "title": "x"}
    )
    assert bad.status_code == 422 and "must differ" in bad.get_data(as_text=True)
    response = client.submit(
        f"/d/{doc}/merge-requests/new",
        {"source": "topic", "target": "main", "title": "Monday", "description": "**Why**"},
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/d/{doc}/merge-requests/1")
    with ctx(app):
        open_mr(doc, "other", by="mo")
        reviews.request_review(user("mo"), get(doc, 2), user("ed"))

    show = client.get(f"/d/{doc}/merge-requests/1").get_data(as_text=True)
    assert "<strong>Why</strong>" in show
    assert 'data-mergeability="mergeable"' in show
    assert 'name="style"' not in show  # editors cannot merge
    listing = client.get(f"/d/{doc}/merge-requests").get_data(as_text=True)
    assert 'data-count="open">2<' in listing
    mine = client.get(f"/d/{doc}/merge-requests?mine=1").get_data(as_text=True)
    assert "Monday" in mine and "Take other" not in mine
    review = client.get(f"/d/{doc}/merge-requests?review=1").get_data(as_text=True)
    assert "Take other" in review and ">Monday<" not in review
    by_mo = client.get(f"/d/{doc}/merge-requests?author=MO").get_data(as_text=True)
    assert "Take other" in by_mo and ">Monday<" not in by_mo and "Requests by" in by_mo

    commits = client.get(f"/d/{doc}/merge-requests/1/commits").get_data(as_text=True)
    assert "edit topic" in commits
    for view in ("inline", "split"):
        changes = client.get(f"/d/{doc}/merge-requests/1/changes?view={view}").get_data(
            as_text=True
        )
        assert re.search(r'data-path="document.md" data-side="new" data-line="3"', changes), view
        assert re.search(r'data-path="document.md" data-side="old" data-line="3"', changes), view
        assert re.search(r'id="line-[0-9a-f]{10}-new-3"', changes)
        assert '<ins class="word-ins">Monday</ins>' in changes
    rendered = client.get(f"/d/{doc}/merge-requests/1/changes?view=rendered").get_data(as_text=True)
    assert '<ins class="diff-ins">Monday</ins>' in rendered


def test_line_threads_render_after_their_line(app: Flask, client, accounts, doc) -> None:
    with ctx(app):
        branch(doc, "topic", BASE.replace("Friday", "Monday"))
        n = open_mr(doc, "topic")
        reviews.start_thread(
            user("rev"), get(doc, n), "Monday?", path="document.md", side="new",
            line_start=3, line_end=3,
        )  # fmt: skip
    accounts.login(client, "rev")
    for view in ("inline", "split"):
        page = client.get(f"/d/{doc}/merge-requests/{n}/changes?view={view}").get_data(as_text=True)
        line = page.index('data-side="new" data-line="3"')
        thread = page.index('class="review-thread')
        assert thread > line and "Monday?" in page[thread:]


def test_page_permissions(app: Flask, client, accounts, doc) -> None:
    with ctx(app):
        branch(doc, "topic", BASE.replace("Friday", "Monday"))
        n = open_mr(doc, "topic")
    accounts.login(client, "stranger")
    assert client.get(f"/d/{doc}/merge-requests").status_code == 404
    assert client.get(f"/d/{doc}/merge-requests/{n}").status_code == 404
    client.post("/logout")
    accounts.login(client, "vi")
    assert client.get(f"/d/{doc}/merge-requests/{n}").status_code == 200
    assert client.get(f"/d/{doc}/merge-requests/new").status_code == 403
    assert (
        client.submit(f"/d/{doc}/merge-requests/{n}/merge", {}, page=f"/d/{doc}").status_code == 403
    )
    assert client.get(f"/d/{doc}/merge-requests/{n}/conflicts").status_code == 403
    assert client.get(f"/d/{doc}/branch-protection").status_code == 403
    assert client.get(f"/d/{doc}/merge-requests/999").status_code == 404


def test_merge_and_revert_through_the_pages(app: Flask, client, accounts, doc) -> None:
    with ctx(app):
        branch(doc, "topic", BASE.replace("Friday", "Monday"))
        n = open_mr(doc, "topic")
        head = get(doc, n).head_oid
    accounts.login(client, "mo")
    page = client.get(f"/d/{doc}/merge-requests/{n}").get_data(as_text=True)
    assert 'value="merge" checked' in page
    response = client.submit(
        f"/d/{doc}/merge-requests/{n}/merge",
        {"style": "squash", "delete_source": "1", "head": head},
        page=f"/d/{doc}/merge-requests/{n}",
    )
    assert response.status_code == 302
    with ctx(app):
        mr = get(doc, n)
        assert mr.state == "merged" and mr.merge_style == "squash"
        assert "topic" not in {b.name for b in git_of(doc).branches()}
    page = client.get(f"/d/{doc}/merge-requests/{n}").get_data(as_text=True)
    assert "Revert this merge" in page
    client.submit(f"/d/{doc}/merge-requests/{n}/revert", {}, page=f"/d/{doc}/merge-requests/{n}")
    with ctx(app):
        assert "ship on Friday" in get_text(doc, "main")


def test_conflict_page_resolves_into_a_merge_commit(app: Flask, client, accounts, doc) -> None:
    with ctx(app):
        branch(doc, "sun", BASE.replace("Friday", "Sunday"))
        save(doc, "main", BASE.replace("Friday", "Saturday"), by="olga")
        n = open_mr(doc, "sun")
        target, head = git_of(doc).head("main"), get(doc, n).head_oid
    accounts.login(client, "mo")
    page = client.get(f"/d/{doc}/merge-requests/{n}/conflicts").get_data(as_text=True)
    names = sorted(set(re.findall(r'name="(pick-[0-9-]+)"', page)))
    assert names == ["pick-0-0"]
    assert "Saturday" in page and "Sunday" in page
    # an unpicked region is refused, nothing merges
    form = {"head": head, "target_head": target}
    client.submit(f"/d/{doc}/merge-requests/{n}/conflicts", {**form, "pick-0-0": "bogus"})
    with ctx(app):
        assert get(doc, n).state == "open"
    response = client.submit(
        f"/d/{doc}/merge-requests/{n}/conflicts", {**form, "pick-0-0": "theirs"}
    )
    assert response.status_code == 302
    with ctx(app):
        mr = get(doc, n)
        assert mr.state == "merged" and mr.merge_style == "merge"
        assert _parents(doc, mr.merge_commit) == [target, head]
        assert "ship on Sunday." in get_text(doc, "main")


def test_protection_settings_page(app: Flask, client, accounts, doc) -> None:
    accounts.login(client, "mo")
    url = f"/d/{doc}/branch-protection"
    page = client.get(url).get_data(as_text=True)
    assert "Add a rule" in page
    response = client.submit(
        url,
        {
            "form": "rule",
            "pattern": "main",
            "push_role": "maintainer",
            "live_role": "",
            "required_approvals": "2",
            "block_unresolved": "1",
        },
    )
    assert response.status_code == 302
    bad = client.submit(url, {"form": "rule", "pattern": "x", "push_role": "maintainer",
                              "required_approvals": "lots"})  # fmt: skip
    assert bad.status_code == 422 and "number" in bad.get_data(as_text=True)
    client.submit(url, {"form": "style", "style": "squash"})
    with ctx(app):
        rule = protection.protection_for(document(doc), "main")
        assert (rule.required_approvals, rule.block_unresolved, rule.block_behind) == (
            2,
            True,
            False,
        )
        assert services.get_settings(document(doc)).default_style == "squash"
        rule_id = protection.list_rules(document(doc))[0].id
    client.submit(url, {"form": "delete", "rule_id": str(rule_id)})
    with ctx(app):
        assert protection.list_rules(document(doc)) == []
    # the settings page links here
    assert url in client.get(f"/d/{doc}/settings").get_data(as_text=True)


def test_events_table_records_actor_and_data(app: Flask, doc: str) -> None:
    with ctx(app):
        branch(doc, "topic", BASE.replace("Friday", "Monday"))
        n = open_mr(doc, "topic")
        mr = get(doc, n)
        services.record_event(mr, "custom", user("rev"), note="x")
        db.session().commit()
        rows = db.session().query(MergeRequestEvent).filter_by(merge_request_id=mr.id).all()
        assert [(r.kind, r.actor.username if r.actor else None) for r in rows][-1] == (
            "custom", "rev",
        )  # fmt: skip
        assert rows[-1].data == {"note": "x"}


def test_live_role_of_a_rule_reaches_the_websocket_check(app: Flask, doc: str, accounts) -> None:
    """The websocket's own authorisation asks the branch rule who may edit live."""
    from flask import g

    from app.live import views as live_views

    def can_edit(username: str, branch_name: str) -> bool:
        upgrade = {"Upgrade": "websocket", "Connection": "Upgrade"}
        with app.test_request_context(f"/live/{doc}/{branch_name}/document.md", headers=upgrade):
            g.actor, g.via_token = user(username), True
            live_views.authorize()
            return g.live_target.participant.can_edit

    with ctx(app):
        documents.create_branch(user("ed"), document(doc), "release", "main")
        assert can_edit("ed", "release") and can_edit("ed", "main")
        protection.save_rule(
            user("mo"), document(doc), pattern="rel*", push_role="editor", live_role="maintainer"
        )
        assert not can_edit("ed", "release")
        assert can_edit("mo", "release")
        assert not can_edit("rev", "main")  # EDIT first, whatever the rule

    # The live page agrees with the websocket: read-only for ed on release, not on main.
    from tests.conftest import Browserish

    app.test_client_class = Browserish
    for branch_name, expected in (("release", "true"), ("main", "false")):
        client = app.test_client()
        assert accounts.login(client, "ed").status_code == 302
        page = client.get(f"/d/{doc}/live/{branch_name}/document.md").get_data(as_text=True)
        assert f'data-read-only="{expected}"' in page, branch_name


def test_merged_notifies_author_and_reviewers_not_the_merger(app: Flask, doc: str) -> None:
    from app.notifications.models import Notification

    with ctx(app):
        branch(doc, "topic", BASE.replace("Friday", "Monday"))
        n = open_mr(doc, "topic")
        reviews.request_review(user("ed"), get(doc, n), user("rev2"))
        reviews.submit_review(user("rev"), get(doc, n), "approved")
        services.merge(user("mo"), get(doc, n))
        rows = db.session().query(Notification).filter_by(kind="merged").all()
        assert {r.user_id for r in rows} == {user(x).id for x in ("ed", "rev", "rev2")}
        assert all(r.subject.endswith(f"merged !{n}: Take topic") for r in rows)
        assert all(r.url == f"/d/{doc}/merge-requests/{n}" for r in rows)


def test_live_commits_refresh_the_head(app: Flask, doc: str) -> None:
    """Live commits run the hub's after_commit hook (not ref_updated); it refreshes too."""
    from types import SimpleNamespace

    from app.live.room import RoomKey
    from app.mergerequests import views

    with ctx(app):
        branch(doc, "topic", BASE.replace("Friday", "Monday"))
        n = open_mr(doc, "topic")
        d = document(doc)
        git = git_of(doc)
        # What the batcher does: a commit on the branch, with no signal sent.
        live = git.write(
            "topic",
            [gitstore.Put("document.md", BASE.replace("Friday", "Sunday"))],
            parent=git.head("topic"),
            author=gitstore.Author("Ed", "ed@example.com"),
            message="Live edit",
        )
        assert get(doc, n).head_oid != live
        room = SimpleNamespace(key=RoomKey(d.id, "topic", "document.md"))
        hub = app.extensions["quire.live"]
        hook = next(
            h
            for h in hub.hooks["after_commit"]
            if getattr(h, "func", None) is views._after_live_commit
        )
        hook(hub, room, live).join(timeout=30)
        db.session().expire_all()
        mr = get(doc, n)
        assert mr.head_oid == live
        assert [e.kind for e in services.events(mr)][-1] == "pushed"


def test_conflicts_only_git_can_settle_are_named(app: Flask, client, accounts, doc) -> None:
    with ctx(app):
        save(doc, "main", "Side notes.\n", by="olga", path="notes.md")
        documents.create_branch(user("ed"), document(doc), "tidy", "main")
        git = git_of(doc)
        documents.delete_file(
            user("ed"), document(doc), branch="tidy", path="notes.md", parent=git.head("tidy")
        )
        save(doc, "main", "Side notes, longer.\n", by="olga", path="notes.md")
        n = open_mr(doc, "tidy")
        assert get(doc, n).conflicts == ["notes.md"]
    accounts.login(client, "mo")
    page = client.get(f"/d/{doc}/merge-requests/{n}/conflicts").get_data(as_text=True)
    assert "cannot settle" in page and "<code>notes.md</code>" in page
    assert 'name="pick-' not in page


def test_out_of_range_numbers_are_404_not_500(app: Flask, client, accounts, doc) -> None:
    huge = 2**40
    accounts.login(client, "mo")
    assert client.get(f"/d/{doc}/merge-requests/{huge}").status_code == 404
    token = accounts.token("mo")
    response = client.get(
        f"/api/v1/documents/{doc}/merge-requests/{huge}",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 404
    url = f"/d/{doc}/branch-protection"
    bad = client.submit(url, {"form": "delete", "rule_id": str(huge)})
    assert bad.status_code == 422 and "no longer exists" in bad.get_data(as_text=True)


#: Expected status per role for each merge request page action (anonymous: not signed in).
#: 302 means allowed (a form that redirects back); the private document hides itself: 404.
MATRIX = {
    #             list  show  new  merge conflicts protect close
    "olga": (200, 200, 200, 302, 200, 200, 302),
    "mo": (200, 200, 200, 302, 200, 200, 302),
    "ed": (200, 200, 200, 403, 403, 403, 302),
    "rev": (200, 200, 403, 403, 403, 403, 403),
    "vi": (200, 200, 403, 403, 403, 403, 403),
    "stranger": (404, 404, 404, 404, 404, 404, 404),
    None: (404, 404, 404, 404, 404, 404, 404),
}


@pytest.mark.parametrize("who", list(MATRIX), ids=lambda w: w or "anonymous")
def test_permission_matrix_of_the_pages(app: Flask, client, accounts, doc, who) -> None:
    with ctx(app):
        branch(doc, "topic", BASE.replace("Friday", "Monday"), by="mo")
        n = open_mr(doc, "topic", by="mo")  # nobody below but its author may close it
    base = f"/d/{doc}/merge-requests"
    if who is not None:
        accounts.login(client, who)
    token = client.csrf_token("/login")

    def post(url: str, data: dict[str, str]) -> int:
        return client.post(url, data={"csrf_token": token, **data}).status_code

    got = (
        client.get(base).status_code,
        client.get(f"{base}/{n}").status_code,
        client.get(f"{base}/new").status_code,
        post(f"{base}/{n}/merge", {"style": "no-such-style"}),  # allowed, then refused: 302
        client.get(f"{base}/{n}/conflicts").status_code,
        client.get(f"/d/{doc}/branch-protection").status_code,
        post(f"{base}/{n}/close", {}),
    )
    assert got == MATRIX[who]
    with ctx(app):
        assert get(doc, n).state == ("closed" if MATRIX[who][6] == 302 else "open")
