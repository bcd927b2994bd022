"""Process management for `rejoinder serve`: migrate once, then one or more workers.

With `--workers N` the parent migrates the database, then forks N workers that share the port
through SO_REUSEPORT; the kernel spreads connections between them.
"""

from __future__ import annotations

import ipaddress
import logging
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

import uvloop
from sqlalchemy.engine import make_url

from rejoinder import __version__
from rejoinder.api import wire
from rejoinder.api.app import create_app
from rejoinder.api.observe import AccessLog
from rejoinder.config import Config, ConfigError
from rejoinder.engine.access import declared
from rejoinder.logs import redact
from rejoinder.store import access
from rejoinder.store.repository import Store

log = logging.getLogger("rejoinder")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _migrate(config: Config) -> None:
    """The schema brought up to date, and the projects and keys the config declares made so, in
    a child process: the processes that serve never import Alembic (11 MB each would keep)."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as child:
        child.submit(_migrate_here, config).result()


def _migrate_here(config: Config) -> None:
    store = Store(config.database_url, readers=1)
    try:
        store.migrate()
        with store.engine.begin() as conn:
            access.declare(conn, declared(config.projects))
    finally:
        store.close()


def _worker(config: Config, host: str, port: int, reuse_port: bool, access_log: bool, listening: Callable[[], None] | None = None) -> None:
    wire.run(
        create_app(config),
        host,
        port,
        reuse_port=reuse_port,
        client_timeout=config.client_timeout,
        shutdown_timeout=config.shutdown_grace,
        access_log=logging.getLogger("rejoinder.access") if access_log else None,
        access_log_class=AccessLog,
        loop=uvloop.new_event_loop(),
        listening=listening,
    )


def banner(config: Config, host: str, port: int, workers: int) -> str:
    names = [m.name for m in config.models]
    lines = [f"Rejoinder {__version__} on http://{host}:{port} ({workers} worker{'s' if workers > 1 else ''})"]
    lines.append("models: " + (", ".join(names) if names else "none configured (see README: rejoinder.yaml)"))
    sign_in = "sign in with the master key" if config.master_key else "open: no master key is set, so anyone on this machine is admin"
    lines.append(f"console: http://{host}:{port}/console ({sign_in})")
    lines.append(f"database: {make_url(config.database_url).render_as_string(hide_password=True)}")
    concrete = [n for n in names if not n.endswith("*")]
    if concrete:
        auth = ' -H "Authorization: Bearer $REJOINDER_API_KEY"' if config.master_key else ""
        lines.append(
            f"try: curl -s http://{host}:{port}/v1/responses{auth} -H 'Content-Type: application/json' "
            f'-d \'{{"model": "{concrete[0]}", "input": "Say hello"}}\''
        )
    return "\n".join(lines)


def serve(config: Config, host: str, port: int, workers: int, access_log: bool = False) -> None:
    if not config.master_key and not is_loopback(host):
        raise ConfigError(f"refusing to listen on {host} without authentication: set master_key in the config (or REJOINDER_MASTER_KEY), or bind to 127.0.0.1")
    if workers < 1:
        raise ConfigError("--workers must be at least 1")
    redact(config)
    _migrate(config)

    def listening() -> None:  # the banner, once the port is bound (by the first worker, when there are several)
        print(banner(config, host, port, workers), file=sys.stderr, flush=True)

    if workers == 1:
        _worker(config, host, port, reuse_port=False, access_log=access_log, listening=listening)
        return
    # Workers count metrics into files here, which any worker's /metrics adds up (see api.observe).
    metrics_dir = tempfile.mkdtemp(prefix="rejoinder-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    children = []
    for index in range(workers):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                _worker(config, host, port, reuse_port=True, access_log=access_log, listening=listening if index == 0 else None)
                code = 0
            except OSError as exc:  # the port is taken, the address is not ours, …
                print(f"rejoinder: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr, flush=True)
            finally:
                os._exit(code)
        children.append(pid)

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            try:
                os.kill(child, signum)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGHUP, forward)  # workers read prompts_dir again
    failed = False
    for _ in children:  # a worker that fails stops the others: the gateway is all its workers or none
        _, status = os.wait()
        if status != 0 and not failed:
            failed = True
            forward(signal.SIGTERM, None)
    shutil.rmtree(metrics_dir, ignore_errors=True)
    if failed:
        sys.exit(1)
