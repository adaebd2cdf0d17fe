"""Health manager: the sequence number of each amphora's last accepted heartbeat.

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('amphora', sa.Column('heartbeat_seq', sa.BigInteger(), nullable=True))


def downgrade() -> None:
    op.drop_column('amphora', 'heartbeat_seq')
