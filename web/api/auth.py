"""API authentication: the per-request guard (401, CSRF for cookie sessions) and token login.

Who is asking is settled by ``web.auth._load_user`` (Bearer token or session cookie). The
blueprint is exempt from Flask-WTF's automatic CSRF check because token clients have no
CSRF token; the guard below enforces it only where a browser's cookie authenticates an
unsafe request, which is where cross-site forgery is possible.
"""
from __future__ import annotations

from typing import Any

from flask import Flask, current_app, g, request

from crm_models.errors import LoginLocked, ValidationFailed
from crm_models.services.org import authenticate, create_token, revoke_token
from web.auth import csrf, sign_out_everywhere, throttle_key
from web.database import get_db
from web.errors import error_response

from . import bp
from .common import OPERATIONS, ApiError, api_route, commit, json_body, only_keys, ref
from .org import user_dict

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def init_app(app: Flask) -> None:
    csrf.exempt(bp)


@bp.before_request
def _guard() -> Any:
    op = OPERATIONS.get((request.endpoint or "").removeprefix("api."))
    if op is not None and op.public:
        return None
    if g.get("user") is None:
        response, status = error_response(
            401, "unauthorized",
            "Sign in, or send 'Authorization: Bearer <token>' (POST /api/v1/auth/login)")
        response.headers["WWW-Authenticate"] = 'Bearer realm="marshrut"'
        return response, status
    if (request.method not in SAFE_METHODS and g.get("auth_via") == "session"
            and current_app.config.get("WTF_CSRF_ENABLED", True)):
        csrf.protect()  # raises CSRFError → 400 csrf_failed
    return None


def _bearer_token() -> str:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else ""


@api_route("/auth/login", methods=("POST",), public=True, tag="auth",
           summary="Exchange an e-mail and password for an API token",
           body=ref("LoginRequest"), response=ref("LoginResponse"),
           extra={"errors": (401, 429)})
def auth_login() -> Any:
    """Throttled like the login form: 401 on wrong credentials, 429 after too many."""
    body = json_body()
    only_keys(body, ("email", "password", "name"), "login")
    email, password = body.get("email"), body.get("password")
    name = body.get("name", "api login")
    errors: dict[str, str] = {}
    if not isinstance(email, str) or not email.strip() or len(email) > 254:
        errors["email"] = "is required (an e-mail address)"
    if not isinstance(password, str) or not password or len(password) > 200:
        errors["password"] = "is required (at most 200 characters)"
    if not isinstance(name, str) or len(name) > 100:
        errors["name"] = "must be a label of at most 100 characters"
    if errors:
        raise ValidationFailed(errors)
    db = get_db()
    try:
        user = authenticate(db, email, password, key=throttle_key(email),
                            address=request.remote_addr or "")
    except LoginLocked:
        db.commit()  # keep the recorded attempts
        raise  # 429 too_many_attempts with Retry-After (web.errors)
    if user is None:
        db.commit()  # the failed attempt counts towards the throttle
        raise ApiError(401, "invalid_credentials", "Wrong e-mail or password")
    token = create_token(db, user, name)
    commit()
    return {"token": token, "token_type": "Bearer", "user": user_dict(user)}


@api_route("/auth/logout", methods=("POST",), tag="auth", status=204,
           summary="Revoke the Bearer token of this request (or end the cookie session)")
def auth_logout() -> Any:
    if g.get("auth_via") == "token":
        revoke_token(get_db(), _bearer_token())
        commit()
    else:
        sign_out_everywhere(reason="logout")
    return "", 204
