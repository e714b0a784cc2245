"""Users, departments, roles and grants, passwords, API tokens, login throttling."""
from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
import zoneinfo
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete as sa_delete
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ..db import MAX_ROW_ID, utcnow
from ..errors import Conflict, LoginLocked, NotFound, PermissionDenied, ValidationFailed
from ..fields import EMAIL_RE
from ..org import (
    ACTIONS,
    ENTITIES,
    FLAGS,
    ApiToken,
    Department,
    LoginAttempt,
    PermLevel,
    Role,
    RoleGrant,
    RolePermission,
    User,
)
from ..permissions import Actor, department_tree, descendants
from .records import record_event

_hasher = PasswordHasher()
LOCALES = ("ru", "en")
THROTTLE_WINDOW = dt.timedelta(minutes=15)
THROTTLE_MAX_FAILURES = 5  # per client address and e-mail
ACCOUNT_MAX_FAILURES = 20  # per e-mail, from every address together
#: Failed logins stay listed for administrators this long (the throttle looks at the window).
FAILED_LOGIN_RETENTION = dt.timedelta(days=7)
#: A bigger number (or a string) compared with an id column fails on PostgreSQL.
MAX_ID = MAX_ROW_ID
#: Hashes of a random password made with each parameter set in use (see ``_dummy_hash``).
_dummy_hashes: dict[tuple[Any, ...], str] = {}


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _dummy_hash() -> str:
    """A hash nobody knows the password of, made with the current parameters, so that
    verifying against it costs what verifying a real user's password costs."""
    h = _hasher
    params = (h.time_cost, h.memory_cost, h.parallelism, h.hash_len, h.salt_len, h.type)
    if params not in _dummy_hashes:
        _dummy_hashes[params] = h.hash(secrets.token_urlsafe(16))
    return _dummy_hashes[params]


