"""Fixtures: the demo org with the shipped processes, real SMTP and IMAP servers on loopback,
and the app's mail guard allowing 127.0.0.1 (only) for the test."""
from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from integrations.mail_transport import MailGuard
from tests.automation.conftest import demo, dispatcher, engine  # noqa: F401  (fixtures)

from .servers import ImapServer, SmtpServer, free_port

SALES = "sales@vector-supplier.test"
MANAGER = "manager1@demo.local"


@pytest.fixture()
def mail(app: Any) -> Iterator[Any]:
    """The app's mail worker, its guard allowing the loopback servers and short timeouts."""
    worker = app.extensions["mail_worker"]
    old = worker.guard, app.extensions["mail_guard"]
    guard = MailGuard.from_config(["127.0.0.1"], timeout=5)
    worker.guard = app.extensions["mail_guard"] = guard
    yield worker
    worker.guard, app.extensions["mail_guard"] = old


@pytest.fixture()
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer(free_port(), "manager1", "smtp-secret").start()
    yield server
    server.stop()


@pytest.fixture()
def imap() -> Iterator[ImapServer]:
    # Not pytest's tmp_path: its parents are private to the test runner, and Dovecot runs
    # as another (unprivileged) user.
    root = Path(tempfile.mkdtemp(prefix="marshrut-dovecot-"))
    server = ImapServer(root, free_port(), {"manager1": "smtp-secret", "sales": "sales-secret"})
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
