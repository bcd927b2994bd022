"""The config is validated by its types: each error names the file, the line and the key."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from rejoinder.config import ConfigError, load

BAD = [  # (YAML, line, key, complaint)
    ("models:\n  - name: a\n    provider: openai-chat\n    timeout: 0\n", 4, "models[0].timeout", "Expected `float` > 0.0"),
    ("models:\n  - name: a\n    provider: openai-chat\n    thredas: 2\n", 2, "models[0]", "unknown field `thredas`"),
    ("models:\n  - {name: a, provider: openai-chat}\n  - {name: a, provider: anthropic}\n", 3, "models[1]", "the name 'a' is used twice"),
    ("models:\n  - name: p\n    timeout: 5\n    deployments:\n      - {provider: openai-chat}\n", 2, "models[0]", "each sets its own limits"),
    ("models:\n  - name: a\n    provider: openai-chat\n    local: {threads: 2}\n", 2, "models[0]", "local settings are for provider local"),
    ("models:\n  - name: 'a*b'\n    provider: openai-chat\n", 2, "models[0]", "'*' may only end a name"),
    ("models:\n  - {name: a, provider: anthropic, prompt_caching: cached_contents}\n", 2, "models[0]", "Gemini's explicit context caching"),
    ("models:\n  - {name: a, provider: anthropic, price: {input: 3, output: -1}}\n", 2, "models[0].price.output", "Expected `float` >= 0"),
    ('models:\n  - {name: a, provider: anthropic, api_key: "sk-ant\\n"}\n', 2, "models[0].api_key", "Expected `str` matching regex"),
    ("background:\n  poll: 0\n", 2, "background.poll", "Expected `float` > 0.0"),
    ("websocket:\n  max_streams: 0\n", 2, "websocket.max_streams", "Expected `int` >= 1"),
    ("webhooks:\n  - url: ftp://x\n    secret: whsec_x\n", 2, "webhooks[0].url", "Expected `str` matching regex"),
    ("mcp_servers:\n  - label: a\n", 2, "mcp_servers[0]", "either an http(s):// url or a command"),
    ("secret_key: short\n", None, "", "at least 16 characters"),
    ("database_url: mysql://x\n", None, "", "database_url must be sqlite"),
]


@pytest.mark.parametrize(("text", "line", "key", "complaint"), BAD)
def test_an_error_names_the_file_line_and_key(tmp_path, text, line, key, complaint):
    path = tmp_path / "rejoinder.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load(str(path), {})
    message = str(caught.value)
    where = f"config file {path}" + (f", line {line}" if line else "") + (f", at {key}" if key else "")
    assert message.startswith(where + ": ") and complaint in message, message


def test_a_yaml_syntax_error_names_the_file_and_line(tmp_path):
    path = tmp_path / "rejoinder.yaml"
    path.write_text("models:\n  - name: a\n   bad: [\n")
    with pytest.raises(ConfigError, match=rf"config file {path}, line 3, column 4 is not valid YAML"):
        load(str(path), {})


def test_limits_and_local_settings_compose(tmp_path):
    path = tmp_path / "rejoinder.yaml"
    path.write_text(
        "models:\n"
        "  - {name: a, provider: openai-chat, timeout: 5}\n"
        "  - name: pool\n"
        "    deployments:\n"
        "      - {provider: openai-chat, base_url: 'http://127.0.0.1:9/v1', first_event_timeout: 2}\n"
        "      - {provider: anthropic}\n"
        "  - {name: l, provider: local, local: {context_tokens: 2048}}\n"
    )
    a, pool, local = load(str(path), {}).models
    assert a.timeout == 5 and a.connect_timeout == 10  # a model is its own upstream limits, the defaults elsewhere
    first, second = pool.deployments
    assert first.first_event_timeout == 2 and second.first_event_timeout == 600  # each deployment its own
    assert local.local_model.context_tokens == 2048 and local.local_model.threads is None
    assert a.local_model.context_tokens == 4096


def test_serve_help_says_what_each_option_does_and_names_the_environment():
    shown = subprocess.run([sys.executable, "-m", "rejoinder", "serve", "--help"], capture_output=True, text=True, check=True).stdout
    for expected in (
        "address to listen on (default: 127.0.0.1",
        "(default: 8080)",
        "(default: 1;",
        "REJOINDER_MASTER_KEY",
        "REJOINDER_DATABASE_URL",
        "OPENAI_API_KEY",
    ):
        assert expected in shown, expected


def test_a_value_outside_a_fixed_few_is_refused_with_the_ones_allowed(tmp_path):
    path = tmp_path / "rejoinder.yaml"
    path.write_text("models:\n  - name: gpt-4o\n    provider: opneai\n")
    with pytest.raises(ConfigError) as refused:
        load(str(path))
    assert str(refused.value) == (
        f"config file {path}, line 3, at models[0].provider: Invalid enum value 'opneai' (expected one of: openai-chat, openai, anthropic, gemini, local)"
    )
    path.write_text("embeddings:\n  provider: cohere\n")
    with pytest.raises(ConfigError) as refused:
        load(str(path))
    assert "(expected one of: embedded, openai, gemini)" in str(refused.value)


def test_the_database_is_one_place_whatever_the_working_directory(tmp_path):
    """`rejoinder projects create` run from two folders makes one database, in the user's data
    folder, not a `data/` under each; a relative SQLite path in a config file is the file's."""
    environ = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "share"), "REJOINDER_DATABASE_URL": ""}
    for name in ("first", "second"):
        folder = tmp_path / name
        folder.mkdir()
        subprocess.run([sys.executable, "-m", "rejoinder", "projects", "create", name], cwd=folder, env=environ, capture_output=True, check=True)
        assert not (folder / "data").exists()
    listed = subprocess.run([sys.executable, "-m", "rejoinder", "projects", "list"], cwd=tmp_path, env=environ, capture_output=True, text=True, check=True)
    assert "first" in listed.stdout and "second" in listed.stdout
    assert (tmp_path / "share" / "rejoinder" / "rejoinder.db").exists()

    config = tmp_path / "etc" / "rejoinder.yaml"
    config.parent.mkdir()
    config.write_text("database_url: sqlite:///state/gateway.db\n")
    assert load(str(config), {}).database_url == f"sqlite:///{tmp_path}/etc/state/gateway.db"
    assert load(None, {"XDG_DATA_HOME": str(tmp_path / "x")}).database_url == f"sqlite:///{tmp_path}/x/rejoinder/rejoinder.db"
