"""Generic volume groups (3.13), group types (3.11) and group snapshots (3.14); a volume names its group and a
snapshot its group snapshot."""

import sqlalchemy as sa
from alembic import op

revision = "volume_0007"
down_revision = "volume_0006"
branch_labels = None
depends_on = None
# created 2026-12-06


def upgrade() -> None:
    op.create_table('volume_group',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('user_id', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('availability_zone', sa.String(length=255), nullable=False),
    sa.Column('group_type_id', sa.String(length=36), nullable=False),
    sa.Column('volume_type_ids', sa.JSON(), nullable=False),
    sa.Column('group_snapshot_id', sa.String(length=36), nullable=True),
    sa.Column('source_group_id', sa.String(length=36), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_volume_group'))
    )
    with op.batch_alter_table('volume_group', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_volume_group_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_volume_group_group_type_id'), ['group_type_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_volume_group_name'), ['name'], unique=False)
        batch_op.create_index(batch_op.f('ix_volume_group_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_volume_group_status'), ['status'], unique=False)

    op.create_table('volume_group_snapshot',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('group_id', sa.String(length=36), nullable=False),
    sa.Column('group_type_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('user_id', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_volume_group_snapshot'))
    )
    with op.batch_alter_table('volume_group_snapshot', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_volume_group_snapshot_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_volume_group_snapshot_group_id'), ['group_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_volume_group_snapshot_name'), ['name'], unique=False)
        batch_op.create_index(batch_op.f('ix_volume_group_snapshot_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_volume_group_snapshot_status'), ['status'], unique=False)

    op.create_table('volume_group_type',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('is_public', sa.Boolean(), nullable=False),
    sa.Column('group_specs', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_volume_group_type')),
    sa.UniqueConstraint('name', name=op.f('uq_volume_group_type_name'))
    )
    with op.batch_alter_table('volume_snapshot', schema=None) as batch_op:
        batch_op.add_column(sa.Column('group_snapshot_id', sa.String(length=36), nullable=True))
        batch_op.create_index(batch_op.f('ix_volume_snapshot_group_snapshot_id'), ['group_snapshot_id'], unique=False)

    with op.batch_alter_table('volume_volume', schema=None) as batch_op:
        batch_op.add_column(sa.Column('group_id', sa.String(length=36), nullable=True))
        batch_op.create_index(batch_op.f('ix_volume_volume_group_id'), ['group_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('volume_volume', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_volume_volume_group_id'))
        batch_op.drop_column('group_id')

    with op.batch_alter_table('volume_snapshot', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_volume_snapshot_group_snapshot_id'))
        batch_op.drop_column('group_snapshot_id')

    op.drop_table('volume_group_type')
    with op.batch_alter_table('volume_group_snapshot', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_volume_group_snapshot_status'))
        batch_op.drop_index(batch_op.f('ix_volume_group_snapshot_project_id'))
        batch_op.drop_index(batch_op.f('ix_volume_group_snapshot_name'))
        batch_op.drop_index(batch_op.f('ix_volume_group_snapshot_group_id'))
        batch_op.drop_index(batch_op.f('ix_volume_group_snapshot_created_at'))

    op.drop_table('volume_group_snapshot')
    with op.batch_alter_table('volume_group', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_volume_group_status'))
        batch_op.drop_index(batch_op.f('ix_volume_group_project_id'))
        batch_op.drop_index(batch_op.f('ix_volume_group_name'))
        batch_op.drop_index(batch_op.f('ix_volume_group_group_type_id'))
        batch_op.drop_index(batch_op.f('ix_volume_group_created_at'))

    op.drop_table('volume_group')
