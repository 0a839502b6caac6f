"""The attachments API (3.27) keeps the connector an attachment was made for; volume transfers (os-volume-transfer)
keep a salted hash of their auth key, never the key."""

import sqlalchemy as sa
from alembic import op

revision = "volume_0003"
down_revision = "volume_0002"
branch_labels = None
depends_on = None
# created 2026-12-06


def upgrade() -> None:
    with op.batch_alter_table('volume_attachment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('connector', sa.JSON(), nullable=True))
    op.create_table('volume_transfer',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('volume_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('salt', sa.String(length=64), nullable=False),
    sa.Column('crypt_hash', sa.String(length=128), nullable=False),
    sa.Column('no_snapshots', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_volume_transfer')),
    sa.UniqueConstraint('volume_id', name=op.f('uq_volume_transfer_volume_id'))
    )
    with op.batch_alter_table('volume_transfer', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_volume_transfer_project_id'), ['project_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('volume_transfer', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_volume_transfer_project_id'))
    op.drop_table('volume_transfer')
    with op.batch_alter_table('volume_attachment', schema=None) as batch_op:
        batch_op.drop_column('connector')
