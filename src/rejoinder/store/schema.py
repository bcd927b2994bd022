"""The tables. Bodies are stored as the exact JSON the API returns, so reads never rebuild them."""

from typing import NamedTuple

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, LargeBinary, MetaData, String, Table, false, text

from rejoinder.protocol.response import Response

metadata = MetaData()
DEFAULT_PROJECT = "proj_default"  # what the master key, and a gateway without keys, act in


class Tenant(NamedTuple):
    """Whose a stored response is: its project (which alone may see it) and the key that made it
    (None: the master key, or no key)."""

    project: str
    key_id: str | None = None


responses = Table(
    "responses",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("created_at", BigInteger, nullable=False),
    Column("previous_response_id", String(64), nullable=True),
    Column("status", String(16), nullable=False, server_default="completed"),
    Column("owner", String(64), nullable=True),  # the instance making an in-progress response
    Column("body", LargeBinary, nullable=False),
    Column("project", String(64), nullable=False, server_default=DEFAULT_PROJECT),  # whose it is: another project reads it as unknown
    Column("key_id", String(64), nullable=True),  # the key that made it, for the console's filters
    Column("model", String(128), nullable=True),  # as the client named it, for the console's filters
    Index("ix_responses_project", "project", "id"),
    Index("ix_responses_in_progress", "status", sqlite_where=text("status = 'in_progress'"), postgresql_where=text("status = 'in_progress'")),
)


class ResponseRow(NamedTuple):
    """A `responses` row as the writer inserts it: its fields name the columns, in the order of
    the plain INSERT's parameters (see `insert_sql`)."""

    id: str
    created_at: int
    previous_response_id: str | None
    status: str
    owner: str | None  # the instance making an in-progress response
    body: bytes
    project: str
    key_id: str | None
    model: str


def response_row(response: Response, body: bytes, status: str, owner: str | None, tenant: Tenant) -> ResponseRow:
    """The `responses` row of a Response: its columns, and its JSON as stored."""
    return ResponseRow(
        response.id, response.created_at, response.previous_response_id, status, owner, body, tenant.project, tenant.key_id, response.model[:128]
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


class ItemRow(NamedTuple):
    """An `items` row as the writer inserts it (see `ResponseRow`)."""

    response_id: str
    role: str  # "input" or "output"
    position: int
    id: str
    body: bytes


def insert_sql(table: Table, row: type[tuple], marker: str) -> str:
    """A plain INSERT into `table` of the columns a `row` type's fields name, in their order,
    with the driver's own parameter `marker` (`?` for sqlite3, `%s` for psycopg): what the
    store's writer sends on the hot path, where compiling a statement and binding a dict per row
    cost more than the write itself. A row is its parameters as it is, whatever order the
    table's columns are in."""
    columns = row._fields  # type: ignore[attr-defined]
    return f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join([marker] * len(columns))})"


secrets = Table(
    "secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", String(256), nullable=False),
)

# Background runs (see `store.runs`): the queue, each run's event log, and the webhook outbox.
runs = Table(
    "runs",
    metadata,
    Column("response_id", String(64), primary_key=True),
    Column("queued_at", BigInteger, nullable=False),  # microseconds: the queue is FIFO
    Column("request", LargeBinary, nullable=False),  # the create request, as the client sent it
    Column("owner", String(64), nullable=True),  # the instance running it; none while queued
    Column("cancel", Boolean, nullable=False, server_default=false()),
    Column("principal", LargeBinary, nullable=True),  # JSON: who queued it, whose limits its turn spends
    Index("ix_runs_queued", "queued_at", sqlite_where=text("owner IS NULL"), postgresql_where=text("owner IS NULL")),
    Index("ix_runs_owner", "owner"),
)

events = Table(
    "events",
    metadata,
    Column("response_id", String(64), primary_key=True),
    Column("seq", Integer, primary_key=True),  # the first event's sequence number
    Column("last_seq", Integer, nullable=False),
    Column("frames", LargeBinary, nullable=False),  # the SSE frames, exactly as sent
)

