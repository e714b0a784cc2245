"""invoices 2: stored pictures (product pictures, our logo, signature and stamp)

Revision ID: 0017_invoices2
Revises: 0013_invoices
Create Date: 2026-12-06 03:40:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import crm_models.db

revision = '0017_invoices2'
down_revision = '0023_bpmn'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('stored_image',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('purpose', sa.String(length=20), nullable=False),
    sa.Column('content_type', sa.String(length=40), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', crm_models.db.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stored_image'))
    )
    with op.batch_alter_table('product') as batch:
        batch.add_column(sa.Column('picture_id', sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f('fk_product_picture_id_stored_image'), 'stored_image',
                                 ['picture_id'], ['id'], ondelete='SET NULL')
    with op.batch_alter_table('our_company') as batch:
        for kind in ('logo', 'signature', 'stamp'):
            batch.add_column(sa.Column(f'{kind}_id', sa.Integer(), nullable=True))
            batch.create_foreign_key(op.f(f'fk_our_company_{kind}_id_stored_image'),
                                     'stored_image', [f'{kind}_id'], ['id'],
                                     ondelete='SET NULL')


def downgrade() -> None:
    with op.batch_alter_table('our_company') as batch:
        for kind in ('logo', 'signature', 'stamp'):
            batch.drop_constraint(op.f(f'fk_our_company_{kind}_id_stored_image'),
                                  type_='foreignkey')
            batch.drop_column(f'{kind}_id')
    with op.batch_alter_table('product') as batch:
        batch.drop_constraint(op.f('fk_product_picture_id_stored_image'), type_='foreignkey')
        batch.drop_column('picture_id')
    op.drop_table('stored_image')
