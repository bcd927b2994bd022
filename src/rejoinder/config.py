"""The gateway's configuration: YAML with `${VAR}` expansion, validated once at start.

Without a file, defaults come from the environment, so a bare `rejoinder serve` is useful.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal, get_args

import msgspec
import yaml
from msgspec import Struct

from rejoinder.protocol.access import Limits, check_limits
from rejoinder.protocol.errors import ApiError
from rejoinder.protocol.ids import is_valid_id

Provider = Literal["openai-chat", "openai", "anthropic", "gemini", "local"]
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
OPENAI_MODELS = ("gpt-*", "chatgpt-*", "o1*", "o3*", "o4*")
# Provider keys in the environment and the model names they serve when there is no config file.
ENVIRONMENT_PROVIDERS = (
    ("OPENAI_API_KEY", "openai-chat", OPENAI_MODELS),
    ("ANTHROPIC_API_KEY", "anthropic", ("claude-*",)),
    ("GEMINI_API_KEY", "gemini", ("gemini-*",)),
)
DEFAULT_DATABASE_URL = "sqlite:///data/rejoinder.db"


class ConfigError(Exception):
    """A configuration the gateway refuses to start with; the message says what to fix."""


class DeploymentConfig(Struct, forbid_unknown_fields=True):
    """One of several upstreams serving a model (`deployments:`); the model's other settings apply."""

    provider: Provider
    base_url: str | None = None
    api_key: str | None = None
    upstream_model: str | None = None
    weight: float = 1.0  # its share of requests, among those not cooling down


class Price(Struct, forbid_unknown_fields=True, frozen=True):
    """Dollars per million tokens, what budgets (see `projects`) are spent at."""

    input: float
    output: float


class ModelConfig(Struct, forbid_unknown_fields=True):
    name: str
    provider: Provider | None = None  # or `deployments`
    base_url: str | None = None
    api_key: str | None = None
    upstream_model: str | None = None
    # upstream limits (see providers.http.Limits): seconds, and bytes
    connect_timeout: float | None = None
    first_event_timeout: float | None = None
    timeout: float | None = None  # between two events
    total_timeout: float | None = None
    max_event_bytes: int | None = None
    max_response_bytes: int | None = None
    # hosted tools (web search …) this provider cannot run: refuse with a 400, or drop them
    # from the model's view with a warning; default: drop web search, refuse the rest
    hosted_tools: Literal["refuse", "drop"] | None = None
    model_path: str | None = None  # local: a GGUF file (default: the bundled SmolLM2-135M-Instruct)
    context_tokens: int = 4096  # local: the context window to allocate
    context_window: int | None = None  # tokens; default: the model family's known window (see engine.router)
    threads: int | None = None  # local: inference threads (default: llama.cpp's choice)
    # Routing (see engine.router): several upstreams picked by weight, a 429/5xx/connect failure
    # before the first byte tries the next, then the `fallbacks` models, in order.
    deployments: list[DeploymentConfig] = []
    fallbacks: list[str] = []
    price: Price | None = None  # what its tokens cost, for budgets; none: free
    # who runs a request's `mcp` tools: the gateway (the default, on every provider, so that
    # items and events are the same everywhere), or, on an openai upstream, OpenAI itself
    mcp: Literal["gateway", "passthrough"] = "gateway"


class BackgroundConfig(Struct, forbid_unknown_fields=True, frozen=True):
    max_concurrent: int = 16  # background runs one instance runs at once; the rest wait, FIFO
    poll: float = 0.25  # seconds between looks at the queue and at cancellations


class WebSocketConfig(Struct, forbid_unknown_fields=True, frozen=True):
    """WebSocket mode (`GET /v1/responses` with an upgrade): what one connection may hold."""

    max_streams: int = 16  # lanes (`stream_id`s) with work at once; more → websocket_stream_limit_reached
    max_queued: int = 64  # requests waiting in one lane
    remembered: int = 16  # latest responses kept in memory, so `store: false` turns can chain
    max_steers: int = 8  # steering inputs waiting for one response
    max_duration: float = 3600.0  # seconds a connection lives (websocket_connection_limit_reached)
    heartbeat: float = 30.0  # seconds between pings; a peer that misses a pong is closed
    max_frame_bytes: int | None = None  # a client frame's size limit (default: max_body_bytes)


class WebSearchConfig(Struct, forbid_unknown_fields=True, frozen=True):
    """The search backend the gateway runs web search against, for models whose provider
    cannot search (see `engine.tools.searching`)."""

    backend: Literal["searxng"]
    url: str  # the instance's base URL (its settings must enable the json format)
    max_results: int = 5
    timeout: float = 10.0  # seconds a search may take


