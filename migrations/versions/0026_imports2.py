"""imports 2: product stock and properties (from 1C), the 1C exchange's step state,
dedup keys of leads

Revision ID: 0026_imports2
Revises: 0017_invoices2
Create Date: 2026-12-06 05:05:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from crm_models.dedup import record_keys

revision = '0026_imports2'
down_revision = '0025_mail2'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('product', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stock', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('properties', sa.JSON(), nullable=False,
                                      server_default='{}'))
    with op.batch_alter_table('exchange_session', schema=None) as batch_op:
        batch_op.add_column(sa.Column('state', sa.JSON(), nullable=False,
                                      server_default='{}'))

    # leads get dedup keys from now on (an import matches them by phone / e-mail): the
    # existing ones get theirs here
    conn = op.get_bind()
    keys = sa.table('dedup_key', sa.column('entity_type'), sa.column('entity_id'),
                    sa.column('kind'), sa.column('value'))
    lead = sa.table('lead', sa.column('id'), sa.column('phones', sa.JSON()),
                    sa.column('emails', sa.JSON()))
    rows = []
    for rec in conn.execute(sa.select(lead)).mappings():
        for kind, value in sorted(record_keys(_Row(rec))):
            rows.append({'entity_type': 'lead', 'entity_id': rec['id'], 'kind': kind,
                         'value': value})
        if len(rows) >= 5000:
            conn.execute(keys.insert(), rows)
            rows = []
    if rows:
        conn.execute(keys.insert(), rows)


class _Row:
    def __init__(self, mapping: dict) -> None:
        self.phones = mapping.get('phones') or []
        self.emails = mapping.get('emails') or []
        self.inn = None


def downgrade() -> None:
    op.execute("DELETE FROM dedup_key WHERE entity_type = 'lead'")
    with op.batch_alter_table('exchange_session', schema=None) as batch_op:
        batch_op.drop_column('state')
    with op.batch_alter_table('product', schema=None) as batch_op:
        batch_op.drop_column('properties')
        batch_op.drop_column('stock')
