"""What the browser process editor needs beyond deploy/activate (``web.api.processes``).

Designers (the ``design_processes`` right) validate drawings without deploying, keep drafts,
dry-run a drawing on a record, deploy from the editor (which also discards the draft) and
create processes from templates. Everyone signed in may read the process summary, the
templates, version diffs and the per-version heatmap; an instance's trace is visible to whoever
may see the instance. Bodies carry the BPMN as ``bpmn_xml`` (text) and the DMN files as
``dmn_xml`` (a list of texts); an invalid drawing is answered with
``errors: [{element_id, message}]`` so the editor can mark each faulty shape.
"""
from __future__ import annotations

from typing import Any

from flask import current_app
from sqlalchemy import func, select

from automation.bpmn_diff import diff_bpmn
from automation.drafts import ProcessDraft, discard_draft, drafts, get_draft, save_draft
from automation.dryrun import DryRunRequest, dry_run, typed_snapshot
from automation.process_templates import TEMPLATES, instantiate
from automation.process_trace import heatmap, instance_trace
from automation.snapshot import ENTITY_TYPES, SnapshotError, start_data
from crm_models.errors import Conflict, NotFound, ValidationFailed
from crm_models.services.records import load
from engine.errors import DefinitionInvalid
from engine.runtime import Engine
from engine.safe_xml import UnsafeXml
from engine.store import ProcessDefinition, ProcessInstance, Status

from ..editor.engine_messages import translate_errors
from .common import (
    api_route,
    check_id,
    commit,
    db_actor,
    id_param,
    json_body,
    only_keys,
    query_args,
    single,
)
from .processes import _instance_for, definition_dict

TAG = "process editor"
OBJ: dict[str, Any] = {"type": "object"}


def _engine() -> Engine:
    return current_app.extensions["engine"]


def _sources(body: dict[str, Any]) -> tuple[str, list[str]]:
    bpmn, dmns = body.get("bpmn_xml"), body.get("dmn_xml", [])
    if not isinstance(bpmn, str) or not bpmn.strip():
        raise ValidationFailed({"bpmn_xml": "send the BPMN XML as text"})
    if not isinstance(dmns, list) or not all(isinstance(d, str) for d in dmns):
        raise ValidationFailed({"dmn_xml": "must be a list of DMN XML texts"})
    return bpmn, dmns


def _errors_json(errors: list[Any]) -> list[dict[str, Any]]:
    return [{"element_id": e.element_id, "message": e.message, "line": e.line}
            for e in translate_errors(errors)]


def draft_dict(d: ProcessDraft, *, full: bool = False) -> dict[str, Any]:
    out = {"key": d.key, "name": d.name, "revision": d.revision, "updated_by": d.updated_by,
           "updated_at": d.updated_at.isoformat() if d.updated_at else None}
    if full:
        out["bpmn_xml"], out["dmn_xml"] = d.bpmn_xml, list(d.dmn_xml or [])
    return out


# --- summary -----------------------------------------------------------------------------------

def process_summary(db: Any) -> list[dict[str, Any]]:
    """One row per process key: versions, the active one, running instances, open incidents
    and the draft, if any (for the process list page and its API)."""
    rows: dict[str, dict[str, Any]] = {}
    for d in _engine().definitions(db):
        row = rows.setdefault(d.key, {"key": d.key, "name": d.name, "versions": 0,
                                      "latest": None, "active_version": None,
                                      "running": 0, "incidents": 0, "draft": None})
        row["versions"] += 1
        row["name"], row["latest"] = d.name, definition_dict(d)
        if d.active:
            row["active_version"] = d.version
    counts = db.execute(select(ProcessDefinition.key, ProcessInstance.status, func.count())
                        .join(ProcessInstance, ProcessInstance.definition_id
                              == ProcessDefinition.id)
                        .where(ProcessInstance.status.in_(Status.OPEN))
                        .group_by(ProcessDefinition.key, ProcessInstance.status)).all()
    for key, status, n in counts:
        if key in rows:
            rows[key]["running"] += n
            if status == Status.INCIDENT:
                rows[key]["incidents"] += n
    incident_waits = db.execute(select(ProcessDefinition.key, func.count())
                                .join(ProcessInstance, ProcessInstance.definition_id
                                      == ProcessDefinition.id)
                                .where(ProcessInstance.status == Status.WAITING,
                                       ProcessInstance.incident_element_id.is_not(None))
                                .group_by(ProcessDefinition.key)).all()
    for key, n in incident_waits:  # failing service calls awaiting their retry
        if key in rows:
            rows[key]["incidents"] += n
    for d in drafts(db):
        row = rows.setdefault(d.key, {"key": d.key, "name": d.name, "versions": 0,
                                      "latest": None, "active_version": None, "running": 0,
                                      "incidents": 0, "draft": None})
        row["draft"] = draft_dict(d)
    return sorted(rows.values(), key=lambda r: r["key"])


