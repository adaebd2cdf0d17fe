"""Lease expiry as a double: MariaDB's FLOAT is single precision, 128 s steps at today's epoch.

Revision ID: 0010
Revises: 0009
"""
from alembic import op
import sqlalchemy as sa

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('lease') as batch:  # SQLite: the table is copied
        batch.alter_column('expires_at', type_=sa.Double(), existing_type=sa.Float(),
                           existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('lease') as batch:
        batch.alter_column('expires_at', type_=sa.Float(), existing_type=sa.Double(),
                           existing_nullable=False)
