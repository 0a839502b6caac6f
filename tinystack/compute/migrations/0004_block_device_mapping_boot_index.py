"""block device mapping boot index"""

import sqlalchemy as sa
from alembic import op

revision = "compute_0004"
down_revision = 'compute_0003'
branch_labels = None
depends_on = None
# created 2026-11-21


def upgrade() -> None:
    with op.batch_alter_table('compute_block_device_mapping', schema=None) as batch_op:
        batch_op.add_column(sa.Column('boot_index', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('compute_block_device_mapping', schema=None) as batch_op:
        batch_op.drop_column('boot_index')
