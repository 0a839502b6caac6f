"""published_generation: what went out on the bus (tinystack/core/desired.py). Rows from before the upgrade count
as published (the old code published them), and the publisher's periodic sync sends them again anyway."""

import sqlalchemy as sa
from alembic import op

revision = "volume_0002"
down_revision = "volume_0001"
branch_labels = None
depends_on = None
# created 2026-12-06


def upgrade() -> None:
    with op.batch_alter_table('volume_snapshot', schema=None) as batch_op:
        batch_op.add_column(sa.Column('published_generation', sa.Integer(), server_default='0', nullable=False))

    with op.batch_alter_table('volume_volume', schema=None) as batch_op:
        batch_op.add_column(sa.Column('published_generation', sa.Integer(), server_default='0', nullable=False))
    op.execute("UPDATE volume_snapshot SET published_generation = generation")
    op.execute("UPDATE volume_volume SET published_generation = generation")


def downgrade() -> None:
    with op.batch_alter_table('volume_volume', schema=None) as batch_op:
        batch_op.drop_column('published_generation')

    with op.batch_alter_table('volume_snapshot', schema=None) as batch_op:
        batch_op.drop_column('published_generation')
