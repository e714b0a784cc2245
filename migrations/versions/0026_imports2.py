"""imports 2: product stock and properties (from 1C), the 1C exchange's step state

Revision ID: 0026_imports2
Revises: 0017_invoices2
Create Date: 2026-12-06 05:05:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0026_imports2'
down_revision = '0017_invoices2'
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


def downgrade() -> None:
    with op.batch_alter_table('exchange_session', schema=None) as batch_op:
        batch_op.drop_column('state')
    with op.batch_alter_table('product', schema=None) as batch_op:
        batch_op.drop_column('properties')
        batch_op.drop_column('stock')
