"""Search stays current when the real git CLI pushes to a real server (gunicorn + gevent).

The server indexes in its background worker; the test polls the search API, so it
passes as soon as the new words are findable and fails if they are not within 5 s.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from pathlib import Path

DEADLINE = 5.0


def search(server, token: str | None, q: str) -> dict:
    url = f"{server.base_url}/api/v1/search?q={urllib.parse.quote(q)}"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
        return json.loads(r.read())


def titles(server, token: str | None, q: str) -> list[str]:
    return [hit["title"] for hit in search(server, token, q)["results"]]


def eventually(probe, deadline: float = DEADLINE):
    end = time.monotonic() + deadline
    while True:
        value = probe()
        if value or time.monotonic() > end:
            return value
        time.sleep(0.1)


def write(git, work: Path, path: str, text: str, message: str) -> None:
    (work / path).write_text(text)
    git("add", path, cwd=work)
    git("commit", "-q", "-m", message, cwd=work)


def test_pushed_words_are_found_and_private_ones_stay_private(server, git, tmp_path):
    token = server.user("sam")
    other = server.user("tess")
    slug = server.document("sam", "Pushed field notes", visibility="private")
    work = tmp_path / "work"
    git("clone", "-q", server.url(slug, "sam"), str(work))
    write(git, work, "document.md", "# Sightings\n\na marmoset in the canopy\n", "Marmoset")
    git("push", "-q", "origin", "main", cwd=work)
    assert eventually(lambda: titles(server, token, "marmoset")) == ["Pushed field notes"]
    hit = search(server, token, "marmoset")["results"][0]
    assert (hit["path"], hit["heading"]) == ("document.md", "Sightings")
    assert "<mark>marmoset</mark>" in hit["snippet"]
    # Another account and an anonymous caller see nothing: no hit, no count.
    nothing = search(server, other, "marmoset")
    assert (nothing["total"], nothing["reachable"], nothing["results"]) == (0, 0, [])
    assert nothing["next_cursor"] is None and not nothing.get("total_is_lower_bound")
    assert search(server, None, "marmoset")["total"] == 0


def test_a_fast_forward_push_of_a_merged_branch_is_found(server, git, tmp_path):
    """A merge done with git (branch, then fast-forward main to it) reaches the index."""
    token = server.user("sam")
    slug = server.document("sam", "Merged by git", visibility="private")
    work = tmp_path / "work"
    git("clone", "-q", server.url(slug, "sam"), str(work))
    git("checkout", "-q", "-b", "draft", cwd=work)
    write(git, work, "notes.md", "# Draft\n\nthe quoll sleeps by day\n", "Quolls")
    git("push", "-q", "origin", "draft", cwd=work)
    # Only the default branch is searched.
    probe = search(server, token, "quoll")
    assert probe["total"] == 0
    git("push", "-q", "origin", "draft:main", cwd=work)
    assert eventually(lambda: titles(server, token, "quoll")) == ["Merged by git"]
    hit = search(server, token, "quoll")["results"][0]
    assert (hit["path"], hit["heading"]) == ("notes.md", "Draft")
