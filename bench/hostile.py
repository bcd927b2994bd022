"""Hostile-input run: generated bad requests against the gateway on SQLite and PostgreSQL.

Prints, per database, how many requests got each status, how many got a 5xx (the goal is 0)
and the share of 4xx answers in OpenAI's error envelope (the goal is 100 %). The requests come
from `tests/hostile.py` (the same generator `make test` runs with a fixed seed and fewer
requests); the upstream is the test suite's fake Chat Completions server. Everything binds to
127.0.0.1 and is stopped when the script ends.

    python bench/hostile.py [--count 10000] [--seed 1] [--no-postgres]
"""

from __future__ import annotations

import argparse
import http.client
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fake_chat import FakeChat  # noqa: E402
from gateway import Gateway  # noqa: E402
from hostile import requests, send, verdict  # noqa: E402


def run(url: str, fake: FakeChat, count: int, seed: int, workdir: Path) -> None:
    models = [
        {"name": "mock-*", "provider": "openai-chat", "base_url": fake.url + "/v1"},
        {"name": "chat", "provider": "openai-chat", "base_url": fake.url + "/v1", "upstream_model": "text"},
    ]
    gw = Gateway({"models": models, "database_url": url}, workdir).start()
    statuses, wrong = Counter(), []
    connection = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=60)
    started = time.monotonic()
    try:
        for method, path, headers, body in requests(seed, count):
            try:
                answer = send(connection, method, path, headers, body)
            except (http.client.HTTPException, ConnectionError):
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=60)
                answer = send(connection, method, path, headers, body)
            statuses[answer[0]] += 1
            problem = verdict(*answer)
            if problem:
                wrong.append(f"{method} {path}: {problem}")
    finally:
        took = time.monotonic() - started
        gw.stop()
    errors = sum(n for status, n in statuses.items() if status >= 400)
    server_errors = sum(n for status, n in statuses.items() if status >= 500)
    enveloped = errors - sum(1 for w in wrong if "without the envelope" in w or "not JSON" in w)
    print(f"\n{url.split(':')[0]}: {count} hostile requests in {took:.1f} s ({count / took:.0f}/s), seed {seed}")
    print("  statuses: " + ", ".join(f"{status}: {n}" for status, n in sorted(statuses.items())))
    print(f"  5xx: {server_errors}   4xx in the envelope: {100 * enveloped / max(errors, 1):.2f} %   wrong answers: {len(wrong)}")
    for line in wrong[:5]:
        print("   ", line[:300])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-postgres", dest="postgres", action="store_false")
    args = parser.parse_args()
    fake = FakeChat()
    fake.start()
    workdir = Path(tempfile.mkdtemp(prefix="rejoinder-hostile-"))
    try:
        run(f"sqlite:///{workdir}/hostile.db", fake, args.count, args.seed, workdir)
        if args.postgres:
            import conftest

            with conftest._database() as url:
                run(url, fake, args.count, args.seed, workdir)
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
