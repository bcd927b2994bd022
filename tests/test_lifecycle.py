"""Starting, configuring and stopping: config files, environment defaults, workers, disconnects."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import openai
import pytest
from conftest import chat_models, sdk
from gateway import Gateway, free_port
from helpers import create, wait_until
from spec import check_response


def _open_stream(port: int) -> tuple[socket.socket, bytes]:
    """A raw streaming request to a slow upstream, read until its first text delta."""
    conn = socket.create_connection(("127.0.0.1", port))
    body = b'{"model": "mock-slow", "input": "go on", "stream": true}'
    conn.sendall(b"POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    received = b""
    while b"response.output_text.delta" not in received:
        received += conn.recv(65536)
    return conn, received


def test_client_disconnect_cancels_the_upstream_call_and_keeps_the_response(gateway, fake_chat):
    before = fake_chat.disconnects
    conn, received = _open_stream(gateway.port)
    conn.close()
    assert wait_until(lambda: fake_chat.disconnects == before + 1, 5)
    client = sdk(gateway)
    assert create(client, model="chat", input="still fine")["status"] == "completed"
    response_id = received.split(b'"id":"', 1)[1].split(b'"', 1)[0].decode()
    assert wait_until(lambda: _stored_status(client, response_id) == "cancelled", 5)
    kept = client.responses.with_raw_response.retrieve(response_id).http_response.json()
    check_response(kept)
    assert kept["output"][0]["status"] == "incomplete" and kept["output"][0]["content"][0]["text"].startswith("Partial")


def _stored_status(client, response_id: str) -> str | None:
    try:
        return client.responses.retrieve(response_id).status
    except openai.NotFoundError:
        return None


def test_many_disconnects_leave_no_upstream_connection_behind(gateway, fake_chat):
    before = fake_chat.disconnects
    streams = [_open_stream(gateway.port) for _ in range(12)]
    assert fake_chat.active >= 12
    for conn, _ in streams:
        conn.close()
    assert wait_until(lambda: fake_chat.disconnects == before + 12 and fake_chat.active == 0)


def test_two_workers_share_the_port_and_the_database(fake_chat, tmp_path):
    gw = Gateway({"models": chat_models(fake_chat), "database_url": f"sqlite:///{tmp_path}/r.db"}, tmp_path, workers=2).start()
    try:
        client = sdk(gw)
        ids = [create(client, model="chat", input=f"n{i}")["id"] for i in range(12)]
        for response_id in ids:  # each may be answered by either worker
            assert client.responses.retrieve(response_id).status == "completed"
    finally:
        gw.stop()
        assert gw.process.returncode == 0 or gw.process.returncode < 0


def test_processes_starting_together_on_an_empty_sqlite_file_all_migrate_it(fake_chat, tmp_path):
    for attempt in range(4):
        url = f"sqlite:///{tmp_path}/race{attempt}.db"
        gateways = [Gateway({"models": chat_models(fake_chat), "database_url": url}, tmp_path) for _ in range(3)]
        for gw in gateways:
            gw.launch()
        try:
            for gw in gateways:
                gw.wait_healthy()  # raises with the log if the process died ("table … already exists")
                assert create(sdk(gw), model="chat", input="x")["status"] == "completed"
        finally:
            for gw in gateways:
                gw.stop()


def test_environment_defaults_route_openai_models(fake_chat, tmp_path):
    env = {"OPENAI_API_KEY": "sk-env-key", "OPENAI_BASE_URL": f"http://127.0.0.1:{fake_chat.port}/v1", "REJOINDER_DATABASE_URL": f"sqlite:///{tmp_path}/env.db"}
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "rejoinder", "serve", "--port", str(port)], cwd=tmp_path, env={**_clean_env(), **env}, stderr=subprocess.PIPE
    )
    gw = Gateway({}, tmp_path)
    gw.port, gw.url, gw.process = port, f"http://127.0.0.1:{port}", process
    try:
        _wait_healthy(gw)
        body = create(sdk(gw), model="gpt-4o-mini", input="hi")
        assert body["model"] == "gpt-4o-mini" and fake_chat.last()["model"] == "gpt-4o-mini"
        assert fake_chat.headers[-1]["Authorization"] == "Bearer sk-env-key"
        assert "max_tokens" not in fake_chat.last()
    finally:
        gw.stop()


def test_config_errors_are_clear(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  - name: x\n    provider: carrier-pigeon\n")
    result = _serve("--config", str(bad))
    assert result.returncode == 2 and "models[0].provider" in result.stderr and "Traceback" not in result.stderr
    bad.write_text("models:\n  - name: x\n    provider: openai-chat\n    base_url: http://h/v1\n    colour: blue\n")
    result = _serve("--config", str(bad))
    assert result.returncode == 2 and "colour" in result.stderr
    result = _serve("--config", str(tmp_path / "missing.yaml"))
    assert result.returncode == 2 and "cannot read config file" in result.stderr


def test_refuses_a_public_bind_without_a_master_key(tmp_path):
    result = _serve("--host", "0.0.0.0", cwd=tmp_path)
    assert result.returncode == 2 and "master_key" in result.stderr


def test_config_expands_variables(tmp_path):
    from rejoinder.config import load

    path = tmp_path / "c.yaml"
    path.write_text(
        "models:\n  - name: a\n    provider: openai-chat\n    base_url: ${BASE:-http://127.0.0.1:1/v1}\n    api_key: ${KEY}\n"
        "master_key: ${MASTER}\ndatabase_url: sqlite:///${DIR}/x.db\n"
    )
    config = load(str(path), {"DIR": "/tmp/somewhere", "MASTER": "m-1"})
    assert config.models[0].base_url == "http://127.0.0.1:1/v1"
    assert config.models[0].api_key is None  # unset variable: no key rather than an empty one
    assert config.master_key == "m-1" and config.database_url == "sqlite:////tmp/somewhere/x.db"


def _clean_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "REJOINDER_"))}


def _serve(*args: str, cwd=None) -> subprocess.CompletedProcess:
    port = str(free_port())
    return subprocess.run(
        [sys.executable, "-m", "rejoinder", "serve", "--port", port, *args], capture_output=True, text=True, timeout=30, cwd=cwd, env=_clean_env()
    )


def _wait_healthy(gw: Gateway) -> None:
    import urllib.request

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(gw.url + "/health", timeout=1):
                return
        except OSError:
            if gw.process.poll() is not None:
                pytest.fail(gw.process.stderr.read().decode())
            time.sleep(0.05)
    pytest.fail("gateway did not start")


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_taken_port_is_a_clear_message_and_no_banner(gateway, tmp_path, workers):
    result = _serve("--port", str(gateway.port), "--workers", workers, cwd=tmp_path)
    assert result.returncode == 1 and "cannot listen on 127.0.0.1" in result.stderr and "Traceback" not in result.stderr
    assert " on http://" not in result.stderr  # the banner prints only once the port is bound
