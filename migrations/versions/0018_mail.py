"""mail: mailboxes, e-mail messages, attachments

Revision ID: 0018_mail
Revises: 0013_invoices
Create Date: 2026-12-06 03:26:58.110147
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import crm_models.db

revision = '0018_mail'
down_revision = '0014_list_scale'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('mailbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('email', sa.String(length=255), nullable=False),
    sa.Column('display_name', sa.String(length=255), nullable=False),
    sa.Column('smtp_host', sa.String(length=255), nullable=False),
    sa.Column('smtp_port', sa.Integer(), nullable=False),
    sa.Column('smtp_security', sa.String(length=10), nullable=False),
    sa.Column('imap_host', sa.String(length=255), nullable=False),
    sa.Column('imap_port', sa.Integer(), nullable=False),
    sa.Column('imap_security', sa.String(length=10), nullable=False),
    sa.Column('imap_folder', sa.String(length=255), nullable=False),
    sa.Column('login', sa.String(length=255), nullable=False),
    sa.Column('password_enc', sa.Text(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('create_leads', sa.Boolean(), nullable=False),
    sa.Column('lead_user_ids', sa.JSON(), nullable=False),
    sa.Column('lead_turn', sa.Integer(), nullable=False),
    sa.Column('imap_uidvalidity', sa.BigInteger(), nullable=True),
    sa.Column('imap_last_uid', sa.BigInteger(), nullable=False),
    sa.Column('poll_lease_until', crm_models.db.UTCDateTime(), nullable=True),
    sa.Column('last_poll_at', crm_models.db.UTCDateTime(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.Column('created_at', crm_models.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', crm_models.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_mailbox_user_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mailbox'))
    )
    with op.batch_alter_table('mailbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mailbox_user_id'), ['user_id'], unique=False)

    op.create_table('email_message',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('mailbox_id', sa.Integer(), nullable=True),
    sa.Column('direction', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('message_id', sa.String(length=255), nullable=False),
    sa.Column('in_reply_to', sa.String(length=255), nullable=False),
    sa.Column('references', sa.Text(), nullable=False),
    sa.Column('from_addr', sa.String(length=255), nullable=False),
    sa.Column('from_name', sa.String(length=255), nullable=False),
    sa.Column('to_addrs', sa.JSON(), nullable=False),
    sa.Column('cc_addrs', sa.JSON(), nullable=False),
    sa.Column('subject', sa.String(length=500), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('entity_type', sa.String(length=20), nullable=True),
    sa.Column('entity_id', sa.Integer(), nullable=True),
    sa.Column('responsible_id', sa.Integer(), nullable=True),
    sa.Column('activity_id', sa.Integer(), nullable=True),
    sa.Column('invoice_id', sa.Integer(), nullable=True),
    sa.Column('imap_uid', sa.BigInteger(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', crm_models.db.UTCDateTime(), nullable=True),
    sa.Column('lease_until', crm_models.db.UTCDateTime(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.Column('sent_at', crm_models.db.UTCDateTime(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', crm_models.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['user_account.id'], name=op.f('fk_email_message_created_by_id_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['mailbox_id'], ['mailbox.id'], name=op.f('fk_email_message_mailbox_id_mailbox'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_email_message')),
    sa.UniqueConstraint('mailbox_id', 'direction', 'message_id', name='uq_email_message_mailbox_id')
    )
    with op.batch_alter_table('email_message', schema=None) as batch_op:
        batch_op.create_index('ix_email_message_due', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index('ix_email_message_entity', ['entity_type', 'entity_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_email_message_mailbox_id'), ['mailbox_id'], unique=False)

    op.create_table('email_attachment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email_id', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('content_type', sa.String(length=100), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('stored', sa.Boolean(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['email_id'], ['email_message.id'], name=op.f('fk_email_attachment_email_id_email_message'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_email_attachment'))
    )
    with op.batch_alter_table('email_attachment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_email_attachment_email_id'), ['email_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('email_attachment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_email_attachment_email_id'))

    op.drop_table('email_attachment')
    with op.batch_alter_table('email_message', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_email_message_mailbox_id'))
        batch_op.drop_index('ix_email_message_entity')
        batch_op.drop_index('ix_email_message_due')

    op.drop_table('email_message')
    with op.batch_alter_table('mailbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mailbox_user_id'))

    op.drop_table('mailbox')
