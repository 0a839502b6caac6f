"""Volume backups: copies of a volume's data in object storage, with their desired state for the backup agent."""

import sqlalchemy as sa
from alembic import op

revision = "volume_0008"
down_revision = 'volume_0007'
branch_labels = None
depends_on = None
# created 2026-12-06


def upgrade() -> None:
    op.create_table('volume_backup',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('user_id', sa.String(length=255), nullable=False),
    sa.Column('volume_id', sa.String(length=36), nullable=False),
    sa.Column('snapshot_id', sa.String(length=36), nullable=True),
    sa.Column('parent_id', sa.String(length=36), nullable=True),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('fail_reason', sa.Text(), nullable=True),
    sa.Column('availability_zone', sa.String(length=255), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=True),
    sa.Column('container', sa.String(length=255), nullable=False),
    sa.Column('prefix', sa.String(length=512), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('object_count', sa.Integer(), nullable=False),
    sa.Column('is_incremental', sa.Boolean(), nullable=False),
    sa.Column('meta', sa.JSON(), nullable=False),
    sa.Column('doc', sa.JSON(), nullable=False),
    sa.Column('generation', sa.Integer(), nullable=False),
    sa.Column('observed_generation', sa.Integer(), nullable=False),
    sa.Column('published_generation', sa.Integer(), server_default='0', nullable=False),
    sa.Column('data_timestamp', sa.DateTime(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_volume_backup'))
    )
    with op.batch_alter_table('volume_backup', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_volume_backup_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_volume_backup_name'), ['name'], unique=False)
        batch_op.create_index(batch_op.f('ix_volume_backup_parent_id'), ['parent_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_volume_backup_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_volume_backup_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_volume_backup_volume_id'), ['volume_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('volume_backup', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_volume_backup_volume_id'))
        batch_op.drop_index(batch_op.f('ix_volume_backup_status'))
        batch_op.drop_index(batch_op.f('ix_volume_backup_project_id'))
        batch_op.drop_index(batch_op.f('ix_volume_backup_parent_id'))
        batch_op.drop_index(batch_op.f('ix_volume_backup_name'))
        batch_op.drop_index(batch_op.f('ix_volume_backup_created_at'))

    op.drop_table('volume_backup')
