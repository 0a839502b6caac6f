"""User messages (Cinder's messages API, 3.3): the asynchronous errors a project must be able to see."""

import sqlalchemy as sa
from alembic import op

revision = "volume_0004"
down_revision = "volume_0003"
branch_labels = None
depends_on = None
# created 2026-12-06


def upgrade() -> None:
    op.create_table('volume_message',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('request_id', sa.String(length=255), nullable=False),
    sa.Column('resource_type', sa.String(length=255), nullable=False),
    sa.Column('resource_uuid', sa.String(length=36), nullable=True),
    sa.Column('event_id', sa.String(length=255), nullable=False),
    sa.Column('message_level', sa.String(length=255), nullable=False),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_volume_message'))
    )
    with op.batch_alter_table('volume_message', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_volume_message_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_volume_message_expires_at'), ['expires_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('volume_message', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_volume_message_expires_at'))
        batch_op.drop_index(batch_op.f('ix_volume_message_project_id'))
    op.drop_table('volume_message')
