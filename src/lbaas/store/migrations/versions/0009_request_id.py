"""The request id of the API change a load balancer's pending work comes from (log lines).

Revision ID: 0009
Revises: 0007
"""
from alembic import op
import sqlalchemy as sa

revision = '0009'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('load_balancer', sa.Column('last_request_id', sa.String(64), nullable=True))


def downgrade() -> None:
    op.drop_column('load_balancer', 'last_request_id')
