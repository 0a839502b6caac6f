"""endpoint filter (OS-EP-FILTER): endpoint groups, and endpoints or groups given to projects."""

import sqlalchemy as sa
from alembic import op

revision = "identity_0006"
down_revision = "identity_0005"
branch_labels = None
depends_on = None
# created 2026-12-06


def upgrade() -> None:
    op.create_table('identity_endpoint_group',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('filters', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_endpoint_group'))
    )
    op.create_table('identity_project_endpoint',
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('endpoint_id', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['endpoint_id'], ['identity_endpoint.id'], name=op.f('fk_identity_project_endpoint_endpoint_id_identity_endpoint'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('project_id', 'endpoint_id', name=op.f('pk_identity_project_endpoint'))
    )
    op.create_table('identity_epg_project',
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('group_id', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['identity_endpoint_group.id'], name=op.f('fk_identity_epg_project_group_id_identity_endpoint_group'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('project_id', 'group_id', name=op.f('pk_identity_epg_project'))
    )


def downgrade() -> None:
    op.drop_table('identity_epg_project')
    op.drop_table('identity_project_endpoint')
    op.drop_table('identity_endpoint_group')
