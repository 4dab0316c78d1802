"""Searching one document's history for a phrase (which commits added or removed it).

The Git work is :func:`gitstore.pickaxe.phrase_changes`; this module only bounds the input
and picks the branch. The caller has already checked read access.
"""

from __future__ import annotations

import gitstore
from app.documents import services
from app.documents.models import Document
from gitstore.pickaxe import PickaxePage, phrase_changes

MAX_PHRASE = 200
PAGE = 20
#: Commits walked per request: a page never costs more than this, however long the history.
MAX_COMMITS = 1000


class BadPhrase(ValueError):
    """The phrase is empty or too long, or the page cursor is not one (a 400 either way)."""


def search_history(
    document: Document, phrase: str, *, ref: str | None = None, after: str | None = None
) -> PickaxePage:
    """Commits on ``ref`` (default branch) that changed how often ``phrase`` occurs.

    Raises :class:`BadPhrase`, or gitstore's ``RefNotFound`` for an unknown ref or cursor.
    """
    phrase = phrase.strip()
    if not phrase or len(phrase) > MAX_PHRASE:
        raise BadPhrase(f"Search for 1 to {MAX_PHRASE} characters.")
    repo: gitstore.Document = services.repo(document)
    try:
        return phrase_changes(
            repo,
            ref or document.default_branch,
            phrase,
            after=after,
            limit=PAGE,
            max_commits=MAX_COMMITS,
        )
    except gitstore.InvalidCursor:
        raise BadPhrase("That page link is not valid any more: search again.") from None
