"""Ports' extra DHCP options (the ``extra_dhcp_opt`` extension), served by the network's dnsmasq."""

import sqlalchemy as sa
from alembic import op

revision = "network_0006"
down_revision = "network_0005"
branch_labels = None
depends_on = None
# created 2026-12-06


def upgrade() -> None:
    with op.batch_alter_table("network_ports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("extra_dhcp_opts", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("network_ports", schema=None) as batch_op:
        batch_op.drop_column("extra_dhcp_opts")
