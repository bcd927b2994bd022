"""Conversation items and their content parts, as the Responses API spells them.

Input items arrive in many spellings (a bare string, messages without `type`, string content);
`normalize` turns each into the one canonical form that is stored, listed by `input_items` and
handed to providers, so nothing downstream has to guess.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Union

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from rejoinder.protocol.ids import ID_PATTERN, new_id

Id = Annotated[str, Meta(pattern=ID_PATTERN)]


class _Nullable(Struct, gc=False):
    """Clients replay items as the SDK dumped them, `None` for every absent field: a null in an
    optional field means absent, so the stored form stays the canonical one.

    Items and their parts are never part of a reference cycle, so they are not tracked by the
    garbage collector (`gc=False`): a streamed response makes a dozen, and tracking them made
    the collector's passes cost ~20 µs a request (profiled with cProfile against the commit
    before typed outputs)."""

    @property
    def type(self) -> str:
        """Its `type`, as every item (a `HostedItem` too) answers it."""
        return self.__struct_config__.tag  # type: ignore[return-value]

    def __post_init__(self) -> None:
        for name in self.__struct_fields__:
            if getattr(self, name) is None and name in self._absent_when_null:
                setattr(self, name, self._absent_when_null[name]())

    _absent_when_null: ClassVar[dict[str, Any]] = {}


class CacheBreakpoint(Struct, forbid_unknown_fields=True, gc=False):
    """`prompt_cache_breakpoint` on an input part: a reusable prefix ends here (OpenAI's
    explicit breakpoint; see `providers.anthropic_cache` for what Anthropic makes of it)."""

    mode: Literal["explicit"] = "explicit"


_NO_BREAKPOINT = {"prompt_cache_breakpoint": lambda: UNSET}


class InputText(_Nullable, tag="input_text", tag_field="type"):
    text: str
    prompt_cache_breakpoint: CacheBreakpoint | None | UnsetType = UNSET
    _absent_when_null = _NO_BREAKPOINT


class InputImage(_Nullable, tag="input_image", tag_field="type"):
    image_url: str | None | UnsetType = UNSET
    file_id: str | None | UnsetType = UNSET
    detail: Literal["low", "high", "auto", "original"] = "auto"
    prompt_cache_breakpoint: CacheBreakpoint | None | UnsetType = UNSET
    _absent_when_null = _NO_BREAKPOINT


class InputFile(_Nullable, tag="input_file", tag_field="type"):
    file_id: str | None | UnsetType = UNSET
    file_data: str | None | UnsetType = UNSET
    file_url: str | None | UnsetType = UNSET
    filename: str | None | UnsetType = UNSET
    prompt_cache_breakpoint: CacheBreakpoint | None | UnsetType = UNSET
    _absent_when_null = {"file_data": lambda: UNSET, "file_url": lambda: UNSET, "filename": lambda: UNSET, **_NO_BREAKPOINT}


class OutputText(_Nullable, tag="output_text", tag_field="type"):
    text: str
    annotations: list[Any] | None = []
    logprobs: list[Any] | None = []
    _absent_when_null = {"annotations": list, "logprobs": list}


class Refusal(Struct, tag="refusal", tag_field="type", gc=False):
    refusal: str


class SummaryText(Struct, tag="summary_text", tag_field="type", gc=False):
    text: str


class ReasoningText(Struct, tag="reasoning_text", tag_field="type", gc=False):
    text: str


Part = Union[InputText, InputImage, InputFile, OutputText, Refusal]
Status = Literal["in_progress", "completed", "incomplete"]


_ID_AND_STATUS = {"id": lambda: UNSET, "status": lambda: UNSET}


class Message(_Nullable, tag="message", tag_field="type"):
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[Part]
    id: Id | None | UnsetType = UNSET
    status: Status | None | UnsetType = UNSET
    _absent_when_null = _ID_AND_STATUS


_CALL_FIELDS = {**_ID_AND_STATUS, "namespace": lambda: UNSET}


class FunctionCall(_Nullable, tag="function_call", tag_field="type"):
    call_id: str
    name: str
    arguments: str
    id: Id | None | UnsetType = UNSET
    status: Status | None | UnsetType = UNSET
    namespace: str | None | UnsetType = UNSET  # set when the tool belongs to a namespace
    _absent_when_null = _CALL_FIELDS


class FunctionCallOutput(_Nullable, tag="function_call_output", tag_field="type"):
    call_id: str
    output: str | list[Part]
    id: Id | None | UnsetType = UNSET
    status: Status | None | UnsetType = UNSET
    _absent_when_null = _ID_AND_STATUS


class Reasoning(_Nullable, tag="reasoning", tag_field="type"):
    summary: list[SummaryText] | None = []
    id: Id | None | UnsetType = UNSET
    content: list[ReasoningText] | None | UnsetType = UNSET
    encrypted_content: str | None | UnsetType = UNSET
    status: Status | None | UnsetType = UNSET
    _absent_when_null = {**_ID_AND_STATUS, "summary": list, "content": lambda: UNSET, "encrypted_content": lambda: UNSET}


class CustomToolCall(_Nullable, tag="custom_tool_call", tag_field="type"):
    """A call of a freeform (custom) tool: one string of input, as Codex's `apply_patch` takes."""

    call_id: str
    name: str
    input: str
    id: Id | None | UnsetType = UNSET
    status: Status | None | UnsetType = UNSET
    namespace: str | None | UnsetType = UNSET
    _absent_when_null = _CALL_FIELDS


