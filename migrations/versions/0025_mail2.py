"""mail2: e-mail templates written by admins; the invoice PDF's language on an e-mail;
IMAP's own login and password

Revision ID: 0025_mail2
Revises: 0017_invoices2
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import crm_models.db

revision = '0025_mail2'
down_revision = '0017_invoices2'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('email_template',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=60), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('subject_ru', sa.String(length=500), nullable=False),
    sa.Column('body_ru', sa.Text(), nullable=False),
    sa.Column('subject_en', sa.String(length=500), nullable=False),
    sa.Column('body_en', sa.Text(), nullable=False),
    sa.Column('updated_by_id', sa.Integer(), nullable=True),
    sa.Column('updated_at', crm_models.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['updated_by_id'], ['user_account.id'],
                            name=op.f('fk_email_template_updated_by_id_user_account'),
                            ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_email_template')),
    sa.UniqueConstraint('code', name=op.f('uq_email_template_code'))
    )
    with op.batch_alter_table('email_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pdf_lang', sa.String(length=2), nullable=False,
                                      server_default='ru'))
    with op.batch_alter_table('mailbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('imap_login', sa.String(length=255), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('imap_password_enc', sa.Text(), nullable=False,
                                      server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('mailbox', schema=None) as batch_op:
        batch_op.drop_column('imap_password_enc')
        batch_op.drop_column('imap_login')
    with op.batch_alter_table('email_message', schema=None) as batch_op:
        batch_op.drop_column('pdf_lang')
    op.drop_table('email_template')