webhook_outbox = Table(
    "webhook_outbox",
    metadata,
    Column("id", String(64), primary_key=True),  # the event id, the same on every attempt
    Column("hook", Integer, primary_key=True),  # which configured webhook
    Column("body", LargeBinary, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("due_at", BigInteger, nullable=False),  # unix seconds; a claimed delivery pushes it on
    Index("ix_webhook_outbox_due", "due_at"),
)

# Conversations (see `store.conversations`): each keeps a counter from which every append takes
# a contiguous block of positions, so concurrent turns never interleave their items.
conversations = Table(
    "conversations",
    metadata,
    Column("project", String(64), primary_key=True),  # ids are the project's own: another may hold the same
    Column("id", String(64), primary_key=True),
    Column("created_at", BigInteger, nullable=False),
    Column("metadata", LargeBinary, nullable=False),  # JSON
    Column("next_position", BigInteger, nullable=False, server_default="0"),
    Column("revision", BigInteger, nullable=False, server_default="0"),  # counts removals: a reader's cache is stale
)

conversation_items = Table(
    "conversation_items",
    metadata,
    Column("project", String(64), primary_key=True),
    Column("conversation_id", String(64), primary_key=True),
    Column("position", BigInteger, primary_key=True),
    Column("id", String(64), nullable=False),
    Column("body", LargeBinary, nullable=False),
    Index("ix_conversation_items_id", "project", "conversation_id", "id"),
)

# Prompt templates made through the API (see `engine.context.prompt_templates`; those from `prompts_dir` live in
# files). Versions are immutable: a change is a new version.
prompts = Table(
    "prompts",
    metadata,
    Column("project", String(64), primary_key=True),  # ids are the project's own: another may hold the same
    Column("id", String(64), primary_key=True),
    Column("default_version", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

prompt_versions = Table(
    "prompt_versions",
    metadata,
    Column("project", String(64), primary_key=True),
    Column("prompt_id", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("template", LargeBinary, nullable=False),  # JSON: a create-request body without `prompt`
    Column("created_at", BigInteger, nullable=False),
)

# What was used, added up per day, project, key and model (see `api.usage`): each instance adds
# its counts every few seconds, so a row is the sum over every instance.
usage = Table(
    "usage",
    metadata,
    Column("day", String(10), primary_key=True),  # YYYY-MM-DD, UTC
    Column("project", String(64), primary_key=True),
    Column("key_id", String(64), primary_key=True),
    Column("model", String(128), primary_key=True),  # the config entry (`gpt-*`)
    Column("requests", BigInteger, nullable=False),
    Column("errors", BigInteger, nullable=False),
    Column("input_tokens", BigInteger, nullable=False),
    Column("output_tokens", BigInteger, nullable=False),
    Column("cached_tokens", BigInteger, nullable=False, server_default="0"),  # of input_tokens: read from the upstream's prompt cache
    Column("cache_write_tokens", BigInteger, nullable=False, server_default="0"),  # of input_tokens: written to it
    Column("web_searches", BigInteger, nullable=False, server_default="0"),  # searches the upstream billed by the call
    Column("upstream_calls", BigInteger, nullable=False, server_default="0"),  # every call made: tool rounds, retries, compactions
    Column("cost", BigInteger, nullable=False, server_default="0"),  # micro-dollars, by the model's `price`
)

# Projects and their API keys (see `store.access`). A key is kept as the SHA-256 of its value
# (the value is 256 random bits: a slow hash would add nothing); `managed` is "api", or "config"
# for what the config file declares, made again from it at each start.
projects = Table(
    "projects",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(256), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("archived_at", BigInteger, nullable=True),
    Column("limits", LargeBinary, nullable=False),  # JSON: allowed_models, rpm, tpm, budget
    Column("managed", String(8), nullable=False, server_default="api"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("project", String(64), nullable=False),
    Column("name", String(256), nullable=False),
    Column("digest", String(64), nullable=False, unique=True),
    Column("redacted_value", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("limits", LargeBinary, nullable=False),
    Column("managed", String(8), nullable=False, server_default="api"),
    Index("ix_api_keys_project", "project"),
)

# One counter that every change to projects or keys moves on, in the same transaction: each
# instance reads it twice a second and drops the keys it knows when it moved (revocation).
access_revision = Table(
    "access_revision",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("revision", BigInteger, nullable=False),
)

# Files uploaded through the Files API (see `api.files`): the bytes live in the row, so every
# instance reads what any one stored. An expired file reads as unknown and is deleted by the
# next upload of its project.
files = Table(
    "files",
    metadata,
    Column("project", String(64), primary_key=True),  # ids are the project's own: another may hold the same
    Column("id", String(64), primary_key=True),
    Column("filename", String(512), nullable=False),
    Column("purpose", String(32), nullable=False),
    Column("media_type", String(128), nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=True),
    Column("content", LargeBinary, nullable=False),
    Index("ix_files_created", "project", "created_at"),
)

# Vector stores (see `api.vector_stores`, `engine.retrieval`): a store, the files in it (each
# ingested once, by whichever instance claims it), and their chunks, searched by full text.
vector_stores = Table(
    "vector_stores",
    metadata,
    Column("project", String(64), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("name", String(256), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("last_active_at", BigInteger, nullable=False),
    Column("expires_after", Integer, nullable=True),  # days after last activity
    Column("metadata", LargeBinary, nullable=False),
    Column("revision", BigInteger, nullable=False, server_default="0"),  # bumped whenever its chunks change (see `engine.retrieval.vectors`)
)

vector_store_files = Table(
    "vector_store_files",
    metadata,
    Column("project", String(64), primary_key=True),
    Column("store_id", String(64), primary_key=True),
    Column("file_id", String(64), primary_key=True),
    Column("created_at", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),  # in_progress, completed, failed, cancelled
    Column("owner", String(64), nullable=True),  # the instance ingesting it (None: waiting for one)
    Column("batch_id", String(64), nullable=True),
    Column("attributes", LargeBinary, nullable=False),
    Column("chunking", LargeBinary, nullable=False),  # the chunking strategy, as the API shows it
    Column("filename", String(512), nullable=False),  # the file's, kept here for search results
    Column("usage_bytes", BigInteger, nullable=False, server_default="0"),
    Column("last_error", LargeBinary, nullable=True),
    Index("ix_vector_store_files_pending", "status", sqlite_where=text("status = 'in_progress'"), postgresql_where=text("status = 'in_progress'")),
)

# The chunks table differs by database (an FTS5 table on SQLite, a tsvector column on
# PostgreSQL: migration 0012), so it is written and searched with plain SQL (`store.vector_stores`).
