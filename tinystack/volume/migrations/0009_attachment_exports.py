"""An attachment's NBD export (secret export name, TLS-PSK identity and key) when the volume node exports volumes
to other machines ([volume] nbd_host): additive, so old API processes keep working beside it."""

import sqlalchemy as sa
from alembic import op

revision = "volume_0009"
down_revision = "volume_0008"
branch_labels = None
depends_on = None
# created 2026-12-06


def upgrade() -> None:
    with op.batch_alter_table('volume_attachment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('export', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('volume_attachment', schema=None) as batch_op:
        batch_op.drop_column('export')
