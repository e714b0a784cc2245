"""Process list, new from template, import, the process page with its versions, the editor,
a version's heatmap and export, comparing versions, activate/deactivate, discard draft."""
from __future__ import annotations

import re
from typing import Any

from flask import Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import func, select

from automation.backtest import MAX_DAYS
from automation.bpmn_diff import diff_bpmn
from automation.drafts import discard_draft, get_draft, process_header, save_draft
from automation.process_templates import TEMPLATES, key_from_name
from automation.process_trace import heatmap
from crm_models.errors import Conflict, CrmError, ValidationFailed
from engine.runtime import Engine
from engine.store import ProcessDefinition, ProcessInstance
from strictnum import id_or_none
from web.api.editor import (
    backtest_sources,
    create_from_template,
    process_summary,
    run_backtest,
)

from ..auth import require_actor
from ..database import get_db
from . import bp, can_design

MAX_UPLOAD = 2_000_000


def _engine() -> Engine:
    return current_app.extensions["engine"]


def _versions(key: str) -> list[ProcessDefinition]:
    rows = _engine().definitions(get_db(), key=key[:200])
    if not rows:
        abort(404, description=f"No process {key[:60]}")
    return rows


def _version(key: str, version: int) -> ProcessDefinition:
    for d in _versions(key):
        if d.version == version:
            return d
    abort(404, description=f"Process {key[:60]} has no version {version}")


def _require_design() -> Any:
    actor = require_actor()
    actor.require_flag("design_processes")
    return actor


@bp.get("/")
def process_list() -> str:
    actor = require_actor()
    return render_template("editor/list.html", rows=process_summary(get_db()),
                           templates=TEMPLATES.values(), can_design=can_design(actor),
                           form={})


@bp.post("/new")
def process_new() -> Any:
    actor = _require_design()
    db = get_db()
    form = {k: request.form.get(k, "")[:300] for k in ("template", "key", "name")}
    if not form["key"].strip() and form["name"].strip():
        form["key"] = key_from_name(form["name"], lambda k: bool(
            _engine().definitions(db, key=k) or get_draft(db, k) is not None))
    try:
        create_from_template(db, actor, form["template"], form["key"].strip(), form["name"])
    except CrmError as exc:
        db.rollback()
        fields = "; ".join(f"{k}: {v}" for k, v in exc.fields.items())
        flash(f"{exc.message}" + (f" ({fields})" if fields else ""), "error")
        return render_template("editor/list.html", rows=process_summary(db),
                               templates=TEMPLATES.values(), can_design=True,
                               form=form), exc.status
    db.commit()
    return redirect(url_for("editor.edit", key=form["key"].strip()))


@bp.post("/import")
def process_import() -> Any:
    actor = _require_design()
    db = get_db()
    upload = request.files.get("file")
    data = upload.read(MAX_UPLOAD + 1) if upload else b""
    try:
        if not data:
            raise Conflict(_("Choose a .bpmn file to import."))
        if len(data) > MAX_UPLOAD:
            raise Conflict(_("The file is larger than 2 MB."))
        header = process_header(data, field="file")
        existing = get_draft(db, header.key)
        if existing is not None:
            raise Conflict(_("Process %(key)s already has a draft; open it or discard it "
                             "first.", key=header.key))
        save_draft(db, actor, bpmn_xml=_decode(data), dmn_xml=[])
    except CrmError as exc:
        db.rollback()
        flash(exc.message + "".join(f" {v}" for v in exc.fields.values()), "error")
        return redirect(url_for("editor.process_list"))
    db.commit()
    flash(_("Imported %(key)s as a draft.", key=header.key), "success")
    return redirect(url_for("editor.edit", key=header.key))


def _decode(data: bytes) -> str:
    """XML bytes as text, honouring the declared encoding (MIWG files use ISO-8859-1)."""
    head = data[:200].decode("ascii", "replace")
    m = re.search(r'encoding=["\']([A-Za-z0-9_.-]+)["\']', head)
    try:
        text = data.decode(m.group(1) if m else "utf-8")
    except (LookupError, UnicodeDecodeError):
        text = data.decode("utf-8", "replace")
    # the text is decoded now: say so, or editors would read it with the old encoding again
    return re.sub(r'^(\s*<\?xml[^>]*encoding=["\'])[^"\']+', r"\1UTF-8", text, count=1)


@bp.get("/<key>")
def process_page(key: str) -> str:
    actor = require_actor()
    db = get_db()
    draft = get_draft(db, key[:200])
    rows = _engine().definitions(db, key=key[:200])
    if not rows and draft is None:
        abort(404, description=f"No process {key[:60]}")
    counts = dict(db.execute(select(ProcessInstance.definition_id, func.count())
                             .where(ProcessInstance.definition_id.in_([d.id for d in rows]))
                             .group_by(ProcessInstance.definition_id)).all()) if rows else {}
    recent = list(db.scalars(select(ProcessInstance).where(
        ProcessInstance.definition_id.in_([d.id for d in rows]))
        .order_by(ProcessInstance.id.desc()).limit(50))) if rows else []
    from web.api.processes import _readable

    by_id = {d.id: d for d in rows}
    return render_template("editor/process.html", key=key[:200], versions=rows, draft=draft,
                           counts=counts, instances=_readable(db, actor, recent), by_id=by_id,
                           can_design=can_design(actor),
                           name=(rows[-1].name if rows else draft.name if draft else key))


