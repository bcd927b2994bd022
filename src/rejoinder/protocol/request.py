"""`POST /v1/responses` bodies: decoded once with msgspec, validated, and normalized.

Every user-facing verdict about a bad request is made here and raised as one `ApiError` that
names the offending `param` in OpenAI's dotted form (`input[0].content`). Fields OpenAI
accepts but that change nothing here are accepted and echoed, never rejected.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from rejoinder.protocol.checks import check_json, decode_body, type_of, validation_error
from rejoinder.protocol.errors import invalid
from rejoinder.protocol.hosted_schemas import check_hosted
from rejoinder.protocol.ids import ID_PATTERN, is_valid_id
from rejoinder.protocol.items import HOSTED_ITEM_TYPES, HostedItem, InputItem, ItemReference, Message, normalize
from rejoinder.protocol.tools import Tools, decode_tools

# Integers the gateway echoes or forwards must fit what JSON encoders and upstreams take.
Count = Annotated[int, Meta(ge=1, le=2**31 - 1)]

Include = Literal[
    "file_search_call.results",
    "web_search_call.results",
    "web_search_call.action.sources",
    "message.input_image.image_url",
    "computer_call_output.output.image_url",
    "code_interpreter_call.outputs",
    "reasoning.encrypted_content",
    "message.output_text.logprobs",
]


class TextFormatText(Struct, tag="text", tag_field="type", frozen=True):
    pass


class TextFormatJsonObject(Struct, tag="json_object", tag_field="type"):
    pass


class TextFormatJsonSchema(Struct, tag="json_schema", tag_field="type"):
    name: Annotated[str, Meta(pattern=r"^[a-zA-Z0-9_-]{1,64}$")]
    schema: dict[str, Any]
    description: str | None = None
    strict: bool | None = None


TextFormat = Union[TextFormatText, TextFormatJsonObject, TextFormatJsonSchema]


class TextParam(Struct):
    format: TextFormat = TextFormatText()
    verbosity: Literal["low", "medium", "high"] | None = None


class ReasoningParam(Struct):
    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None
    generate_summary: Literal["auto", "concise", "detailed"] | None = None


class PromptRef(Struct, forbid_unknown_fields=True):
    """`prompt`: a template by id, at a version (its default without one), with variables."""

    id: Annotated[str, Meta(min_length=1)]
    version: str | None = None
    variables: dict[str, Any] | None = None


class PromptCacheOptions(Struct, forbid_unknown_fields=True, omit_defaults=True):
    """`prompt_cache_options`: a cache entry's minimum lifetime (OpenAI offers 30 minutes), and
    whether the gateway places breakpoints of its own (`implicit`, the default) or only the
    client's `prompt_cache_breakpoint`s count (`explicit`)."""

    ttl: Literal["30m"] | None = None
    mode: Literal["implicit", "explicit"] | None = None


class ContextManagement(Struct, forbid_unknown_fields=True):
    type: Literal["compaction"]
    compact_threshold: Annotated[int, Meta(ge=1000)] | None = None


class CreateResponse(Struct, kw_only=True):
    """The request body, as sent."""

    model: str | UnsetType = UNSET  # may come from `prompt`'s template instead
    input: str | list[dict[str, Any]] | UnsetType = UNSET
    messages: list[dict[str, Any]] | UnsetType = UNSET
    instructions: str | None = None
    previous_response_id: Annotated[str, Meta(pattern=ID_PATTERN)] | None = None
    temperature: Annotated[float, Meta(ge=0, le=2)] | None = None
    top_p: Annotated[float, Meta(ge=0, le=1)] | None = None
    max_output_tokens: Annotated[int, Meta(ge=16, le=2**31 - 1)] | None = None  # both specs: at least 16
    presence_penalty: Annotated[float, Meta(ge=-2, le=2)] | None = None
    frequency_penalty: Annotated[float, Meta(ge=-2, le=2)] | None = None
    top_logprobs: Annotated[int, Meta(ge=0, le=20)] | None = None
    tools: list[dict[str, Any]] = []
    tool_choice: Any = "auto"
    parallel_tool_calls: bool | None = None
    text: TextParam | None = None
    reasoning: ReasoningParam | None = None
    metadata: dict[str, str] | None = None
    safety_identifier: str | None = None
    user: str | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None
    prompt_cache_options: PromptCacheOptions | None = None
    store: bool | None = True
    include: list[Include] | None = None
    stream: bool | None = False
    stream_options: dict[str, Any] | None = None
    background: bool | None = False
    conversation: Any = None
    prompt: PromptRef | None = None
    truncation: Literal["auto", "disabled"] | None = "disabled"
    context_management: Annotated[list[ContextManagement], Meta(min_length=1)] | None = None
    # The gateway's own: with a json_schema text format, output that does not match is generated
    # again up to this many times (see engine.context.retries); usually set by a prompt template.
    retries: Annotated[int, Meta(ge=0, le=10)] | None = None
    service_tier: Literal["auto", "default", "flex", "scale", "priority"] | None = "auto"
    max_tool_calls: Count | None = None
    # Sampling knobs other gateways accept; each provider maps or refuses them (`sampling`).
    n: Annotated[int, Meta(ge=1, le=128)] | None = None
    stop: str | Annotated[list[str], Meta(max_length=4)] | None = None
    logit_bias: dict[str, Annotated[int, Meta(ge=-100, le=100)]] | None = None
    seed: Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)] | None = None
    # Aliases: `max_tokens` for `max_output_tokens`, `response_format` for `text.format`.
    max_tokens: Annotated[int, Meta(ge=16, le=2**31 - 1)] | None = None
    response_format: dict[str, Any] | None = None
    # Accepted for parity with other gateways' chat endpoints, and ignored.
    tags: list[str] | None = None
    trace: dict[str, Any] | None = None


