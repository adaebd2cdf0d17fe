"""Amphora hosts (``lbaas host-agent``): what each announces and whether it takes amphorae.

Revision ID: 0014
Revises: 0010
"""
from alembic import op
import sqlalchemy as sa

revision = '0014'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'fleet_host',
        sa.Column('name', sa.String(length=64), primary_key=True),
        sa.Column('address', sa.String(length=64), nullable=False),
        sa.Column('zone', sa.String(length=255), nullable=False),
        sa.Column('capacity', sa.Integer(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('amphorae', sa.Integer(), nullable=False),
        sa.Column('last_seen', sa.DateTime(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table('fleet_host')