@api_route("/editor/processes", tag=TAG, response=OBJ,
           summary="Processes by key: versions, active version, running instances, incidents")
def editor_processes() -> Any:
    db, _actor = db_actor()
    return {"items": process_summary(db)}


# --- validate, drafts, deploy ------------------------------------------------------------------

@api_route("/editor/validate", methods=("POST",), tag=TAG, response=OBJ, body=OBJ,
           summary="Check a drawing as deploy would, without deploying it")
def editor_validate() -> Any:
    body = json_body()
    only_keys(body, ("bpmn_xml", "dmn_xml"), "a validation")
    db, actor = db_actor()
    actor.require_flag("design_processes")
    bpmn, dmns = _sources(body)
    errors = _engine().validate(bpmn, dmns, session=db)
    return {"valid": not errors, "errors": _errors_json(errors)}


@api_route("/editor/drafts/<key>", tag=TAG, response=OBJ, summary="The draft of a process")
def editor_draft_get(key: str) -> Any:
    db, _actor = db_actor()
    row = get_draft(db, key[:200])
    if row is None:
        raise NotFound(f"There is no draft of {key[:60]}")
    return draft_dict(row, full=True)


@api_route("/editor/drafts", methods=("PUT",), tag=TAG, response=OBJ, body=OBJ,
           extra={"errors": (409,)},
           summary="Save the draft of the process the BPMN defines (its key is the process id)")
def editor_draft_save() -> Any:
    body = json_body()
    only_keys(body, ("bpmn_xml", "dmn_xml", "revision"), "a draft")
    db, actor = db_actor()
    revision = body.get("revision")
    if revision is not None:
        revision = check_id(revision, "revision")
    bpmn, dmns = _sources(body)
    row = save_draft(db, actor, bpmn_xml=bpmn, dmn_xml=dmns, revision=revision)
    out = draft_dict(row)
    commit()
    return out


@api_route("/editor/drafts/<key>", methods=("DELETE",), tag=TAG, response=OBJ,
           summary="Discard the draft of a process")
def editor_draft_discard(key: str) -> Any:
    db, actor = db_actor()
    discard_draft(db, actor, key[:200])
    commit()
    return {"discarded": key[:200]}


@api_route("/editor/deploy", methods=("POST",), tag=TAG, status=201, response=OBJ, body=OBJ,
           extra={"errors": (409,)},
           summary="Deploy a drawing as the next version (and discard its draft)")
def editor_deploy() -> Any:
    body = json_body()
    only_keys(body, ("bpmn_xml", "dmn_xml", "activate"), "a deployment")
    db, actor = db_actor()
    actor.require_flag("design_processes")
    bpmn, dmns = _sources(body)
    activate = body.get("activate", True)
    if not isinstance(activate, bool):
        raise ValidationFailed({"activate": "must be true or false"})
    try:
        definition = _engine().deploy(db, bpmn, dmns, deployed_by=actor.user_id,
                                      activate=activate)
    except DefinitionInvalid as exc:
        raise DefinitionInvalid(translate_errors(exc.errors)) from None
    draft = get_draft(db, definition.key)
    if draft is not None:
        db.delete(draft)
    out = definition_dict(definition)
    commit()
    return out, 201


# --- templates ---------------------------------------------------------------------------------

@api_route("/editor/templates", tag=TAG, response=OBJ, summary="Templates for new processes")
def editor_templates() -> Any:
    db_actor()
    return {"items": [{"name": t.name, "title": t.title, "description": t.description}
                      for t in TEMPLATES.values()]}


def create_from_template(db: Any, actor: Any, template: str, key: str, name: str
                         ) -> ProcessDraft:
    """A new draft from a template; the key must be new (no version, no draft)."""
    actor.require_flag("design_processes")
    xml = instantiate(template, key=key, title=name)
    if _engine().definitions(db, key=key) or get_draft(db, key) is not None:
        raise Conflict(f"A process with the key {key} already exists",
                       fields={"key": "is already used by another process"})
    return save_draft(db, actor, bpmn_xml=xml, dmn_xml=[])


