"""What operators watch: a request id on every answer, Prometheus metrics at `/metrics`, and the
JSON access log (`serve --access-log`).

Metrics are made when the app is, never at import: prometheus_client chooses its multiprocess
mode when it is first imported, from `PROMETHEUS_MULTIPROC_DIR`, which `serve --workers N` sets
before it forks (see `server`); each worker then writes its own files and any worker's
`/metrics` adds them all up. Labels are bounded: a model is named by its config entry (`gpt-*`
for a prefix route), never by what a client sent.
"""

from __future__ import annotations

import os
import time
from typing import Any

import orjson
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from rejoinder.api.usage import Tally
from rejoinder.engine.access import Limiter, Principal
from rejoinder.engine.router import Deployment
from rejoinder.engine.run import Run
from rejoinder.protocol.ids import is_valid_id, new_id
from rejoinder.providers.base import Usage

REQUEST_ID = "x-request-id"
_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_OVERHEAD = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)


class Metrics:
    def __init__(self, tally: Tally, limiter: Limiter) -> None:
        from prometheus_client import Counter, Histogram

        self.tally = tally  # the usage records (see `api.usage`), fed from the same accounting
        self.limiter = limiter  # a turn's tokens count against its principal's limits

        self.requests = Counter("rejoinder_requests", "Responses requests, by model, provider, HTTP status and mode.", ["model", "provider", "status", "mode"])
        self.duration = Histogram(
            "rejoinder_request_duration_seconds", "A response request from arrival to its last byte.", ["model", "mode"], buckets=_SECONDS
        )
        self.first_token = Histogram("rejoinder_time_to_first_token_seconds", "From arrival to the upstream's first delta.", ["model"], buckets=_SECONDS)
        self.overhead = Histogram(
            "rejoinder_gateway_overhead_seconds", "From arrival to the upstream call: the gateway's own time.", ["model"], buckets=_OVERHEAD
        )
        self.tokens = Counter("rejoinder_tokens", "Tokens in and out, as the upstreams reported them.", ["model", "direction"])
        self.upstream_errors = Counter("rejoinder_upstream_errors", "Upstream failures, by model, provider and error code.", ["model", "provider", "code"])
        self.retries = Counter("rejoinder_upstream_retries", "Deployments that failed before the first byte and were passed over.", ["model"])
        self.refusals = Counter("rejoinder_rate_limited", "Requests refused for a key's or a project's rate limit (429 rate_limit_exceeded).", [])

        self._children: dict[tuple[str, str, int, str], tuple[Any, ...]] = {}

    def _labelled(self, model: str, provider: str, status: int, mode: str) -> tuple[Any, ...]:
        """The labelled series a request of this kind counts into, looked up once (prometheus_client's
        `labels()` takes a lock and builds a key each time: most of a request's metrics cost)."""
        key = (model, provider, status, mode)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = (
                self.requests.labels(model, provider, str(status), mode),
                self.duration.labels(model, mode),
                self.overhead.labels(model),
                self.first_token.labels(model),
                self.tokens.labels(model, "input"),
                self.tokens.labels(model, "output"),
            )
        return found

    def turn(
        self,
        mode: str,
        status: int,
        arrived: float,
        run: Run | None,
        principal: Principal | None,
        deployment: Deployment | None = None,
        error_code: str | None = None,
    ) -> None:
        """One response request of `principal`'s has been answered (its stream included).
        `deployment` names the model when there is no run (a background request; one refused
        before it ran)."""
        deployment = run.deployment if run is not None else deployment
        model, provider = (deployment.route, deployment.owned_by) if deployment is not None else ("unknown", "unknown")
        requests, duration, overhead, first_token, tokens_in, tokens_out = self._labelled(model, provider, status, mode)
        requests.inc()
        duration.observe(time.monotonic() - arrived)
        if run is None:
            self.tally.count(*_whose(principal), model, status >= 400, None)
            if error_code == "rate_limit_exceeded":
                self.refusals.inc()
            elif error_code and error_code.startswith("upstream"):
                self.upstream_errors.labels(model, provider, error_code).inc()
            return
        if run.retries:
            self.retries.labels(model).inc(run.retries)
        overhead.observe(max(0.0, run.called_at - arrived))
        first_token.observe(max(0.0, run.first_at - arrived))
        self._used(run, principal, 1, status >= 400, tokens_in, tokens_out)

    def ended(self, run: Run, principal: Principal) -> None:
        """A background run's turn has ended (on whichever instance ran it): its tokens, and
        their spending (its request was counted when it was queued)."""
        model = run.deployment.route
        self._used(run, principal, 0, False, self.tokens.labels(model, "input"), self.tokens.labels(model, "output"))

    def _used(self, run: Run, principal: Principal | None, requests: int, error: bool, tokens_in: Any, tokens_out: Any) -> None:
        """A turn's use of its upstream calls: tokens counted, in the usage records, and spent
        against its principal's limits."""
        deployment = run.deployment
        failed = run.response.status == "failed"
        self.spent(deployment, principal, run.used, requests, error or failed, tokens_in, tokens_out)
        if failed:
            code = run.response.error.code if run.response.error is not None else "unknown"
            self.upstream_errors.labels(deployment.route, deployment.owned_by, code).inc()

    def compacted(self, deployment: Deployment, principal: Principal, used: Usage) -> None:
        """`POST /v1/responses/compact`'s summary call."""
        model = deployment.route
        self.spent(deployment, principal, used, 0, False, self.tokens.labels(model, "input"), self.tokens.labels(model, "output"))

    def spent(
        self, deployment: Deployment, principal: Principal | None, used: Usage | None, requests: int, error: bool, tokens_in: Any, tokens_out: Any
    ) -> None:
        used_in, used_out = (used.input_tokens, used.output_tokens) if used is not None else (0, 0)
        tokens_in.inc(used_in)
        tokens_out.inc(used_out)
        price = deployment.price
        cost = price.micros(used) if price is not None and used is not None else 0
        self.tally.count(*_whose(principal), deployment.route, error, used, requests, cost)
        if principal is not None:
            self.limiter.spend(principal, used_in + used_out, cost)

    def exposition(self, queued: int) -> bytes:
        from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = REGISTRY
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
        depth = f"# HELP rejoinder_background_queued Background runs waiting in the queue (all instances).\n# TYPE rejoinder_background_queued gauge\nrejoinder_background_queued {queued}\n"
        return generate_latest(registry) + depth.encode()


