"""console_address: where a compute node's console bridge listens (split deployment, docs/consoles.md); NULL for a
node that serves none (``tinystack up``). Additive: old processes do not read it."""

import sqlalchemy as sa
from alembic import op

revision = "compute_0006"
down_revision = "compute_0005"
branch_labels = None
depends_on = None
# created 2026-12-06


def upgrade() -> None:
    with op.batch_alter_table('compute_node', schema=None) as batch_op:
        batch_op.add_column(sa.Column('console_address', sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('compute_node', schema=None) as batch_op:
        batch_op.drop_column('console_address')
