"""Public model names → deployments (a provider instance and the upstream model name)."""

from __future__ import annotations

import hashlib
import math
import random
import time
from collections.abc import Callable

from msgspec import Struct

from rejoinder.config import DeploymentConfig, Endpoint, ModelConfig, Price
from rejoinder.protocol.errors import ApiError
from rejoinder.providers.anthropic import Anthropic
from rejoinder.providers.base import Provider
from rejoinder.providers.gemini import Gemini
from rejoinder.providers.openai_chat import OpenAIChat
from rejoinder.providers.openai_responses import OpenAIResponses


class Deployment(Struct):
    name: str
    provider: Provider
    upstream_model: str
    owned_by: str
    hosted_tools: str | None = None  # the model's policy for hosted tools its provider cannot run
    context_window: int | None = None  # tokens, when known (see `window`)
    route: str = ""  # the config entry it came from (`gpt-*` for a prefix route): a bounded metrics label
    price: Price | None = None  # dollars per million tokens in and out, for budgets
    mcp_upstream: bool = False  # the upstream runs `mcp` tools itself (`mcp: passthrough`)
    file_search_upstream: bool = False  # the upstream runs `file_search` over its own stores (`file_search: passthrough`)

    @property
    def runs_mcp(self) -> bool:
        """Whether the gateway runs this model's `mcp` tools (see `engine.tools.mcp.client`)."""
        return not (self.mcp_upstream and "mcp" in self.provider.hosted_tool_types)


# Context windows of well-known model families, by the longest prefix of the upstream name.
KNOWN_WINDOWS = (
    ("gpt-4.1", 1_047_576),
    ("gpt-4o", 128_000),
    ("gpt-4-turbo", 128_000),
    ("gpt-5", 400_000),
    ("gpt-3.5-turbo", 16_385),
    ("o1", 200_000),
    ("o3", 200_000),
    ("o4", 200_000),
    ("claude", 200_000),
    ("gemini-1.5-pro", 2_097_152),
    ("gemini", 1_048_576),
)


