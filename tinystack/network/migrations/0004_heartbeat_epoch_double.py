"""network_agents.heartbeat_epoch as a double: MySQL's FLOAT is single precision, which holds today's epoch
seconds only to the nearest 128 s (an agent looked up to two minutes older or younger than it was)."""

import sqlalchemy as sa
from alembic import op

revision = "network_0004"
down_revision = "network_0003"
branch_labels = None
depends_on = None
# created 2026-12-06


def upgrade() -> None:
    with op.batch_alter_table("network_agents", schema=None) as batch_op:
        batch_op.alter_column("heartbeat_epoch", existing_type=sa.Float(), type_=sa.Double(), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("network_agents", schema=None) as batch_op:
        batch_op.alter_column("heartbeat_epoch", existing_type=sa.Double(), type_=sa.Float(), existing_nullable=False)