class CustomToolCallOutput(_Nullable, tag="custom_tool_call_output", tag_field="type"):
    call_id: str
    output: str | list[Part]
    id: Id | None | UnsetType = UNSET
    status: Status | None | UnsetType = UNSET
    _absent_when_null = _ID_AND_STATUS


class Compaction(_Nullable, tag="compaction", tag_field="type"):
    """What `POST /v1/responses/compact` makes of a context: a summary, sealed like reasoning
    state; a turn whose input holds one sees it in place of what came before it."""

    encrypted_content: str
    id: Id | None | UnsetType = UNSET
    created_by: str | None | UnsetType = UNSET
    _absent_when_null = {"id": lambda: UNSET, "created_by": lambda: UNSET}


class ItemReference(Struct, tag="item_reference", tag_field="type"):
    id: Id


# Records of tools a native Responses upstream ran itself: kept and replayed exactly as given.
HOSTED_ITEM_TYPES = frozenset(
    (
        "web_search_call",
        "file_search_call",
        "code_interpreter_call",
        "image_generation_call",
        "computer_call",
        "computer_call_output",
        "local_shell_call",
        "local_shell_call_output",
        "shell_call",
        "shell_call_output",
        "apply_patch_call",
        "apply_patch_call_output",
        "mcp_call",
        "mcp_list_tools",
        "mcp_approval_request",
        "mcp_approval_response",
    )
)


class HostedItem:
    """An item of a hosted tool (see `HOSTED_ITEM_TYPES`), carried as the JSON object it is:
    only the native Responses provider reads it; the others leave it out of the model's view.
    One without an id gets a gateway id, which the upstream never sees (`upstream_form`). An
    `mcp_approval_response` also gets the `request_id` OpenAI's spec requires of it once listed
    (the request it answers), which is no part of the input form either."""

    __slots__ = ("raw",)
    GATEWAY_PREFIX = "rjitem"

    def __init__(self, raw: dict[str, Any]) -> None:
        if not raw.get("id"):
            raw = {**raw, "id": new_id(self.GATEWAY_PREFIX)}
        if raw.get("type") == "mcp_approval_response" and "request_id" not in raw and isinstance(raw.get("approval_request_id"), str):
            raw = {**raw, "request_id": raw["approval_request_id"]}
        self.raw = raw

    @property
    def id(self) -> str:
        return self.raw["id"]

    @property
    def type(self) -> str:
        return self.raw["type"]

    @property
    def status(self) -> Any:
        return self.raw.get("status")

    @status.setter
    def status(self, value: str) -> None:
        self.raw["status"] = value

    def upstream_form(self) -> dict[str, Any]:
        left_out = ("id",) if self.id.startswith(self.GATEWAY_PREFIX + "_") else ()
        if self.raw.get("type") == "mcp_approval_response":
            left_out += ("request_id",)
        return {k: v for k, v in self.raw.items() if k not in left_out} if left_out else self.raw


Item = Union[Message, FunctionCall, FunctionCallOutput, Reasoning, CustomToolCall, CustomToolCallOutput, Compaction]
InputItem = Union[Message, FunctionCall, FunctionCallOutput, Reasoning, CustomToolCall, CustomToolCallOutput, Compaction, ItemReference]

_ID_PREFIX = {
    Message: "msg",
    FunctionCall: "fc",
    FunctionCallOutput: "fco",
    Reasoning: "rs",
    CustomToolCall: "ctc",
    CustomToolCallOutput: "ctco",
    Compaction: "cmp",
}

_decode_typed = msgspec.json.Decoder(Item).decode
_encode_typed = msgspec.json.Encoder().encode


def decode_item(body: bytes) -> Item | HostedItem:
    """A stored item: a typed one, or a hosted tool's record."""
    try:
        return _decode_typed(body)
    except msgspec.ValidationError:
        return HostedItem(msgspec.json.decode(body))


def encode_item(item: Item | HostedItem) -> bytes:
    return msgspec.json.encode(item.raw) if isinstance(item, HostedItem) else _encode_typed(item)


def normalize(item: Item) -> Item:
    """Give an input item its stored form: an id, a status and content as a list of parts."""
    if isinstance(item, Message) and isinstance(item.content, str):
        part = OutputText(item.content) if item.role == "assistant" else InputText(item.content)
        item.content = [part]
    if item.id is UNSET or item.id is None:
        item.id = new_id(_ID_PREFIX[type(item)])
    if not isinstance(item, Compaction) and (item.status is UNSET or item.status is None):
        item.status = "completed"
    return item


def message_text(content: str | list[Part]) -> str:
    """The text of a message's content, for upstreams that only take strings."""
    if isinstance(content, str):
        return content
    return "".join(p.text for p in content if isinstance(p, (InputText, OutputText)))


def spoken_text(content: str | list[Part]) -> str:
    """An assistant message's text with its refusals, for upstreams that have no refusal part."""
    if isinstance(content, str):
        return content
    return "".join(p.text if isinstance(p, (InputText, OutputText)) else p.refusal if isinstance(p, Refusal) else "" for p in content)