def check_password(user: User | None, password: str) -> bool:
    """Whether ``password`` is the user's. Argon2 runs whether or not there is a user or a
    stored hash (against a dummy hash then), so the time taken does not tell which."""
    stored = user.password_hash if user is not None and user.password_hash else None
    try:
        ok = _hasher.verify(stored or _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return False
    return ok and stored is not None


# --- users -----------------------------------------------------------------------------------

def _clean_user(session: Session, data: dict[str, Any], *, user: User | None) -> dict[str, Any]:
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    allowed = {"email", "full_name", "password", "active", "locale", "timezone", "department_id",
               "out_of_office_from", "out_of_office_until", "deputy_id"}
    for key in data:
        if key not in allowed:
            errors[str(key)[:60]] = "is not a field of user"
    if "email" in data or user is None:
        email = data.get("email")
        if not isinstance(email, str) or not EMAIL_RE.match(email.strip()) or len(email) > 254:
            errors["email"] = "must be an e-mail address"
        else:
            email = email.strip().lower()
            clash = session.scalars(select(User).where(func.lower(User.email) == email)).first()
            if clash is not None and clash is not user:
                errors["email"] = "is already used by another user"
            out["email"] = email
    if "full_name" in data or user is None:
        name = data.get("full_name")
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            errors["full_name"] = "is required (at most 200 characters)"
        else:
            out["full_name"] = name.strip()
    if "password" in data:
        pw = data["password"]
        if not isinstance(pw, str) or not 4 <= len(pw) <= 200:
            errors["password"] = "must be 4 to 200 characters"
        else:
            out["password_hash"] = hash_password(pw)
    if "active" in data:
        if not isinstance(data["active"], bool):
            errors["active"] = "must be true or false"
        else:
            out["active"] = data["active"]
    if "locale" in data:
        if data["locale"] not in LOCALES:
            errors["locale"] = "must be ru or en"
        else:
            out["locale"] = data["locale"]
    if "timezone" in data:
        tz = data["timezone"]
        try:
            if not isinstance(tz, str) or not tz or len(tz) > 64:
                raise ValueError
            zoneinfo.ZoneInfo(tz)
            out["timezone"] = tz
        except (ValueError, OSError, zoneinfo.ZoneInfoNotFoundError):  # OSError: odd file names
            errors["timezone"] = "must be a time zone such as Europe/Moscow"
    for key, model in (("department_id", Department), ("deputy_id", User)):
        if key in data:
            v = data[key]
            if v in (None, ""):
                out[key] = None
            elif (isinstance(v, bool) or not isinstance(v, int) or not 0 < v <= MAX_ID
                  or session.get(model, v) is None):
                errors[key] = f"no {model.__name__.lower()} with id {str(v)[:20]}"
            elif key == "deputy_id" and not session.get(User, v).active:
                errors[key] = "a deactivated user cannot be a deputy"
            elif key == "deputy_id" and user is not None and v == user.id:
                errors[key] = "a user cannot be their own deputy"
            else:
                out[key] = v
    for key in ("out_of_office_from", "out_of_office_until"):
        if key in data:
            v = data[key]
            if v in (None, ""):
                out[key] = None
                continue
            try:
                parsed = v if isinstance(v, dt.datetime) else dt.datetime.fromisoformat(
                    str(v)[:40])
                if parsed.tzinfo is None:  # local time of the user's (new) time zone
                    parsed = parsed.replace(tzinfo=zoneinfo.ZoneInfo(
                        out.get("timezone") or (user.timezone if user else None)
                        or "Europe/Moscow"))
                out[key] = parsed.astimezone(dt.UTC)
            except (ValueError, OverflowError):  # Overflow: year 1 or 9999 shifted to UTC
                errors[key] = "must be an ISO 8601 date-time"
    start = out.get("out_of_office_from", user.out_of_office_from if user else None)
    end = out.get("out_of_office_until", user.out_of_office_until if user else None)
    if start is not None and end is not None and end <= start and not errors:
        errors["out_of_office_until"] = "must be after the start of the absence"
    if errors:
        raise ValidationFailed(errors)
    return out


def create_user(session: Session, actor: Actor, **data: Any) -> User:
    actor.require_flag("manage_settings")
    values = _clean_user(session, data, user=None)
    user = User(**values)
    session.add(user)
    session.flush()
    record_event(session, actor, entity="user", entity_id=user.id, action="created",
                 event_type="user.created", changes={"email": [None, user.email]},
                 payload={"email": user.email})
    return user


def update_user(session: Session, actor: Actor, user_id: int, *,
                current_password: str | None = None, revoke_credentials: bool = True,
                **data: Any) -> User:
    """Admins change anyone; a user may change their own name, password, locale, time zone,
    out-of-office period and deputy.

    A new password for one's own account needs ``current_password`` (a field error
    otherwise, and nothing changes); it ends the user's sessions (the caller signs the current
    one in again) and, with ``revoke_credentials``, revokes their API tokens and incoming
    webhooks. Setting someone else's password (an administrator's reset) ends their sessions
    and revokes all of them; so does nothing less. Deactivating a user ends their sessions."""
    usable = isinstance(user_id, int) and not isinstance(user_id, bool) and 0 < user_id <= MAX_ID
    user = session.get(User, user_id) if usable else None
    if user is None:
        raise NotFound(f"No user with id {str(user_id)[:20]}")
    if not actor.is_admin:
        own = {"full_name", "password", "locale", "timezone", "out_of_office_from",
               "out_of_office_until", "deputy_id"}
        if actor.user_id != user_id or set(data) - own:
            raise PermissionDenied("You may not change this user")
    own_password = "password" in data and actor.user_id == user.id
    wrong_current: dict[str, str] = {}
    if own_password and not (isinstance(current_password, str) and current_password
                             and len(current_password) <= 200
                             and check_password(user, current_password)):
        wrong_current["current_password"] = (
            "is wrong" if current_password else "is required to change your own password")
    if not isinstance(revoke_credentials, bool):
        wrong_current["revoke_credentials"] = "must be true or false"
    try:
        values = _clean_user(session, data, user=user)
    except ValidationFailed as exc:
        raise ValidationFailed({**exc.fields, **wrong_current}) from None
    if wrong_current:
        raise ValidationFailed(wrong_current)
    changes = {k: [getattr(user, k), v] for k, v in values.items()
               if k != "password_hash" and getattr(user, k) != v}
    deactivated = user.active and values.get("active") is False
    for k, v in values.items():
        setattr(user, k, v)
    if "password_hash" in values:
        changes["password"] = ["***", "***"]
        _bump_sessions(user)
        if revoke_credentials or not own_password:
            tokens = _revoke_credentials(session, user)
            changes["credentials"] = ["active", f"revoked ({tokens} API tokens, webhooks)"]
    elif deactivated:
        _bump_sessions(user)
    session.flush()
    if changes:
        record_event(session, actor, entity="user", entity_id=user.id, action="updated",
                     event_type="user.updated",
                     changes={k: [str(a) if a is not None else None,
                                  str(b) if b is not None else None]
                              for k, (a, b) in changes.items()})
    return user


def _unlock_in(times: list[dt.datetime], limit: int, now: dt.datetime) -> int | None:
    """Seconds until fewer than ``limit`` of these failures (oldest first) are in the window;
    None when there are fewer already."""
    if len(times) < limit:
        return None
    return max(1, int((times[len(times) - limit] + THROTTLE_WINDOW - now).total_seconds()) + 1)


def login_lock(session: Session, *, key: str, email: str,
               now: dt.datetime | None = None) -> int | None:
    """Seconds until a login with this throttle key and e-mail is looked at again; None when
    it may be tried now. Unknown e-mails are counted like known ones (no enumeration)."""
    now = now or utcnow()
    since = now - THROTTLE_WINDOW
    live = (LoginAttempt.cleared.is_(False), LoginAttempt.at >= since)
    waits = [_unlock_in(list(session.scalars(
        select(LoginAttempt.at).where(LoginAttempt.key == key, *live)
        .order_by(LoginAttempt.at))), THROTTLE_MAX_FAILURES, now)]
    if email:
        waits.append(_unlock_in(list(session.scalars(
            select(LoginAttempt.at).where(LoginAttempt.email == email, *live)
            .order_by(LoginAttempt.at))), ACCOUNT_MAX_FAILURES, now))
    found = [w for w in waits if w is not None]
    return max(found) if found else None


def check_login_lock(session: Session, *, key: str, email: str,
                     now: dt.datetime | None = None) -> None:
    """Raise ``LoginLocked`` while this key or e-mail is locked (see ``login_lock``); also
    guards the current-password check of a password change."""
    wait = login_lock(session, key=_throttle_key(key), email=email.strip().lower()[:254],
                      now=now)
    if wait is not None:
        minutes = -(-wait // 60)
        raise LoginLocked(f"Too many failed attempts; try again in {minutes} minutes",
                          retry_after=wait)


def record_failed_login(session: Session, *, key: str, email: str, address: str = "",
                        now: dt.datetime | None = None) -> None:
    """One failure towards the throttle and the administrators' list: a wrong login, or a
    wrong current password when changing it."""
    session.add(LoginAttempt(key=_throttle_key(key), email=email.strip().lower()[:254],
                             address=(address or "")[:64], at=now or utcnow()))


def _throttle_key(key: str) -> str:
    if len(key) > 300:  # the column's width; a long e-mail must not make the insert fail
        return "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    return key


def authenticate(session: Session, email: str, password: str, *, key: str,
                 address: str = "") -> User | None:
    """The active user with these credentials, or None.

    Throttled: after 5 failures in 15 minutes for ``key`` (client address + e-mail), or 20 for
    the e-mail from all addresses together, every attempt raises ``LoginLocked`` (with the
    seconds to wait) until they age out. Argon2 runs for unknown and deactivated accounts too,
    so the answer's timing does not reveal which e-mails exist. A correct password whose hash
    was made with other Argon2 parameters than today's is rehashed."""
    key = _throttle_key(key)
    if not isinstance(email, str) or not isinstance(password, str):
        email, password = "", ""
    normalized = email.strip().lower()[:254]
    now = utcnow()
    session.execute(sa_delete(LoginAttempt).where(LoginAttempt.at < now - max(
        FAILED_LOGIN_RETENTION, THROTTLE_WINDOW)))
    check_login_lock(session, key=key, email=normalized, now=now)
    user = session.scalars(select(User).where(func.lower(User.email) == normalized)).first() \
        if normalized else None
    if not check_password(user, password) or user is None or not user.active:
        record_failed_login(session, key=key, email=normalized, address=address, now=now)
        return None
    session.execute(update(LoginAttempt).where(LoginAttempt.key == key,
                                               LoginAttempt.cleared.is_(False))
                    .values(cleared=True).execution_options(synchronize_session=False))
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def recent_failed_logins(session: Session, actor: Actor, *, limit: int = 200
                         ) -> list[LoginAttempt]:
    """The newest failed logins (administrators only), kept for ``FAILED_LOGIN_RETENTION``."""
    actor.require_flag("manage_settings")
    return list(session.scalars(select(LoginAttempt).order_by(LoginAttempt.at.desc(),
                                                              LoginAttempt.id.desc())
                                .limit(limit)))


# --- sessions and credentials ----------------------------------------------------------------

def _bump_sessions(user: User) -> None:
    user.session_generation = (user.session_generation or 0) + 1


def _revoke_credentials(session: Session, user: User) -> int:
    """Revoke every API token of ``user`` and make the incoming webhooks made so far stop
    working; returns how many tokens were revoked."""
    revoked = session.execute(
        update(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked.is_(False))
        .values(revoked=True).execution_options(synchronize_session=False)).rowcount
    user.credentials_revoked_at = utcnow()
    return int(revoked or 0)


def end_sessions(session: Session, actor: Actor, user_id: int, *,
                 reason: str = "logout") -> User:
    """End every signed-in session of the user (logout, "log out everywhere"): their cookies
    stop working at the next request. The user themselves or an administrator."""
    user = session.get(User, user_id) if _is_id(user_id) else None
    if user is None:
        raise NotFound(f"No user with id {str(user_id)[:20]}")
    if actor.user_id != user.id and not actor.is_admin:
        raise PermissionDenied("You may not end this user's sessions")
    _bump_sessions(user)
    session.flush()
    record_event(session, actor, entity="user", entity_id=user.id, action="sessions_ended",
                 event_type=None, changes={"reason": [None, reason[:40]]})
    return user


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, user: User, name: str = "") -> str:
    """A new API token for ``user``; only its hash is stored, the token is returned once."""
    token = "mr_" + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, token_hash=_token_hash(token), name=name[:100]))
    session.flush()
    return token


