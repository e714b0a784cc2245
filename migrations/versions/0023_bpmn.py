"""bpmn: what a definition's running instances can catch from CRM events

Revision ID: 0023_bpmn
Revises: 0013_invoices
Create Date: 2026-12-06 03:45:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0023_bpmn'
down_revision = '0019_imports'
branch_labels = None
depends_on = None


B = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"


def catches_of(bpmn_xml: str) -> list[str] | None:
    """What engine.validation computes on deploy (message names caught mid-process, "*" for
    conditional events), for the definitions deployed before: written here, not imported, so
    the migration stays as it is when the engine changes."""
    from lxml import etree
    try:
        root = etree.fromstring(bpmn_xml.encode("utf-8"),
                                etree.XMLParser(resolve_entities=False, no_network=True))
    except (etree.XMLSyntaxError, ValueError):
        return None
    names = {m.get("id"): m.get("name") for m in root.iter(f"{B}message")}
    out: set[str] = set()
    for el in root.iter():
        tag = el.tag if isinstance(el.tag, str) else ""
        local = tag[len(B):] if tag.startswith(B) else ""
        if local == "conditionalEventDefinition":
            out.add("*")
        elif local == "receiveTask" and names.get(el.get("messageRef")):
            out.add(names[el.get("messageRef")])
        elif local == "messageEventDefinition":
            owner = el.getparent()
            kind = owner.tag[len(B):] if owner.tag.startswith(B) else ""
            in_event_sub = owner.getparent() is not None and \
                owner.getparent().get("triggeredByEvent") == "true"
            if (kind in ("intermediateCatchEvent", "boundaryEvent") or in_event_sub) \
                    and names.get(el.get("messageRef")):
                out.add(names[el.get("messageRef")])
    return sorted(out) or None


def upgrade() -> None:
    with op.batch_alter_table('process_definition', schema=None) as batch_op:
        batch_op.add_column(sa.Column('catches', sa.JSON(), nullable=True))
    table = sa.table('process_definition', sa.column('id', sa.Integer),
                     sa.column('bpmn_xml', sa.Text), sa.column('catches', sa.JSON))
    conn = op.get_bind()
    for row_id, xml in conn.execute(sa.select(table.c.id, table.c.bpmn_xml)).all():
        catches = catches_of(xml or "")
        if catches:
            conn.execute(table.update().where(table.c.id == row_id).values(catches=catches))


def downgrade() -> None:
    with op.batch_alter_table('process_definition', schema=None) as batch_op:
        batch_op.drop_column('catches')
