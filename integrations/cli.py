"""What the ``create-webhook`` and ``deliver-webhooks`` commands do (no click, no Flask)."""
from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_models.errors import CrmError
from crm_models.org import User
from crm_models.permissions import system_actor

from .delivery import DeliveryWorker
from .webhooks import create_webhook

DEFAULT_BASE_URL = "http://127.0.0.1:5000"


class CommandError(Exception):
    """A message for the operator (the CLI shows it and exits non-zero)."""


def create_webhook_url(session: Session, email: str, *, name: str, scopes: str,
                       base_url: str | None) -> str:
    """Create a webhook for the user with ``email``, commit, and return its URL."""
    user = session.scalars(select(User).where(
        func.lower(User.email) == email.strip().lower())).first()
    if user is None:
        raise CommandError(f"No user with e-mail {email}")
    try:
        _hook, secret = create_webhook(session, system_actor("cli"), user_id=user.id, name=name,
                                       scopes=scopes)
    except CrmError as exc:
        raise CommandError(f"{exc.message}: {exc.fields}") from None
    session.commit()
    return f"{(base_url or DEFAULT_BASE_URL).rstrip('/')}/rest/{user.id}/{secret}/"


def run_deliveries(worker: DeliveryWorker, *, loop: bool, every: float,
                   echo: Callable[[str], None], passes: int | None = None) -> None:
    """One delivery pass, or (``loop``) one every ``every`` seconds until interrupted."""
    done = 0
    while True:
        queued, sent = worker.run_once()
        echo(f"queued {queued}, attempted {sent}")
        done += 1
        if not loop or (passes is not None and done >= passes):
            return
        time.sleep(every)
