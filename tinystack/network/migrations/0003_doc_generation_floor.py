"""The generation floor of removed documents (tinystack/network/models.py DocGenerationFloor): its one row starts at
the highest generation recorded so far, which is as far as this database can tell what the agents remember."""

import sqlalchemy as sa
from alembic import op

revision = "network_0003"
down_revision = "network_0002"
branch_labels = None
depends_on = None
# created 2026-12-06


def upgrade() -> None:
    op.create_table(
        "network_doc_generation_floor",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_network_doc_generation_floor")),
    )
    op.execute("INSERT INTO network_doc_generation_floor (id, generation) "
               "SELECT 1, COALESCE(MAX(generation), 0) FROM network_published_docs")


def downgrade() -> None:
    op.drop_table("network_doc_generation_floor")
