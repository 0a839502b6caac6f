"""password rules: a user's password expiry and the history of its passwords."""

import sqlalchemy as sa
from alembic import op

revision = "identity_0004"
down_revision = "identity_0003"
branch_labels = None
depends_on = None
# created 2026-12-06


def upgrade() -> None:
    with op.batch_alter_table('identity_user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('password_expires_at', sa.Double(), nullable=True))
    op.create_table('identity_password_history',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.Double(), nullable=False),
    sa.Column('self_service', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['identity_user.id'], name=op.f('fk_identity_password_history_user_id_identity_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_password_history'))
    )
    with op.batch_alter_table('identity_password_history', schema=None) as batch_op:
        batch_op.create_index('ix_identity_password_history_user', ['user_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('identity_password_history', schema=None) as batch_op:
        batch_op.drop_index('ix_identity_password_history_user')
    op.drop_table('identity_password_history')
    with op.batch_alter_table('identity_user', schema=None) as batch_op:
        batch_op.drop_column('password_expires_at')
