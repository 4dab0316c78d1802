"""Fixtures shared by the app tests."""

from __future__ import annotations

import pytest
from flask import Flask

from app.accounts.services import get_user_by_username
from app.documents import services


@pytest.fixture
def team(app: Flask, accounts):
    """root (site admin), ada (owner of 'plans'), and one member per role."""
    accounts.create("root")
    accounts.create("ada")
    for name in ("maria", "ed", "rita", "vic", "stranger"):
        accounts.create(name)
    with app.app_context():
        ada = get_user_by_username("ada")
        document = services.create_document(ada, "Plans")
        for name, role in (("maria", "maintainer"), ("ed", "editor"), ("rita", "reviewer"),
                           ("vic", "viewer")):  # fmt: skip
            services.set_member(ada, document, name, role)
    return "plans"
