"""The tables. Bodies are stored as the exact JSON the API returns, so reads never rebuild them."""

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, MetaData, String, Table, text

metadata = MetaData()

responses = Table(
    "responses",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("created_at", BigInteger, nullable=False),
    Column("previous_response_id", String(64), nullable=True),
    Column("status", String(16), nullable=False, server_default="completed"),
    Column("owner", String(64), nullable=True),  # the instance making an in-progress response
    Column("body", LargeBinary, nullable=False),
    Index("ix_responses_in_progress", "status", sqlite_where=text("status = 'in_progress'"), postgresql_where=text("status = 'in_progress'")),
)

instances = Table(
    "instances",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("heartbeat_at", BigInteger, nullable=False),
)

items = Table(
    "items",
    metadata,
    Column("response_id", String(64), primary_key=True),
    Column("role", String(8), primary_key=True),  # "input" or "output": input sorts first
    Column("position", Integer, primary_key=True),
    Column("id", String(64), nullable=False),
    Column("body", LargeBinary, nullable=False),
    Index("ix_items_id", "id"),
)

secrets = Table(
    "secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", String(256), nullable=False),
)
