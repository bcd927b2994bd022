"""Starting the real gateway as a separate process, bound to 127.0.0.1 on a free port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gateway:
    def __init__(self, config: dict, workdir: Path, workers: int = 1, env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> None:
        self.config = config
        self.args = args  # more command-line options
        self.workdir = workdir
        self.workers = workers
        self.env = env or {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.log = workdir / f"gateway-{self.port}.log"

    def start(self) -> Gateway:
        self.launch()
        return self.wait_healthy()

    def launch(self) -> None:
        """Start the process without waiting for it (see `wait_healthy`)."""
        path = self.workdir / f"config-{self.port}.yaml"
        path.write_text(yaml.safe_dump(self.config))
        command = [sys.executable, "-m", "rejoinder", "serve", "--config", str(path), "--port", str(self.port), "--workers", str(self.workers), *self.args]
        env = {**os.environ, **self.env}
        with open(self.log, "ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(command, cwd=self.workdir, env=env, stdout=log, stderr=subprocess.STDOUT)

    def wait_healthy(self) -> Gateway:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.process.returncode}:\n{self.log.read_text()}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=1) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"gateway did not become healthy:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def restart(self) -> Gateway:
        self.stop()
        return self.start()

    def logs(self) -> str:
        return self.log.read_text()
