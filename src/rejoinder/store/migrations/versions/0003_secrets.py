"""Secrets the gateway generates for itself (the key that seals `encrypted_content`), so every
instance sharing the database uses the same one and a restart keeps it.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("secrets", sa.Column("name", sa.String(64), primary_key=True), sa.Column("value", sa.String(256), nullable=False))


def downgrade() -> None:
    op.drop_table("secrets")
