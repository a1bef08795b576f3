"""The store as of the first release with migrations: the query log, feedback, daily counts,
the per-database keys, the knowledge history and Slack's delivered events. Tables a database
from before migrations already has are kept; its query log gains `ambiguous` and its daily
counts are rebuilt from the log if it had none.

Revision ID: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _tables() -> list[tuple[str, list[sa.Column[object]], list[sa.schema.SchemaItem]]]:
    return [
        ("queries", [
            sa.Column("id", sa.Integer, sa.Identity(), primary_key=True),
            sa.Column("asked_at", sa.Text, nullable=False),
            sa.Column("question", sa.Text, nullable=False),
            sa.Column("entry_id", sa.Text),
            sa.Column("confidence", sa.Double, nullable=False),
            sa.Column("matched", sa.Integer, nullable=False),
            sa.Column("channel", sa.Text, nullable=False),
            sa.Column("review_status", sa.Text, nullable=False, server_default="open"),
            sa.Column("reviewed_at", sa.Text),
            sa.Column("added_to", sa.Text),
            sa.Column("ambiguous", sa.Integer, nullable=False, server_default="0"),
        ], [sa.CheckConstraint("matched IN (0, 1)"),
            sa.CheckConstraint("channel IN ('web', 'slack', 'cli')"),
            sa.CheckConstraint("review_status IN ('open', 'added', 'dismissed')"),
            sa.CheckConstraint("ambiguous IN (0, 1)")]),
        ("feedback", [
            sa.Column("query_id", sa.Integer,
                      sa.ForeignKey("queries.id", ondelete="CASCADE"), primary_key=True,
                      autoincrement=False),
            sa.Column("given_at", sa.Text, nullable=False),
            sa.Column("rating", sa.Text, nullable=False),
            sa.Column("picked_entry_id", sa.Text),
            sa.Column("none_of_these", sa.Integer, nullable=False, server_default="0"),
        ], [sa.CheckConstraint("rating IN ('up', 'down')"),
            sa.CheckConstraint("none_of_these IN (0, 1)")]),
        ("store_keys", [
            sa.Column("name", sa.Text, primary_key=True),
            sa.Column("value", sa.Text, nullable=False),
        ], []),
        ("daily_stats", [
            sa.Column("day", sa.Text, primary_key=True),
            sa.Column("entry_id", sa.Text, primary_key=True),
            sa.Column("outcome", sa.Text, primary_key=True),
            sa.Column("channel", sa.Text, primary_key=True),
            sa.Column("asked", sa.Integer, nullable=False, server_default="0"),
            sa.Column("confidence_sum", sa.Double, nullable=False, server_default="0"),
            sa.Column("confidence_sq", sa.Double, nullable=False, server_default="0"),
            sa.Column("up", sa.Integer, nullable=False, server_default="0"),
            sa.Column("down", sa.Integer, nullable=False, server_default="0"),
        ], [sa.CheckConstraint("outcome IN ('answered', 'ambiguous', 'refused')")]),
        ("knowledge_versions", [
            sa.Column("version", sa.Integer, sa.Identity(), primary_key=True),
            sa.Column("recorded_at", sa.Text, nullable=False),
            sa.Column("who", sa.Text, nullable=False),
            sa.Column("action", sa.Text, nullable=False),
            sa.Column("restored_from", sa.Integer),
            sa.Column("knowledge_hash", sa.Text, nullable=False),
            sa.Column("text_hash", sa.Text, nullable=False),
            sa.Column("changes", sa.Text, nullable=False),
            sa.Column("playbook", sa.Text, nullable=False),
        ], []),
        ("slack_events", [
            sa.Column("event_id", sa.Text, primary_key=True),
            sa.Column("seen_at", sa.Double, nullable=False),
        ], []),
    ]


def upgrade() -> None:
    bind = op.get_bind()
    existing = set(sa.inspect(bind).get_table_names())
    for name, columns, constraints in _tables():
        if name not in existing:
            # AUTOINCREMENT: a purged query's id is never reused (its feedback token would be
            # valid again); PostgreSQL's identity columns never reuse one either.
            op.create_table(name, *columns, *constraints,
                            sqlite_autoincrement=name in ("queries", "knowledge_versions"))
    if "queries_asked_at" not in {i["name"] for i in sa.inspect(bind).get_indexes("queries")}:
        op.create_index("queries_asked_at", "queries", ["asked_at"])
    if "queries" in existing:
        _upgrade_old_query_log(bind)


def _upgrade_old_query_log(bind: sa.engine.Connection) -> None:
    columns = {c["name"] for c in sa.inspect(bind).get_columns("queries")}
    if "ambiguous" not in columns:  # a query log from before the ambiguity flag was kept
        op.add_column("queries", sa.Column("ambiguous", sa.Integer, nullable=False,
                                           server_default="0"))
    if bind.execute(sa.text("SELECT count(*) FROM daily_stats")).scalar() == 0:
        bind.execute(sa.text(
            "INSERT INTO daily_stats (day, entry_id, outcome, channel, asked, confidence_sum,"
            " confidence_sq, up, down)"
            " SELECT substr(q.asked_at, 1, 10), coalesce(q.entry_id, ''),"
            " CASE WHEN q.matched = 0 THEN 'refused' WHEN q.ambiguous = 1 THEN 'ambiguous'"
            " ELSE 'answered' END, q.channel, count(*), sum(q.confidence),"
            " sum(q.confidence * q.confidence),"
            " sum(CASE WHEN f.rating = 'up' THEN 1 ELSE 0 END),"
            " sum(CASE WHEN f.rating = 'down' THEN 1 ELSE 0 END)"
            " FROM queries q LEFT JOIN feedback f ON f.query_id = q.id"
            " GROUP BY 1, 2, 3, 4"))


def downgrade() -> None:
    for name, _, _ in reversed(_tables()):
        op.drop_table(name)
