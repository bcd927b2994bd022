"""Vector Stores API bodies (`/v1/vector_stores…`): what a client sends, decoded and checked,
the objects the API answers with, and attribute filters (OpenAI's comparison and compound
filters), which a search and the `file_search` tool apply alike."""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from msgspec import UNSET, Struct, UnsetType

from rejoinder.protocol.checks import decode_body
from rejoinder.protocol.errors import invalid
from rejoinder.protocol.request import check_metadata

MAX_FILES = 500  # file ids one request may add, as OpenAI allows
AUTO_CHUNKING = {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400}  # OpenAI's `auto`
MAX_ATTRIBUTES = 16
Attributes = dict[str, str | int | float | bool]


class StoreExpiry(Struct, forbid_unknown_fields=True):
    anchor: Literal["last_active_at"]
    days: int


class CreateStore(Struct, forbid_unknown_fields=True):
    name: str | None = None
    description: str | None = None
    file_ids: list[str] | None = None
    expires_after: StoreExpiry | None = None
    chunking_strategy: dict[str, Any] | None = None
    metadata: dict[str, str] | None = None


class UpdateStore(Struct, forbid_unknown_fields=True):
    name: str | None | UnsetType = UNSET
    expires_after: StoreExpiry | None | UnsetType = UNSET
    metadata: dict[str, str] | None | UnsetType = UNSET


class AddFile(Struct, forbid_unknown_fields=True):
    file_id: str
    chunking_strategy: dict[str, Any] | None = None
    attributes: Attributes | None = None


class AddBatch(Struct, forbid_unknown_fields=True):
    file_ids: list[str] | None = None
    files: list[AddFile] | None = None
    chunking_strategy: dict[str, Any] | None = None
    attributes: Attributes | None = None


class UpdateFile(Struct, forbid_unknown_fields=True):
    attributes: Attributes | None


class RankingOptions(Struct, forbid_unknown_fields=True):
    ranker: Literal["auto", "default-2024-11-15", "none"] = "auto"
    score_threshold: float = 0.0


class Search(Struct, forbid_unknown_fields=True):
    query: str | list[str]
    rewrite_query: bool = False
    max_num_results: int = 10
    filters: dict[str, Any] | None = None
    ranking_options: RankingOptions | None = None


class Wanted(Struct):
    """What to add to a store: one file, its attributes and how it is chunked."""

    file_id: str
    attributes: Attributes
    chunking: dict[str, int]


def chunking_of(given: dict[str, Any] | None, param: str = "chunking_strategy") -> dict[str, int]:
    """A chunking strategy's sizes: `auto` (800 tokens, 400 of overlap) or `static` ones
    (100–4,096 tokens, an overlap of at most half)."""
    if given is None or given.get("type") == "auto":
        return dict(AUTO_CHUNKING)
    if given.get("type") != "static" or not isinstance(given.get("static"), dict):
        raise invalid(param, f"Invalid '{param}': expected {{'type': 'auto'}} or {{'type': 'static', 'static': {{…}}}}.")
    static = given["static"]
    size, overlap = static.get("max_chunk_size_tokens"), static.get("chunk_overlap_tokens")
    if type(size) is not int or not 100 <= size <= 4096:
        raise invalid(f"{param}.static.max_chunk_size_tokens", "Invalid 'max_chunk_size_tokens': expected an integer between 100 and 4096.")
    if type(overlap) is not int or not 0 <= overlap <= size // 2:
        raise invalid(f"{param}.static.chunk_overlap_tokens", "Invalid 'chunk_overlap_tokens': expected an integer from 0 to half of max_chunk_size_tokens.")
    return {"max_chunk_size_tokens": size, "chunk_overlap_tokens": overlap}


def check_attributes(attributes: Attributes | None, param: str = "attributes") -> Attributes:
    attributes = attributes or {}
    if len(attributes) > MAX_ATTRIBUTES or any(len(key) > 64 or (isinstance(value, str) and len(value) > 512) for key, value in attributes.items()):
        raise invalid(param, f"Invalid '{param}': at most {MAX_ATTRIBUTES} keys of up to 64 characters, string values of up to 512.")
    return attributes


def _check_expiry(expiry: StoreExpiry | None) -> None:
    if expiry is not None and not 1 <= expiry.days <= 365:
        raise invalid("expires_after.days", "Invalid 'expires_after.days': expected a value between 1 and 365.")


_create = msgspec.json.Decoder(CreateStore)
_update = msgspec.json.Decoder(UpdateStore)
_add = msgspec.json.Decoder(AddFile)
_batch = msgspec.json.Decoder(AddBatch)
_update_file = msgspec.json.Decoder(UpdateFile)
_search = msgspec.json.Decoder(Search)


def decode_create(raw: bytes) -> tuple[CreateStore, list[Wanted]]:
    body = decode_body(_create, raw or b"{}")
    check_metadata(body.metadata or {})
    _check_expiry(body.expires_after)
    if len(body.file_ids or ()) > MAX_FILES:
        raise invalid("file_ids", f"Invalid 'file_ids': at most {MAX_FILES} files.")
    chunking = chunking_of(body.chunking_strategy)
    return body, [Wanted(file_id, {}, chunking) for file_id in dict.fromkeys(body.file_ids or ())]


def decode_update(raw: bytes) -> UpdateStore:
    body = decode_body(_update, raw)
    if isinstance(body.metadata, dict):
        check_metadata(body.metadata)
    if isinstance(body.expires_after, StoreExpiry):
        _check_expiry(body.expires_after)
    return body


def decode_add(raw: bytes) -> Wanted:
    body = decode_body(_add, raw)
    return Wanted(body.file_id, check_attributes(body.attributes), chunking_of(body.chunking_strategy))


