"""Process drafts: what a designer is drawing, saved on the server but never run.

One draft per process key (the ``bpmn:process`` id), shared by every designer. A draft is
plain text (BPMN plus the DMN files it uses) and may be invalid — validation happens on
deploy. Saving carries the ``revision`` the editor loaded; a stale revision is a ``Conflict``
so two designers never silently overwrite each other. Only holders of the
``design_processes`` right may save or discard drafts (``PermissionDenied`` otherwise).
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from crm_models.db import Base, UTCDateTime, utcnow
from crm_models.errors import Conflict, NotFound, ValidationFailed
from crm_models.permissions import Actor
from engine.extensions import B
from engine.safe_xml import UnsafeXml, parse_xml

#: an XML NCName (what bpmn-js and the engine accept as a process id), at most 200 chars
KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,199}\Z")
MAX_DMN_FILES = 20


class ProcessDraft(Base):
    """The unsaved work on one process key (migration ``0006_editor``)."""

    __tablename__ = "process_draft"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    bpmn_xml: Mapped[str] = mapped_column(Text)
    dmn_xml: Mapped[list[str]] = mapped_column(JSON)
    revision: Mapped[int] = mapped_column(Integer)
    updated_by: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


@dataclass(frozen=True)
class ProcessHeader:
    """Key and name of the process a BPMN file defines (the executable one, else the only)."""

    key: str
    name: str


def process_header(bpmn_xml: str | bytes, *, field: str = "bpmn_xml") -> ProcessHeader:
    """Read the process key and name; ``ValidationFailed`` naming ``field`` if there is none."""
    try:
        root = parse_xml(bpmn_xml, what="the BPMN file")
    except UnsafeXml as exc:
        raise ValidationFailed({field: str(exc)}) from None
    if root.tag != f"{B}definitions":
        raise ValidationFailed({field: "is not BPMN 2.0: the root must be bpmn:definitions"})
    processes = root.findall(f"{B}process")
    executable = [p for p in processes if p.get("isExecutable") == "true"]
    chosen = executable or processes
    if not chosen:
        raise ValidationFailed({field: "the file has no bpmn:process"})
    process = chosen[0]
    key = process.get("id") or ""
    if not KEY_RE.match(key):
        raise ValidationFailed({field: f"the process id '{key[:60]}' must be a letter or '_' "
                                       "followed by letters, digits, '_', '-' or '.'"})
    return ProcessHeader(key, (process.get("name") or key)[:300])


def _text(value: Any, field: str) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        raise ValidationFailed({field: "must be XML text"})
    return value


def get_draft(session: Session, key: str) -> ProcessDraft | None:
    return session.scalars(select(ProcessDraft).where(ProcessDraft.key == key)).first()


def drafts(session: Session) -> list[ProcessDraft]:
    return list(session.scalars(select(ProcessDraft).order_by(ProcessDraft.key)))


def save_draft(session: Session, actor: Actor, *, bpmn_xml: Any, dmn_xml: Any = (),
               revision: int | None = None) -> ProcessDraft:
    """Create or overwrite the draft of the key the BPMN defines.

    ``revision`` is the one the editor started from (None: the editor believes there is no
    draft yet). Raises ``ValidationFailed`` for unreadable XML, ``Conflict`` when someone
    saved in between.
    """
    actor.require_flag("design_processes")
    xml = _text(bpmn_xml, "bpmn_xml")
    if not isinstance(dmn_xml, list | tuple) or len(dmn_xml) > MAX_DMN_FILES:
        raise ValidationFailed({"dmn_xml": f"must be a list of at most {MAX_DMN_FILES} DMN "
                                           "files"})
    dmns = [_text(d, f"dmn_xml[{i}]") for i, d in enumerate(dmn_xml)]
    for i, d in enumerate(dmns):
        try:
            parse_xml(d, what=f"DMN file {i + 1}")
        except UnsafeXml as exc:
            raise ValidationFailed({f"dmn_xml[{i}]": str(exc)}) from None
    header = process_header(xml)
    row = session.scalars(select(ProcessDraft).where(ProcessDraft.key == header.key)
                          .with_for_update()).first()
    if row is None:
        if revision is not None:
            raise Conflict(f"The draft of {header.key} was discarded or deployed meanwhile; "
                           "reload the editor")
        row = ProcessDraft(key=header.key, revision=0)
        session.add(row)
    elif revision != row.revision:
        raise Conflict(f"Someone else saved the draft of {header.key} meanwhile (revision "
                       f"{row.revision}); reload the editor")
    row.name, row.bpmn_xml, row.dmn_xml = header.name, xml, dmns
    row.revision += 1
    row.updated_by, row.updated_at = actor.user_id, utcnow()
    try:
        with session.begin_nested():  # two first saves of one key: one wins, one is told
            session.flush()
    except IntegrityError:
        raise Conflict(f"Someone else created the draft of {header.key} meanwhile; reload "
                       "the editor") from None
    return row


def discard_draft(session: Session, actor: Actor, key: str) -> None:
    """Delete the draft of ``key`` (``NotFound`` if there is none)."""
    actor.require_flag("design_processes")
    row = get_draft(session, key)
    if row is None:
        raise NotFound(f"There is no draft of {key[:60]}")
    session.delete(row)
    session.flush()
