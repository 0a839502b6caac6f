"""access rules: the requests an application credential's tokens are limited to."""

import sqlalchemy as sa
from alembic import op

revision = "identity_0005"
down_revision = "identity_0004"
branch_labels = None
depends_on = None
# created 2026-12-06


def upgrade() -> None:
    op.create_table('identity_access_rule',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('service', sa.String(length=64), nullable=False),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('path', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['identity_user.id'], name=op.f('fk_identity_access_rule_user_id_identity_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_access_rule')),
    sa.UniqueConstraint('user_id', 'service', 'method', 'path', name=op.f('uq_identity_access_rule_user_id'))
    )
    with op.batch_alter_table('identity_app_credential', schema=None) as batch_op:
        batch_op.add_column(sa.Column('access_rule_ids', sa.JSON(), server_default='[]', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('identity_app_credential', schema=None) as batch_op:
        batch_op.drop_column('access_rule_ids')
    op.drop_table('identity_access_rule')
