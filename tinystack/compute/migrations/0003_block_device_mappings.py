"""block device mappings"""

import sqlalchemy as sa
from alembic import op

revision = "compute_0003"
down_revision = 'compute_0002'
branch_labels = None
depends_on = None
# created 2026-11-21


def upgrade() -> None:
    op.create_table('compute_block_device_mapping',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('instance_uuid', sa.String(length=36), nullable=False),
    sa.Column('volume_id', sa.String(length=36), nullable=False),
    sa.Column('attachment_id', sa.String(length=36), nullable=False),
    sa.Column('device_name', sa.String(length=255), nullable=False),
    sa.Column('tag', sa.String(length=255), nullable=True),
    sa.Column('delete_on_termination', sa.Boolean(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('connection', sa.JSON(), nullable=False),
    sa.Column('generation', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_compute_block_device_mapping')),
    sa.UniqueConstraint('attachment_id', name=op.f('uq_compute_block_device_mapping_attachment_id')),
    sa.UniqueConstraint('instance_uuid', 'device_name', name='uq_compute_bdm_instance_device'),
    sa.UniqueConstraint('instance_uuid', 'volume_id', name='uq_compute_bdm_instance_volume')
    )
    with op.batch_alter_table('compute_block_device_mapping', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_compute_block_device_mapping_instance_uuid'), ['instance_uuid'], unique=False)
        batch_op.create_index(batch_op.f('ix_compute_block_device_mapping_volume_id'), ['volume_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('compute_block_device_mapping', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_compute_block_device_mapping_volume_id'))
        batch_op.drop_index(batch_op.f('ix_compute_block_device_mapping_instance_uuid'))

    op.drop_table('compute_block_device_mapping')
