"""published_generation: what went out on the bus (tinystack/core/desired.py). Rows from before the upgrade count
as published (the old code published them), and the publisher's periodic sync sends them again anyway."""

import sqlalchemy as sa
from alembic import op

revision = "compute_0005"
down_revision = "compute_0004"
branch_labels = None
depends_on = None
# created 2026-12-06


def upgrade() -> None:
    with op.batch_alter_table('compute_instance', schema=None) as batch_op:
        batch_op.add_column(sa.Column('published_generation', sa.Integer(), server_default='0', nullable=False))
    op.execute("UPDATE compute_instance SET published_generation = generation")


def downgrade() -> None:
    with op.batch_alter_table('compute_instance', schema=None) as batch_op:
        batch_op.drop_column('published_generation')
