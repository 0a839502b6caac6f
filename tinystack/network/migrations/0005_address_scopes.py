"""Address scopes (the ``address-scope`` extension): subnet pools name one through address_scope_id."""

import sqlalchemy as sa
from alembic import op

revision = "network_0005"
down_revision = "network_0004"
branch_labels = None
depends_on = None
# created 2026-12-06


def upgrade() -> None:
    op.create_table(
        "network_address_scopes",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("ip_version", sa.Integer(), nullable=False),
        sa.Column("shared", sa.Boolean(), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("revision_number", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_network_address_scopes")),
    )
    with op.batch_alter_table("network_address_scopes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_network_address_scopes_project_id"), ["project_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("network_address_scopes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_network_address_scopes_project_id"))
    op.drop_table("network_address_scopes")
