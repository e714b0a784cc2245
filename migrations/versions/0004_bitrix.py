"""bitrix: incoming webhooks, outgoing event handlers, deliveries and their outbox cursor

Revision ID: 0004
Revises: 0002
Create Date: 2026-11-26 23:30:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import crm_models.db

revision = '0004'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('bitrix_delivery_cursor',
    sa.Column('name', sa.String(length=50), nullable=False),
    sa.Column('last_outbox_id', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_bitrix_delivery_cursor'))
    )
    op.create_table('bitrix_event_handler',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event', sa.String(length=40), nullable=False),
    sa.Column('url', sa.String(length=1000), nullable=False),
    sa.Column('application_token', sa.String(length=64), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', crm_models.db.UTCDateTime(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['user_account.id'], name=op.f('fk_bitrix_event_handler_created_by_id_user_account'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bitrix_event_handler'))
    )
    with op.batch_alter_table('bitrix_event_handler', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bitrix_event_handler_event'), ['event'], unique=False)

    op.create_table('bitrix_webhook',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('scopes', sa.JSON(), nullable=False),
    sa.Column('secret_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', crm_models.db.UTCDateTime(), nullable=False),
    sa.Column('revoked_at', crm_models.db.UTCDateTime(), nullable=True),
    sa.Column('last_used_at', crm_models.db.UTCDateTime(), nullable=True),
    sa.Column('bucket_level', sa.Float(), nullable=False),
    sa.Column('bucket_at', crm_models.db.UTCDateTime(), nullable=True),
    sa.Column('bucket_version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_bitrix_webhook_user_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bitrix_webhook')),
    sa.UniqueConstraint('secret_hash', name=op.f('uq_bitrix_webhook_secret_hash'))
    )
    with op.batch_alter_table('bitrix_webhook', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bitrix_webhook_user_id'), ['user_id'], unique=False)

    op.create_table('bitrix_delivery',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('handler_id', sa.Integer(), nullable=False),
    sa.Column('outbox_event_id', sa.Integer(), nullable=False),
    sa.Column('event', sa.String(length=40), nullable=False),
    sa.Column('entity_id', sa.Integer(), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', crm_models.db.UTCDateTime(), nullable=False),
    sa.Column('lease_until', crm_models.db.UTCDateTime(), nullable=True),
    sa.Column('last_status', sa.Integer(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.Column('created_at', crm_models.db.UTCDateTime(), nullable=False),
    sa.Column('sent_at', crm_models.db.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['handler_id'], ['bitrix_event_handler.id'], name=op.f('fk_bitrix_delivery_handler_id_bitrix_event_handler'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bitrix_delivery')),
    sa.UniqueConstraint('handler_id', 'outbox_event_id', name=op.f('uq_bitrix_delivery_handler_id_outbox_event_id'))
    )
    with op.batch_alter_table('bitrix_delivery', schema=None) as batch_op:
        batch_op.create_index('ix_bitrix_delivery_due', ['status', 'next_attempt_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('bitrix_delivery', schema=None) as batch_op:
        batch_op.drop_index('ix_bitrix_delivery_due')

    op.drop_table('bitrix_delivery')
    with op.batch_alter_table('bitrix_webhook', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bitrix_webhook_user_id'))

    op.drop_table('bitrix_webhook')
    with op.batch_alter_table('bitrix_event_handler', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bitrix_event_handler_event'))

    op.drop_table('bitrix_event_handler')
    op.drop_table('bitrix_delivery_cursor')
