"""The processes Marshrut ships with (``processes/*.bpmn``), deployed by ``init-db``."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.runtime import Engine
from engine.store import ProcessDefinition

PROCESSES_DIR = Path(__file__).resolve().parent.parent / "processes"
SHIPPED = ("key_client_routing.bpmn", "large_deal_routing.bpmn", "stale_deal_followup.bpmn")


def deploy_shipped(session: Session, engine: Engine, *, deployed_by: int | None = None,
                   directory: Path = PROCESSES_DIR,
                   names: tuple[str, ...] = SHIPPED) -> list[ProcessDefinition]:
    """Deploy and activate each shipped process unless that exact BPMN is already deployed.

    Idempotent: running ``init-db`` again changes nothing, and a version an admin deployed
    or deactivated since is left alone (an identical file is never deployed twice). Raises
    ``DefinitionInvalid`` if a file no longer fits the org chart (e.g. an unknown user).
    """
    out = []
    for name in names:
        xml = (directory / name).read_text(encoding="utf-8")
        existing = session.scalars(select(ProcessDefinition)
                                   .where(ProcessDefinition.bpmn_xml == xml)).first()
        out.append(existing if existing is not None else
                   engine.deploy(session, xml, deployed_by=deployed_by, activate=True))
    return out