def user_for_token(session: Session, token: str) -> User | None:
    if not token or len(token) > 200:
        return None
    row = session.scalars(select(ApiToken).where(ApiToken.token_hash == _token_hash(token),
                                                 ApiToken.revoked.is_(False))).first()
    if row is None or not row.user.active:
        return None
    row.last_used_at = utcnow()
    return row.user


def revoke_token(session: Session, token: str) -> bool:
    """Revoke the API token ``token`` (a sign-out); False when it is unknown or revoked."""
    if not token or len(token) > 200:
        return False
    row = session.scalars(select(ApiToken).where(ApiToken.token_hash == _token_hash(token),
                                                 ApiToken.revoked.is_(False))).first()
    if row is None:
        return False
    row.revoked = True
    session.flush()
    return True


def _is_id(value: Any) -> bool:
    """A usable row id: comparing a string or a huge number with an id column fails on
    PostgreSQL, so such values are refused before any query."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID


# --- departments -----------------------------------------------------------------------------

def save_department(session: Session, actor: Actor, department_id: int | None = None,
                    **data: Any) -> Department:
    actor.require_flag("manage_settings")
    dep = Department() if department_id is None else session.get(Department, department_id)
    if dep is None:
        raise NotFound(f"No department with id {department_id}")
    errors: dict[str, str] = {}
    name = data.get("name", dep.name)
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        errors["name"] = "is required (at most 200 characters)"
    parent_id = data.get("parent_id", dep.parent_id) or None
    if parent_id is not None:
        if not _is_id(parent_id) or session.get(Department, parent_id) is None:
            errors["parent_id"] = f"no department with id {str(parent_id)[:20]}"
        elif dep.id is not None and parent_id in descendants(department_tree(session), [dep.id]):
            errors["parent_id"] = "a department cannot be inside itself"
    head_id = data.get("head_id", dep.head_id) or None
    if head_id is not None and (not _is_id(head_id) or session.get(User, head_id) is None):
        errors["head_id"] = f"no user with id {str(head_id)[:20]}"
    if errors:
        raise ValidationFailed(errors)
    dep.name, dep.parent_id, dep.head_id = name.strip(), parent_id, head_id
    session.add(dep)
    session.flush()
    record_event(session, actor, entity="department", entity_id=dep.id,
                 action="created" if department_id is None else "updated",
                 event_type=None, changes={"name": [None, dep.name]})
    return dep


def delete_department(session: Session, actor: Actor, department_id: int) -> None:
    actor.require_flag("manage_settings")
    dep = session.get(Department, department_id)
    if dep is None:
        raise NotFound(f"No department with id {department_id}")
    if dep.children or session.scalar(select(func.count()).select_from(User).where(
            User.department_id == department_id)):
        raise Conflict("Move the department's members and sub-departments out first")
    session.delete(dep)
    session.flush()


# --- roles -----------------------------------------------------------------------------------

def save_role(session: Session, actor: Actor, role_id: int | None = None, *,
              name: str | None = None, levels: dict[tuple[str, str], int] | None = None,
              flags: dict[str, bool] | None = None) -> Role:
    """Create or change a role: its name, any matrix cells and the non-entity rights."""
    actor.require_flag("manage_settings")
    role = Role() if role_id is None else session.get(Role, role_id)
    if role is None:
        raise NotFound(f"No role with id {role_id}")
    errors: dict[str, str] = {}
    if name is not None or role_id is None:
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            errors["name"] = "is required (at most 200 characters)"
    for cell, level in (levels or {}).items():
        if not isinstance(cell, tuple) or len(cell) != 2 or cell[0] not in ENTITIES \
                or cell[1] not in ACTIONS:
            name = ".".join(map(str, cell)) if isinstance(cell, tuple) else str(cell)
            errors[name[:60]] = "is not a cell of the permission matrix"
        elif isinstance(level, bool) or not isinstance(level, int) or level not in tuple(
                PermLevel):
            errors[f"{cell[0]}.{cell[1]}"] = "must be a level from 0 (none) to 5 (all)"
    for flag, value in (flags or {}).items():
        if flag not in FLAGS:
            errors[str(flag)[:60]] = "is not a right"
        elif not isinstance(value, bool):  # bool("false") would grant the right
            errors[flag] = "must be true or false"
    if errors:
        raise ValidationFailed(errors)
    if name is not None:
        role.name = name.strip()
    session.add(role)
    cells = {(p.entity, p.action): p for p in role.permissions}
    for (entity, action), level in (levels or {}).items():
        if (entity, action) in cells:
            cells[(entity, action)].level = int(level)
        else:
            role.permissions.append(RolePermission(entity=entity, action=action, level=int(level)))
    for flag, value in (flags or {}).items():
        setattr(role, flag, bool(value))
    session.flush()
    record_event(session, actor, entity="role", entity_id=role.id,
                 action="created" if role_id is None else "updated", event_type=None,
                 changes={"name": [None, role.name]})
    return role


def grant_role(session: Session, actor: Actor, role_id: int, *, user_id: int | None = None,
               department_id: int | None = None) -> RoleGrant:
    actor.require_flag("manage_settings")
    if (user_id is None) == (department_id is None):
        raise ValidationFailed({"user_id": "give either a user or a department"})
    if not _is_id(role_id) or session.get(Role, role_id) is None:
        raise ValidationFailed({"role_id": f"no role with id {str(role_id)[:20]}"})
    if user_id is not None and (not _is_id(user_id) or session.get(User, user_id) is None):
        raise ValidationFailed({"user_id": f"no user with id {str(user_id)[:20]}"})
    if department_id is not None and (not _is_id(department_id)
                                      or session.get(Department, department_id) is None):
        raise ValidationFailed(
            {"department_id": f"no department with id {str(department_id)[:20]}"})
    existing = session.scalars(select(RoleGrant).where(
        RoleGrant.role_id == role_id, RoleGrant.user_id.is_(None) if user_id is None else
        RoleGrant.user_id == user_id, RoleGrant.department_id.is_(None) if department_id is None
        else RoleGrant.department_id == department_id)).first()
    if existing is not None:
        return existing
    grant = RoleGrant(role_id=role_id, user_id=user_id, department_id=department_id)
    session.add(grant)
    session.flush()
    record_event(session, actor, entity="role", entity_id=role_id, action="granted",
                 event_type=None, changes={"user_id": [None, user_id],
                                           "department_id": [None, department_id]})
    return grant


def revoke_grant(session: Session, actor: Actor, grant_id: int) -> None:
    actor.require_flag("manage_settings")
    grant = session.get(RoleGrant, grant_id)
    if grant is None:
        raise NotFound(f"No role grant with id {grant_id}")
    session.delete(grant)
    session.flush()


# --- built-in roles --------------------------------------------------------------------------

def builtin_role_levels(code: str) -> tuple[dict[tuple[str, str], int], dict[str, bool]]:
    """The default matrix of each built-in role."""
    if code == "admin":
        return ({(e, a): PermLevel.ALL for e in ENTITIES for a in ACTIONS},
                {f: True for f in FLAGS})
    if code == "sales_head":
        return ({(e, a): PermLevel.SUBDEPARTMENTS for e in ENTITIES for a in ACTIONS}, {})
    if code == "manager":
        lv = {(e, a): (PermLevel.NONE if a == "import" else PermLevel.OWN)
              for e in ENTITIES for a in ACTIONS}
        lv.update({("product", "read"): PermLevel.ALL, ("product", "add"): PermLevel.NONE,
                   ("product", "update"): PermLevel.NONE, ("product", "delete"): PermLevel.NONE})
        return lv, {}
    if code == "observer":
        return ({(e, a): (PermLevel.OPEN if a == "read" else PermLevel.NONE)
                 for e in ENTITIES for a in ACTIONS}, {})
    raise KeyError(code)


BUILTIN_ROLES = {"admin": "Administrator", "sales_head": "Sales head", "manager": "Manager",
                 "observer": "Observer"}


def ensure_builtin_roles(session: Session) -> dict[str, Role]:
    """Create the built-in roles that are missing (an admin's later changes are kept)."""
    out = {}
    for code, name in BUILTIN_ROLES.items():
        role = session.scalars(select(Role).where(Role.code == code)).first()
        if role is None:
            levels, flags = builtin_role_levels(code)
            role = Role(code=code, name=name, **flags)
            role.permissions = [RolePermission(entity=e, action=a, level=int(lv))
                                for (e, a), lv in levels.items()]
            session.add(role)
        out[code] = role
    session.flush()
    return out


def valid_slug(value: str) -> bool:
    return bool(re.fullmatch(r"[a-z0-9_]{1,50}", value))
