"""The 1C:Enterprise exchange endpoint (CommerceML 2), answering exactly the plain-text lines
1C expects: ``success\\n<cookie name>\\n<cookie value>`` for ``checkauth``,
``zip=yes\\nfile_limit=<bytes>`` for ``init``, ``success``/``failure\\n<reason>`` for the
rest, and the orders document for ``type=sale&mode=query``.

Reached at ``/1c/exchange`` and at ``/bitrix/admin/1c_exchange.php`` (the address 1C's "site
exchange" proposes). ``checkauth`` takes HTTP Basic credentials of a Marshrut user (the
catalog needs the "import" right on products; sale reads deals); every other mode needs the
cookie it returned. Admins see each session and its log at ``/admin/exchange-1c``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, render_template, request
from sqlalchemy import select

from crm_models.errors import CrmError, LoginLocked, PermissionDenied
from crm_models.org import User
from crm_models.permissions import actor_for
from crm_models.services.org import authenticate
from integrations.imports import commerceml as cml

from .auth import login_required, require_actor
from .database import get_db

bp = Blueprint("exchange1c", __name__)
DEFAULT_FILE_LIMIT = 100 * 1024 * 1024
CHUNK = 64 * 1024


def init_app(app: Flask) -> None:
    from .auth import csrf

    csrf.exempt(bp)
    app.register_blueprint(bp)


def _plain(*lines: str) -> Response:
    return Response("\n".join(lines), mimetype="text/plain", content_type="text/plain; "
                    "charset=utf-8")


def _limit() -> int:
    return int(current_app.config.get("EXCHANGE_1C_FILE_LIMIT", DEFAULT_FILE_LIMIT))


def _folder(ex: cml.ExchangeSession) -> Path:
    base = Path(current_app.config.get("IMPORT_DIR") or Path(current_app.instance_path)
                / "imports")
    return base / "1c" / str(ex.id)


@bp.route("/1c/exchange", methods=("GET", "POST"))
@bp.route("/bitrix/admin/1c_exchange.php", methods=("GET", "POST"))
def exchange() -> Any:
    kind = request.args.get("type", "")
    mode = request.args.get("mode", "")
    if kind not in ("catalog", "sale"):
        return _plain("failure", "unknown type (catalog or sale)")
    db = get_db()
    if mode == "checkauth":
        return _checkauth(db, kind)
    try:
        ex = cml.find_session(db, request.cookies.get(cml.COOKIE), kind)
    except cml.ExchangeError as exc:
        return _plain("failure", str(exc))
    user = db.get(User, ex.user_id)
    filename = request.args.get("filename", "")
    try:
        if user is None or not user.active:
            raise cml.ExchangeError("the exchange user is deactivated")
        actor = actor_for(db, user)
        answer = _mode(db, actor, ex, kind, mode, filename)
        cml.note(ex, mode, filename, True, answer.get_data(as_text=True)[:100]
                 if mode != "query" else "orders sent")
        db.commit()
        return answer
    except (cml.ExchangeError, CrmError) as exc:
        db.rollback()
        ex = cml.find_session(db, request.cookies.get(cml.COOKIE), kind)
        cml.note(ex, mode, filename, False, str(exc))
        db.commit()
        return _plain("failure", str(exc))


def _checkauth(db: Any, kind: str) -> Response:
    auth = request.authorization
    if auth is None or auth.type != "basic":
        return _plain("failure", "Basic authorization required")
    try:
        user = authenticate(db, auth.username or "", auth.password or "",
                            key=f"1c:{request.remote_addr}", address=request.remote_addr or "")
    except LoginLocked:
        db.commit()
        return _plain("failure", "too many failed attempts, try later")
    if user is None:
        db.commit()
        return _plain("failure", "wrong login or password")
    actor = actor_for(db, user)
    try:
        actor.require("product", "import") if kind == "catalog" else actor.require("deal",
                                                                                     "read")
    except PermissionDenied as exc:
        db.commit()
        return _plain("failure", str(exc))
    ex = cml.open_session(db, user.id, kind)
    cml.note(ex, "checkauth", "", True, "")
    db.commit()
    return _plain("success", cml.COOKIE, ex.token)


def _mode(db: Any, actor: Any, ex: cml.ExchangeSession, kind: str, mode: str,
          filename: str) -> Response:
    folder = _folder(ex)
    if mode == "init":
        return _plain("zip=yes", f"file_limit={_limit()}")
    if mode == "file":
        if kind == "sale" and not filename:
            filename = "orders.xml"
        length = request.content_length
        if length is not None and length > _limit():
            raise cml.ExchangeError(f"the file is larger than {_limit()} bytes")
        stream = request.stream
        cml.save_chunk(folder, filename, iter(lambda: stream.read(CHUNK), b""),
                       limit=_limit())
        if kind == "sale":  # 1C sends its documents here and expects them taken at once
            _unpacked = cml.unpack(folder, filename)
            xml = [n for n in _unpacked if n.lower().endswith(".xml")] or [filename]
            for name in xml:
                if name.lower().endswith(".xml"):
                    cml.import_statuses(db, actor, folder / cml.safe_name(name))
        return _plain("success")
    if mode == "import" and kind == "catalog":
        name = cml.safe_name(filename)
        for zipped in folder.glob("*.zip") if folder.exists() else ():
            cml.unpack(folder, zipped.name)
        report = cml.import_catalog(db, actor, folder / name, price_type=str(
            current_app.config.get("EXCHANGE_1C_PRICE_TYPE", "")))
        return _plain("success", f"{name}: {report.created} created, {report.updated} updated,"
                      f" {report.unchanged} unchanged, {report.deleted} deleted, "
                      f"{report.prices} prices, {report.sections} sections")
    if mode == "query" and kind == "sale":
        document, ids = cml.orders_document(db, actor)
        ex.log = [*ex.log, {"pending": ids}][-200:]
        return Response(document.encode("utf-8"), mimetype="application/xml",
                        content_type="application/xml; charset=utf-8")
    if mode == "success" and kind == "sale":
        pending = next((e["pending"] for e in reversed(ex.log) if "pending" in e), [])
        cml.confirm_sent(db, pending)
        return _plain("success")
    raise cml.ExchangeError(f"unknown mode '{mode[:30]}' for type={kind}")


@bp.get("/admin/exchange-1c")
@login_required
def exchange_sessions() -> Any:
    if not require_actor().is_admin:
        abort(403)
    sessions = get_db().scalars(select(cml.ExchangeSession)
                                .order_by(cml.ExchangeSession.id.desc()).limit(50)).all()
    return render_template("admin/exchange_1c.html", sessions=sessions, section="admin")
