"""Key manager: secret metadata columns and certificate/generic containers.

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(
    mysql.DATETIME(fsp=6), 'mysql')


def upgrade() -> None:
    op.add_column('secret', sa.Column('secret_type', sa.String(length=32), nullable=True))
    op.add_column('secret', sa.Column('algorithm', sa.String(length=255), nullable=True))
    op.add_column('secret', sa.Column('bit_length', sa.Integer(), nullable=True))
    op.add_column('secret', sa.Column('mode', sa.String(length=255), nullable=True))
    op.add_column('secret', sa.Column('expiration', TIMESTAMP, nullable=True))
    op.add_column('secret', sa.Column('creator_id', sa.String(length=255), nullable=True))
    op.create_table('secret_container',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=36), nullable=True),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('type', sa.String(length=32), nullable=False),
    sa.Column('secret_refs', sa.JSON(), nullable=False),
    sa.Column('creator_id', sa.String(length=255), nullable=True),
    sa.Column('created_at', TIMESTAMP, nullable=False),
    sa.Column('updated_at', TIMESTAMP, nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_secret_container_project_id'), 'secret_container', ['project_id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_secret_container_project_id'), table_name='secret_container')
    op.drop_table('secret_container')
    for column in ('creator_id', 'expiration', 'mode', 'bit_length', 'algorithm', 'secret_type'):
        op.drop_column('secret', column)
