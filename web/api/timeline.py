"""A record's timeline over REST: comments and activities of leads, deals, contacts, companies."""
from __future__ import annotations

from typing import Any

from crm_models.activity import Activity, Comment
from crm_models.services import (
    add_activity,
    add_comment,
    complete_activity,
    list_activities,
    list_comments,
)

from .common import (
    Operation,
    add_route,
    api_route,
    check_id,
    commit,
    db_actor,
    json_body,
    list_of,
    only_keys,
    ref,
)
from .crm import SERVICES

ACTIVITY_KEYS = ("type", "subject", "description", "due_at", "responsible_id")


def comment_dict(c: Comment) -> dict[str, Any]:
    return {"id": c.id, "entity_type": c.entity_type, "entity_id": c.entity_id,
            "author_id": c.author_id, "author_label": c.author_label, "text": c.text,
            "created_at": c.created_at.isoformat()}


def activity_dict(a: Activity) -> dict[str, Any]:
    return {"id": a.id, "type": a.type, "subject": a.subject, "description": a.description,
            "due_at": a.due_at.isoformat() if a.due_at else None, "done": a.done,
            "responsible_id": a.responsible_id, "entity_type": a.entity_type,
            "entity_id": a.entity_id, "created_by_id": a.created_by_id,
            "created_at": a.created_at.isoformat()}


def comments_list(entity: str, record_id: int) -> Any:
    db, actor = db_actor()
    return {"items": [comment_dict(c) for c in list_comments(db, actor, entity, record_id)]}


def comments_add(entity: str, record_id: int) -> Any:
    body = json_body()
    only_keys(body, ("text",), "a comment")
    db, actor = db_actor()
    comment = add_comment(db, actor, entity_type=entity, entity_id=record_id,
                          text=body.get("text"))
    out = comment_dict(comment)
    commit()
    return out, 201


def activities_list(entity: str, record_id: int) -> Any:
    db, actor = db_actor()
    return {"items": [activity_dict(a) for a in list_activities(db, actor, entity, record_id)]}


def activities_add(entity: str, record_id: int) -> Any:
    body = json_body()
    only_keys(body, ACTIVITY_KEYS, "an activity")
    responsible_id = check_id(body.get("responsible_id"), "responsible_id", nullable=True)
    db, actor = db_actor()
    act = add_activity(db, actor, entity_type=entity, entity_id=record_id,
                       type=body.get("type"), subject=body.get("subject", ""),
                       description=body.get("description", ""), due_at=body.get("due_at"),
                       responsible_id=responsible_id)
    out = activity_dict(act)
    commit()
    return out, 201


def _register() -> None:
    for entity, s in SERVICES.items():
        d = {"entity": entity}
        base = f"/{s.plural}/<id:record_id>"
        add_route(f"{base}/comments", f"{entity}_comments", comments_list, ["GET"], Operation(
            f"Comments on a {entity}, oldest first", s.plural, response=list_of("Comment"), entity=entity), d)
        add_route(f"{base}/comments", f"{entity}_comment_add", comments_add, ["POST"], Operation(
            f"Comment on a {entity}", s.plural, body=ref("CommentCreate"),
            response=ref("Comment"), status=201, entity=entity), d)
        add_route(f"{base}/activities", f"{entity}_activities", activities_list, ["GET"],
                  Operation(f"Activities of a {entity}", s.plural, response=list_of("Activity"),
                            entity=entity), d)
        add_route(f"{base}/activities", f"{entity}_activity_add", activities_add, ["POST"],
                  Operation(f"Plan an activity (call, meeting, e-mail, to-do) on a {entity}",
                            s.plural, body=ref("ActivityCreate"), response=ref("Activity"),
                            status=201, entity=entity), d)


_register()


@api_route("/activities/<id:activity_id>/complete", methods=("POST",), tag="activities",
           summary="Mark an activity done", response=ref("Activity"))
def activity_complete(activity_id: int) -> Any:
    db, actor = db_actor()
    out = activity_dict(complete_activity(db, actor, activity_id))
    commit()
    return out
