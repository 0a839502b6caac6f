"""Networks' dns_domain (the ``dns-integration`` extension): the domain of their ports' DNS names."""

import sqlalchemy as sa
from alembic import op

revision = "network_0007"
down_revision = "network_0006"
branch_labels = None
depends_on = None
# created 2026-12-06


def upgrade() -> None:
    with op.batch_alter_table("network_networks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dns_domain", sa.String(length=255), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("network_networks", schema=None) as batch_op:
        batch_op.drop_column("dns_domain")
