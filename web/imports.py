"""Import pages: upload a CSV/XLSX file, map its columns (with a preview and saved mappings),
a dry run, then the real run in the background with a progress bar and an error report.

The job lives in the database (``integrations.imports``); the worker thread started with the
app's background work (or a ``flask worker`` process) runs it, so closing the page, reloading
it or restarting the server does not stop an import.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError, validate_csrf
from sqlalchemy import select
from wtforms import ValidationError as WtfValidationError

from crm_models.errors import ValidationFailed
from integrations.imports.jobs import (
    cancel_job,
    create_job,
    get_job,
    new_stored_name,
    row_errors,
    start_job,
)
from integrations.imports.mapping import targets
from integrations.imports.models import IMPORT_ENTITIES, ImportJob, ImportMapping
from integrations.imports.reader import FileProblem, TableFormat, header_and_sample
from integrations.imports.runner import ImportWorker, JobRunner

from .auth import login_required, require_actor
from .database import get_db
from .pages.format import field_label
from .pages.messages import translate, translate_fields

bp = Blueprint("imports", __name__, url_prefix="/imports")
ENTITY_TITLES = {"lead": _l("Leads"), "contact": _l("Contacts"), "company": _l("Companies"),
                 "deal": _l("Deals"), "product": _l("Products")}
POLICY_TITLES = {"skip": _l("skip the row"), "update": _l("update the existing record"),
                 "create": _l("create another record")}
STATUS_TITLES = {"uploaded": _l("waiting for the mapping"), "queued": _l("queued"),
                 "running": _l("running"), "done": _l("done"), "failed": _l("failed"),
                 "cancelled": _l("cancelled")}
DEFAULT_MAX_BYTES = 200 * 1024 * 1024


def init_app(app: Flask) -> None:
    file_dir = Path(app.config.get("IMPORT_DIR") or Path(app.instance_path) / "imports")
    def route(event_ids: list[int]) -> None:
        """A chunk's events, routed in bulk right after its commit (without a dispatcher or
        with ``DISPATCH_AFTER_COMMIT`` off: left to the recovery loop, as any commit's)."""
        dispatcher = app.extensions.get("dispatcher")
        if dispatcher is not None and app.config.get("DISPATCH_AFTER_COMMIT", True):
            dispatcher.dispatch(event_ids)

    runner = JobRunner(app.extensions["db_sessionmaker"], file_dir,
                       chunk=int(app.config.get("IMPORT_CHUNK_ROWS", 200)), route=route)
    worker = ImportWorker(runner, poll=float(app.config.get("IMPORT_POLL_SECONDS", 1.0)))
    app.extensions["import_runner"] = runner
    app.extensions["import_worker"] = worker
    if app.config.get("RUN_SCHEDULER", True):
        app.extensions.setdefault("background_starters", []).append(worker.start)
        app.extensions.setdefault("background_stoppers", []).append(worker.stop)
    from .auth import csrf

    csrf.exempt(import_upload)
    app.register_blueprint(bp)


def _file_dir() -> Path:
    return current_app.extensions["import_runner"].file_dir


def _fields_for(entity: str) -> list[tuple[str, str]]:
    from .pages.products import FIELD_LABELS as PRODUCT_LABELS

    if entity == "product":
        return [(f.name, str(PRODUCT_LABELS.get(f.name, f.label_en))) for f in targets(entity)]
    return [(f.name, field_label(entity, f.name)) for f in targets(entity)]


def _can_import(actor: Any, entity: str) -> bool:
    return actor.level(entity, "import") > 0


@bp.get("/")
@login_required
def import_list() -> Any:
    actor = require_actor()
    db = get_db()
    jobs = db.scalars(select(ImportJob).where(ImportJob.user_id == actor.user_id)
                      .order_by(ImportJob.id.desc()).limit(50)).all()
    entities = [e for e in IMPORT_ENTITIES if _can_import(actor, e)]
    return render_template("imports/list.html", jobs=jobs, entities=entities,
                           entity_titles=ENTITY_TITLES, status_titles=STATUS_TITLES,
                           errors={}, section="imports")


@bp.post("/")
@login_required
def import_upload() -> Any:
    """Exempt from the app-wide CSRF check, which would read the form under the app's
    request size limit before this view could raise it for import files; checked here."""
    actor = require_actor()
    request.max_content_length = int(current_app.config.get("IMPORT_MAX_BYTES",
                                                            DEFAULT_MAX_BYTES))
    try:
        return _upload(actor)
    finally:  # a large upload sits in a temporary file: closed now, not when collected
        for part in request.files.values():
            part.close()