class McpServerConfig(Struct, forbid_unknown_fields=True, frozen=True):
    """An MCP server named in the config: a request's `mcp` tool may give its `server_label`
    alone. The operator chose it, so the address guard does not apply to it. Either a `url`, or
    a `command` the gateway runs as a child process and talks to over stdio (see
    `engine.tools.mcp.sessions`)."""

    label: str
    url: str | None = None  # its streamable HTTP (or SSE) endpoint
    headers: dict[str, str] = {}  # sent on every request to it (`${TOKEN}` from the environment)
    command: str | None = None  # the program to run, found on PATH
    args: list[str] = []
    env: dict[str, str] = {}  # set for it, over a minimal environment (PATH, HOME …)


class McpLimitsConfig(Struct, forbid_unknown_fields=True, frozen=True):
    """Bounds on the MCP work the gateway does for one response (see `engine.tools.mcp.client`)."""

    list_timeout: float = 10.0  # seconds to open a session with a server and list its tools
    call_timeout: float = 60.0  # seconds for one call
    response_time: float = 300.0  # seconds all of one response's calls may take, from its start
    max_output: int = 65536  # characters of a call's output kept (and shown to the model)


class KeyConfig(Limits, kw_only=True):
    """An API key declared in the file (GitOps), with its limits: its value comes from the
    environment."""

    name: str
    value: str  # sk-rj-…, at least 32 characters: `${TEAM_KEY}`


class ProjectConfig(Limits, kw_only=True):
    """A project declared in the file, with its limits and keys; made again from the file at
    each start (the organization API shows it, and will not change it)."""

    id: str
    name: str
    keys: list[KeyConfig] = []


WebhookEvent = Literal["response.completed", "response.failed", "response.cancelled", "response.incomplete"]


class WebhookConfig(Struct, forbid_unknown_fields=True):
    url: str
    secret: str  # `whsec_<base64>`, as OpenAI's dashboard gives it
    events: list[WebhookEvent] = msgspec.field(default_factory=lambda: list(get_args(WebhookEvent)))


class Config(Struct, forbid_unknown_fields=True):
    models: list[ModelConfig] = []
    database_url: str = DEFAULT_DATABASE_URL
    master_key: str | None = None
    # what seals `encrypted_content`: `secret_key`, or `secret_keys` (the first seals, every one
    # opens: rotation); with neither, REJOINDER_SECRET_KEY, else a secret kept in the database
    secret_key: str | None = None
    secret_keys: list[str] = []
    max_body_bytes: int = 32 * 1024 * 1024
    # seconds without a heartbeat before an instance counts as dead and its in-progress
    # responses are marked failed by the others
    instance_ttl: float = 30.0
    # live events of background runs reach every instance through Redis; without it, followers
    # on other instances read the database's event log on a short timer
    redis_url: str | None = None
    background: BackgroundConfig = BackgroundConfig()
    websocket: WebSocketConfig = WebSocketConfig()
    # a `conversation` that names none stored creates it under that id (a client-chosen name);
    # off, it is a 404
    create_missing_conversations: bool = False
    prompts_dir: str | None = None  # YAML prompt templates with explicit versions, read again on SIGHUP
    webhooks: list[WebhookConfig] = []
    projects: list[ProjectConfig] = []  # projects and API keys declared here (more through the organization API)
    web_search: WebSearchConfig | None = None  # the gateway searches for models whose provider cannot
    # MCP server hosts (`host` or `host:port`) allowed past the guard that refuses plain http and
    # loopback, private, link-local and metadata addresses (see `engine.tools.mcp.client`)
    mcp_allow_hosts: list[str] = []
    mcp_servers: list[McpServerConfig] = []
    mcp_limits: McpLimitsConfig = McpLimitsConfig()
    shutdown_grace: float = 30.0  # seconds SIGTERM gives open streams and running runs


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
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    try:
        config = msgspec.convert(expand(raw, environ), Config)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"config file {path}: {exc}") from None
    if config.secret_key is None and not config.secret_keys:
        config.secret_key = environ.get("REJOINDER_SECRET_KEY") or None
    check(config)
    return config


def from_environment(environ: dict[str, str]) -> Config:
    from rejoinder.providers import local

    models = [ModelConfig(local.DEFAULT_NAME, "local")] if local.available() else []
    for variable, provider, names in ENVIRONMENT_PROVIDERS:
        key = environ.get(variable) or (environ.get("GOOGLE_API_KEY") if provider == "gemini" else None)
        if key:
            base_url = environ.get("OPENAI_BASE_URL") if provider == "openai-chat" else None
            models += [ModelConfig(name, provider, base_url, key) for name in names]
    config = Config(
        models=models,
        database_url=environ.get("REJOINDER_DATABASE_URL") or DEFAULT_DATABASE_URL,
        master_key=environ.get("REJOINDER_MASTER_KEY") or None,
        secret_key=environ.get("REJOINDER_SECRET_KEY") or None,
        redis_url=environ.get("REJOINDER_REDIS_URL") or None,
    )
    check(config)
    return config


def sealing_secrets(config: Config) -> list[str]:
    """The configured secrets that seal `encrypted_content`, newest first (maybe none)."""
    return ([config.secret_key] if config.secret_key else []) + [key for key in config.secret_keys if key]


