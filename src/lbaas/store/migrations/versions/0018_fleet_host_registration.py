"""Amphora hosts that register themselves: their API port and their last announcement.

Revision ID: 0018
Revises: 0014
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = '0018'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('fleet_host') as batch:  # SQLite: the table is copied
        batch.add_column(sa.Column('port', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('registered_at', sa.DateTime().with_variant(
            mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql'),
            nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('fleet_host') as batch:
        batch.drop_column('registered_at')
        batch.drop_column('port')
