"""The configuration the data plane last accepted, per load balancer (decision 0013).

Revision ID: 0007
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = '0007'
down_revision = '0005'
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(
    mysql.DATETIME(fsp=6), 'mysql')


def upgrade() -> None:
    op.create_table('accepted_config',
    sa.Column('load_balancer_id', sa.String(length=36), nullable=False),
    sa.Column('objects', sa.JSON(), nullable=False),
    sa.Column('updated_at', TIMESTAMP, nullable=False),
    sa.PrimaryKeyConstraint('load_balancer_id')
    )


def downgrade() -> None:
    op.drop_table('accepted_config')