def _upload(actor: Any) -> Any:
    try:
        validate_csrf(request.form.get("csrf_token"))
    except WtfValidationError as exc:
        raise CSRFError(str(exc)) from None
    entity = request.form.get("entity", "")
    upload = request.files.get("file")
    db = get_db()
    errors: dict[str, str] = {}
    if upload is None or not upload.filename:
        errors["file"] = _("Choose a CSV or XLSX file.")
    if entity not in IMPORT_ENTITIES:
        errors["entity"] = _("Choose what to import.")
    elif not _can_import(actor, entity):
        abort(403)
    if not errors:
        file_dir = _file_dir()
        file_dir.mkdir(parents=True, exist_ok=True)
        stored = new_stored_name(upload.filename)
        upload.save(file_dir / stored)
        try:
            job = create_job(db, actor, entity=entity, filename=upload.filename,
                             file_dir=file_dir, stored_name=stored)
            db.commit()
            return redirect(url_for("imports.import_job", job_id=job.id))
        except ValidationFailed as exc:
            db.rollback()
            errors = translate_fields(exc.fields)
    jobs = db.scalars(select(ImportJob).where(ImportJob.user_id == actor.user_id)
                      .order_by(ImportJob.id.desc()).limit(50)).all()
    return render_template("imports/list.html", jobs=jobs,
                           entities=[e for e in IMPORT_ENTITIES if _can_import(actor, e)],
                           entity_titles=ENTITY_TITLES, status_titles=STATUS_TITLES,
                           errors=errors, section="imports"), 422


def _mapping_context(job: ImportJob) -> dict[str, Any]:
    try:
        fmt = TableFormat(job.file_format, job.encoding, job.delimiter)
        _header, sample = header_and_sample(_file_dir() / job.stored_name, fmt)
    except (FileProblem, OSError):
        sample = []
    db = get_db()
    saved = db.scalars(select(ImportMapping).where(ImportMapping.entity == job.entity)
                       .order_by(ImportMapping.name)).all()
    return {"sample": sample, "fields": _fields_for(job.entity), "saved": saved,
            "policies": POLICY_TITLES}


@bp.get("/<int:job_id>")
@login_required
def import_job(job_id: int) -> Any:
    actor = require_actor()
    job = get_job(get_db(), actor, job_id)
    return _render_job(job)


def _render_job(job: ImportJob, *, errors: dict[str, str] | None = None,
                form: dict[str, Any] | None = None, status: int = 200) -> Any:
    show_mapping = job.status == "uploaded" or (job.dry_run and job.finished)
    ctx = _mapping_context(job) if show_mapping else {}
    first_errors = list(row_errors(get_db(), job).fetchmany(50)) if job.status != "uploaded" \
        else []
    return render_template(
        "imports/job.html", job=job, show_mapping=show_mapping, errors=errors or {},
        form=form, entity_titles=ENTITY_TITLES, status_titles=STATUS_TITLES,
        first_errors=first_errors, translate=translate, section="imports", **ctx), status


@bp.post("/<int:job_id>/start")
@login_required
def import_start(job_id: int) -> Any:
    actor = require_actor()
    db = get_db()
    job = get_job(db, actor, job_id)
    form = request.form
    mapping = {str(i): form.get(f"col_{i}", "") for i in range(len(job.headers))}
    try:
        start_job(db, actor, job, mapping=mapping, policy=form.get("policy", "skip"),
                  dry_run=form.get("mode") == "dry", save_as=form.get("save_as", ""))
        db.commit()
    except ValidationFailed as exc:
        db.rollback()
        job = get_job(db, actor, job_id)
        return _render_job(job, errors=translate_fields(exc.fields), form=form.to_dict(),
                           status=422)
    current_app.extensions["import_worker"].wake.set()
    flash(_("The dry run has started.") if job.dry_run else _("The import has started."),
          "success")
    return redirect(url_for("imports.import_job", job_id=job_id))


@bp.get("/<int:job_id>/progress")
@login_required
def import_progress(job_id: int) -> Any:
    actor = require_actor()
    job = get_job(get_db(), actor, job_id)
    return render_template("imports/_progress.html", job=job, status_titles=STATUS_TITLES)


@bp.post("/<int:job_id>/cancel")
@login_required
def import_cancel(job_id: int) -> Any:
    actor = require_actor()
    db = get_db()
    cancel_job(db, actor, get_job(db, actor, job_id))
    db.commit()
    return redirect(url_for("imports.import_job", job_id=job_id))


@bp.get("/<int:job_id>/errors.csv")
@login_required
def import_errors(job_id: int) -> Any:
    """The error report: row, column, message — one line each, UTF-8 with a BOM (Excel)."""
    actor = require_actor()
    db = get_db()
    job = get_job(db, actor, job_id)
    buf = io.StringIO()
    buf.write("\ufeff")
    writer = csv.writer(buf, delimiter=";")
    writer.writerow([_("Row"), _("Column"), _("Error")])
    for err in row_errors(db, job):  # at most MAX_STORED_ERRORS lines
        writer.writerow([err.row, err.column, translate(err.message)])
    return Response(buf.getvalue(), mimetype="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="import-{job.id}-errors.csv"'})
