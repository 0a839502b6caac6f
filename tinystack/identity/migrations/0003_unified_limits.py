"""unified limits: registered (default) limits and project or domain limits."""

import sqlalchemy as sa
from alembic import op

revision = "identity_0003"
down_revision = "identity_0002"
branch_labels = None
depends_on = None
# created 2026-12-06


def upgrade() -> None:
    op.create_table('identity_registered_limit',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('service_id', sa.String(length=64), nullable=False),
    sa.Column('region_id', sa.String(length=255), nullable=False),
    sa.Column('resource_name', sa.String(length=255), nullable=False),
    sa.Column('default_limit', sa.Integer(), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['service_id'], ['identity_service.id'], name=op.f('fk_identity_registered_limit_service_id_identity_service'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_registered_limit')),
    sa.UniqueConstraint('service_id', 'region_id', 'resource_name', name=op.f('uq_identity_registered_limit_service_id'))
    )
    op.create_table('identity_limit',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('domain_id', sa.String(length=64), nullable=False),
    sa.Column('service_id', sa.String(length=64), nullable=False),
    sa.Column('region_id', sa.String(length=255), nullable=False),
    sa.Column('resource_name', sa.String(length=255), nullable=False),
    sa.Column('resource_limit', sa.Integer(), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['service_id'], ['identity_service.id'], name=op.f('fk_identity_limit_service_id_identity_service'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_limit')),
    sa.UniqueConstraint('project_id', 'domain_id', 'service_id', 'region_id', 'resource_name', name=op.f('uq_identity_limit_project_id'))
    )


def downgrade() -> None:
    op.drop_table('identity_limit')
    op.drop_table('identity_registered_limit')
