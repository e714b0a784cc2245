"""catalog: product sections and products; product rows of deals and leads

Revision ID: 0012_catalog
Revises: 0011_list_indexes
Create Date: 2026-12-06 01:30:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import crm_models.catalog
import crm_models.db

revision = '0012_catalog'
down_revision = '0011_list_indexes'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('product_section',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('sort', sa.Integer(), nullable=False),
    sa.Column('created_at', crm_models.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['parent_id'], ['product_section.id'], name=op.f('fk_product_section_parent_id_product_section'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_product_section'))
    )
    op.create_index(op.f('ix_product_section_parent_id'), 'product_section', ['parent_id'], unique=False)
    op.create_table('product',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('sku', sa.String(length=100), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('price', crm_models.db.Money(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('vat_rate', sa.String(length=4), nullable=False),
    sa.Column('vat_included', sa.Boolean(), nullable=False),
    sa.Column('unit', sa.String(length=20), nullable=False),
    sa.Column('section_id', sa.Integer(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('sort', sa.Integer(), nullable=False),
    sa.Column('search_text', sa.Text(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', crm_models.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', crm_models.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['user_account.id'], name=op.f('fk_product_created_by_id_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['section_id'], ['product_section.id'], name=op.f('fk_product_section_id_product_section'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_product')),
    sqlite_autoincrement=True
    )
    op.create_index(op.f('ix_product_name'), 'product', ['name'], unique=False)
    op.create_index(op.f('ix_product_section_id'), 'product', ['section_id'], unique=False)
    op.create_index(op.f('ix_product_sku'), 'product', ['sku'], unique=False)
    op.create_table('product_row',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('entity_type', sa.String(length=20), nullable=False),
    sa.Column('entity_id', sa.Integer(), nullable=False),
    sa.Column('sort', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=True),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('quantity', crm_models.catalog.Quantity(), nullable=False),
    sa.Column('unit', sa.String(length=20), nullable=False),
    sa.Column('price', crm_models.db.Money(), nullable=False),
    sa.Column('discount_type', sa.String(length=10), nullable=False),
    sa.Column('discount', crm_models.db.Money(), nullable=False),
    sa.Column('vat_rate', sa.String(length=4), nullable=False),
    sa.Column('vat_included', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['product_id'], ['product.id'], name=op.f('fk_product_row_product_id_product'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_product_row'))
    )
    op.create_index('ix_product_row_entity', 'product_row', ['entity_type', 'entity_id', 'sort'], unique=False)
    op.create_index(op.f('ix_product_row_product_id'), 'product_row', ['product_id'], unique=False)
    # A plain ADD COLUMN (SQLite has one for a NOT NULL column with a default): batch mode
    # would rebuild the tables and lose their AUTOINCREMENT (ids of deleted records return).
    for table in ('deal', 'lead'):
        op.add_column(table, sa.Column('amount_from_rows', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    for table in ('lead', 'deal'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('amount_from_rows')
    op.drop_index(op.f('ix_product_row_product_id'), table_name='product_row')
    op.drop_index('ix_product_row_entity', table_name='product_row')
    op.drop_table('product_row')
    op.drop_index(op.f('ix_product_sku'), table_name='product')
    op.drop_index(op.f('ix_product_section_id'), table_name='product')
    op.drop_index(op.f('ix_product_name'), table_name='product')
    op.drop_table('product')
    op.drop_index(op.f('ix_product_section_parent_id'), table_name='product_section')
    op.drop_table('product_section')
