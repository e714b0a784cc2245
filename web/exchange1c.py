"""The 1C:Enterprise exchange endpoint (CommerceML 2), answering exactly the plain-text lines
1C expects: ``success\\n<cookie name>\\n<cookie value>`` for ``checkauth``,
``zip=yes\\nfile_limit=<bytes>`` for ``init`` (``zip=no`` when ``EXCHANGE_1C_ZIP`` is
false), ``progress`` while a catalog import still has
work (1C calls ``mode=import`` again), ``success``/``failure\\n<reason>`` for the rest, and
the orders document for ``type=sale&mode=query``. A file may come in several
``mode=file`` calls with the same name: the parts are appended. Pictures come inside the zip
or alone (``filename=import_files/ab/abc.jpg``) and are kept under that path; a product's
picture that cannot be taken is an error line of the session (the import still succeeds).

Reached at ``/1c/exchange`` and at ``/bitrix/admin/1c_exchange.php`` (the address 1C's "site
exchange" proposes). ``checkauth`` takes HTTP Basic credentials of a Marshrut user (the
catalog needs the "import" right on products; sale reads deals); every other mode needs the
cookie it returned. Admins see each session and its log at ``/admin/exchange-1c``.
"""
from __future__ import annotations

import shutil
import zipfile
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
#: products or offers one ``mode=import`` call takes before answering ``progress``
DEFAULT_STEP = 500


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


def _step() -> int:
    return max(1, int(current_app.config.get("EXCHANGE_1C_IMPORT_STEP", DEFAULT_STEP)))


def _mode(db: Any, actor: Any, ex: cml.ExchangeSession, kind: str, mode: str,
          filename: str) -> Response:
    folder = _folder(ex)
    if mode == "init":  # a new exchange: what an earlier one left behind is dropped
        shutil.rmtree(folder, ignore_errors=True)
        ex.state = {}
        zipped = current_app.config.get("EXCHANGE_1C_ZIP", True)  # no: files come one by one
        return _plain("zip=yes" if zipped else "zip=no", f"file_limit={_limit()}")
    if mode == "file":
        if kind == "sale" and not filename:
            filename = "orders.xml"
        length = request.content_length
        if length is not None and length > _limit():
            raise cml.ExchangeError(f"the file is larger than {_limit()} bytes")
        stream = request.stream
        cml.save_chunk(folder, filename, iter(lambda: stream.read(CHUNK), b""),
                       limit=_limit())
        if kind == "sale":  # taken as soon as the document is whole (1C may send it in parts)
            _take_sale_file(db, actor, folder, cml.safe_name(filename), final=False)
        return _plain("success")
    if mode == "import" and kind == "catalog":
        return _import_step(db, actor, ex, folder, cml.safe_name(filename))
    if mode == "import" and kind == "sale":  # newer 1C modules ask after the last part
        names = [cml.safe_name(filename)] if filename else sorted(
            p.name for p in folder.glob("*") if p.is_file()) if folder.exists() else []
        for name in names:
            _take_sale_file(db, actor, folder, name, final=True)
        return _plain("success")
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


def _import_step(db: Any, actor: Any, ex: cml.ExchangeSession, folder: Path,
                 name: str) -> Response:
    """One bounded step of the catalog import: ``progress`` until the file is done, then
    ``success`` with the counts. Where it stands is kept in the session's ``state``."""
    state = dict(ex.state or {})
    unpacked = list(state.get("unpacked", []))
    for zipped in sorted(folder.glob("*.zip")) if folder.exists() else ():
        if zipped.name not in unpacked:  # once: later calls must not rewrite the XML
            for refused in cml.unpack(folder, zipped.name, limit=_limit()).refused:
                cml.note(ex, "import", zipped.name, False, refused)
            unpacked.append(zipped.name)
    state["unpacked"] = unpacked
    path = folder / name
    size = path.stat().st_size if path.exists() else -1
    job = dict(state.get("import") or {})
    if job.get("file") != name or job.get("size") != size:
        job = {"file": name, "size": size}
    done = cml.import_catalog_step(db, actor, path, job, price_type=str(
        current_app.config.get("EXCHANGE_1C_PRICE_TYPE", "")), step=_step())
    for problem in job.pop("problems", []):  # the products are in; their pictures are not
        cml.note(ex, "import", problem["filename"], False, problem["message"])
    if not done:
        state["import"] = job
        ex.state = state
        return _plain("progress", f"{name}: {job['position']} of {job['total']}")
    state.pop("import", None)
    ex.state = state
    r = job["report"]
    return _plain("success", f"{name}: {r['created']} created, {r['updated']} updated,"
                  f" {r['unchanged']} unchanged, {r['deleted']} deleted, "
                  f"{r['prices']} prices, {r['stock']} stock, {r['sections']} sections, "
                  f"{r.get('pictures', 0)} pictures, {r.get('picture_errors', 0)} picture "
                  "errors")


def _take_sale_file(db: Any, actor: Any, folder: Path, name: str, *, final: bool) -> None:
    """Apply the statuses in a document 1C sent (a zip: the XML files in it), once: the
    file is removed when taken. Not yet whole (a part of it still to come): kept, unless
    ``final`` (then ExchangeError, nothing applied)."""
    path = folder / name
    if not path.exists():
        if final:
            raise cml.ExchangeError(f"no file '{name}' was uploaded")
        return
    if name.lower().endswith(".zip"):
        if not zipfile.is_zipfile(path):
            if final:
                raise cml.ExchangeError(f"{name}: not a complete zip archive")
            return
        xml = [cml.safe_name(n) for n in cml.unpack(folder, name, limit=_limit()).names
               if n.lower().endswith(".xml")]
        path.unlink()
        for inner in xml:
            _take_sale_file(db, actor, folder, inner, final=True)
        return
    if not name.lower().endswith(".xml"):
        return
    try:
        cml.import_statuses(db, actor, path)
    except cml.ExchangeError:
        if final:
            raise
        return  # truncated for now: the next part completes it
    path.unlink()


@bp.get("/admin/exchange-1c")
@login_required
def exchange_sessions() -> Any:
    if not require_actor().is_admin:
        abort(403)
    sessions = get_db().scalars(select(cml.ExchangeSession)
                                .order_by(cml.ExchangeSession.id.desc()).limit(50)).all()
    return render_template("admin/exchange_1c.html", sessions=sessions, section="admin")
