"""The gateway's configuration: YAML with `${VAR}` expansion, validated once at start.

Without a file, defaults come from the environment, so a bare `rejoinder serve` is useful.
"""

from __future__ import annotations

import os
import re
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import msgspec
import yaml
from msgspec import Meta, Struct

from rejoinder.protocol.access import Limits, check_limits
from rejoinder.protocol.errors import ApiError
from rejoinder.protocol.ids import is_valid_id
from rejoinder.providers.base import Usage
from rejoinder.providers.http import UpstreamLimits

ProviderName = Literal["openai-chat", "openai", "anthropic", "gemini", "local"]
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
OPENAI_MODELS = ("gpt-*", "chatgpt-*", "o1*", "o3*", "o4*")
# Provider keys in the environment and the model names they serve when there is no config file.
ENVIRONMENT_PROVIDERS = (
    ("OPENAI_API_KEY", "openai-chat", OPENAI_MODELS),
    ("ANTHROPIC_API_KEY", "anthropic", ("claude-*",)),
    ("GEMINI_API_KEY", "gemini", ("gemini-*",)),
)


def default_database_url(environ: dict[str, str] | None = None) -> str:
    """SQLite in the user's data folder (`$XDG_DATA_HOME/rejoinder`, else
    `~/.local/share/rejoinder`): one database whatever folder the gateway or the key commands
    are started from."""
    environ = os.environ if environ is None else environ
    folder = Path(environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "rejoinder"
    return f"sqlite:///{folder.absolute() / 'rejoinder.db'}"


def anchored(url: str, folder: Path) -> str:
    """A SQLite URL whose relative path is made absolute against `folder` (the config file's, or
    the working directory for the environment's), so what is logged is where the data is."""
    prefix = "sqlite:///"
    path = url.removeprefix(prefix)
    if path == url or path in ("", ":memory:") or path.startswith("/"):
        return url
    return prefix + str((folder / path).absolute())


class ConfigError(Exception):
    """A configuration the gateway refuses to start with; the message says what to fix."""


class Endpoint(UpstreamLimits, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Where an upstream is and what it may take: its provider, address, key and model name, and
    the limits on each call to it (`providers.http.UpstreamLimits`: seconds, and bytes)."""

    provider: ProviderName | None = None  # the upstream's wire format (`openai-chat` is any Chat Completions server)
    base_url: str | None = None  # the upstream's API root, e.g. `http://127.0.0.1:8000/v1` (default: the provider's own)
    api_key: Annotated[str, Meta(pattern="^[^\r\n]*\\Z")] | None = None  # one line: it is sent as a header
    upstream_model: str | None = None  # the name the upstream knows the model by (default: `name`)


class DeploymentConfig(Endpoint, frozen=True, kw_only=True):
    """One of several upstreams serving a model (`deployments:`), with its own limits; the
    model's other settings apply."""

    weight: Annotated[float, Meta(gt=0)] = 1.0  # its share of requests, among those not cooling down

    def __post_init__(self) -> None:
        if self.provider is None or self.provider == "local":
            raise ValueError("a deployment needs a remote provider (openai-chat, openai, anthropic or gemini)")


_Dollars = Annotated[float, Meta(ge=0)]


class Price(Struct, forbid_unknown_fields=True, frozen=True):
    """What a model's use costs, as its provider lists it: dollars per million tokens, and per
    thousand billed web searches. Budgets (see `projects`) are spent at it and the usage
    records count it. Cached tokens cost `cached_input` and tokens written to the cache
    `cache_write` (Anthropic: a tenth, and 1.25 times, the input price); either left out costs
    `input`."""

    input: _Dollars  # dollars per million input tokens
    output: _Dollars  # dollars per million output tokens
    cached_input: _Dollars | None = None  # dollars per million input tokens read from the upstream's cache (default: `input`)
    cache_write: _Dollars | None = None  # dollars per million input tokens written to it (default: `input`)
    web_search: _Dollars = 0.0  # per 1,000 searches the upstream ran (Anthropic's server tool)

    def micros(self, used: Usage) -> int:
        """The cost of `used`, in micro-dollars (dollars per million tokens: micro-dollars a token)."""
        cached = self.input if self.cached_input is None else self.cached_input
        write = self.input if self.cache_write is None else self.cache_write
        plain = used.input_tokens - used.cached_tokens - used.cache_write_tokens
        cost = plain * self.input + used.cached_tokens * cached + used.cache_write_tokens * write + used.output_tokens * self.output
        return round(cost + used.web_searches * self.web_search * 1000)


class LocalModelConfig(Struct, forbid_unknown_fields=True, frozen=True):
    """A model run in-process (`provider: local`) with llama-cpp-python."""

    model_path: str | None = None  # a GGUF file (default: the bundled SmolLM2-135M-Instruct)
    context_tokens: Annotated[int, Meta(ge=16)] = 4096  # the context window to allocate
    threads: Annotated[int, Meta(ge=1)] | None = None  # inference threads (default: llama.cpp's choice)


class ModelConfig(Endpoint, frozen=True, kw_only=True):
    """A model name clients send, and what serves it: one upstream (its `Endpoint` fields), or
    several `deployments`."""

    name: Annotated[str, Meta(min_length=1)]  # what clients send as `model`; a trailing `*` serves every name with that prefix
    # hosted tools (web search …) this provider cannot run: refuse with a 400, or drop them
    # from the model's view with a warning; default: drop web search, refuse the rest
    hosted_tools: Literal["refuse", "drop"] | None = None
    context_window: Annotated[int, Meta(ge=1)] | None = None  # tokens; default: the model family's known window (see engine.router)
    local: LocalModelConfig | None = None  # provider local: its settings (the defaults when left out)
    # Routing (see engine.router): several upstreams picked by weight, a 429/5xx/connect failure
    # before the first byte tries the next, then the `fallbacks` models, in order.
    deployments: list[DeploymentConfig] = []
    fallbacks: list[str] = []  # models (by name) tried in order once every deployment has failed before its first byte
    price: Price | None = None  # what its tokens cost, for budgets; none: free
    # What the gateway adds to the upstream's prompt caching. auto: Anthropic gets cache
    # breakpoints (see providers.anthropic_cache); OpenAI and Gemini cache by themselves.
    # off: no breakpoints, a client's `prompt_cache_breakpoint` included. cached_contents
    # (Gemini): auto, and each stable prefix held in an explicit context cache (providers.gemini_cache)
    prompt_caching: Literal["auto", "off", "cached_contents"] = "auto"
    # who runs a request's `mcp` tools: the gateway (the default, on every provider, so that
    # items and events are the same everywhere), or, on an openai upstream, OpenAI itself
    mcp: Literal["gateway", "passthrough"] = "gateway"
    # who runs `file_search`: the gateway, over this gateway's vector stores (any provider), or
    # OpenAI itself over its own stores (`passthrough`, the openai provider only)
    file_search: Literal["gateway", "passthrough"] = "gateway"

    def __post_init__(self) -> None:
        if "*" in self.name[:-1]:
            raise ValueError(f"'*' may only end a name (a prefix pattern), got {self.name!r}")
        if (self.provider is None) == (not self.deployments):
            raise ValueError(f"{self.name}: give either provider (and its base_url, api_key …) or deployments")
        if self.deployments and ("*" in self.name or any(getattr(self, name) != getattr(_DEFAULT_LIMITS, name) for name in UpstreamLimits.__struct_fields__)):
            raise ValueError(f"{self.name}: deployments serve a plain name, and each sets its own limits (timeout …)")
        if self.local is not None and self.provider != "local":
            raise ValueError(f"{self.name}: local settings are for provider local")
        if self.provider == "local":
            _check_local(self)
        if self.prompt_caching == "cached_contents" and {self.provider, *(d.provider for d in self.deployments)} - {None} != {"gemini"}:
            raise ValueError(f"{self.name}: prompt_caching: cached_contents is Gemini's explicit context caching (provider gemini)")
        if self.mcp == "passthrough" and {self.provider, *(d.provider for d in self.deployments)} - {None} != {"openai"}:
            raise ValueError(f"{self.name}: mcp: passthrough needs the openai provider, the one upstream that runs MCP tools")
        if self.file_search == "passthrough" and {self.provider, *(d.provider for d in self.deployments)} - {None} != {"openai"}:
            raise ValueError(f"{self.name}: file_search: passthrough needs the openai provider, the one upstream with its own vector stores")

    @property
    def local_model(self) -> LocalModelConfig:
        return self.local or _DEFAULT_LOCAL


_DEFAULT_LIMITS = UpstreamLimits()
_DEFAULT_LOCAL = LocalModelConfig()


_Count = Annotated[int, Meta(ge=1)]
_Seconds = Annotated[float, Meta(gt=0)]
_Url = Annotated[str, Meta(pattern="^https?://")]


class BackgroundConfig(Struct, forbid_unknown_fields=True, frozen=True):
    """Background runs (`background: true`): queued in the database, run by any instance."""

    max_concurrent: _Count = 16  # background runs one instance runs at once; the rest wait, FIFO
    poll: _Seconds = 0.25  # seconds between looks at the queue and at cancellations


class WebSocketConfig(Struct, forbid_unknown_fields=True, frozen=True):
    """WebSocket mode (`GET /v1/responses` with an upgrade): what one connection may hold."""

    max_streams: _Count = 16  # lanes (`stream_id`s) with work at once; more → websocket_stream_limit_reached
    max_queued: _Count = 64  # requests waiting in one lane
    remembered: _Count = 16  # latest responses kept in memory, so `store: false` turns can chain
    max_steers: _Count = 8  # steering inputs waiting for one response
    max_duration: _Seconds = 3600.0  # seconds a connection lives (websocket_connection_limit_reached)
    heartbeat: _Seconds = 30.0  # seconds between pings; a peer that misses a pong is closed
    max_frame_bytes: _Count | None = None  # a client frame's size limit (default: max_body_bytes)


class WebSearchConfig(Struct, forbid_unknown_fields=True, frozen=True):
    """The search backend the gateway runs web search against, for models whose provider
    cannot search (see `engine.tools.searching`)."""

    backend: Literal["searxng"]  # the kind of search service
    url: _Url  # the instance's base URL (its settings must enable the json format)
    max_results: _Count = 5  # results given to the model per search
    timeout: _Seconds = 10.0  # seconds a search may take


class EmbeddingsConfig(Struct, forbid_unknown_fields=True, frozen=True):
    """What embeds vector stores' chunks and their searches (see `providers.embeddings`): the
    model shipped with the gateway (`embedded`, the default: nothing to set), or an upstream:
    OpenAI's `/v1/embeddings` (`openai`) or Gemini's `batchEmbedContents` (`gemini`), each with
    `base_url`, `model` and, if it needs one, `api_key`. Vectors of different models do not compare: after a change, add the files
    again (until then, searches rank their chunks by full text alone)."""

    provider: Literal["embedded", "openai", "gemini"] = "embedded"  # what embeds: the shipped model, or an upstream's API
    base_url: _Url | None = None  # the upstream's API root (not for `embedded`)
    api_key: Annotated[str, Meta(pattern="^[^\r\n]*\\Z")] | None = None  # one line: it is sent as a header
    model: str | None = None  # the upstream's embedding model (not for `embedded`)
    timeout: _Seconds = 60.0  # seconds one call may take

    def __post_init__(self) -> None:
        if self.provider != "embedded" and (self.base_url is None or not self.model):
            raise ValueError(f"embeddings: provider {self.provider} needs base_url and model")


class McpServerConfig(Struct, forbid_unknown_fields=True, frozen=True):
    """An MCP server named in the config: a request's `mcp` tool may give its `server_label`
    alone. The operator chose it, so the address guard does not apply to it. Either a `url`, or
    a `command` the gateway runs as a child process and talks to over stdio (see
    `engine.tools.mcp.sessions`)."""

    label: str  # the `server_label` requests name it by
    url: _Url | None = None  # its streamable HTTP (or SSE) endpoint
    headers: dict[str, str] = {}  # sent on every request to it (`${TOKEN}` from the environment)
    command: str | None = None  # the program to run, found on PATH
    args: list[str] = []  # the command's arguments
    env: dict[str, str] = {}  # set for it, over a minimal environment (PATH, HOME …)

    def __post_init__(self) -> None:
        if (self.url is None) == (self.command is None):
            raise ValueError(f"MCP server {self.label!r}: give either an http(s):// url or a command")


class McpLimitsConfig(Struct, forbid_unknown_fields=True, frozen=True):
    """Bounds on the MCP work the gateway does for one response (see `engine.tools.mcp.client`)."""

    list_timeout: _Seconds = 10.0  # seconds to open a session with a server and list its tools
    call_timeout: _Seconds = 60.0  # seconds for one call
    response_time: _Seconds = 300.0  # seconds all of one response's calls may take, from its start
    max_output: _Count = 65536  # characters of a call's output kept (and shown to the model)


class KeyConfig(Limits, kw_only=True):
    """An API key declared in the file (GitOps), with its limits: its value comes from the
    environment."""

    name: str  # shown in the console and the organization API
    value: str  # sk-rj-…, at least 32 characters: `${TEAM_KEY}`


class ProjectConfig(Limits, kw_only=True):
    """A project declared in the file, with its limits and keys; made again from the file at
    each start (the organization API shows it, and will not change it)."""

    id: str  # `proj_…`, stable across starts: usage and stored responses are kept under it
    name: str  # shown in the console and the organization API
    keys: list[KeyConfig] = []  # its API keys


WebhookEvent = Literal["response.completed", "response.failed", "response.cancelled", "response.incomplete"]


class WebhookConfig(Struct, forbid_unknown_fields=True):
    """An endpoint told of responses' ends, as OpenAI's webhooks tell theirs."""

    url: _Url  # where the gateway POSTs each event (signed as OpenAI's webhooks are, retried with backoff)
    secret: Annotated[str, Meta(pattern="^whsec_")]  # `whsec_<base64>`, as OpenAI's dashboard gives it
    events: list[WebhookEvent] = msgspec.field(default_factory=lambda: list(get_args(WebhookEvent)))  # which endings are sent (default: all four)


class Config(Struct, forbid_unknown_fields=True):
    models: list[ModelConfig] = []  # the models served (none: the local model if installed, and those of the provider keys in the environment)
    database_url: str = msgspec.field(default_factory=default_database_url)  # a relative SQLite path is the config file's folder's
    master_key: str | None = None  # the key that may do everything; without one the gateway is open, and listens on loopback only
    # what seals `encrypted_content`: `secret_key`, or `secret_keys` (the first seals, every one
    # opens: rotation); with neither, REJOINDER_SECRET_KEY, else a secret kept in the database
    secret_key: str | None = None
    secret_keys: list[str] = []  # rotation: the first seals, every one opens (each at least 16 characters)
    max_body_bytes: _Count = 32 * 1024 * 1024  # a request body's size limit (larger: 413)
    max_file_bytes: _Count = 16 * 1024 * 1024  # one file uploaded through the Files API (its upload also keeps to max_body_bytes)
    client_timeout: _Seconds = 30.0  # seconds a client may take to send a request's headers, and then its body
    # seconds without a heartbeat before an instance counts as dead and its in-progress
    # responses are marked failed by the others
    instance_ttl: _Seconds = 30.0
    # live events of background runs reach every instance through Redis; without it, followers
    # on other instances read the database's event log on a short timer
    redis_url: str | None = None
    background: BackgroundConfig = BackgroundConfig()  # background runs (`background: true`)
    websocket: WebSocketConfig = WebSocketConfig()  # WebSocket mode
    # a `conversation` that names none stored creates it under that id (a client-chosen name);
    # off, it is a 404
    create_missing_conversations: bool = False
    prompts_dir: str | None = None  # YAML prompt templates with explicit versions, read again on SIGHUP
    webhooks: list[WebhookConfig] = []  # where a response's end is POSTed (OpenAI's `response.*` webhook events)
    projects: list[ProjectConfig] = []  # projects and API keys declared here (more through the organization API)
    web_search: WebSearchConfig | None = None  # the gateway searches for models whose provider cannot
    embeddings: EmbeddingsConfig = EmbeddingsConfig()  # what embeds vector stores (the shipped model by default)
    # MCP server hosts (`host` or `host:port`) allowed past the guard that refuses plain http and
    # loopback, private, link-local and metadata addresses (see `engine.tools.mcp.client`)
    mcp_allow_hosts: list[str] = []
    mcp_servers: list[McpServerConfig] = []  # MCP servers requests may name by label alone
    mcp_limits: McpLimitsConfig = McpLimitsConfig()  # bounds on one response's MCP work
    shutdown_grace: float = 30.0  # seconds SIGTERM gives open streams and running runs

    def __post_init__(self) -> None:
        """What no one field can say alone: each raises a `ValueError` naming the key at fault."""
        if any(len(key) < 16 for key in sealing_secrets(self)):
            raise ValueError("secret_key and secret_keys must each be at least 16 characters long")
        if not self.database_url.startswith(("sqlite", "postgres")):
            raise ValueError(f"database_url must be sqlite:///… or postgresql://…, got {self.database_url.split(':')[0]}:…")
        names = [model.name for model in self.models]
        for i, model in enumerate(self.models):
            if model.name in names[:i]:
                raise ValueError(f"models[{i}]: the name {model.name!r} is used twice")
            unknown = [name for name in model.fallbacks if not any(other == name or (other.endswith("*") and name.startswith(other[:-1])) for other in names)]
            if unknown:
                raise ValueError(f"models[{i}]: fallbacks name models that are not configured: {', '.join(unknown)}")
        labels = [server.label for server in self.mcp_servers]
        if len(set(labels)) != len(labels):
            raise ValueError("mcp_servers: each needs a label of its own")
        _check_projects(self.projects)


def expand(value: Any, environ: dict[str, str]) -> Any:
    """Replace `${VAR}` and `${VAR:-default}` in every string; an empty result becomes None."""
    if isinstance(value, str):
        expanded = _VAR.sub(lambda m: environ.get(m.group(1)) or m.group(2) or "", value)
        return expanded if expanded or not _VAR.search(value) else None
    if isinstance(value, list):
        return [expand(v, environ) for v in value]
    if isinstance(value, dict):
        return {k: expand(v, environ) for k, v in value.items()}
    return value


def load(path: str | None, environ: dict[str, str] | None = None) -> Config:
    """The config from `path`, else `./rejoinder.yaml`, else from the environment."""
    environ = dict(os.environ if environ is None else environ)
    if path is None and Path("rejoinder.yaml").exists():
        path = "rejoinder.yaml"
    if path is None:
        return from_environment(environ)
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"config file {path}{where} is not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
    data = expand(raw, environ)
    if isinstance(data, dict) and not data.get("secret_key") and not data.get("secret_keys"):
        data["secret_key"] = environ.get("REJOINDER_SECRET_KEY") or None
    if isinstance(data, dict) and isinstance(data.get("database_url"), str):
        data["database_url"] = anchored(data["database_url"], Path(path).parent)
    try:
        return msgspec.convert(data, Config)
    except msgspec.ValidationError as exc:
        raise ConfigError(_located(path, text, str(exc))) from None


def _located(path: str, text: str, message: str) -> str:
    """A validation error, with the line of the key it names: msgspec's ``- at `$.a[0].b` ``,
    or a cross-field check's ``a[0]: …``."""
    found = re.search(r" - at `\$((?:\.\w+|\[\d+\])*)`$", message)
    if found:
        message, key = message[: found.start()], found.group(1).lstrip(".")
    else:
        prefix = re.match(r"(\w+(?:\[\d+\])*(?:\.\w+(?:\[\d+\])*)*): ", message)
        key = prefix.group(1) if prefix else ""
        if prefix and key.split("[")[0] in Config.__struct_fields__:
            message = message[prefix.end() :]
        else:
            key = ""
    line = _line(text, key) if key else None
    choices = _choices(key) if key and message.startswith("Invalid enum value") else None
    if choices:
        message += f" (expected one of: {', '.join(choices)})"
    return f"config file {path}" + (f", line {line}" if line else "") + (f", at {key}" if key else "") + f": {message}"


def _choices(key: str) -> list[str] | None:
    """The values the field at `key` (`models[0].provider`) may take, read from the config's
    types, when it is one of a fixed few (a `Literal`)."""
    kind: Any = Config
    for part in re.findall(r"\w+|\[\d+\]", key):
        kind = bare_type(kind)
        if part.startswith("["):
            kind = next(iter(typing.get_args(kind)), None)
        elif isinstance(kind, type) and issubclass(kind, Struct):
            kind = typing.get_type_hints(kind).get(part)
        else:
            return None
    kind = bare_type(kind)
    return [str(value) for value in typing.get_args(kind)] if typing.get_origin(kind) is Literal else None


def bare_type(kind: Any) -> Any:
    """A type without `Annotated` and without `None` in a union (also what the docs' configuration
    reference reads the config's types through)."""
    while typing.get_origin(kind) is Annotated:
        kind = typing.get_args(kind)[0]
    if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
        members = [member for member in typing.get_args(kind) if member is not type(None)]
        kind = members[0] if len(members) == 1 else kind
        while typing.get_origin(kind) is Annotated:
            kind = typing.get_args(kind)[0]
    return kind


def _line(text: str, key: str) -> int | None:
    """The line of `key` (`models[0].timeout`) in the YAML `text`, or of the nearest enclosing
    key it has (a default the file leaves out)."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return None
    line = None
    for part in re.findall(r"\w+|\[\d+\]", key):
        if isinstance(node, yaml.MappingNode) and not part.startswith("["):
            found = next(((k, v) for k, v in node.value if k.value == part), None)
            if found is None:
                break
            line, node = found[0].start_mark.line + 1, found[1]
        elif isinstance(node, yaml.SequenceNode) and part.startswith("[") and int(part[1:-1]) < len(node.value):
            node = node.value[int(part[1:-1])]
            line = node.start_mark.line + 1
        else:
            break
    return line


def from_environment(environ: dict[str, str]) -> Config:
    from rejoinder.providers import local

    models = [ModelConfig(name=local.DEFAULT_NAME, provider="local")] if local.available() else []
    for variable, provider, names in ENVIRONMENT_PROVIDERS:
        key = environ.get(variable) or (environ.get("GOOGLE_API_KEY") if provider == "gemini" else None)
        if key:
            base_url = environ.get("OPENAI_BASE_URL") if provider == "openai-chat" else None
            models += [ModelConfig(name=name, provider=provider, base_url=base_url, api_key=key) for name in names]
    try:
        return Config(
            models=models,
            database_url=anchored(environ.get("REJOINDER_DATABASE_URL") or default_database_url(environ), Path.cwd()),
            master_key=environ.get("REJOINDER_MASTER_KEY") or None,
            secret_key=environ.get("REJOINDER_SECRET_KEY") or None,
            redis_url=environ.get("REJOINDER_REDIS_URL") or None,
        )
    except ValueError as exc:
        raise ConfigError(f"the environment's settings: {exc}") from None


def sealing_secrets(config: Config) -> list[str]:
    """The configured secrets that seal `encrypted_content`, newest first (maybe none)."""
    return ([config.secret_key] if config.secret_key else []) + [key for key in config.secret_keys if key]


def _check_projects(projects: list[ProjectConfig]) -> None:
    values = set()
    for i, project in enumerate(projects):
        if not is_valid_id(project.id) or project.id == "proj_default" or project.id in (p.id for p in projects[:i]):
            raise ValueError(f"projects[{i}]: id {project.id!r} must be 1 to 64 printable characters, unique, and not proj_default")
        for j, key in enumerate(project.keys):
            where = f"projects[{i}].keys[{j}] ({key.name})"
            if not key.value.startswith("sk-rj-") or len(key.value) < 32 or key.value in values:
                raise ValueError(f"{where}: value must start with sk-rj-, be at least 32 characters long and be used once")
            if key.name in (other.name for other in project.keys[:j]):
                raise ValueError(f"{where}: two keys of one project have this name")
            values.add(key.value)
        for where, body in [(f"projects[{i}]", project)] + [(f"projects[{i}].keys[{j}]", key) for j, key in enumerate(project.keys)]:
            try:
                check_limits(body)
            except ApiError as exc:
                raise ValueError(f"{where}: {exc.message}") from None


def _check_local(model: ModelConfig) -> None:
    from rejoinder.providers import local

    path = model.local_model.model_path
    if not local.available() and path is None:
        raise ValueError(f"{model.name}: provider local needs the 'local' extra: pip install 'rejoinder[local]'")
    if path is not None and not Path(path).is_file():
        raise ValueError(f"{model.name}: model_path {path} is not a file")
    if "*" in model.name:
        raise ValueError("a local model needs a plain name, not a pattern")