@bp.get("/<key>/edit")
def edit(key: str) -> str:
    actor = require_actor()
    db = get_db()
    draft = get_draft(db, key[:200])
    wanted = request.args.get("version", "")
    source: dict[str, Any]
    if draft is not None and not wanted:
        source = {"bpmnXml": draft.bpmn_xml, "dmnXml": list(draft.dmn_xml or []),
                  "draftRevision": draft.revision, "from": "draft"}
    else:
        rows = _versions(key)
        chosen = rows[-1]
        if wanted:
            number = id_or_none(wanted)
            if number is None:
                abort(404)
            chosen = _version(key, number)
        source = {"bpmnXml": chosen.bpmn_xml, "dmnXml": list(chosen.dmn_xml or []),
                  "draftRevision": draft.revision if draft else None,
                  "from": f"v{chosen.version}"}
    config = {"key": key[:200], "readOnly": not can_design(actor), **source}
    return render_template("editor/edit.html", key=key[:200], config=config, draft=draft,
                           can_design=can_design(actor))


@bp.get("/<key>/backtest")
def backtest_page(key: str) -> str:
    """"Check against history": the form (days), and with ``days`` given the report of the
    saved draft (else the newest version) run on the events of that period."""
    actor = _require_design()
    db = get_db()
    bpmn, dmns, source = backtest_sources(db, key[:200])
    raw = request.args.get("days")
    report, errors = None, {}
    if raw is not None:
        days = id_or_none(raw.strip())
        try:
            report = run_backtest(db, actor, bpmn, dmns, days if days is not None else raw)
        except ValidationFailed:
            errors = {"days": _("Enter a number of days from 1 to %(n)s.", n=MAX_DAYS)}
    labels = {"deal": _("Deals"), "lead": _("Leads"), "contact": _("Contacts"),
              "company": _("Companies")}
    return render_template("editor/backtest.html", key=key[:200], source=source,
                           report=report, days=raw or "30", errors=errors,
                           entity_labels=labels)


@bp.get("/<key>/versions/<int:version>")
def version_page(key: str, version: int) -> str:
    d = _version(key, version)
    config = {"mode": "heatmap", "bpmnXml": d.bpmn_xml, "heatmap": heatmap(get_db(), d.id)}
    return render_template("editor/version.html", d=d, config=config)


@bp.get("/<key>/versions/<int:version>/export.bpmn")
def version_export(key: str, version: int) -> Response:
    d = _version(key, version)
    return Response(d.bpmn_xml, mimetype="application/xml", headers={
        "Content-Disposition": f'attachment; filename="{d.key}-v{d.version}.bpmn"'})


@bp.get("/<key>/compare")
def compare(key: str) -> str:
    rows = _versions(key)
    def pick(name: str, default: ProcessDefinition) -> ProcessDefinition:
        raw = request.args.get(name, "")
        number = id_or_none(raw)
        return default if number is None else _version(key, number)
    new = pick("to", rows[-1])
    old = pick("from", rows[-2] if len(rows) > 1 else rows[-1])
    diff = diff_bpmn(old.bpmn_xml, new.bpmn_xml)
    config = {"mode": "compare", "fromXml": old.bpmn_xml, "toXml": new.bpmn_xml, "diff": diff}
    return render_template("editor/compare.html", key=key[:200], versions=rows, old=old, new=new,
                           diff=diff, config=config)


@bp.post("/<key>/versions/<int:version>/<any(activate, deactivate):action>")
def set_active(key: str, version: int, action: str) -> Any:
    _require_design()
    d = _version(key, version)
    if action == "activate":
        _engine().activate(get_db(), d.key, d.version)
        flash(_("Version %(v)s is now active.", v=d.version), "success")
    else:
        _engine().deactivate(get_db(), d.key, d.version)
        flash(_("Version %(v)s no longer starts.", v=d.version), "success")
    get_db().commit()
    return redirect(url_for("editor.process_page", key=d.key))


@bp.post("/<key>/draft/discard")
def draft_discard(key: str) -> Any:
    actor = _require_design()
    discard_draft(get_db(), actor, key[:200])
    get_db().commit()
    flash(_("The draft was discarded."), "success")
    has_versions = bool(_engine().definitions(get_db(), key=key[:200]))
    return redirect(url_for("editor.process_page", key=key) if has_versions
                    else url_for("editor.process_list"))
