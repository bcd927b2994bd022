"""Webhooks for background runs: signed so the SDK's `webhooks.unwrap` accepts them, retried
with the same event id, and delivered by another instance when the first one dies."""

from __future__ import annotations

import base64
import os
import signal
import time

import openai
import pytest
from aiohttp import web
from conftest import chat_models, sdk
from fake_server import FakeServer
from gateway import Gateway
from helpers import wait_until

SECRET = "whsec_" + base64.b64encode(b"a webhook secret of 32 bytes....").decode()


class Receiver(FakeServer):
    """A webhook endpoint: answers 503 to the first `refuse` deliveries, then 200."""

    def __init__(self, refuse: int = 0) -> None:
        super().__init__()
        self.refuse = refuse
        self.deliveries: list[tuple[bytes, dict[str, str]]] = []

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/hook", self._hook)

    async def _hook(self, request: web.Request) -> web.Response:
        self.deliveries.append((await request.read(), dict(request.headers)))
        if len(self.deliveries) <= self.refuse:
            return web.Response(status=503)
        return web.Response(status=200)


@pytest.fixture
def receiver(request):
    server = Receiver(getattr(request, "param", 0))
    server.start()
    yield server
    server.stop()


def _gateway(fake_chat, workdir, url: str, receiver: Receiver, events: list[str] | None = None) -> Gateway:
    hook = {"url": receiver.url + "/hook", "secret": SECRET}
    if events is not None:
        hook["events"] = events
    config = {"models": chat_models(fake_chat), "database_url": url, "webhooks": [hook], "instance_ttl": 1.0, "background": {"poll": 0.1}}
    return Gateway(config, workdir)


def _unwrap(delivery: tuple[bytes, dict[str, str]]):
    body, headers = delivery
    return openai.OpenAI(api_key="unused").webhooks.unwrap(body, headers, secret=SECRET)


def test_each_end_of_a_background_run_is_delivered_signed(fake_chat, tmp_path, receiver):
    gw = _gateway(fake_chat, tmp_path, f"sqlite:///{tmp_path}/r.db", receiver).start()
    try:
        client = sdk(gw)
        completed = client.responses.create(model="mock-text", input="x", background=True).id
        failed = client.responses.create(model="mock-error-500", input="x", background=True).id
        incomplete = client.responses.create(model="mock-length", input="x", background=True).id
        cancelled = client.responses.create(model="mock-paced", input="x", background=True).id
        wait_until(lambda: client.responses.retrieve(cancelled).status == "in_progress")
        client.responses.cancel(cancelled)
        client.responses.create(model="mock-text", input="a foreground response has no webhook")
        assert wait_until(lambda: len(receiver.deliveries) == 4)
        events = {event.data.id: event for event in map(_unwrap, receiver.deliveries)}
        assert {response_id: events[response_id].type for response_id in events} == {
            completed: "response.completed",
            failed: "response.failed",
            incomplete: "response.incomplete",
            cancelled: "response.cancelled",
        }
        assert len({event.id for event in events.values()}) == 4 and all(event.id.startswith("evt_") for event in events.values())
        body, headers = receiver.deliveries[0]
        with pytest.raises(openai.InvalidWebhookSignatureError):  # the signature covers the body
            openai.OpenAI(api_key="unused").webhooks.unwrap(body.replace(b"resp_", b"resp-"), headers, secret=SECRET)
    finally:
        gw.stop()


def test_only_the_events_a_webhook_asks_for(fake_chat, tmp_path, receiver):
    gw = _gateway(fake_chat, tmp_path, f"sqlite:///{tmp_path}/r.db", receiver, events=["response.failed"]).start()
    try:
        client = sdk(gw)
        client.responses.create(model="mock-text", input="x", background=True)
        failed = client.responses.create(model="mock-error-500", input="x", background=True).id
        assert wait_until(lambda: len(receiver.deliveries) == 1)
        assert wait_until(lambda: client.responses.retrieve(failed).status == "failed")
        assert not wait_until(lambda: len(receiver.deliveries) > 1, 1.5)
        assert _unwrap(receiver.deliveries[0]).data.id == failed
    finally:
        gw.stop()


@pytest.mark.parametrize("receiver", [2], indirect=True)
def test_a_refused_delivery_is_retried_with_the_same_event_id(fake_chat, tmp_path, receiver):
    gw = _gateway(fake_chat, tmp_path, f"sqlite:///{tmp_path}/r.db", receiver).start()
    try:
        response_id = sdk(gw).responses.create(model="mock-text", input="x", background=True).id
        assert wait_until(lambda: len(receiver.deliveries) == 3, 15)  # refused, refused, accepted
        events = [_unwrap(delivery) for delivery in receiver.deliveries]
        assert {event.id for event in events} == {events[0].id} and events[0].data.id == response_id
        assert not wait_until(lambda: len(receiver.deliveries) > 3, 2)
    finally:
        gw.stop()


@pytest.mark.parametrize("receiver", [1], indirect=True)
def test_another_instance_delivers_what_a_dead_one_could_not(fake_chat, tmp_path, fresh_postgres_url, receiver):
    doomed = _gateway(fake_chat, tmp_path, fresh_postgres_url, receiver).start()
    response_id = sdk(doomed).responses.create(model="mock-text", input="x", background=True).id
    assert wait_until(lambda: len(receiver.deliveries) == 1)  # refused
    time.sleep(1)  # the refusal is recorded (an instance dying mid-delivery leaves it to others after 60 s)
    os.kill(doomed.process.pid, signal.SIGKILL)
    doomed.process.wait()
    survivor = _gateway(fake_chat, tmp_path, fresh_postgres_url, receiver).start()
    try:
        assert wait_until(lambda: len(receiver.deliveries) == 2, 15)
        first, second = map(_unwrap, receiver.deliveries)
        assert first.id == second.id and second.data.id == response_id
        assert not wait_until(lambda: len(receiver.deliveries) > 2, 2)
    finally:
        survivor.stop()


def test_a_run_ended_as_the_next_instance_starts_makes_its_webhook(fake_chat, tmp_path, receiver):
    """The store has its endings and outbox from the start: the reap a new instance does as it
    starts writes the webhook rows of the runs it ends."""
    url = f"sqlite:///{tmp_path}/r.db"
    doomed = _gateway(fake_chat, tmp_path, url, receiver).start()
    client = sdk(doomed)
    response_id = client.responses.create(model="mock-slow", input="x", background=True).id
    assert wait_until(lambda: client.responses.retrieve(response_id).output_text, 10)
    os.kill(doomed.process.pid, signal.SIGKILL)
    doomed.process.wait()
    time.sleep(1.5)  # past instance_ttl: the first reap of the next instance ends the run
    survivor = _gateway(fake_chat, tmp_path, url, receiver).start()
    try:
        assert wait_until(lambda: len(receiver.deliveries) == 1, 10)
        event = _unwrap(receiver.deliveries[0])
        assert event.type == "response.failed" and event.data.id == response_id
        assert sdk(survivor).responses.retrieve(response_id).status == "failed"
    finally:
        survivor.stop()
