"""Every upstream wire format the gateway speaks, as the tests drive it: one row per provider.

A row names the prefix its models have in the tests' gateway (`conftest.provider_models`), the
key its fake upstream is called with, and which of that fake's scenarios shows each capability.
Adding a provider is one provider module, one fake upstream and one row here:
`test_conformance.py` runs every row through text, streaming, tools, reasoning, usage, stop
reasons and errors, and the tests that run a case on every provider take their models from
`models(capability)`.
"""

from __future__ import annotations

from typing import NamedTuple

from conftest import ANTHROPIC_KEY, GEMINI_KEY, OPENAI_KEY, UPSTREAM_KEY


class UpstreamError(NamedTuple):
    """An upstream error answered before the stream: what the client gets."""

    scenario: str
    status: int
    code: str
    retry_after: str | None = None


class Provider(NamedTuple):
    name: str  # as the config names it
    prefix: str  # its models are `prefix + scenario`
    key: str  # what its fake upstream is called with: no client may ever see it
    scenarios: dict[str, str]  # capability → the scenario that shows it
    errors: list[UpstreamError]  # before the stream
    midstream: dict[str, str]  # scenario failing during the stream → what its message says

    def model(self, capability: str) -> str:
        return self.prefix + self.scenarios[capability]


PROVIDERS = [
    Provider(
        "openai-chat",
        "mock-",
        UPSTREAM_KEY,
        {
            "text": "text",
            "tools": "tools-parallel",
            "reasoning": "reasoning",
            "json": "json",
            "length": "length",
            "content_filter": "content-filter",
            "mcp": "mcp-add",
            "codex": "codex-shell",
        },
        [UpstreamError("error-429", 429, "rate_limit_exceeded", "7"), UpstreamError("error-401", 502, "upstream_auth_error")],
        {"midstream-error": "The server had an error", "cut": "closed the connection mid-response"},
    ),
    Provider(
        "anthropic",
        "claude-",
        ANTHROPIC_KEY,
        {
            "text": "text",
            "tools": "tools-parallel",
            "reasoning": "thinking-tool",
            "sealed": "thinking-tool",
            "json": "json",
            "length": "max-tokens",
            "content_filter": "refusal",
            "mcp": "mcp-add",
            "codex": "codex-shell",
        },
        [
            UpstreamError("error-400", 400, "upstream_invalid_request"),
            UpstreamError("error-401", 502, "upstream_auth_error"),
            UpstreamError("error-429", 429, "rate_limit_exceeded", "12"),
            UpstreamError("error-529", 503, "upstream_overloaded"),
        ],
        {"midstream-error": "Overloaded", "cut": "ended before"},
    ),
    Provider(
        "gemini",
        "gemini-",
        GEMINI_KEY,
        {
            "text": "text",
            "tools": "tools-parallel",
            "reasoning": "thinking",
            "sealed": "tools-parallel",
            "json": "json",
            "length": "max-tokens",
            "content_filter": "safety",
            "mcp": "mcp-add",
            "codex": "codex-shell",
        },
        [
            UpstreamError("error-400", 400, "upstream_invalid_request"),
            UpstreamError("error-key", 502, "upstream_auth_error"),
            UpstreamError("error-429", 429, "rate_limit_exceeded", "17"),
            UpstreamError("error-503", 503, "upstream_overloaded"),
        ],
        {"midstream-error": "internal error", "cut": "ended before"},
    ),
    Provider(
        "openai",
        "oai-",
        OPENAI_KEY,
        {"text": "text", "tools": "reasoning-tool", "reasoning": "reasoning-tool", "sealed": "reasoning-tool", "length": "incomplete", "mcp": "mcp-add"},
        [UpstreamError("error-400", 400, "upstream_invalid_request"), UpstreamError("error-429", 429, "rate_limit_exceeded", "3")],
        {"failed": "invalid content"},
    ),
]


def models(capability: str, *, remote_only: bool = False) -> list[str]:
    """The model that shows `capability` on every provider that has it (`remote_only`: leave
    out Chat Completions, the provider most other tests already drive)."""
    return [p.model(capability) for p in PROVIDERS if capability in p.scenarios and not (remote_only and p.name == "openai-chat")]
