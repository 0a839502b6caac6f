"""published_generation: what went out on the bus (tinystack/core/desired.py). Rows from before the upgrade count
as published (the old code published them), and the publisher's periodic sync sends them again anyway."""

import sqlalchemy as sa
from alembic import op

revision = "network_0002"
down_revision = "network_0001"
branch_labels = None
depends_on = None
# created 2026-12-06


def upgrade() -> None:
    with op.batch_alter_table('network_published_docs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('published_generation', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('published_hosts', sa.JSON(), nullable=True))
    op.execute("UPDATE network_published_docs SET published_generation = generation, published_hosts = hosts")
    with op.batch_alter_table('network_published_docs', schema=None) as batch_op:
        batch_op.alter_column('published_hosts', existing_type=sa.JSON(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('network_published_docs', schema=None) as batch_op:
        batch_op.drop_column('published_hosts')
        batch_op.drop_column('published_generation')