@api_route("/editor/drafts/from-template", methods=("POST",), tag=TAG, status=201, response=OBJ,
           body=OBJ, extra={"errors": (409,)}, summary="Start a new process from a template")
def editor_from_template() -> Any:
    body = json_body()
    only_keys(body, ("template", "key", "name"), "a new process")
    db, actor = db_actor()
    values = [body.get(k) for k in ("template", "key", "name")]
    bad = {k: "must be text" for k, v in zip(("template", "key", "name"), values, strict=True)
           if not isinstance(v, str)}
    if bad:
        raise ValidationFailed(bad)
    row = create_from_template(db, actor, *values)
    out = draft_dict(row, full=True)
    commit()
    return out, 201


# --- dry run -----------------------------------------------------------------------------------

@api_route("/editor/dry-run", methods=("POST",), tag=TAG, response=OBJ, body=OBJ,
           summary="Run a drawing on a record or typed values; nothing is saved or called")
def editor_dry_run() -> Any:
    body = json_body()
    only_keys(body, ("bpmn_xml", "dmn_xml", "entity_type", "entity_id", "values", "message"),
              "a dry run")
    db, actor = db_actor()
    actor.require_flag("design_processes")
    bpmn, dmns = _sources(body)
    entity = body.get("entity_type")
    if entity not in ENTITY_TYPES:
        raise ValidationFailed({"entity_type": "must be one of: " + ", ".join(ENTITY_TYPES)})
    message = body.get("message")
    if message is not None and (not isinstance(message, str) or len(message) > 200):
        raise ValidationFailed({"message": "must be an event name such as deal.created"})
    entity_id, values = body.get("entity_id"), body.get("values")
    if (entity_id is None) == (values is None):
        raise ValidationFailed({"entity_id": "give either a record (entity_id) or typed "
                                             "field values (values)"})
    if entity_id is not None:
        entity_id = check_id(entity_id, "entity_id")
        load(db, actor, entity, entity_id, "read")
        try:
            data = start_data(db, entity, entity_id)
        except SnapshotError as exc:  # pragma: no cover - load() above already checked
            raise NotFound(str(exc)) from None
    else:
        if not isinstance(values, dict):
            raise ValidationFailed({"values": "must be an object of field values"})
        data = typed_snapshot(db, entity, values)
    db.commit()  # end the read transaction: the dry run rolls back everything after this
    result = dry_run(db, _engine(), bpmn, dmns, DryRunRequest(
        data=data, entity_type=entity, entity_id=entity_id, message=message))
    result.errors = translate_errors(result.errors)
    return result.to_json()


# --- backtest ----------------------------------------------------------------------------------

def backtest_sources(db: Any, key: Any) -> tuple[str, list[str], str]:
    """The drawing a backtest of ``key`` runs: its saved draft, else its newest version
    (BPMN, DMNs, and "draft" or "vN")."""
    if not isinstance(key, str) or not key.strip() or len(key) > 200:
        raise ValidationFailed({"key": "must be the key of a process or of a draft"})
    draft = get_draft(db, key)
    if draft is not None:
        return draft.bpmn_xml, list(draft.dmn_xml or []), "draft"
    rows = _engine().definitions(db, key=key)
    if not rows:
        raise NotFound(f"No process or draft {key[:60]}")
    return rows[-1].bpmn_xml, list(rows[-1].dmn_xml or []), f"v{rows[-1].version}"


def run_backtest(db: Any, actor: Any, bpmn: str, dmns: list[str], days: Any) -> dict[str, Any]:
    """``automation.backtest`` as the API and the page answer it (examples with their card's
    address); a bad ``days`` names the field."""
    from automation.backtest import BacktestError, backtest
    from web.pages.format import card_url

    try:
        report = backtest(db, _engine(), bpmn, dmns, days=days, actor=actor)
    except BacktestError as exc:
        raise ValidationFailed({exc.field: exc.message}) from None
    finally:
        db.rollback()  # a read-only run: end its transaction (nothing was written)
    out = report.to_json()
    for group in out["groups"]:
        for ex in group["examples"]:
            ex["url"] = card_url(ex["entity_type"], ex["entity_id"])
    return out


