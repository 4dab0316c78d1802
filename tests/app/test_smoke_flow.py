"""The main web flow end to end through the WSGI app: sign up, create, edit, history."""

from __future__ import annotations

import re
import subprocess

from flask import Flask

from app.documents.services import get_document


def test_signup_create_edit_history(app: Flask, client) -> None:
    response = client.submit(
        "/signup", {"username": "ada", "email": "ada@example.com", "password": "long enough pw"}
    )
    assert response.status_code == 302
    response = client.submit("/new", {"title": "Field notes", "visibility": "private"}, page="/new")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/d/field-notes")
    page = client.get("/d/field-notes").get_data(as_text=True)
    assert "<h1>Field notes</h1>" in page

    edit_page = client.get("/d/field-notes/edit/main/document.md").get_data(as_text=True)
    parent = re.search(r'name="parent" value="([0-9a-f]{40})"', edit_page).group(1)
    response = client.submit(
        "/d/field-notes/edit/main/document.md",
        {
            "content": "# Field notes\n\nThe first real line.\n",
            "message": "Add a line",
            "parent": parent,
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    history = client.get("/d/field-notes/history").get_data(as_text=True)
    assert "Add a line" in history and "Create document" in history

    with app.app_context():
        path = app.extensions["quire.store"].path_for(get_document("field-notes").repo_id)
    log = subprocess.run(
        ["git", "--git-dir", str(path), "log", "--format=%an <%ae> %s"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert log.splitlines() == [
        "ada <ada@example.com> Add a line",
        "ada <ada@example.com> Create document",
    ]
