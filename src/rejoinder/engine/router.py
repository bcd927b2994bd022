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
                self.exact[model.name] = Deployment(model.name, provider, model.upstream_model or model.name, model.provider, model.hosted_tools)

    def names(self) -> list[tuple[str, str]]:
        return [(d.name, d.owned_by) for d in self.exact.values()]

    def resolve(self, name: str) -> Deployment:
        deployment = self.exact.get(name)
        if deployment is not None:
            return deployment
        for prefix, model, provider in self.prefixes:
            if name.startswith(prefix):
                return Deployment(name, provider, model.upstream_model or name, model.provider, model.hosted_tools)
        raise ApiError(404, f"The model '{name}' does not exist or you do not have access to it.", param="model", code="model_not_found")
