"""bpmn: what a definition's running instances can catch from CRM events

Revision ID: 0023_bpmn
Revises: 0013_invoices
Create Date: 2026-12-06 03:45:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0023_bpmn'
down_revision = '0013_invoices'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('process_definition', schema=None) as batch_op:
        batch_op.add_column(sa.Column('catches', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('process_definition', schema=None) as batch_op:
        batch_op.drop_column('catches')
