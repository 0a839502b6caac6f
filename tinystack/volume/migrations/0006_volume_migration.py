"""Volume migration between backends: the backend a volume lives on, its migration status and backend name id."""

import sqlalchemy as sa
from alembic import op

revision = "volume_0006"
down_revision = "volume_0005"
branch_labels = None
depends_on = None
# created 2026-12-06


def upgrade() -> None:
    with op.batch_alter_table('volume_volume', schema=None) as batch_op:
        batch_op.add_column(sa.Column('backend', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('migration_status', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('name_id', sa.String(length=36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('volume_volume', schema=None) as batch_op:
        batch_op.drop_column('name_id')
        batch_op.drop_column('migration_status')
        batch_op.drop_column('backend')
