"""Vector stores, the files in them, and their chunks with a full-text index: SQLite's FTS5
(the chunks live in the index table itself), PostgreSQL's tsvector with a GIN index. Each
chunk keeps its embedding (float32 bytes, unit length), scored in process.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vector_stores",
        sa.Column("project", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(256), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("last_active_at", sa.BigInteger, nullable=False),
        sa.Column("expires_after", sa.Integer, nullable=True),  # days after last activity
        sa.Column("metadata", sa.LargeBinary, nullable=False),
        sa.Column("revision", sa.BigInteger, nullable=False, server_default="0"),  # bumped whenever its chunks change
    )
    op.create_table(
        "vector_store_files",
        sa.Column("project", sa.String(64), primary_key=True),
        sa.Column("store_id", sa.String(64), primary_key=True),
        sa.Column("file_id", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(64), nullable=True),  # the instance ingesting it
        sa.Column("batch_id", sa.String(64), nullable=True),
        sa.Column("attributes", sa.LargeBinary, nullable=False),
        sa.Column("chunking", sa.LargeBinary, nullable=False),
        sa.Column("filename", sa.String(512), nullable=False),
        sa.Column("usage_bytes", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("last_error", sa.LargeBinary, nullable=True),
    )
    op.create_index(
        "ix_vector_store_files_pending",
        "vector_store_files",
        ["status"],
        sqlite_where=sa.text("status = 'in_progress'"),
        postgresql_where=sa.text("status = 'in_progress'"),
    )
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE chunks USING fts5(text, project UNINDEXED, store_id UNINDEXED, file_id UNINDEXED, position UNINDEXED, vector UNINDEXED)"
        )
    else:
        op.execute(
            """
            CREATE TABLE chunks (
                project VARCHAR(64) NOT NULL, store_id VARCHAR(64) NOT NULL, file_id VARCHAR(64) NOT NULL, position INTEGER NOT NULL,
                text TEXT NOT NULL, vector BYTEA, words tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED,
                PRIMARY KEY (project, store_id, file_id, position)
            )
            """
        )
        op.execute("CREATE INDEX ix_chunks_words ON chunks USING GIN (words)")


def downgrade() -> None:
    op.execute("DROP TABLE chunks")
    op.drop_index("ix_vector_store_files_pending", "vector_store_files")
    op.drop_table("vector_store_files")
    op.drop_table("vector_stores")
