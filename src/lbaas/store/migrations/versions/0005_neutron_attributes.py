"""Neutron subset: description and revision_number on networks, subnets and ports; the subnet's
DHCP, DNS, host-route and IPv6-mode attributes; the port's admin state, port security, allowed
address pairs and vNIC type.

Revision ID: 0005
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa

revision = '0005'
down_revision = '0003'
branch_labels = None
depends_on = None


def _standard(table: str) -> None:
    op.add_column(table, sa.Column('description', sa.String(length=255), nullable=True))
    op.add_column(table, sa.Column('revision_number', sa.Integer(), nullable=False,
                                   server_default='0'))


def upgrade() -> None:
    _standard('network')
    _standard('subnet')
    op.add_column('subnet', sa.Column('enable_dhcp', sa.Boolean(), nullable=False,
                                      server_default=sa.true()))
    op.add_column('subnet', sa.Column('dns_nameservers', sa.JSON(), nullable=True))
    op.add_column('subnet', sa.Column('host_routes', sa.JSON(), nullable=True))
    op.add_column('subnet', sa.Column('ipv6_ra_mode', sa.String(length=16), nullable=True))
    op.add_column('subnet', sa.Column('ipv6_address_mode', sa.String(length=16), nullable=True))
    _standard('port')
    op.add_column('port', sa.Column('admin_state_up', sa.Boolean(), nullable=False,
                                    server_default=sa.true()))
    op.add_column('port', sa.Column('port_security_enabled', sa.Boolean(), nullable=True))
    op.add_column('port', sa.Column('allowed_address_pairs', sa.JSON(), nullable=True))
    op.add_column('port', sa.Column('vnic_type', sa.String(length=64), nullable=True))


def downgrade() -> None:
    for column in ('vnic_type', 'allowed_address_pairs', 'port_security_enabled',
                   'admin_state_up', 'revision_number', 'description'):
        op.drop_column('port', column)
    for column in ('ipv6_address_mode', 'ipv6_ra_mode', 'host_routes', 'dns_nameservers',
                   'enable_dhcp', 'revision_number', 'description'):
        op.drop_column('subnet', column)
    for column in ('revision_number', 'description'):
        op.drop_column('network', column)