@api_route("/editor/backtest", methods=("POST",), tag=TAG, response=OBJ, body=OBJ,
           summary="Run a drawing on the recorded events of the last N days; nothing is "
                   "written. Reports the records that would go elsewhere, grouped, with "
                   "examples")
def editor_backtest() -> Any:
    body = json_body()
    only_keys(body, ("bpmn_xml", "dmn_xml", "key", "days"), "a backtest")
    db, actor = db_actor()
    actor.require_flag("design_processes")
    if "key" in body:
        if "bpmn_xml" in body:
            raise ValidationFailed({"key": "give either a key or bpmn_xml, not both"})
        bpmn, dmns, source = backtest_sources(db, body["key"])
    else:
        bpmn, dmns = _sources(body)
        source = "body"
    return {"source": source, **run_backtest(db, actor, bpmn, dmns, body.get("days", 30))}


# --- versions, heatmap, traces -----------------------------------------------------------------

@api_route("/editor/diff", tag=TAG, response=OBJ, query=("from", "to"),
           summary="What changed between two versions (elements added, removed, changed)")
def editor_diff() -> Any:
    db, _actor = db_actor()
    args = query_args()
    ids = {}
    for name in ("from", "to"):
        ids[name] = _engine().definition(db, id_param(name, single(args, name)))
    try:
        out = diff_bpmn(ids["from"].bpmn_xml, ids["to"].bpmn_xml)
    except UnsafeXml as exc:  # pragma: no cover - deployed files were parsed on deploy
        raise ValidationFailed({"from": str(exc)}) from None
    return {"from": definition_dict(ids["from"]), "to": definition_dict(ids["to"]), **out}


@api_route("/process-definitions/<id:definition_id>/heatmap", tag=TAG, response=OBJ,
           summary="Per element: instances of this version that passed, wait or are stuck")
def definition_heatmap(definition_id: int) -> Any:
    db, _actor = db_actor()
    _engine().definition(db, definition_id)
    return heatmap(db, definition_id)


@api_route("/process-instances/<id:instance_id>/trace", tag=TAG, response=OBJ,
           summary="The path an instance took, where it stands and its incident")
def instance_trace_view(instance_id: int) -> Any:
    db, actor = db_actor()
    inst = _instance_for(db, actor, instance_id)
    definition = _engine().definition(db, inst.definition_id)
    return instance_trace(db, inst, definition.bpmn_xml)



# --- instance migration ------------------------------------------------------------------------

@api_route("/process-definitions/<id:definition_id>/migrate", methods=("POST",), tag=TAG,
           response=OBJ, body=OBJ,
           summary="Move running instances to this version (a dry run unless dry_run is false)")
def definition_migrate(definition_id: int) -> Any:
    """Body: ``{"instance_ids": [...], "mapping": {old element id: new element id},
    "dry_run": true}``; answers one report per instance (``engine.migration``). Without
    ``instance_ids`` every running instance of the other versions of the process is taken."""
    from engine.migration import migrate

    body = json_body()
    only_keys(body, ("instance_ids", "mapping", "dry_run"), "a migration")
    db, actor = db_actor()
    actor.require_flag("design_processes")
    target = _engine().definition(db, definition_id)
    dry = body.get("dry_run", True)
    if not isinstance(dry, bool):
        raise ValidationFailed({"dry_run": "must be true or false"})
    mapping = body.get("mapping") or {}
    if not isinstance(mapping, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()):
        raise ValidationFailed({"mapping": "must map element ids to element ids"})
    ids = body.get("instance_ids")
    if ids is None:
        ids = list(db.scalars(
            select(ProcessInstance.id).join(ProcessDefinition)
            .where(ProcessDefinition.key == target.key, ProcessDefinition.id != target.id,
                   ProcessInstance.status.in_(Status.OPEN))
            .order_by(ProcessInstance.id)))
    elif not isinstance(ids, list) or len(ids) > 1000:
        raise ValidationFailed({"instance_ids": "must be a list of at most 1000 ids"})
    else:
        ids = [check_id(i, "instance_ids") for i in ids]
    reports = migrate(_engine(), db, ids, target, mapping, dry_run=dry,
                      user_id=actor.user_id)
    if not dry:
        commit()
    return {"dry_run": dry, "to_version": target.version, "items": reports,
            "movable": sum(r["ok"] for r in reports),
            "migrated": sum(r["migrated"] for r in reports)}
