"""Background runs: the durable queue, each run's event log (for resuming its stream), and the
webhook outbox.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("response_id", sa.String(64), primary_key=True),
        sa.Column("queued_at", sa.BigInteger, nullable=False),
        sa.Column("request", sa.LargeBinary, nullable=False),
        sa.Column("owner", sa.String(64), nullable=True),
        sa.Column("cancel", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_index("ix_runs_queued", "runs", ["queued_at"], sqlite_where=sa.text("owner IS NULL"), postgresql_where=sa.text("owner IS NULL"))
    op.create_index("ix_runs_owner", "runs", ["owner"])
    op.create_table(
        "events",
        sa.Column("response_id", sa.String(64), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("last_seq", sa.Integer, nullable=False),
        sa.Column("frames", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "webhook_outbox",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("hook", sa.Integer, primary_key=True),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("due_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_webhook_outbox_due", "webhook_outbox", ["due_at"])


def downgrade() -> None:
    op.drop_table("webhook_outbox")
    op.drop_table("events")
    op.drop_table("runs")
