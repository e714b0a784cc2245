"""Fixtures for the workspace tests: the app's engine, and a page client signed in as anyone."""
from __future__ import annotations

from typing import Any

import pytest

from engine.runtime import Engine

from ..automation.conftest import demo  # noqa: F401  (the demo org with the shipped processes)


@pytest.fixture()
def engine(app: Any) -> Engine:
    return app.extensions["engine"]


class Pages:
    """One test client per user, signed in through the login form."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.clients: dict[str, Any] = {}

    def as_(self, email: str) -> Any:
        if email not in self.clients:
            from ..conftest import AuthActions

            client = self.app.test_client()
            assert AuthActions(client).login(email).status_code == 302
            self.clients[email] = client
        return self.clients[email]

    def csrf(self, email: str, path: str = "/inbox") -> str:
        from ..conftest import AuthActions

        return AuthActions(self.as_(email)).csrf_token(path)

    def post(self, email: str, path: str, data: dict[str, Any] | None = None,
             **kw: Any) -> Any:
        body = {"csrf_token": self.csrf(email), **(data or {})}
        return self.as_(email).post(path, data=body, **kw)


@pytest.fixture()
def pages(app: Any) -> Pages:
    return Pages(app)
