"""trusts: OS-TRUST delegations (identity_trust)."""

import sqlalchemy as sa
from alembic import op

revision = "identity_0002"
down_revision = "identity_0001"
branch_labels = None
depends_on = None
# created 2026-12-06


def upgrade() -> None:
    op.create_table('identity_trust',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('trustor_user_id', sa.String(length=64), nullable=False),
    sa.Column('trustee_user_id', sa.String(length=64), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=True),
    sa.Column('impersonation', sa.Boolean(), nullable=False),
    sa.Column('expires_at', sa.Double(), nullable=True),
    sa.Column('remaining_uses', sa.Integer(), nullable=True),
    sa.Column('allow_redelegation', sa.Boolean(), nullable=False),
    sa.Column('redelegation_count', sa.Integer(), nullable=True),
    sa.Column('redelegated_from', sa.String(length=64), nullable=True),
    sa.Column('role_ids', sa.JSON(), nullable=False),
    sa.Column('extra', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['trustee_user_id'], ['identity_user.id'], name=op.f('fk_identity_trust_trustee_user_id_identity_user'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['trustor_user_id'], ['identity_user.id'], name=op.f('fk_identity_trust_trustor_user_id_identity_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_trust'))
    )
    with op.batch_alter_table('identity_trust', schema=None) as batch_op:
        batch_op.create_index('ix_identity_trust_trustor', ['trustor_user_id'], unique=False)
        batch_op.create_index('ix_identity_trust_trustee', ['trustee_user_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('identity_trust', schema=None) as batch_op:
        batch_op.drop_index('ix_identity_trust_trustee')
        batch_op.drop_index('ix_identity_trust_trustor')
    op.drop_table('identity_trust')
