"""Trunks and their subports (the ``trunk`` extension), and floating IPs' dns_name/dns_domain
(``dns-integration``)."""

import sqlalchemy as sa
from alembic import op

revision = "network_0008"
down_revision = "network_0007"
branch_labels = None
depends_on = None
# created 2026-12-06


def upgrade() -> None:
    op.create_table(
        "network_trunks",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("admin_state_up", sa.Boolean(), nullable=False),
        sa.Column("port_id", sa.String(length=36), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("revision_number", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["port_id"], ["network_ports.id"], name=op.f("fk_network_trunks_port_id_network_ports")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_network_trunks")),
        sa.UniqueConstraint("port_id", name=op.f("uq_network_trunks_port_id")),
    )
    with op.batch_alter_table("network_trunks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_network_trunks_project_id"), ["project_id"], unique=False)
    op.create_table(
        "network_trunk_subports",
        sa.Column("port_id", sa.String(length=36), nullable=False),
        sa.Column("trunk_id", sa.String(length=36), nullable=False),
        sa.Column("segmentation_type", sa.String(length=32), nullable=False),
        sa.Column("segmentation_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["port_id"], ["network_ports.id"],
                                name=op.f("fk_network_trunk_subports_port_id_network_ports")),
        sa.ForeignKeyConstraint(["trunk_id"], ["network_trunks.id"], ondelete="CASCADE",
                                name=op.f("fk_network_trunk_subports_trunk_id_network_trunks")),
        sa.PrimaryKeyConstraint("port_id", name=op.f("pk_network_trunk_subports")),
        sa.UniqueConstraint("trunk_id", "segmentation_type", "segmentation_id",
                            name="uq_network_trunk_subports_segmentation"),
    )
    with op.batch_alter_table("network_trunk_subports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_network_trunk_subports_trunk_id"), ["trunk_id"], unique=False)
    with op.batch_alter_table("network_floatingips", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dns_name", sa.String(length=255), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("dns_domain", sa.String(length=255), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("network_floatingips", schema=None) as batch_op:
        batch_op.drop_column("dns_domain")
        batch_op.drop_column("dns_name")
    with op.batch_alter_table("network_trunk_subports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_network_trunk_subports_trunk_id"))
    op.drop_table("network_trunk_subports")
    with op.batch_alter_table("network_trunks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_network_trunks_project_id"))
    op.drop_table("network_trunks")
