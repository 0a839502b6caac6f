"""domain-specific configuration: a domain's own identity and ldap options."""

import sqlalchemy as sa
from alembic import op

revision = "identity_0007"
down_revision = "identity_0006"
branch_labels = None
depends_on = None
# created 2026-12-06


def upgrade() -> None:
    op.create_table('identity_domain_config',
    sa.Column('domain_id', sa.String(length=64), nullable=False),
    sa.Column('group', sa.String(length=255), nullable=False),
    sa.Column('option', sa.String(length=255), nullable=False),
    sa.Column('value', sa.JSON(), nullable=True),
    sa.Column('sensitive', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['domain_id'], ['identity_domain.id'], name=op.f('fk_identity_domain_config_domain_id_identity_domain'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('domain_id', 'group', 'option', name=op.f('pk_identity_domain_config'))
    )


def downgrade() -> None:
    op.drop_table('identity_domain_config')