def _whose(principal: Principal | None) -> tuple[str, str]:
    """The project and key id usage is counted under ("" for none)."""
    return (principal.project, principal.key_id or "") if principal is not None else ("", "")


OBSERVED = web.AppKey("observed", Metrics)


def request_id(request: web.Request) -> str:
    """The client's `x-request-id` when it is a usable id, else a new one."""
    given = request.headers.get(REQUEST_ID, "")
    return given if is_valid_id(given) else new_id("req")


@web.middleware
async def observe(request: web.Request, handler: Any) -> web.StreamResponse:
    """Outermost: the request's id and arrival, and once it is answered, its metrics (for a
    response request: its handler set `mode`, and `run` once it had one)."""
    request["request_id"] = request_id(request)
    request["arrived"] = time.monotonic()
    response = await handler(request)
    if "mode" in request:
        request.app[OBSERVED].turn(
            request["mode"],
            response.status,
            request["arrived"],
            request.get("run"),
            request.get("principal"),
            request.get("deployment"),
            response.get("error_code"),
        )
    return response


async def add_request_id(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare`: every answer carries the request's id, streams and sockets too,
    and a request counted against rate limits its `x-ratelimit-*` headers."""
    response.headers[REQUEST_ID] = request.get("request_id") or request_id(request)
    limits = request.get("ratelimit")
    if limits:
        response.headers.update(limits)


class AccessLog(AbstractAccessLogger):
    """`rejoinder serve --access-log`: one JSON line per request. It gives the request id, method, path,
    status, bytes and milliseconds, and for a response request its model, mode and tokens. Never a header,
    a query string (where credentials sometimes travel), a prompt or an output."""

    def log(self, request, response, time: float) -> None:  # noqa: ANN001 - aiohttp's signature
        line: dict[str, Any] = {
            "request_id": request.get("request_id"),
            "method": request.method,
            "path": request.path,
            "status": response.status,
            "bytes": response.body_length,
            "ms": round(time * 1000, 2),
        }
        run = request.get("run")
        principal = request.get("principal")
        if principal is not None:
            line.update(project=principal.project, key_id=principal.key_id)
        if "mode" in request:
            line["mode"] = request["mode"]
        if run is not None:
            usage = run.response.usage
            line.update(
                model=run.deployment.route,
                response_id=run.response.id,
                input_tokens=usage.input_tokens if usage is not None else None,
                output_tokens=usage.output_tokens if usage is not None else None,
            )
        self.logger.info("%s", orjson.dumps(line).decode())
