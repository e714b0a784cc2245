"""sessions: per-user session generation, credential revocation time, failed-login details

Revision ID: 0009_sessions
Revises: 0008_workspace
Create Date: 2026-12-06 01:30:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import crm_models.db

revision = '0009_sessions'
down_revision = '0008_workspace'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_generation', sa.Integer(), server_default='0',
                                      nullable=False))
        batch_op.add_column(sa.Column('credentials_revoked_at', crm_models.db.UTCDateTime(),
                                      nullable=True))
    with op.batch_alter_table('login_attempt', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email', sa.String(length=254), server_default='',
                                      nullable=False))
        batch_op.add_column(sa.Column('address', sa.String(length=64), server_default='',
                                      nullable=False))
        batch_op.add_column(sa.Column('cleared', sa.Boolean(), server_default=sa.false(),
                                      nullable=False))
        batch_op.create_index(batch_op.f('ix_login_attempt_email'), ['email'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('login_attempt', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_login_attempt_email'))
        batch_op.drop_column('cleared')
        batch_op.drop_column('address')
        batch_op.drop_column('email')
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_column('credentials_revoked_at')
        batch_op.drop_column('session_generation')
