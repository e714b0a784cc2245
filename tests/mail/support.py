from __future__ import annotations

from typing import Any

from tests.automation.support import api_as


def add_mailbox(app: Any, db: Any, *, smtp_port: int, imap_port: int | None = None,
                email: str = "manager1@demo.local", login: str = "manager1",
                password: str = "smtp-secret", as_user: str = "manager1@demo.local",
                **extra: Any) -> tuple[Any, dict[str, Any]]:
    api = api_as(app, db, as_user)
    body = {"name": "Работа", "email": email, "display_name": "Иван Менеджеров",
            "smtp_host": "127.0.0.1", "smtp_port": smtp_port, "smtp_security": "none",
            "login": login, "password": password, **extra}
    if imap_port:
        body.update(imap_host="127.0.0.1", imap_port=imap_port, imap_security="none")
    r = api.post("/api/v1/mailboxes", json=body)
    assert r.status_code == 201, r.get_json()
    return api, r.get_json()
