"""lists at scale: process_task_candidate (backfilled), partial inbox indexes, deal list indexes

Revision ID: 0011_list_indexes
Revises: 0009_sessions
Create Date: 2026-12-06 01:30:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011_list_indexes'
down_revision = '0009_sessions'
branch_labels = None
depends_on = None

#: The candidates of active tasks, one row per (user, task), from each row's JSON list.
_BACKFILL = {
    "sqlite": """
        INSERT INTO process_task_candidate (user_id, task_id)
        SELECT DISTINCT CAST(c.value AS INTEGER), t.id
        FROM process_task AS t, json_each(t.candidate_ids) AS c
        WHERE t.status IN ('open', 'claimed') AND c.value IS NOT NULL""",
    "postgresql": """
        INSERT INTO process_task_candidate (user_id, task_id)
        SELECT DISTINCT CAST(c.value AS INTEGER), t.id
        FROM process_task AS t, json_array_elements_text(t.candidate_ids) AS c(value)
        WHERE t.status IN ('open', 'claimed') AND json_typeof(t.candidate_ids) = 'array'
          AND c.value IS NOT NULL""",
}


def _where(status: str) -> dict[str, sa.TextClause]:
    clause = sa.text(f"status = '{status}'")
    return {"sqlite_where": clause, "postgresql_where": clause}


def upgrade() -> None:
    op.create_table('process_task_candidate',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['task_id'], ['process_task.id'], name=op.f('fk_process_task_candidate_task_id_process_task'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'task_id', name=op.f('pk_process_task_candidate'))
    )
    op.create_index(op.f('ix_process_task_candidate_task_id'), 'process_task_candidate', ['task_id'], unique=False)
    op.create_index('ix_process_task_open_assignee', 'process_task', ['assignee_id', 'priority', 'due_at', 'id'], unique=False, **_where('open'))
    op.create_index('ix_process_task_claimed', 'process_task', ['claimed_by'], unique=False, **_where('claimed'))
    dialect = op.get_bind().dialect.name
    if dialect in _BACKFILL:
        op.execute(_BACKFILL[dialect])
    op.create_index('ix_deal_responsible_stage_created', 'deal', ['responsible_id', 'stage_id', 'created_at', 'id'], unique=False)
    op.create_index('ix_deal_created', 'deal', ['created_at', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_deal_created', table_name='deal')
    op.drop_index('ix_deal_responsible_stage_created', table_name='deal')
    op.drop_index('ix_process_task_claimed', table_name='process_task', **_where('claimed'))
    op.drop_index('ix_process_task_open_assignee', table_name='process_task', **_where('open'))
    op.drop_index(op.f('ix_process_task_candidate_task_id'), table_name='process_task_candidate')
    op.drop_table('process_task_candidate')
