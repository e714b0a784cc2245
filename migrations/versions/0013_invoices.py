"""invoices: invoices numbered per year, their counter, our requisites

Revision ID: 0013_invoices
Revises: 0012_catalog
Create Date: 2026-12-06 01:40:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import crm_models.db

revision = '0013_invoices'
down_revision = '0012_catalog'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('invoice_counter',
    sa.Column('year', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('last', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('year', name=op.f('pk_invoice_counter'))
    )
    op.create_table('our_company',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('inn', sa.String(length=12), nullable=False),
    sa.Column('kpp', sa.String(length=9), nullable=False),
    sa.Column('ogrn', sa.String(length=15), nullable=False),
    sa.Column('address', sa.String(length=500), nullable=False),
    sa.Column('bank', sa.String(length=255), nullable=False),
    sa.Column('bik', sa.String(length=9), nullable=False),
    sa.Column('corr_account', sa.String(length=20), nullable=False),
    sa.Column('account', sa.String(length=20), nullable=False),
    sa.Column('director', sa.String(length=255), nullable=False),
    sa.Column('accountant', sa.String(length=255), nullable=False),
    sa.Column('invoice_prefix', sa.String(length=20), nullable=False),
    sa.Column('updated_at', crm_models.db.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_our_company'))
    )
    op.create_table('invoice',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=40), nullable=False),
    sa.Column('stage', sa.String(length=20), nullable=False),
    sa.Column('issued_on', sa.Date(), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=True),
    sa.Column('paid_at', crm_models.db.UTCDateTime(), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('total', crm_models.db.Money(), nullable=False),
    sa.Column('vat', crm_models.db.Money(), nullable=False),
    sa.Column('deal_id', sa.Integer(), nullable=True),
    sa.Column('company_id', sa.Integer(), nullable=True),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('buyer_name', sa.String(length=255), nullable=False),
    sa.Column('buyer_inn', sa.String(length=12), nullable=False),
    sa.Column('buyer_kpp', sa.String(length=9), nullable=False),
    sa.Column('buyer_address', sa.String(length=500), nullable=False),
    sa.Column('seller', sa.JSON(), nullable=False),
    sa.Column('comments', sa.Text(), nullable=False),
    sa.Column('responsible_id', sa.Integer(), nullable=False),
    sa.Column('opened', sa.Boolean(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', crm_models.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', crm_models.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_invoice_company_id_company'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['contact_id'], ['contact.id'], name=op.f('fk_invoice_contact_id_contact'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['created_by_id'], ['user_account.id'], name=op.f('fk_invoice_created_by_id_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['deal_id'], ['deal.id'], name=op.f('fk_invoice_deal_id_deal'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['responsible_id'], ['user_account.id'], name=op.f('fk_invoice_responsible_id_user_account'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invoice')),
    sa.UniqueConstraint('year', 'seq', name=op.f('uq_invoice_year_seq')),
    sqlite_autoincrement=True
    )
    op.create_index(op.f('ix_invoice_deal_id'), 'invoice', ['deal_id'], unique=False)
    op.create_index(op.f('ix_invoice_number'), 'invoice', ['number'], unique=False)
    op.create_index(op.f('ix_invoice_responsible_id'), 'invoice', ['responsible_id'], unique=False)
    op.create_index(op.f('ix_invoice_stage'), 'invoice', ['stage'], unique=False)


def downgrade() -> None:
    op.drop_table('invoice')
    op.drop_table('our_company')
    op.drop_table('invoice_counter')
