"""Listener statistics: the heartbeat sequence number whose deltas the row last added.

Several health managers receive every heartbeat (controller_ip_port_list) and record them in
batches; a row grows by a message's deltas only if its sequence number is newer, so a delta is
added once whichever manager writes first.

Revision ID: 0011
Revises: 0010
"""
from alembic import op
import sqlalchemy as sa

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('listener_statistics',
                  sa.Column('heartbeat_seq', sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('listener_statistics') as batch:  # SQLite: the table is copied
        batch.drop_column('heartbeat_seq')
