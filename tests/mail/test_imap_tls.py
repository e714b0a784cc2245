"""IMAP over TLS to a real Dovecot (a certificate for 127.0.0.1 from a CA made here): implicit
TLS on the imaps port and STARTTLS on the plain one import mail when the CA is trusted
(``MAIL_CA_FILE``); an untrusted certificate or a TLS mode the port does not speak is named
clearly, and nothing is imported or lost."""
from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from email.message import EmailMessage as Mime
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from integrations.mail_models import EmailMessage, Mailbox
from integrations.mail_transport import MailGuard

from .servers import ImapServer, free_port, make_certs
from .support import add_mailbox


@pytest.fixture()
def tls_imap() -> Iterator[tuple[ImapServer, Path]]:
    root = Path(tempfile.mkdtemp(prefix="marshrut-dovecot-tls-"))
    certs = Path(tempfile.mkdtemp(prefix="marshrut-ca-"))
    ca, cert, key = make_certs(certs)
    server = ImapServer(root, free_port(), {"manager1": "smtp-secret"},
                        tls=(cert, key), tls_port=free_port())
    try:
        yield server.start(), ca
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(certs, ignore_errors=True)


def _mime(subject: str) -> bytes:
    m = Mime()
    m["From"] = "petrov@vector.example"
    m["To"] = "manager1@demo.local"
    m["Subject"] = subject
    m["Message-ID"] = make_msgid(domain="vector.example")
    m.set_content("Текст")
    return m.as_bytes()


def _trust(app: Any, mail: Any, ca: Path | None) -> None:
    mail.guard = app.extensions["mail_guard"] = MailGuard.from_config(
        ["127.0.0.1"], ca_file=str(ca) if ca else None, timeout=5)


def _imap(api: Any, mb: dict[str, Any], **changes: Any) -> dict[str, Any]:
    r = api.call("PATCH", f"/api/v1/mailboxes/{mb['id']}", json=changes)
    assert r.status_code == 200, r.get_json()
    return api.post(f"/api/v1/mailboxes/{mb['id']}/test").get_json()["imap"]


@pytest.mark.parametrize("mode", ["ssl", "starttls"])
def test_imap_over_tls_with_a_trusted_ca_imports(app, db, demo, mail, smtp, tls_imap, mode):
    server, ca = tls_imap
    _trust(app, mail, ca)
    api, mb = add_mailbox(app, db, smtp_port=smtp.port, imap_port=server.port)
    port = server.tls_port if mode == "ssl" else server.port
    result = _imap(api, mb, imap_port=port, imap_security=mode)
    assert result["ok"] is True, result
    server.append("manager1", _mime(f"Письмо по {mode}"))
    assert mail.poll(mb["id"]) == 1
    db.rollback()
    [msg] = db.scalars(select(EmailMessage).where(EmailMessage.direction == "in")).all()
    assert msg.subject == f"Письмо по {mode}"
    assert db.get(Mailbox, mb["id"]).last_error == ""


def test_imap_tls_problems_are_named_and_nothing_is_lost(app, db, demo, mail, smtp, tls_imap):
    server, ca = tls_imap
    api, mb = add_mailbox(app, db, smtp_port=smtp.port, imap_port=server.port)
    server.append("manager1", _mime("Ждёт доверия"))
    # The CA is not trusted: implicit TLS and STARTTLS both say so.
    for port, mode in ((server.tls_port, "ssl"), (server.port, "starttls")):
        result = _imap(api, mb, imap_port=port, imap_security=mode)
        assert result["ok"] is False and result["kind"] == "tls", result
        assert "certificate is not trusted" in result["message"], result
    mail.run_once()  # the job records the failure and goes on
    db.rollback()
    assert "certificate is not trusted" in db.get(Mailbox, mb["id"]).last_error
    _trust(app, mail, ca)
    # A TLS mode the port does not speak: plain text to the imaps port, TLS to the plain one.
    result = _imap(api, mb, imap_port=server.tls_port, imap_security="none")
    assert result["ok"] is False and result["kind"] in ("tls", "connect"), result
    assert "security mode" in result["message"], result
    result = _imap(api, mb, imap_port=server.port, imap_security="ssl")
    assert result["ok"] is False and result["kind"] == "tls", result
    assert "security mode" in result["message"] and "Traceback" not in result["message"]
    mail.run_once()
    db.rollback()
    assert "security mode" in db.get(Mailbox, mb["id"]).last_error
    assert db.scalars(select(EmailMessage)).all() == []
    # Fixed: the message that waited is imported now.
    assert _imap(api, mb, imap_port=server.tls_port, imap_security="ssl")["ok"] is True
    assert mail.poll(mb["id"]) == 1
