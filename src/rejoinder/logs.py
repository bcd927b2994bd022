"""Logging that never carries a secret or a request's headers.

Every record passes one filter on the way out: the secrets the configuration holds (the
master key, upstream keys) are replaced wherever they appear, message and traceback alike;
and the reports aiohttp makes of requests it could not parse keep only the error's kind,
since their text quotes the offending request line or header verbatim.
"""

from __future__ import annotations

import logging

from aiohttp.http_exceptions import HttpProcessingError

from rejoinder.config import Config, sealing_secrets


class Redact(logging.Filter):
    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.msg = f"{record.getMessage()}: {type(exc).__name__} (HTTP {exc.code})"
            record.args = None
            record.exc_info = record.exc_text = None
            return True
        message = record.getMessage()
        scrubbed = self.scrub(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        if record.exc_info:
            record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))
        return True


def redact(config: Config) -> None:
    """Put the filter on every handler of the root logger (where every record ends up)."""
    keys = [model.api_key for model in config.models] + [deployment.api_key for model in config.models for deployment in model.deployments]
    keys += [key.value for project in config.projects for key in project.keys] + [config.embeddings.api_key]
    keys += [value for server in config.mcp_servers for value in [*server.headers.values(), *server.env.values()]]
    secrets = [config.master_key or ""] + sealing_secrets(config) + [key or "" for key in keys]
    for handler in logging.getLogger().handlers:
        handler.addFilter(Redact(secrets))
