"""Usage records count the prompt cache, billed searches, every upstream call and the cost.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

COLUMNS = ("cached_tokens", "cache_write_tokens", "web_searches", "upstream_calls", "cost")


def upgrade() -> None:
    with op.batch_alter_table("usage") as batch:
        for name in COLUMNS:
            batch.add_column(sa.Column(name, sa.BigInteger, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("usage") as batch:
        for name in COLUMNS:
            batch.drop_column(name)
