"""Projects and API keys, and the project that owns each stored response, conversation and prompt.

Revision ID: 0008
Revises: 0007
"""

import time

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

DEFAULT_PROJECT = "proj_default"


def upgrade() -> None:
    for table in ("responses", "conversations", "prompts"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("project", sa.String(64), nullable=False, server_default=DEFAULT_PROJECT))
    with op.batch_alter_table("responses") as batch:  # the console's filters
        batch.add_column(sa.Column("key_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("model", sa.String(128), nullable=True))
    op.create_index("ix_responses_project", "responses", ["project", "id"])
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("principal", sa.LargeBinary, nullable=True))
    op.execute(sa.text("UPDATE usage SET project = :project WHERE project = ''").bindparams(project=DEFAULT_PROJECT))
    projects = op.create_table(
        "projects",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("archived_at", sa.BigInteger, nullable=True),
        sa.Column("limits", sa.LargeBinary, nullable=False),
        sa.Column("managed", sa.String(8), nullable=False, server_default="api"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("project", sa.String(64), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False, unique=True),
        sa.Column("redacted_value", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("limits", sa.LargeBinary, nullable=False),
        sa.Column("managed", sa.String(8), nullable=False, server_default="api"),
    )
    op.create_index("ix_api_keys_project", "api_keys", ["project"])
    revisions = op.create_table("access_revision", sa.Column("id", sa.Integer, primary_key=True), sa.Column("revision", sa.BigInteger, nullable=False))
    op.bulk_insert(projects, [{"id": DEFAULT_PROJECT, "name": "Default project", "created_at": int(time.time()), "limits": b"{}", "managed": "api"}])
    op.bulk_insert(revisions, [{"id": 1, "revision": 0}])


def downgrade() -> None:
    op.drop_table("access_revision")
    op.drop_table("api_keys")
    op.drop_table("projects")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("principal")
    op.drop_index("ix_responses_project", "responses")
    with op.batch_alter_table("responses") as batch:
        batch.drop_column("model")
        batch.drop_column("key_id")
    for table in ("prompts", "conversations", "responses"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("project")
