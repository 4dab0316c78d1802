"""Access to the repositories volume through :mod:`gitstore`."""

from __future__ import annotations

from flask import Flask, current_app

from gitstore import Store


def init_app(app: Flask) -> None:
    app.extensions["quire.store"] = Store(app.config["REPOS_ROOT"])


def get_store() -> Store:
    return current_app.extensions["quire.store"]
