"""imports: duplicate keys, company INN, import jobs, store orders

Revision ID: 0019_imports
Revises: 0013_invoices
Create Date: 2026-12-06 03:26:56.263137
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import crm_models.db
from crm_models.dedup import record_keys

revision = '0019_imports'
down_revision = '0018_mail'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('dedup_key',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('entity_type', sa.String(length=20), nullable=False),
    sa.Column('entity_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('value', sa.String(length=254), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dedup_key'))
    )
    with op.batch_alter_table('dedup_key', schema=None) as batch_op:
        batch_op.create_index('ix_dedup_key_lookup', ['entity_type', 'kind', 'value'], unique=False)
        batch_op.create_index('ix_dedup_key_record', ['entity_type', 'entity_id'], unique=False)

    op.create_table('exchange_session',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('created_at', crm_models.db.UTCDateTime(), nullable=False),
    sa.Column('last_seen', crm_models.db.UTCDateTime(), nullable=False),
    sa.Column('log', sa.JSON(), nullable=False),
    sa.Column('errors', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_exchange_session'))
    )
    with op.batch_alter_table('exchange_session', schema=None) as batch_op:
        batch_op.create_index('ix_exchange_session_token', ['token'], unique=True)

    op.create_table('exchange_ref',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('external_id', sa.String(length=100), nullable=False),
    sa.Column('local_id', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_exchange_ref')),
    sa.UniqueConstraint('kind', 'external_id', name=op.f('uq_exchange_ref_kind_external_id'))
    )
    op.create_table('import_mapping',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('entity', sa.String(length=20), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('columns', sa.JSON(), nullable=False),
    sa.Column('created_at', crm_models.db.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_import_mapping')),
    sa.UniqueConstraint('entity', 'name', name=op.f('uq_import_mapping_entity_name'))
    )
    op.create_table('import_job',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('entity', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('dry_run', sa.Boolean(), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('stored_name', sa.String(length=255), nullable=False),
    sa.Column('file_format', sa.String(length=10), nullable=False),
    sa.Column('encoding', sa.String(length=20), nullable=False),
    sa.Column('delimiter', sa.String(length=1), nullable=False),
    sa.Column('headers', sa.JSON(), nullable=False),
    sa.Column('mapping', sa.JSON(), nullable=False),
    sa.Column('policy', sa.String(length=10), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('total_rows', sa.Integer(), nullable=True),
    sa.Column('created', sa.Integer(), nullable=False),
    sa.Column('updated', sa.Integer(), nullable=False),
    sa.Column('skipped', sa.Integer(), nullable=False),
    sa.Column('failed', sa.Integer(), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('claimed_by', sa.String(length=100), nullable=False),
    sa.Column('lease_until', crm_models.db.UTCDateTime(), nullable=True),
    sa.Column('created_at', crm_models.db.UTCDateTime(), nullable=False),
    sa.Column('finished_at', crm_models.db.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_import_job_user_id_user_account'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_import_job'))
    )
    with op.batch_alter_table('import_job', schema=None) as batch_op:
        batch_op.create_index('ix_import_job_status', ['status', 'lease_until'], unique=False)
        batch_op.create_index(batch_op.f('ix_import_job_user_id'), ['user_id'], unique=False)

    op.create_table('import_row_error',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('row', sa.Integer(), nullable=False),
    sa.Column('column', sa.String(length=255), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['import_job.id'], name=op.f('fk_import_row_error_job_id_import_job'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_import_row_error'))
    )
    with op.batch_alter_table('import_row_error', schema=None) as batch_op:
        batch_op.create_index('ix_import_row_error_job', ['job_id', 'row'], unique=False)

    op.create_table('store_order',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('store', sa.String(length=100), nullable=False),
    sa.Column('number', sa.String(length=100), nullable=False),
    sa.Column('deal_id', sa.Integer(), nullable=True),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('warnings', sa.JSON(), nullable=False),
    sa.Column('created_at', crm_models.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contact.id'], name=op.f('fk_store_order_contact_id_contact'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['deal_id'], ['deal.id'], name=op.f('fk_store_order_deal_id_deal'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_store_order')),
    sa.UniqueConstraint('store', 'number', name=op.f('uq_store_order_store_number'))
    )
    with op.batch_alter_table('company', schema=None) as batch_op:
        batch_op.add_column(sa.Column('inn', sa.String(length=12), server_default='', nullable=False))
    _fill_keys()


def _fill_keys() -> None:
    """Duplicate keys of the contacts and companies already there."""
    conn = op.get_bind()
    keys = sa.table('dedup_key', sa.column('entity_type'), sa.column('entity_id'),
                    sa.column('kind'), sa.column('value'))
    for entity in ('contact', 'company'):
        t = sa.table(entity, sa.column('id'), sa.column('phones', sa.JSON()),
                     sa.column('emails', sa.JSON()),
                     *([sa.column('inn')] if entity == 'company' else []))
        rows = []
        for rec in conn.execute(sa.select(t)).mappings():
            for kind, value in sorted(record_keys(_Row(rec))):
                rows.append({'entity_type': entity, 'entity_id': rec['id'], 'kind': kind,
                             'value': value})
        if rows:
            conn.execute(keys.insert(), rows)


class _Row:
    def __init__(self, mapping: dict) -> None:
        self.phones = mapping.get('phones') or []
        self.emails = mapping.get('emails') or []
        self.inn = mapping.get('inn')



def downgrade() -> None:
    with op.batch_alter_table('company', schema=None) as batch_op:
        batch_op.drop_column('inn')

    op.drop_table('store_order')
    with op.batch_alter_table('import_row_error', schema=None) as batch_op:
        batch_op.drop_index('ix_import_row_error_job')

    op.drop_table('import_row_error')
    with op.batch_alter_table('import_job', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_import_job_user_id'))
        batch_op.drop_index('ix_import_job_status')

    op.drop_table('import_job')
    op.drop_table('import_mapping')
    op.drop_table('exchange_ref')
    with op.batch_alter_table('exchange_session', schema=None) as batch_op:
        batch_op.drop_index('ix_exchange_session_token')
    op.drop_table('exchange_session')
    with op.batch_alter_table('dedup_key', schema=None) as batch_op:
        batch_op.drop_index('ix_dedup_key_record')
        batch_op.drop_index('ix_dedup_key_lookup')

    op.drop_table('dedup_key')
