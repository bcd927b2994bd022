"""Public model names → deployments (a provider instance and the upstream model name)."""

from __future__ import annotations

from msgspec import Struct

from rejoinder.config import ModelConfig
from rejoinder.protocol.errors import ApiError
from rejoinder.providers.anthropic import Anthropic
from rejoinder.providers.base import Provider
from rejoinder.providers.gemini import Gemini
from rejoinder.providers.http import Limits
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


def window(model: ModelConfig, upstream_model: str) -> int | None:
    """A deployment's context window: the config's `context_window`, a local model's
    `context_tokens`, else the known window of its model family; None when unknown."""
    if model.context_window is not None:
        return model.context_window
    if model.provider == "local":
        return model.context_tokens
    known = [size for prefix, size in KNOWN_WINDOWS if upstream_model.startswith(prefix)]
    return known[0] if known else None


def provider_for(model: ModelConfig) -> Provider:
    if model.provider == "local":
        from rejoinder.providers.local import LocalModel, default_model_path

        return LocalModel(model.model_path or default_model_path() or "", model.context_tokens, model.threads)
    remote = {"openai-chat": OpenAIChat, "openai": OpenAIResponses, "anthropic": Anthropic, "gemini": Gemini}[model.provider]
    return remote(model.base_url, model.api_key, limits(model))


def limits(model: ModelConfig) -> Limits:
    """The deployment's upstream limits: what its config sets, the defaults elsewhere."""
    return Limits(**{name: getattr(model, name) for name in Limits.__struct_fields__ if getattr(model, name) is not None})


class Router:
    """Exact names first, then prefix patterns (`gpt-*`) whose upstream model is the name asked for."""

    def __init__(self, models: list[ModelConfig]) -> None:
        self.exact: dict[str, Deployment] = {}
        self.prefixes: list[tuple[str, ModelConfig, Provider]] = []
        for model in models:
            provider = provider_for(model)
            if model.name.endswith("*"):
                self.prefixes.append((model.name[:-1], model, provider))
            else:
                upstream = model.upstream_model or model.name
                self.exact[model.name] = Deployment(model.name, provider, upstream, model.provider, model.hosted_tools, window(model, upstream), model.name)

    def names(self) -> list[tuple[str, str]]:
        return [(d.name, d.owned_by) for d in self.exact.values()]

    def resolve(self, name: str) -> Deployment:
        deployment = self.exact.get(name)
        if deployment is not None:
            return deployment
        for prefix, model, provider in self.prefixes:
            if name.startswith(prefix):
                upstream = model.upstream_model or name
                return Deployment(name, provider, upstream, model.provider, model.hosted_tools, window(model, upstream), model.name)
        raise ApiError(404, f"The model '{name}' does not exist or you do not have access to it.", param="model", code="model_not_found")
