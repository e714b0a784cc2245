"""Who is asking: session login for pages, Bearer tokens for the API; throttled logins; CSRF.

A session cookie names the user and the user's session generation when it began; bumping the
generation (``crm_models.services.org.end_sessions``, a password change, a deactivation) ends
every such cookie, copies included. Checking it costs nothing extra: the user row is read on
every request anyway.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import (
    Flask,
    abort,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.exc import OperationalError

from crm_models.errors import LoginLocked, ValidationFailed
from crm_models.org import User
from crm_models.permissions import Actor, actor_for
from crm_models.services.org import (
    authenticate,
    check_login_lock,
    end_sessions,
    record_failed_login,
    user_for_token,
)

from .database import get_db

csrf = CSRFProtect()
F = TypeVar("F", bound=Callable[..., Any])


def init_app(app: Flask) -> None:
    csrf.init_app(app)
    app.before_request(_load_user)
    app.add_url_rule("/login", "login", login, methods=["GET", "POST"])
    app.add_url_rule("/logout", "logout", logout, methods=["POST"])
    app.context_processor(lambda: {"current_user": g.get("user"), "actor": current_actor()})


def _load_user() -> None:
    g.user = None
    g.auth_via = None
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        user = user_for_token(get_db(), header[7:].strip())
        if user is not None:
            try:
                get_db().commit()  # last_used_at
            except OperationalError:
                # Best effort: on SQLite a concurrent writer makes this read-then-write
                # transaction fail ("database is locked"); the request must not fail with it.
                get_db().rollback()
            g.user, g.auth_via = user, "token"
        return
    uid = session.get("uid")
    if isinstance(uid, int):
        # The user row is read anyway; its generation is what makes a copied cookie die with
        # a logout, a password change, a deactivation or "log out everywhere".
        user = get_db().get(User, uid)
        if (user is not None and user.active
                and session.get("gen") == user.session_generation):
            g.user, g.auth_via = user, "session"
        else:
            session.clear()


def current_actor() -> Actor | None:
    """The signed-in user's rights, resolved once per request."""
    if g.get("user") is None:
        return None
    if "actor" not in g:
        g.actor = actor_for(get_db(), g.user)
    return g.actor


def require_actor() -> Actor:
    actor = current_actor()
    if actor is None:
        abort(401)
    return actor


def login_required(view: F) -> F:
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if g.get("user") is None:
            return redirect(url_for("login", next=request.full_path))
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def _safe_next(target: str | None) -> str:
    if not target:
        return url_for("pages.home")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("pages.home")
    return target


def sign_in(user: User) -> None:
    """Start a session (or carry the current one over a generation change: after a password
    change the other sessions end, this one goes on)."""
    session.clear()
    session["uid"] = user.id
    session["gen"] = user.session_generation
    session.permanent = True


def sign_out_everywhere(*, reason: str) -> None:
    """End every session of the signed-in user (this one included) and commit."""
    user, db = g.get("user"), get_db()
    if user is not None and g.get("auth_via") == "session":
        end_sessions(db, require_actor(), user.id, reason=reason)
        db.commit()
    session.clear()


def throttle_key(email: str) -> str:
    return f"{request.remote_addr}|{email.strip().lower()}"[:300]


@contextmanager
def throttled_password_check(email: str) -> Iterator[None]:
    """Guard a password change's current-password check with the login throttle: refused
    (``LoginLocked``) while the account or this address is locked, and a wrong current
    password counts as a failed login (committed, although the change is not)."""
    db = get_db()
    check_login_lock(db, key=throttle_key(email), email=email)
    try:
        yield
    except ValidationFailed as exc:
        if exc.fields.get("current_password") == "is wrong":
            db.rollback()
            record_failed_login(db, key=throttle_key(email), email=email,
                                address=request.remote_addr or "")
            db.commit()
        raise


def lock_message(seconds: int) -> str:
    minutes = max(1, -(-seconds // 60))
    return ngettext("Too many failed attempts; try again in %(num)d minute.",
                    "Too many failed attempts; try again in %(num)d minutes.", minutes)


def login() -> Any:
    if request.method == "POST":
        email = request.form.get("email", "")[:254]
        password = request.form.get("password", "")[:200]
        db = get_db()
        try:
            user = authenticate(db, email, password, key=throttle_key(email),
                                address=request.remote_addr or "")
        except LoginLocked as exc:
            db.commit()
            flash(lock_message(exc.retry_after), "error")
            response = make_response(render_template("login.html", email=email), 429)
            response.headers["Retry-After"] = str(exc.retry_after)
            return response
        db.commit()
        if user is None:
            flash(_("Wrong e-mail or password."), "error")
            return render_template("login.html", email=email), 401
        sign_in(user)
        return redirect(_safe_next(request.args.get("next")))
    return render_template("login.html", email="")


def logout() -> Any:
    sign_out_everywhere(reason="logout")
    return redirect(url_for("login"))
