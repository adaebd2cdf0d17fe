"""Neutron quotas for the network subset, and the per-project row quota checks lock.

Revision ID: 0016
Revises: 0010
"""
from alembic import op
import sqlalchemy as sa

revision = '0016'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'network_quota',
        sa.Column('project_id', sa.String(36), primary_key=True),
        sa.Column('network', sa.Integer()),
        sa.Column('subnet', sa.Integer()),
        sa.Column('port', sa.Integer()),
        sa.Column('floatingip', sa.Integer()),
    )
    op.create_table(
        'quota_lock',
        sa.Column('project_id', sa.String(36), primary_key=True),
    )


def downgrade() -> None:
    op.drop_table('quota_lock')
    op.drop_table('network_quota')
