"""workspace: feed comments and likes; notification kinds, task/feed links, once-only keys

Revision ID: 0008_workspace
Revises: 0007_timers
Create Date: 2026-11-26 23:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import crm_models.db

revision = '0008_workspace'
down_revision = '0007_timers'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('feed_comment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('author_label', sa.String(length=300), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('mentions', sa.JSON(), nullable=False),
    sa.Column('created_at', crm_models.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['user_account.id'], name=op.f('fk_feed_comment_author_id_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['event_id'], ['audit_event.id'], name=op.f('fk_feed_comment_event_id_audit_event'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feed_comment'))
    )
    op.create_index('ix_feed_comment_event', 'feed_comment', ['event_id', 'id'], unique=False)
    op.create_table('feed_like',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', crm_models.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['audit_event.id'], name=op.f('fk_feed_like_event_id_audit_event'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_feed_like_user_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feed_like')),
    sa.UniqueConstraint('event_id', 'user_id', name=op.f('uq_feed_like_event_id_user_id'))
    )
    op.create_index(op.f('ix_feed_like_event_id'), 'feed_like', ['event_id'], unique=False)
    # Batch mode: SQLite adds a unique constraint only by rebuilding the table.
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=20), server_default='process', nullable=False))
        batch_op.add_column(sa.Column('task_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('event_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('dedup_key', sa.String(length=120), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_notification_user_id_dedup_key'), ['user_id', 'dedup_key'])


def downgrade() -> None:
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_notification_user_id_dedup_key'), type_='unique')
        batch_op.drop_column('dedup_key')
        batch_op.drop_column('event_id')
        batch_op.drop_column('task_id')
        batch_op.drop_column('kind')
    op.drop_index(op.f('ix_feed_like_event_id'), table_name='feed_like')
    op.drop_table('feed_like')
    op.drop_index('ix_feed_comment_event', table_name='feed_comment')
    op.drop_table('feed_comment')
