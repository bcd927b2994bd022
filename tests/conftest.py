"""Shared fixtures: the fake upstream, gateways on SQLite and PostgreSQL, and SDK clients."""

from __future__ import annotations

import contextlib
import os
import uuid

import psycopg
import pytest
from fake_anthropic import FakeAnthropic
from fake_chat import FakeChat
from fake_gemini import FakeGemini
from fake_responses import FakeResponses
from gateway import Gateway
from openai import OpenAI
from spec import validating_client

UPSTREAM_KEY = "sk-upstream-secret-value"


def _serve(fake):
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def fake_chat():
    yield from _serve(FakeChat())


@pytest.fixture(scope="session")
def fake_anthropic():
    yield from _serve(FakeAnthropic())


@pytest.fixture(scope="session")
def fake_gemini():
    yield from _serve(FakeGemini())


@pytest.fixture(scope="session")
def fake_responses():
    yield from _serve(FakeResponses())


ANTHROPIC_KEY = "sk-ant-api03-fake-secret"
OPENAI_KEY = "sk-proj-fake-openai-secret"
GEMINI_KEY = "AIzaSy-fake-gemini-secret"


def provider_models(chat: FakeChat, anthropic: FakeAnthropic, gemini: FakeGemini, responses: FakeResponses) -> list[dict]:
    """Every provider behind one gateway: `claude-<scenario>`, `gemini-<scenario>`,
    `oai-<scenario>` and the Chat Completions models."""
    return chat_models(chat) + [
        {"name": "claude-*", "provider": "anthropic", "base_url": anthropic.url + "/v1", "api_key": ANTHROPIC_KEY},
        {"name": "gemini-*", "provider": "gemini", "base_url": gemini.url + "/v1beta", "api_key": GEMINI_KEY},
        {"name": "oai-*", "provider": "openai", "base_url": responses.url + "/v1", "api_key": OPENAI_KEY},
        # OpenAI runs these models' `mcp` tools itself (the gateway runs the others')
        {"name": "passthrough-*", "provider": "openai", "base_url": responses.url + "/v1", "api_key": OPENAI_KEY, "mcp": "passthrough"},
    ]


@pytest.fixture(scope="session")
def providers_gateway(fake_chat, fake_anthropic, fake_gemini, fake_responses, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("providers")
    models = provider_models(fake_chat, fake_anthropic, fake_gemini, fake_responses)
    gw = Gateway({"models": models, "database_url": f"sqlite:///{workdir}/r.db"}, workdir).start()
    yield gw
    gw.stop()


@pytest.fixture(scope="session")
def multi(providers_gateway):
    return sdk(providers_gateway)


def chat_models(fake: FakeChat) -> list[dict]:
    base_url = f"http://127.0.0.1:{fake.port}/v1"
    return [
        {"name": "mock-*", "provider": "openai-chat", "base_url": base_url, "api_key": UPSTREAM_KEY},
        {"name": "chat", "provider": "openai-chat", "base_url": base_url, "api_key": UPSTREAM_KEY, "upstream_model": "text"},
        {"name": "hang", "provider": "openai-chat", "base_url": base_url, "upstream_model": "hang", "timeout": 1, "first_event_timeout": 1},
        {"name": "unreachable", "provider": "openai-chat", "base_url": "http://127.0.0.1:9/v1"},
    ]


@pytest.fixture(scope="session")
def gateway(fake_chat, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("gateway")
    gw = Gateway({"models": chat_models(fake_chat), "database_url": f"sqlite:///{workdir}/rejoinder.db"}, workdir).start()
    yield gw
    gw.stop()


def sdk(gw: Gateway, key: str = "unused", timeout: float = 30) -> OpenAI:
    """The official SDK over real HTTP; every body it receives is validated against the specs."""
    return OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0, timeout=timeout, http_client=validating_client(timeout))


@pytest.fixture(scope="session")
def client(gateway):
    return sdk(gateway)


def _connect() -> psycopg.Connection:
    last: Exception | None = None
    for user in ("postgres", "root"):
        try:
            return psycopg.connect(host="127.0.0.1", port=5432, user=user, dbname="test", connect_timeout=5, autocommit=True)
        except psycopg.OperationalError as exc:  # wrong role: try the next
            last = exc
    raise last  # type: ignore[misc]


@contextlib.contextmanager
def _database():
    """A fresh database on the real PostgreSQL at 127.0.0.1, dropped afterwards."""
    name = f"rejoinder_{uuid.uuid4().hex[:12]}"
    try:
        with _connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
            user = conn.info.user
    except psycopg.Error as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL on 127.0.0.1:5432 is required in CI: {exc}")
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    try:
        yield f"postgresql://{user}@127.0.0.1:5432/{name}"
    finally:
        with _connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_url():
    with _database() as url:
        yield url


@pytest.fixture
def fresh_postgres_url():
    with _database() as url:
        yield url


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def store_gateway(request, fake_chat, tmp_path_factory):
    """A gateway on each storage backend, for the tests that must hold on both."""
    workdir = tmp_path_factory.mktemp(f"store-{request.param}")
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else f"sqlite:///{workdir}/rejoinder.db"
    gw = Gateway({"models": chat_models(fake_chat), "database_url": url}, workdir).start()
    yield gw
    gw.stop()


@pytest.fixture(scope="session")
def redis_url():
    """The real Redis on 127.0.0.1:6379 (required in CI)."""
    import redis

    url = "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"Redis on 127.0.0.1:6379 is required in CI: {exc}")
        pytest.skip(f"Redis not reachable: {exc}")
    return url
