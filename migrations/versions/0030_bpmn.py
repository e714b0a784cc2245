"""bpmn: the signals that start a definition (signal start events)

Revision ID: 0030_bpmn
Revises: 0026_imports2
Create Date: 2026-12-06 07:45:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0030_bpmn'
down_revision = '0026_imports2'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nothing to fill in: signal start events could not be deployed before this revision.
    with op.batch_alter_table('process_definition', schema=None) as batch_op:
        batch_op.add_column(sa.Column('signal_starts', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('process_definition', schema=None) as batch_op:
        batch_op.drop_column('signal_starts')
