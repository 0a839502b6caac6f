"""Per-project default volume types (3.62): the type a project's volumes get when the request names none."""

import sqlalchemy as sa
from alembic import op

revision = "volume_0005"
down_revision = "volume_0004"
branch_labels = None
depends_on = None
# created 2026-12-06


def upgrade() -> None:
    op.create_table('volume_default_type',
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('volume_type_id', sa.String(length=36), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('project_id', name=op.f('pk_volume_default_type'))
    )
    with op.batch_alter_table('volume_default_type', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_volume_default_type_volume_type_id'), ['volume_type_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('volume_default_type', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_volume_default_type_volume_type_id'))
    op.drop_table('volume_default_type')
