"""Conversation and prompt ids are each project's own: a project may create one under an id
another project holds (which it could not see), so an id taken elsewhere no longer shows.

Each table is made anew with `project` leading its primary key, its rows copied over, and put in
the old one's place: the same steps on SQLite and PostgreSQL.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

DEFAULT_PROJECT = "proj_default"


def _tables(scoped: bool) -> list[tuple[str, list[sa.Column], str]]:
    """Each table's columns (`project` in the primary key when `scoped`), and what to copy into
    it from the old one (a child takes its parent's project)."""

    def project() -> sa.Column:
        if scoped:
            return sa.Column("project", sa.String(64), primary_key=True)
        return sa.Column("project", sa.String(64), nullable=False, server_default=DEFAULT_PROJECT)

    def child_project() -> list[sa.Column]:
        return [sa.Column("project", sa.String(64), primary_key=True)] if scoped else []

    parent_of_item = "(SELECT c.project FROM conversations c WHERE c.id = conversation_items.conversation_id)"
    parent_of_version = "(SELECT p.project FROM prompts p WHERE p.id = prompt_versions.prompt_id)"
    return [
        (
            "conversations",
            [
                project(),
                sa.Column("id", sa.String(64), primary_key=True),
                sa.Column("created_at", sa.BigInteger, nullable=False),
                sa.Column("metadata", sa.LargeBinary, nullable=False),
                sa.Column("next_position", sa.BigInteger, nullable=False, server_default="0"),
                sa.Column("revision", sa.BigInteger, nullable=False, server_default="0"),
            ],
            "SELECT project, id, created_at, metadata, next_position, revision FROM conversations",
        ),
        (
            "conversation_items",
            [
                *child_project(),
                sa.Column("conversation_id", sa.String(64), primary_key=True),
                sa.Column("position", sa.BigInteger, primary_key=True),
                sa.Column("id", sa.String(64), nullable=False),
                sa.Column("body", sa.LargeBinary, nullable=False),
            ],
            f"SELECT {f'COALESCE({parent_of_item}, :default), ' if scoped else ''}conversation_id, position, id, body FROM conversation_items",
        ),
        (
            "prompts",
            [
                project(),
                sa.Column("id", sa.String(64), primary_key=True),
                sa.Column("default_version", sa.Integer, nullable=False),
                sa.Column("created_at", sa.BigInteger, nullable=False),
            ],
            "SELECT project, id, default_version, created_at FROM prompts",
        ),
        (
            "prompt_versions",
            [
                *child_project(),
                sa.Column("prompt_id", sa.String(64), primary_key=True),
                sa.Column("version", sa.Integer, primary_key=True),
                sa.Column("template", sa.LargeBinary, nullable=False),
                sa.Column("created_at", sa.BigInteger, nullable=False),
            ],
            f"SELECT {f'COALESCE({parent_of_version}, :default), ' if scoped else ''}prompt_id, version, template, created_at FROM prompt_versions",
        ),
    ]


def _remake(scoped: bool) -> None:
    op.drop_index("ix_conversation_items_id", "conversation_items")
    made = []
    for name, columns, rows in _tables(scoped):
        op.create_table(f"{name}_new", *columns)
        listed = ", ".join(column.name for column in columns)
        query = sa.text(f"INSERT INTO {name}_new ({listed}) {rows}")
        op.execute(query.bindparams(default=DEFAULT_PROJECT) if ":default" in rows else query)
        made.append(name)
    for name in made:  # the children read their parents' old rows: drop only once every copy is made
        op.drop_table(name)
        op.rename_table(f"{name}_new", name)
    op.create_index("ix_conversation_items_id", "conversation_items", ["project", "conversation_id", "id"] if scoped else ["conversation_id", "id"])


def upgrade() -> None:
    _remake(scoped=True)


def downgrade() -> None:
    _remake(scoped=False)
