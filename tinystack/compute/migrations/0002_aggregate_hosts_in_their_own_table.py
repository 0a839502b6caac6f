"""aggregate hosts in their own table"""

import json

import sqlalchemy as sa
from alembic import op

revision = "compute_0002"
down_revision = 'compute_0001'
branch_labels = None
depends_on = None
# created 2026-11-21


def upgrade() -> None:
    # Read the members first: dropping the column rebuilds compute_aggregate on SQLite, and a rebuilt parent
    # would take rows already in the new table with it (ON DELETE CASCADE).
    conn = op.get_bind()
    rows = []
    for agg_id, hosts in conn.execute(sa.text("SELECT id, hosts FROM compute_aggregate")).all():
        members = json.loads(hosts) if isinstance(hosts, str) else (hosts or [])
        rows += [{"aggregate_id": agg_id, "host": h} for h in sorted(set(members))]

    with op.batch_alter_table('compute_aggregate', schema=None) as batch_op:
        batch_op.drop_column('hosts')

    op.create_table('compute_aggregate_host',
    sa.Column('aggregate_id', sa.Integer(), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['aggregate_id'], ['compute_aggregate.id'], name=op.f('fk_compute_aggregate_host_aggregate_id_compute_aggregate'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('aggregate_id', 'host', name=op.f('pk_compute_aggregate_host'))
    )
    with op.batch_alter_table('compute_aggregate_host', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_compute_aggregate_host_host'), ['host'], unique=False)
    if rows:
        conn.execute(sa.text("INSERT INTO compute_aggregate_host (aggregate_id, host) VALUES (:aggregate_id, :host)"),
                     rows)


def downgrade() -> None:
    conn = op.get_bind()
    members: dict[int, list[str]] = {}
    for agg_id, host in conn.execute(sa.text("SELECT aggregate_id, host FROM compute_aggregate_host ORDER BY host")):
        members.setdefault(agg_id, []).append(host)
    with op.batch_alter_table('compute_aggregate_host', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_compute_aggregate_host_host'))
    op.drop_table('compute_aggregate_host')

    with op.batch_alter_table('compute_aggregate', schema=None) as batch_op:
        batch_op.add_column(sa.Column('hosts', sa.JSON(), nullable=False, server_default='[]'))
    for agg_id, hosts in members.items():
        conn.execute(sa.text("UPDATE compute_aggregate SET hosts = :hosts WHERE id = :id"),
                     {"hosts": json.dumps(hosts), "id": agg_id})
