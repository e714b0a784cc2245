"""Incoming webhooks: creating and revoking them, authenticating a call, and the per-webhook
rate limit (a leaky bucket kept in the database so every app process shares it)."""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import string
from collections.abc import Iterable

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from crm_models.db import utcnow
from crm_models.errors import NotFound, PermissionDenied, ValidationFailed
from crm_models.org import User
from crm_models.permissions import Actor
from crm_models.services.records import record_event
from strictnum import id_or_none

from .models import IncomingWebhook

SCOPES = ("crm", "bizproc", "user", "department")
SECRET_ALPHABET = string.ascii_lowercase + string.digits
SECRET_LENGTH = 24


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _clean_scopes(scopes: Iterable[str] | str | None) -> list[str]:
    if scopes is None:
        return list(SCOPES)
    if isinstance(scopes, str):
        scopes = [s for s in scopes.replace(" ", ",").split(",") if s]
    out: list[str] = []
    for s in scopes:
        if not isinstance(s, str) or s.strip().lower() not in SCOPES:
            raise ValidationFailed({"scopes": "each scope must be one of: " + ", ".join(SCOPES)})
        if s.strip().lower() not in out:
            out.append(s.strip().lower())
    if not out:
        raise ValidationFailed({"scopes": "choose at least one scope"})
    return out


def create_webhook(session: Session, actor: Actor, *, user_id: int, name: str,
                   scopes: Iterable[str] | str | None = None) -> tuple[IncomingWebhook, str]:
    """A new webhook acting as ``user_id``; returns it with its secret (shown only once).

    Users create their own; administrators may create one for anybody.
    """
    if actor.user_id != user_id and not actor.is_admin:
        raise PermissionDenied("You may create webhooks for yourself only")
    errors: dict[str, str] = {}
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > 100:
        errors["name"] = "is required (at most 100 characters)"
    try:
        clean_scopes = _clean_scopes(scopes)
    except ValidationFailed as exc:
        errors.update(exc.fields)
    user = session.get(User, user_id) if isinstance(user_id, int) else None
    if user is None or not user.active:
        errors["user_id"] = f"no active user with id {str(user_id)[:20]}"
    if errors:
        raise ValidationFailed(errors)
    secret = "".join(secrets.choice(SECRET_ALPHABET) for _ in range(SECRET_LENGTH))
    hook = IncomingWebhook(user_id=user_id, name=name.strip(), scopes=clean_scopes,
                           secret_hash=secret_hash(secret))
    session.add(hook)
    session.flush()
    record_event(session, actor, entity="webhook", entity_id=hook.id, action="created",
                 event_type=None, changes={"name": [None, hook.name],
                                           "scopes": [None, clean_scopes]})
    return hook, secret


def revoke_webhook(session: Session, actor: Actor, webhook_id: int) -> IncomingWebhook:
    """Revoke a webhook: its URL stops working at once. Owner or administrator only."""
    hook = session.get(IncomingWebhook, webhook_id) if isinstance(webhook_id, int) else None
    if hook is None or (hook.user_id != actor.user_id and not actor.is_admin):
        raise NotFound(f"No webhook with id {str(webhook_id)[:20]}")
    if hook.revoked_at is None:
        hook.revoked_at = utcnow()  # also when its user's credentials were revoked: now it shows
        session.flush()
        record_event(session, actor, entity="webhook", entity_id=hook.id, action="revoked",
                     event_type=None, changes={"revoked": [False, True]})
    return hook


def list_webhooks(session: Session, actor: Actor, user_id: int) -> list[IncomingWebhook]:
    if actor.user_id != user_id and not actor.is_admin:
        raise PermissionDenied("You may see your own webhooks only")
    return list(session.scalars(select(IncomingWebhook).where(
        IncomingWebhook.user_id == user_id).order_by(IncomingWebhook.id.desc())))


def authenticate(session: Session, user_id: str, secret: str) -> IncomingWebhook | None:
    """The live webhook of the active user ``user_id`` with this secret, or None."""
    owner_id = id_or_none(user_id)
    if owner_id is None or not secret or len(secret) > 200:
        return None
    hook = session.scalars(select(IncomingWebhook).where(
        IncomingWebhook.secret_hash == secret_hash(secret))).first()
    if hook is None or hook.user_id != owner_id or not hook.active:
        return None
    if not hook.user.active:
        return None
    return hook


def admit(session: Session, webhook_id: int, *, now: dt.datetime, rate: float,
          burst: float) -> bool:
    """Take one request from the webhook's leaky bucket; False when it is full.

    The bucket drains ``rate`` requests per second and holds ``burst``. The first statement
    writes the row, so concurrent callers (threads or processes) queue on its lock instead of
    reading a stale level; the caller commits right away to release it.
    """
    session.execute(update(IncomingWebhook).where(IncomingWebhook.id == webhook_id)
                    .values(bucket_version=IncomingWebhook.bucket_version + 1)
                    .execution_options(synchronize_session=False))
    level, at = session.execute(select(IncomingWebhook.bucket_level, IncomingWebhook.bucket_at)
                                .where(IncomingWebhook.id == webhook_id)).one()
    if at is not None:
        level = max(0.0, level - max(0.0, (now - at).total_seconds()) * rate)
    allowed = level + 1 <= burst
    values: dict[str, object] = {"bucket_level": level + 1 if allowed else level,
                                 "bucket_at": now}
    if allowed:
        values["last_used_at"] = now
    session.execute(update(IncomingWebhook).where(IncomingWebhook.id == webhook_id)
                    .values(**values).execution_options(synchronize_session=False))
    return allowed