def check(config: Config) -> None:
    if any(len(key) < 16 for key in sealing_secrets(config)):
        raise ConfigError("secret_key and secret_keys must each be at least 16 characters long")
    seen = set()
    for i, model in enumerate(config.models):
        if model.name in seen:
            raise ConfigError(f"models[{i}]: the name {model.name!r} is used twice")
        seen.add(model.name)
        if "*" in model.name[:-1]:
            raise ConfigError(f"models[{i}]: '*' may only end a name (a prefix pattern), got {model.name!r}")
        if model.provider == "local":
            _check_local(i, model)
        if (model.provider is None) == (not model.deployments):
            raise ConfigError(f"models[{i}] ({model.name}): give either provider (and its base_url, api_key …) or deployments")
        if any(d.provider == "local" or d.weight <= 0 for d in model.deployments) or (model.deployments and "*" in model.name):
            raise ConfigError(f"models[{i}] ({model.name}): deployments must be remote providers with a weight above 0, on a plain name")
        if model.mcp == "passthrough" and {model.provider, *(d.provider for d in model.deployments)} - {None} != {"openai"}:
            raise ConfigError(f"models[{i}] ({model.name}): mcp: passthrough needs the openai provider, the one upstream that runs MCP tools")
    for i, model in enumerate(config.models):
        unknown = [
            name
            for name in model.fallbacks
            if name not in seen and not any(other.name.endswith("*") and name.startswith(other.name[:-1]) for other in config.models)
        ]
        if unknown:
            raise ConfigError(f"models[{i}] ({model.name}): fallbacks name models that are not configured: {', '.join(unknown)}")
    if config.background.max_concurrent < 1 or config.background.poll <= 0:
        raise ConfigError("background.max_concurrent must be at least 1 and background.poll above 0")
    sockets = config.websocket
    if min(sockets.max_streams, sockets.max_queued, sockets.remembered, sockets.max_steers) < 1 or min(sockets.max_duration, sockets.heartbeat) <= 0:
        raise ConfigError("websocket: max_streams, max_queued, remembered and max_steers must be at least 1, max_duration and heartbeat above 0")
    for i, hook in enumerate(config.webhooks):
        if not hook.url.startswith(("http://", "https://")) or not hook.secret.startswith("whsec_"):
            raise ConfigError(f"webhooks[{i}]: url must be http(s)://… and secret whsec_…")
    _check_projects(config.projects)
    labels = [server.label for server in config.mcp_servers]
    if len(set(labels)) != len(labels) or any((server.url is None) == (server.command is None) for server in config.mcp_servers):
        raise ConfigError("mcp_servers: each needs a label of its own, and either an http(s):// url or a command")
    if any(server.url is not None and not server.url.startswith(("http://", "https://")) for server in config.mcp_servers):
        raise ConfigError("mcp_servers: a url must be http(s)://…")
    if min(msgspec.structs.astuple(config.mcp_limits)) <= 0:
        raise ConfigError("mcp_limits: every bound must be above 0")
    search = config.web_search
    if search is not None and (not search.url.startswith(("http://", "https://")) or search.max_results < 1 or search.timeout <= 0):
        raise ConfigError("web_search: url must be http(s)://…, max_results at least 1 and timeout above 0")
    if not config.database_url.startswith(("sqlite", "postgres")):
        raise ConfigError(f"database_url must be sqlite:///… or postgresql://…, got {config.database_url.split(':')[0]}:…")


def _check_projects(projects: list[ProjectConfig]) -> None:
    values = set()
    for i, project in enumerate(projects):
        if not is_valid_id(project.id) or project.id == "proj_default" or project.id in (p.id for p in projects[:i]):
            raise ConfigError(f"projects[{i}]: id {project.id!r} must be 1 to 64 printable characters, unique, and not proj_default")
        for j, key in enumerate(project.keys):
            where = f"projects[{i}].keys[{j}] ({key.name})"
            if not key.value.startswith("sk-rj-") or len(key.value) < 32 or key.value in values:
                raise ConfigError(f"{where}: value must start with sk-rj-, be at least 32 characters long and be used once")
            if key.name in (other.name for other in project.keys[:j]):
                raise ConfigError(f"{where}: two keys of one project have this name")
            values.add(key.value)
        for where, body in [(f"projects[{i}]", project)] + [(f"projects[{i}].keys[{j}]", key) for j, key in enumerate(project.keys)]:
            try:
                check_limits(body)
            except ApiError as exc:
                raise ConfigError(f"{where}: {exc.message}") from None


def _check_local(i: int, model: ModelConfig) -> None:
    from rejoinder.providers import local

    if not local.available() and model.model_path is None:
        raise ConfigError(f"models[{i}] ({model.name}): provider local needs the 'local' extra: pip install 'rejoinder[local]'")
    if model.model_path is not None and not Path(model.model_path).is_file():
        raise ConfigError(f"models[{i}] ({model.name}): model_path {model.model_path} is not a file")
    if "*" in model.name:
        raise ConfigError(f"models[{i}]: a local model needs a plain name, not a pattern")
