"""engine: process definitions, instances, user tasks and history

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 21:49:08.006049
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import engine.store

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('process_definition',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('bpmn_xml', sa.Text(), nullable=False),
    sa.Column('dmn_xml', sa.JSON(), nullable=False),
    sa.Column('specs', sa.JSON(), nullable=False),
    sa.Column('triggers', sa.JSON(), nullable=False),
    sa.Column('manual_start', sa.Boolean(), nullable=False),
    sa.Column('variables', sa.JSON(), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('deployed_by', sa.Integer(), nullable=True),
    sa.Column('deployed_at', engine.store.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_process_definition')),
    sa.UniqueConstraint('key', 'version', name=op.f('uq_process_definition_key_version'))
    )
    with op.batch_alter_table('process_definition', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_process_definition_active'), ['active'], unique=False)
        batch_op.create_index(batch_op.f('ix_process_definition_key'), ['key'], unique=False)

    op.create_table('process_instance',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('definition_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('entity_type', sa.String(length=20), nullable=True),
    sa.Column('entity_id', sa.Integer(), nullable=True),
    sa.Column('event_id', sa.Integer(), nullable=True),
    sa.Column('state', sa.JSON(), nullable=True),
    sa.Column('serializer_version', sa.String(length=20), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('waiting', sa.JSON(), nullable=False),
    sa.Column('started_by', sa.Integer(), nullable=True),
    sa.Column('started_at', engine.store.UTCDateTime(), nullable=False),
    sa.Column('ended_at', engine.store.UTCDateTime(), nullable=True),
    sa.Column('incident_element_id', sa.String(length=200), nullable=True),
    sa.Column('incident_message', sa.Text(), nullable=True),
    sa.Column('incident_attempts', sa.Integer(), nullable=False),
    sa.Column('incident_retry_at', engine.store.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['definition_id'], ['process_definition.id'], name=op.f('fk_process_instance_definition_id_process_definition'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_process_instance')),
    sa.UniqueConstraint('event_id', 'definition_id', name=op.f('uq_process_instance_event_id_definition_id'))
    )
    with op.batch_alter_table('process_instance', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_process_instance_definition_id'), ['definition_id'], unique=False)
        batch_op.create_index('ix_process_instance_entity', ['entity_type', 'entity_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_process_instance_incident_retry_at'), ['incident_retry_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_process_instance_status'), ['status'], unique=False)

    op.create_table('process_history',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('instance_id', sa.Integer(), nullable=False),
    sa.Column('at', engine.store.UTCDateTime(), nullable=False),
    sa.Column('event', sa.String(length=30), nullable=False),
    sa.Column('element_id', sa.String(length=200), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('changes', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['instance_id'], ['process_instance.id'], name=op.f('fk_process_history_instance_id_process_instance'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_process_history'))
    )
    with op.batch_alter_table('process_history', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_process_history_instance_id'), ['instance_id'], unique=False)

    op.create_table('process_task',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('instance_id', sa.Integer(), nullable=False),
    sa.Column('spiff_task_id', sa.String(length=36), nullable=False),
    sa.Column('element_id', sa.String(length=200), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('instructions', sa.Text(), nullable=False),
    sa.Column('form', sa.JSON(), nullable=False),
    sa.Column('assignee_id', sa.Integer(), nullable=True),
    sa.Column('candidate_ids', sa.JSON(), nullable=False),
    sa.Column('claimed_by', sa.Integer(), nullable=True),
    sa.Column('assignment_note', sa.String(length=500), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('due_at', engine.store.UTCDateTime(), nullable=True),
    sa.Column('created_at', engine.store.UTCDateTime(), nullable=False),
    sa.Column('completed_at', engine.store.UTCDateTime(), nullable=True),
    sa.Column('completed_by', sa.Integer(), nullable=True),
    sa.Column('result', sa.JSON(), nullable=True),
    sa.Column('entity_type', sa.String(length=20), nullable=True),
    sa.Column('entity_id', sa.Integer(), nullable=True),
    sa.Column('definition_key', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['instance_id'], ['process_instance.id'], name=op.f('fk_process_task_instance_id_process_instance'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_process_task')),
    sa.UniqueConstraint('spiff_task_id', name=op.f('uq_process_task_spiff_task_id'))
    )
    with op.batch_alter_table('process_task', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_process_task_assignee_id'), ['assignee_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_process_task_claimed_by'), ['claimed_by'], unique=False)
        batch_op.create_index(batch_op.f('ix_process_task_instance_id'), ['instance_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_process_task_status'), ['status'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('process_task', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_process_task_status'))
        batch_op.drop_index(batch_op.f('ix_process_task_instance_id'))
        batch_op.drop_index(batch_op.f('ix_process_task_claimed_by'))
        batch_op.drop_index(batch_op.f('ix_process_task_assignee_id'))

    op.drop_table('process_task')
    with op.batch_alter_table('process_history', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_process_history_instance_id'))

    op.drop_table('process_history')
    with op.batch_alter_table('process_instance', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_process_instance_status'))
        batch_op.drop_index(batch_op.f('ix_process_instance_incident_retry_at'))
        batch_op.drop_index('ix_process_instance_entity')
        batch_op.drop_index(batch_op.f('ix_process_instance_definition_id'))

    op.drop_table('process_instance')
    with op.batch_alter_table('process_definition', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_process_definition_key'))
        batch_op.drop_index(batch_op.f('ix_process_definition_active'))

    op.drop_table('process_definition')