_decoder = msgspec.json.Decoder(CreateResponse)


class Request(Struct):
    """A validated `POST /v1/responses`: the body as sent, and what the gateway made of it."""

    body: CreateResponse
    items: list  # the input in canonical form (item references not yet resolved)
    tools: Tools
    conversation: str | None = None  # the id of the conversation it continues


def decode_create_response(raw: bytes) -> Request:
    return _check(decode_body(_decoder, raw))


def _check(request: CreateResponse) -> Request:
    if request.input is not UNSET and request.messages is not UNSET:
        raise invalid("messages", "Provide either 'input' or 'messages', not both.", "conflicting_parameters")
    items = []
    if request.messages is not UNSET:
        items = _items(request.messages, "messages")
    elif request.input is not UNSET:
        items = decode_input(request.input, "input")
    for name in ("tools", "tool_choice", "stream_options"):
        check_json(getattr(request, name), name)
    if request.text is not None and isinstance(request.text.format, TextFormatJsonSchema):
        check_json(request.text.format.schema, "text.format.schema")
    if not items and not request.previous_response_id and request.prompt is None:
        raise invalid("input", "Missing required parameter: 'input'.", "missing_required_parameter")
    if request.metadata is not None:
        check_metadata(request.metadata)
    _aliases(request)
    tools = decode_tools(request.tools, request.tool_choice)
    if request.background and request.store is False:
        raise invalid("background", "A background response must be stored: 'background' needs 'store' true (the default).")
    conversation = _conversation(request)
    if request.model is UNSET and request.prompt is None:
        raise invalid("model", "Missing required parameter: 'model'.", "missing_required_parameter")
    return Request(request, items, tools, conversation)


def _conversation(request: CreateResponse) -> str | None:
    """The conversation's id, from `"conv_…"` or `{"id": "conv_…"}`."""
    given = request.conversation
    if given is None:
        return None
    conversation_id = given.get("id") if isinstance(given, dict) else given
    if not isinstance(conversation_id, str) or not is_valid_id(conversation_id):
        raise invalid("conversation", "Invalid 'conversation': expected a conversation id, or an object with its 'id'.")
    if not conversation_id.startswith("conv"):
        raise invalid("conversation", "Invalid 'conversation': expected an ID that begins with 'conv'.")
    if request.previous_response_id:
        raise invalid("conversation", "Provide either 'conversation' or 'previous_response_id', not both.", "conflicting_parameters")
    return conversation_id


_INPUT_ITEMS = list[InputItem]
_STAND_IN = {"type": "item_reference", "id": "hosted"}


def decode_input(raw: str | list[dict[str, Any]], name: str) -> list:
    """An `input` in canonical form: a string is one user message."""
    if isinstance(raw, str):
        return [normalize(Message(role="user", content=raw))]
    return _items(raw, name)


def _items(raw: list[dict[str, Any]], name: str) -> list:
    """Items in their typed form; a message may omit `type`, as OpenAI allows; hosted tools'
    records stay as they are."""
    check_json(raw, name)
    typed = [{**entry, "type": "message"} if "type" not in entry and "role" in entry else entry for entry in raw]
    hosted = {i: HostedItem(entry) for i, entry in enumerate(typed) if type_of(entry) in HOSTED_ITEM_TYPES}
    for i, item in hosted.items():
        if not is_valid_id(item.id):
            raise invalid(f"{name}[{i}].id", f"Invalid '{name}[{i}].id': expected an id of 1 to 64 printable ASCII characters.")
        check_hosted(item.raw, f"{name}[{i}]")
    try:  # hosted records hold their place with a stand-in, so error paths keep their index
        items = msgspec.convert([_STAND_IN if i in hosted else entry for i, entry in enumerate(typed)], _INPUT_ITEMS)
    except msgspec.ValidationError as exc:
        raise validation_error(exc, name) from None
    return [hosted[i] if i in hosted else item if isinstance(item, ItemReference) else normalize(item) for i, item in enumerate(items)]


def _aliases(request: CreateResponse) -> None:
    """Fold `max_tokens`, `response_format` and `n` into what the rest of the gateway reads."""
    if request.n not in (None, 1):
        raise invalid("n", "Only one completion per request is supported ('n' must be 1).", "unsupported_value")
    if request.max_tokens is not None:
        if request.max_output_tokens not in (None, request.max_tokens):
            raise invalid("max_tokens", "Provide either 'max_output_tokens' or its alias 'max_tokens', not both.", "conflicting_parameters")
        request.max_output_tokens = request.max_tokens
    if request.response_format is not None:
        if request.text is not None and not isinstance(request.text.format, TextFormatText):
            raise invalid("response_format", "Provide either 'text.format' or its alias 'response_format', not both.", "conflicting_parameters")
        raw = request.response_format
        if type_of(raw) == "json_schema" and isinstance(raw.get("json_schema"), dict):  # Chat Completions' nesting
            raw = {"type": "json_schema", **raw["json_schema"]}
        check_json(raw, "response_format")
        try:
            fmt = msgspec.convert(raw, TextFormat)
        except msgspec.ValidationError as exc:
            raise validation_error(exc, "response_format") from None
        request.text = TextParam(fmt, request.text.verbosity if request.text is not None else None)


def check_metadata(metadata: dict[str, str]) -> None:
    if len(metadata) > 16:
        raise invalid("metadata", "Invalid 'metadata': too many properties. Expected at most 16, got %d." % len(metadata))
    for key, value in metadata.items():
        if len(key) > 64:
            raise invalid(f"metadata.{key}", "Invalid 'metadata': keys must be at most 64 characters long.")
        if len(value) > 512:
            raise invalid(f"metadata.{key}", "Invalid 'metadata': values must be at most 512 characters long.")