def _seeded(seed: str) -> float:
    """A number in (0, 1) fixed by `seed`, the same on every instance."""
    digest = hashlib.blake2b(seed.encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") + 1) / (2**64 + 1)


def _made(model: ModelConfig, name: str, provider: Provider, endpoint: Endpoint) -> Deployment:
    """The deployment `name` resolves to: its model's settings, called at `endpoint` (the model's
    own, or one of its `deployments`)."""
    upstream = endpoint.upstream_model or model.upstream_model or name
    owner = endpoint.provider or ""
    return Deployment(
        name,
        provider,
        upstream,
        owner,
        model.hosted_tools,
        window(model, upstream),
        model.name,
        model.price,
        model.mcp == "passthrough",
        model.file_search == "passthrough",
    )


def window(model: ModelConfig, upstream_model: str) -> int | None:
    """A deployment's context window: the config's `context_window`, a local model's
    `context_tokens`, else the known window of its model family; None when unknown."""
    if model.context_window is not None:
        return model.context_window
    if model.provider == "local":
        return model.local_model.context_tokens
    known = [size for prefix, size in KNOWN_WINDOWS if upstream_model.startswith(prefix)]
    return known[0] if known else None


def provider_for(model: ModelConfig, endpoint: Endpoint) -> Provider:
    """The provider that calls `endpoint` (an endpoint is its own upstream limits)."""
    if endpoint.provider == "local":
        from rejoinder.providers.local import LocalModel, default_model_path

        local = model.local_model
        return LocalModel(local.model_path or default_model_path() or "", local.context_tokens, local.threads)
    if endpoint.provider in ("anthropic", "gemini"):  # the two whose prompt caching the gateway drives
        cached = Anthropic if endpoint.provider == "anthropic" else Gemini
        return cached(endpoint.base_url, endpoint.api_key, endpoint, model.prompt_caching)
    remote = {"openai-chat": OpenAIChat, "openai": OpenAIResponses}[endpoint.provider]  # type: ignore[index]
    return remote(endpoint.base_url, endpoint.api_key, endpoint)


class Router:
    """Exact names first, then prefix patterns (`gpt-*`) whose upstream model is the name asked for.

    A name with `deployments` has several upstreams: `candidates` orders them for one request,
    by weight, leaving out those cooling down after an upstream 429 (for its `Retry-After`), and
    follows them with its `fallbacks` models' candidates. The engine tries them in that order
    until one gives a first delta (never after a byte reached the client).
    """

    def __init__(self, models: list[ModelConfig]) -> None:
        self.exact: dict[str, Deployment] = {}
        self.prefixes: list[tuple[str, ModelConfig, Provider]] = []
        self.pools: dict[str, list[tuple[Deployment, float]]] = {}  # name → its deployments, with weights
        self.fallbacks: dict[str, list[str]] = {model.name: model.fallbacks for model in models if model.fallbacks}
        self.cooling: dict[int, float] = {}  # id(provider) → monotonic time it may be used again
        self.pooled: set[int] = set()  # id(provider) of every deployment in a pool
        for model in models:
            if model.deployments:
                self.pools[model.name] = [(self._deployment(model, one), one.weight) for one in model.deployments]
                self.pooled.update(id(deployment.provider) for deployment, _ in self.pools[model.name])
                self.exact[model.name] = self.pools[model.name][0][0]
                continue
            provider = provider_for(model, model)
            if model.name.endswith("*"):
                self.prefixes.append((model.name[:-1], model, provider))
            else:
                self.exact[model.name] = _made(model, model.name, provider, model)

    @staticmethod
    def _deployment(model: ModelConfig, one: DeploymentConfig) -> Deployment:
        return _made(model, model.name, provider_for(model, one), one)

    def names(self) -> list[tuple[str, str]]:
        return [(d.name, d.owned_by) for d in self.exact.values()]

    def resolve(self, name: str, allowed: Callable[[str], bool] | None = None) -> Deployment:
        """The deployment serving `name`; for an unknown name a 404 that lists the names served
        (those `allowed`, when given: the ones the asking key may use)."""
        deployment = self.exact.get(name)
        if deployment is not None:
            return deployment
        for prefix, model, provider in self.prefixes:
            if name.startswith(prefix):
                return _made(model, name, provider, model)
        served = [served for served in [*self.exact, *(model.name for _, model, _ in self.prefixes)] if allowed is None or allowed(served)]
        listed = (", ".join(served[:20]) + (f" and {len(served) - 20} more" if len(served) > 20 else "")) if served else "none"
        message = f"The model '{name[:128]}' does not exist or you do not have access to it. Models available: {listed}."
        raise ApiError(404, message, param="model", code="model_not_found")

    def candidates(self, name: str, affinity: str | None = None) -> list[Deployment]:
        """The deployments to try for `name`, in order; a 503 `no_accounts` when every one is
        cooling down. Requests with the same `affinity` (a `prompt_cache_key`) go to the same
        deployment first, while it is not cooling down, so one client's turns find the prompt
        cache their earlier turns filled: each deployment's place is a weighted draw seeded by
        the key (rendezvous hashing), so adding or losing one moves only its share of keys."""
        if name not in self.pools and name not in self.fallbacks:
            return [self.resolve(name)]  # one upstream: nothing to order, and only pools cool down
        now = time.monotonic()
        found: list[Deployment] = []
        seen: set[str] = set()
        waits: list[float] = []

        def add(model: str) -> None:
            if model in seen:
                return
            seen.add(model)
            pool = self.pools.get(model) or [(self.resolve(model), 1.0)]
            ready = [(at, deployment, weight) for at, (deployment, weight) in enumerate(pool) if self.cooling.get(id(deployment.provider), 0) <= now]
            waits.extend(self.cooling[id(d.provider)] - now for d, _ in pool if self.cooling.get(id(d.provider), 0) > now)

            def draw(at: int) -> float:
                return random.random() if affinity is None else _seeded(f"{affinity}\0{model}\0{at}")

            found.extend(deployment for at, deployment, weight in sorted(ready, key=lambda one: draw(one[0]) ** (1 / one[2]), reverse=True))
            for fallback in self.fallbacks.get(model, ()):
                add(fallback)

        add(name)
        if not found:
            raise ApiError(
                503,
                f"No deployment of model '{name}' is available: each is cooling down after an upstream rate limit.",
                type="server_error",
                code="no_accounts",
                headers={"Retry-After": str(max(1, math.ceil(min(waits, default=1))))},
            )
        return found

    def cool(self, deployment: Deployment, seconds: float) -> None:
        """An upstream 429: leave the deployment out for `seconds`, when it is one of a model's
        `deployments` (a model with one upstream passes its 429 on instead)."""
        if id(deployment.provider) in self.pooled:
            self.cooling[id(deployment.provider)] = time.monotonic() + seconds
