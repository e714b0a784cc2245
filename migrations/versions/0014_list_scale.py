"""lists at scale: the kanban's per-stage totals from one covering index; a person's deals in a stage by id

Revision ID: 0014_list_scale
Revises: 0013_invoices
Create Date: 2026-12-06 03:40:00
"""
from __future__ import annotations

from alembic import op

revision = '0014_list_scale'
down_revision = '0013_invoices'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_deal_responsible_stage', 'deal', ['responsible_id', 'stage_id', 'id'],
                    unique=False)
    op.create_index('ix_deal_pipeline_stage_totals', 'deal',
                    ['pipeline_id', 'stage_id', 'currency', 'amount'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_deal_pipeline_stage_totals', table_name='deal')
    op.drop_index('ix_deal_responsible_stage', table_name='deal')