def decode_batch(raw: bytes) -> list[Wanted]:
    body = decode_body(_batch, raw)
    if (body.file_ids is None) == (body.files is None):
        raise invalid("file_ids", "Give either 'file_ids' or 'files'.")
    attributes, chunking = check_attributes(body.attributes), chunking_of(body.chunking_strategy)
    if body.file_ids is not None:
        wanted = [Wanted(file_id, attributes, chunking) for file_id in dict.fromkeys(body.file_ids)]
    else:
        wanted = [
            Wanted(
                file.file_id,
                check_attributes(file.attributes, f"files[{i}].attributes") if file.attributes is not None else attributes,
                chunking_of(file.chunking_strategy, f"files[{i}].chunking_strategy") if file.chunking_strategy is not None else chunking,
            )
            for i, file in enumerate(body.files or ())
        ]
    if not wanted or len(wanted) > MAX_FILES:
        raise invalid("file_ids", f"Invalid 'file_ids': from 1 to {MAX_FILES} files.")
    return wanted


def decode_update_file(raw: bytes) -> Attributes:
    return check_attributes(decode_body(_update_file, raw).attributes)


def decode_search(raw: bytes) -> Search:
    body = decode_body(_search, raw)
    queries = [body.query] if isinstance(body.query, str) else body.query
    if not queries or not all(isinstance(q, str) and q.strip() for q in queries):
        raise invalid("query", "Invalid 'query': expected a non-empty string or list of strings.")
    check_search(body.max_num_results, body.filters)
    return body


def check_search(max_num_results: int, filters: Any, param: str = "") -> None:
    """`max_num_results` (1–50) and `filters`, as a search or a `file_search` tool gives them."""
    if not 1 <= max_num_results <= 50:
        raise invalid(f"{param}max_num_results", "Invalid 'max_num_results': expected a value between 1 and 50.")
    if filters is not None:
        check_filter(filters, f"{param}filters")


_COMPARISONS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "nin")


def check_filter(given: Any, param: str) -> None:
    """A comparison (`{"type": "eq", "key", "value"}` …) or compound (`{"type": "and"|"or",
    "filters": […]}`) filter, checked as a whole before any search runs."""
    kind = given.get("type") if isinstance(given, dict) else None
    if kind in ("and", "or"):
        inner = given.get("filters")
        if not isinstance(inner, list) or not inner:
            raise invalid(f"{param}.filters", "A compound filter needs a non-empty 'filters' list.")
        for i, each in enumerate(inner):
            check_filter(each, f"{param}.filters[{i}]")
        return
    if kind not in _COMPARISONS or not isinstance(given.get("key"), str) or "value" not in given:
        raise invalid(param, f"Invalid filter: expected {{'type': one of {', '.join(_COMPARISONS)}, 'key', 'value'}} or {{'type': 'and'|'or', 'filters'}}.")
    value = given["value"]
    if kind in ("in", "nin"):
        if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value):
            raise invalid(f"{param}.value", f"'{kind}' compares with a list of strings or numbers.")
    elif not isinstance(value, (str, int, float, bool)):
        raise invalid(f"{param}.value", "A comparison's value is a string, a number or a boolean.")


def matches(given: dict[str, Any] | None, attributes: Attributes) -> bool:
    """Whether a file's attributes pass a (checked) filter. A comparison on a key the file does
    not have fails, `ne` and `nin` included; ordering compares numbers with numbers and strings
    with strings only."""
    if given is None:
        return True
    kind = given["type"]
    if kind == "and":
        return all(matches(each, attributes) for each in given["filters"])
    if kind == "or":
        return any(matches(each, attributes) for each in given["filters"])
    if given["key"] not in attributes:
        return False
    have, value = attributes[given["key"]], given["value"]
    if kind == "eq":
        return have == value
    if kind == "ne":
        return have != value
    if kind == "in":
        return have in value
    if kind == "nin":
        return have not in value
    comparable = (isinstance(have, str) and isinstance(value, str)) or (
        isinstance(have, (int, float)) and not isinstance(have, bool) and isinstance(value, (int, float)) and not isinstance(value, bool)
    )
    if not comparable:
        return False
    return {"gt": have > value, "gte": have >= value, "lt": have < value, "lte": have <= value}[kind]  # type: ignore[operator]


# What the API answers


class FileCounts(Struct):
    in_progress: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    total: int = 0


class VectorStore(Struct, tag="vector_store", tag_field="object"):
    id: str
    created_at: int
    name: str
    usage_bytes: int
    file_counts: FileCounts
    status: str
    last_active_at: int
    metadata: dict[str, str]
    expires_after: dict[str, Any] | UnsetType = UNSET
    expires_at: int | None | UnsetType = UNSET


class VectorStoreFile(Struct, tag="vector_store.file", tag_field="object"):
    id: str
    created_at: int
    vector_store_id: str
    status: str
    usage_bytes: int
    last_error: dict[str, str] | None
    chunking_strategy: dict[str, Any]
    attributes: Attributes


class FileBatch(Struct, tag="vector_store.files_batch", tag_field="object"):
    id: str
    created_at: int
    vector_store_id: str
    status: str
    file_counts: FileCounts


class StoreDeleted(Struct, tag="vector_store.deleted", tag_field="object"):
    id: str
    deleted: bool = True


class StoreFileDeleted(Struct, tag="vector_store.file.deleted", tag_field="object"):
    id: str
    deleted: bool = True


class SearchResult(Struct):
    file_id: str
    filename: str
    score: float
    attributes: Attributes
    content: list[dict[str, str]]


class SearchPage(Struct, tag="vector_store.search_results.page", tag_field="object"):
    search_query: list[str]
    data: list[SearchResult]
    has_more: bool = False
    next_page: str | None = None
