"""Responses remember their status and the instance making them; instances beat a heartbeat.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_IN_PROGRESS = sa.text("status = 'in_progress'")


def upgrade() -> None:
    with op.batch_alter_table("responses") as batch:
        batch.add_column(sa.Column("status", sa.String(16), nullable=False, server_default="completed"))
        batch.add_column(sa.Column("owner", sa.String(64), nullable=True))
    op.create_index("ix_responses_in_progress", "responses", ["status"], sqlite_where=_IN_PROGRESS, postgresql_where=_IN_PROGRESS)
    op.create_table(
        "instances",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("heartbeat_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("instances")
    op.drop_index("ix_responses_in_progress", "responses")
    with op.batch_alter_table("responses") as batch:
        batch.drop_column("owner")
        batch.drop_column("status")
