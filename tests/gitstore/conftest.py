"""Fixtures: real repositories in a temporary directory, no mocks."""

from __future__ import annotations

import pytest

from gitstore import Author, Document, Store


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(tmp_path / "repos")


@pytest.fixture
def author() -> Author:
    return Author("Ada Lovelace", "ada@example.org")


@pytest.fixture
def other() -> Author:
    return Author("Grace Hopper", "grace@example.org")


@pytest.fixture
def doc(store: Store, author: Author) -> Document:
    return store.create("doc00001", author=author, content="# Title\n\nHello world.\n")
