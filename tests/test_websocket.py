"""WebSocket mode (`client.responses.connect()`): turns, lanes, warm-up, store-free chains,
steering, errors and limits, over a real socket to a gateway process."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import openai
import pytest
import websockets
from conftest import chat_models, sdk
from fake_chat import FLOOD_CHUNKS
from gateway import Gateway
from helpers import wait_until
from openai import AsyncOpenAI
from providers import models
from sockets import AsyncSocket, Socket, ends_turn, final, text_of
from spec import validating_client

HELLO = "Hello, world!"  # what the fake's `text` scenario says


def user_turns(request: dict) -> list[str]:
    """The user messages a Chat Completions request carried, in order."""
    return [message["content"] for message in request["messages"] if message["role"] == "user"]


def test_one_turn(client, fake_chat):
    with Socket(client) as socket:
        frames = socket.turn(model="mock-text", input="Say hello.")
        assert [frame["type"] for frame in frames[:2]] == ["response.created", "response.in_progress"]
        assert text_of(frames) == HELLO and final(frames)["status"] == "completed"
        assert all("stream_id" not in frame for frame in frames)  # none was given
        assert fake_chat.last()["stream"] is True  # implicit over a socket
    stored = client.responses.retrieve(final(frames)["id"])  # stored by default, like a POST
    assert stored.output_text == HELLO


def test_ten_store_free_turns_send_only_new_input(client, fake_chat):
    with Socket(client) as socket:
        previous = None
        for turn in range(10):
            frames = socket.turn(model="mock-text", input=f"turn {turn}", store=False, previous_response_id=previous)
            response = final(frames)
            assert response["status"] == "completed" and response["store"] is False and response["previous_response_id"] == previous
            previous = response["id"]
            sent = fake_chat.last()["messages"]
            assert user_turns(fake_chat.last()) == [f"turn {i}" for i in range(turn + 1)]
            assert [message["content"] for message in sent if message["role"] == "assistant"] == [HELLO] * turn
    with pytest.raises(openai.NotFoundError):  # never stored
        client.responses.retrieve(previous)


def test_two_lanes_run_at_once_and_each_keeps_its_order(client):
    with Socket(client) as socket:
        socket.connection.response.create(model="mock-paced", input="a", stream_id="lane-a")
        socket.connection.response.create(model="mock-paced", input="b", stream_id="lane-b")
        socket.connection.response.create(model="mock-text", input="a2", stream_id="lane-a")
        frames = socket.until(ends_turn, 3)
    lanes = {lane: [frame for frame in frames if frame.get("stream_id") == lane] for lane in ("lane-a", "lane-b")}
    assert len(lanes["lane-a"]) + len(lanes["lane-b"]) == len(frames)
    # both paced answers were streaming at once: lane b's first delta came before lane a ended
    first_b = next(i for i, frame in enumerate(frames) if frame.get("stream_id") == "lane-b" and frame["type"] == "response.output_text.delta")
    end_a = next(i for i, frame in enumerate(frames) if frame.get("stream_id") == "lane-a" and frame["type"] == "response.completed")
    assert first_b < end_a
    # FIFO within a lane: the second request on lane a starts after the first one ended
    created_a = [i for i, frame in enumerate(lanes["lane-a"]) if frame["type"] == "response.created"]
    assert len(created_a) == 2 and lanes["lane-a"][created_a[1] - 1]["type"] == "response.completed"
    assert text_of(lanes["lane-a"][created_a[1] :]) == HELLO


def test_fork_across_lanes(client, fake_chat):
    with Socket(client) as socket:
        root = final(socket.turn(model="mock-text", input="root", store=False, stream_id="main"))
        fork = final(socket.turn(model="mock-text", input="fork", store=False, stream_id="side", previous_response_id=root["id"]))
        assert fork["previous_response_id"] == root["id"] and user_turns(fake_chat.last()) == ["root", "fork"]
        again = final(socket.turn(model="mock-text", input="other fork", store=False, stream_id="main", previous_response_id=root["id"]))
        assert again["status"] == "completed" and user_turns(fake_chat.last()) == ["root", "other fork"]


def test_warm_up_prepares_state_without_calling_the_model(client, fake_chat):
    with Socket(client) as socket:
        calls = len(fake_chat.requests)
        frames = socket.turn(model="mock-text", instructions="Be brief.", input="Context: the sky is green.", generate=False, store=False)
        warm = final(frames)
        assert [frame["type"] for frame in frames] == ["response.created", "response.in_progress", "response.completed"]
        assert warm["output"] == [] and warm["status"] == "completed" and len(fake_chat.requests) == calls
        frames = socket.turn(model="mock-text", input="What colour is the sky?", store=False, previous_response_id=warm["id"])
        assert text_of(frames) == HELLO
        assert user_turns(fake_chat.last()) == ["Context: the sky is green.", "What colour is the sky?"]


def test_steering_ends_the_response_and_starts_a_successor(client, fake_chat):
    with Socket(client) as socket:
        socket.connection.response.create(model="mock-paced", instructions="Count.", input="Count to thirty.", stream_id="agent")
        frames = socket.until(lambda frame: frame["type"] == "response.output_text.delta")
        steered_id = frames[0]["response"]["id"]
        socket.connection.response.steer(previous_response_id=steered_id, input="Stop counting, say hello.")
        frames += socket.until(lambda frame: frame["type"] in ("response.completed", "response.failed"))
    types = [frame["type"] for frame in frames]
    accepted = frames[types.index("response.steer.accepted")]
    assert accepted["steer"]["previous_response_id"] == steered_id and accepted["stream_id"] == "agent"
    steered = frames[types.index("response.incomplete")]["response"]
    assert steered["id"] == steered_id and steered["incomplete_details"] == {"reason": "steered"}
    partial = steered["output"][0]["content"][0]["text"]
    assert steered["output"][0]["status"] == "incomplete" and partial.startswith("t0 ") and len(partial) < len("t0 " * 30)
    # the cut call never reported its usage: it is estimated, not left out
    assert steered["usage"]["input_tokens"] >= 5 and steered["usage"]["output_tokens"] >= 2
    successor = final(frames)
    assert types.index("response.steer.accepted") < types.index("response.incomplete") < types.index("response.completed")
    assert successor["previous_response_id"] == steered_id and successor["instructions"] == "Count." and successor["status"] == "completed"
    # the successor's model saw the steered turn's partial answer, then the steering input
    last = fake_chat.last()
    assert user_turns(last) == ["Count to thirty.", "Stop counting, say hello."]
    assert last["messages"][0] == {"role": "system", "content": "Count."}
    assert client.responses.retrieve(steered_id).incomplete_details.reason == "steered"


def test_steering_waits_for_the_clients_tool_output(client, fake_chat):
    tools = [{"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]
    with Socket(client) as socket:
        socket.connection.response.create(model="mock-tool-slow", input="Weather in Oslo?", tools=tools, stream_id="agent")
        frames = socket.until(lambda frame: frame["type"] == "response.function_call_arguments.delta")
        response_id = frames[0]["response"]["id"]
        socket.connection.response.steer(previous_response_id=response_id, input="And in Paris?")
        frames = socket.until(lambda frame: frame["type"] == "response.steer.pending")
        types = [frame["type"] for frame in frames]
        assert "response.steer.accepted" in types and types.index("response.completed") < types.index("response.steer.pending")
        pending = frames[-1]
        assert pending["reason"] == "waiting_for_required_input"
        assert pending["required_input"] == [{"type": "function_call_output", "call_id": "call_slow", "name": "get_weather"}]
        output = {"type": "function_call_output", "call_id": "call_slow", "output": '{"temp_c": 18}'}
        frames = socket.turn(model="mock-text", input=[output], previous_response_id=response_id, stream_id="agent")
        assert final(frames)["status"] == "completed"
    sent = fake_chat.last()["messages"]
    assert [message["role"] for message in sent] == ["user", "assistant", "user", "tool"]  # the queued input goes first
    assert sent[2]["content"] == "And in Paris?"


def test_steering_that_cannot_apply_fails(client):
    with Socket(client) as socket:
        socket.connection.response.steer(previous_response_id="resp_unknown", input="Hi")
        failed = socket.recv()
        assert failed["type"] == "response.steer.failed" and failed["error"]["code"] == "response_not_found"
        assert failed["steer"] == {"input": "Hi", "previous_response_id": "resp_unknown"}
        done = final(socket.turn(model="mock-text", input="Hi"))
        socket.connection.response.steer(previous_response_id=done["id"], input="Too late")
        assert socket.recv()["error"]["code"] == "response_already_completed"
        socket.connection.response.steer(previous_response_id=done["id"], input=[])
        failed = socket.recv()
        assert failed["error"]["code"] == "invalid_input" and failed["steer"]["input"] == []


def test_a_response_on_a_conversation_cannot_be_steered(client):
    conversation = client.conversations.create()
    with Socket(client) as socket:
        socket.connection.response.create(model="mock-paced", input="Count.", conversation=conversation.id)
        response_id = socket.until(lambda frame: frame["type"] == "response.output_text.delta")[0]["response"]["id"]
        socket.connection.response.steer(previous_response_id=response_id, input="Stop.")
        failed = socket.until(lambda frame: frame["type"] == "response.steer.failed")[-1]
        assert failed["error"]["code"] == "steering_not_supported"
        assert final(socket.until(lambda frame: frame["type"] == "response.completed"))["conversation"] == {"id": conversation.id}


def test_errors_answer_the_request_and_keep_the_socket(client):
    with Socket(client) as socket:
        socket.connection.send_raw("{not json")
        error = socket.recv()
        assert error["type"] == "error" and error["status"] == 400 and error["error"]["code"] == "invalid_json"
        error = socket.turn(model="no-such-model", input="Hi", stream_id="lane-1")[-1]
        assert error["status"] == 404 and error["error"]["code"] == "model_not_found" and error["stream_id"] == "lane-1"
        error = socket.turn(model="mock-text", input="Hi", background=True)[-1]
        assert error["status"] == 400 and error["error"]["param"] == "background"
        error = socket.turn(model="mock-text", input="Hi", previous_response_id="resp_nothing")[-1]
        assert error["status"] == 404 and error["error"]["code"] == "previous_response_not_found"
        socket.connection.send({"type": "response.create", "model": "mock-text", "input": "Hi", "stream_id": "bad lane!"})
        assert socket.recv()["error"]["param"] == "stream_id"
        socket.connection.send({"type": "session.update"})
        assert socket.recv()["error"]["param"] == "type"
        frames = socket.turn(model="mock-midstream-error", input="Hi")  # an upstream fault mid-stream: response.failed
        assert [frame["type"] for frame in frames][-2:] == ["error", "response.failed"]
        assert text_of(socket.turn(model="mock-text", input="Still there?")) == HELLO


def test_a_reconnect_forgets_store_free_responses(client):
    with Socket(client) as socket:
        first = final(socket.turn(model="mock-text", input="Hi", store=False))
        stored = final(socket.turn(model="mock-text", input="Hi"))
    with Socket(client) as socket:
        error = socket.turn(model="mock-text", input="Again", store=False, previous_response_id=first["id"])[-1]
        assert error["error"]["code"] == "previous_response_not_found"
        assert final(socket.turn(model="mock-text", input="Again", previous_response_id=stored["id"]))["status"] == "completed"


def test_a_failed_continuation_forgets_what_it_continued(client):
    with Socket(client) as socket:
        first = final(socket.turn(model="mock-text", input="Hi", store=False))
        assert socket.turn(model="mock-error-500", input="Go on", store=False, previous_response_id=first["id"])[-1]["status"] == 502
        second = final(socket.turn(model="mock-text", input="Hi", store=False))
        assert final(socket.turn(model="mock-midstream-error", input="Go on", store=False, previous_response_id=second["id"]))["status"] == "failed"
        error = socket.turn(model="mock-text", input="Go on", store=False, previous_response_id=second["id"])[-1]
        assert error["error"]["code"] == "previous_response_not_found"
        error = socket.turn(model="mock-text", input="Go on", store=False, previous_response_id=first["id"])[-1]
        assert error["error"]["code"] == "previous_response_not_found"


def test_a_client_that_leaves_stops_the_upstream(client, fake_chat):
    before = fake_chat.disconnects
    with Socket(client) as socket:
        socket.connection.response.create(model="mock-slow", input="Hi")
        response_id = socket.until(lambda frame: frame["type"] == "response.output_text.delta")[0]["response"]["id"]
    assert wait_until(lambda: fake_chat.disconnects > before)
    assert wait_until(lambda: client.responses.retrieve(response_id).status == "cancelled")


def test_a_slow_reader_holds_back_its_upstream(gateway, fake_chat):
    """The gateway does not queue frames without bound for a client that stops reading: once
    the buffers between them are full, it stops reading the upstream too; and nothing is lost."""

    async def main() -> int:
        async with aiohttp.ClientSession() as session, session.ws_connect(gateway.url.replace("http", "ws") + "/v1/responses", max_msg_size=0) as ws:
            await ws.send_json({"type": "response.create", "model": "mock-flood", "input": "Go", "store": False})
            await asyncio.sleep(2)  # reading nothing
            stalled = fake_chat.flooded
            await asyncio.sleep(1)
            assert 0 < fake_chat.flooded == stalled < FLOOD_CHUNKS
            received = 0
            async for message in ws:
                frame = json.loads(message.data)
                received += len(frame["delta"]) if frame["type"] == "response.output_text.delta" else 0
                if frame["type"] in ("response.completed", "response.failed", "error"):
                    assert frame["type"] == "response.completed"
                    return received
        return -1

    assert asyncio.run(main()) == FLOOD_CHUNKS * 4096


def test_a_deleted_response_is_forgotten_by_open_sockets(client):
    with Socket(client) as socket:
        first = final(socket.turn(model="mock-text", input="Hi"))
        client.responses.delete(first["id"])
        error = socket.turn(model="mock-text", input="Go on", previous_response_id=first["id"])[-1]
        assert error["error"]["code"] == "previous_response_not_found"


@pytest.fixture(scope="module")
def limited(fake_chat, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("limited")
    config = {
        "models": chat_models(fake_chat),
        "database_url": f"sqlite:///{workdir}/r.db",
        "master_key": "sk-master-key-for-sockets",
        "websocket": {"max_streams": 2, "max_queued": 1, "max_duration": 6, "max_frame_bytes": 65536, "heartbeat": 1},
    }
    gw = Gateway(config, workdir).start()
    yield gw
    gw.stop()


def test_limits(limited):
    client = sdk(limited, "sk-master-key-for-sockets")
    with Socket(client) as socket:
        socket.connection.response.create(model="mock-paced", input="a", stream_id="a")
        socket.connection.response.create(model="mock-paced", input="b", stream_id="b")
        socket.connection.response.create(model="mock-paced", input="c", stream_id="c")
        error = socket.until(lambda frame: frame["type"] == "error")[-1]
        assert error["error"]["code"] == "websocket_stream_limit_reached" and error["stream_id"] == "c"
        socket.until(lambda frame: frame["type"] == "response.completed", 2)
        socket.connection.response.create(model="mock-paced", input="a", stream_id="a")
        socket.until(lambda frame: frame["type"] == "response.created")  # it runs: the lane's queue is empty
        for _ in range(2):  # one waits, the next is refused
            socket.connection.response.create(model="mock-paced", input="a", stream_id="a")
        error = socket.until(lambda frame: frame["type"] == "error")[-1]
        assert error["error"]["code"] == "websocket_stream_limit_reached" and error["stream_id"] == "a"
        socket.until(lambda frame: frame["type"] == "response.completed", 2)
        # the connection's time limit (6 s here): an error frame, then the server closes
        error = socket.until(lambda frame: frame["type"] == "error")[-1]
        assert error["error"]["code"] == "websocket_connection_limit_reached"
        with pytest.raises(websockets.ConnectionClosed):
            socket.recv()


def test_oversized_frames_close_the_socket(limited):
    client = sdk(limited, "sk-master-key-for-sockets")
    with Socket(client) as socket:
        socket.connection.response.create(model="mock-text", input="x" * 70000)
        with pytest.raises(websockets.ConnectionClosed):
            socket.recv()


def test_a_peer_that_never_answers_pings_is_closed(limited):
    async def main() -> list[aiohttp.WSMsgType]:
        headers = {"Authorization": "Bearer sk-master-key-for-sockets"}
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(limited.url.replace("http", "ws") + "/v1/responses", headers=headers, autoping=False) as ws,
        ):
            seen = []
            while not seen or seen[-1] not in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                seen.append((await ws.receive(timeout=10)).type)
            return seen

    seen = asyncio.run(main())  # pings every second (heartbeat: 1), unanswered: the gateway hangs up
    assert seen[0] == aiohttp.WSMsgType.PING and seen[-1] in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


def test_the_upgrade_is_authenticated(limited):
    with pytest.raises(websockets.InvalidStatus) as refused:
        with Socket(sdk(limited, "sk-wrong")):
            pass
    assert refused.value.response.status_code == 401
    with validating_client() as http:  # a plain GET is told to upgrade, in the envelope
        answer = http.get(limited.url + "/v1/responses", headers={"Authorization": "Bearer sk-master-key-for-sockets"})
    assert answer.status_code == 426 and answer.json()["error"]["code"] == "upgrade_required"


@pytest.mark.parametrize("model", models("text"))
def test_every_provider_chains_store_free(providers_gateway, fake_chat, fake_anthropic, fake_gemini, fake_responses, model):
    with Socket(sdk(providers_gateway)) as socket:
        first = final(socket.turn(model=model, input="Hi", store=False, stream_id="p"))
        second = socket.turn(model=model, input="Again", store=False, previous_response_id=first["id"], stream_id="p")
        assert final(second)["status"] == "completed" and text_of(second)
    upstream = {"mock": fake_chat, "claude": fake_anthropic, "gemini": fake_gemini, "oai": fake_responses}[model.split("-")[0]]
    assert "Again" in str(upstream.last()) and "Hi" in str(upstream.last())


def test_async_client(gateway):
    async def main() -> None:
        client = AsyncOpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0)
        socket = await AsyncSocket.open(client)
        await socket.connection.response.create(model="mock-text", input="Hi", store=False)
        first = final(await socket.until(ends_turn))
        await socket.connection.response.create(model="mock-text", input="Again", store=False, previous_response_id=first["id"])
        assert text_of(await socket.until(ends_turn)) == HELLO
        await socket.connection.close()

    asyncio.run(main())


def test_200_sockets_5_turns_each(gateway):
    """Every frame arrives, in order, on each of 200 sockets at once running 5 chained turns.
    Every frame's numbering and lane are checked, and the SDK parses each; one socket in ten
    also validates every frame against the specs (all of them would take the test's client,
    not the gateway, most of a minute)."""

    async def agent(client: AsyncOpenAI, n: int) -> list[str]:
        socket = await AsyncSocket.open(client, validate=n % 10 == 0)
        previous, texts = None, []
        for turn in range(5):
            await socket.connection.response.create(
                model="mock-text", input=f"{n}/{turn}", store=turn % 2 == 0, previous_response_id=previous, stream_id=f"s{n}"
            )
            frames = await socket.until(ends_turn)
            assert frames[-1]["type"] == "response.completed", frames[-1]
            assert all(frame["stream_id"] == f"s{n}" for frame in frames)
            previous = final(frames)["id"]
            texts.append(text_of(frames))
        await socket.connection.close()
        return texts

    async def main() -> list[list[str]]:
        client = AsyncOpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0, timeout=60)
        return await asyncio.gather(*(agent(client, n) for n in range(200)))

    started = time.monotonic()
    results = asyncio.run(main())
    assert results == [[HELLO] * 5] * 200
    print(f"200 sockets x 5 turns in {time.monotonic() - started:.1f} s")


def _frame(payload: bytes, mask: bytes | None) -> bytes:
    """One text frame, masked with `mask` (as RFC 6455 requires of clients) or not."""
    head = bytes([0x81, (0x80 if mask else 0) | 126]) + len(payload).to_bytes(2, "big")
    if mask is None:
        return head + payload
    return head + mask + bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))


def _socket_exchange(gateway, frame: bytes) -> bytes:
    """Open a WebSocket by hand, send `frame` in two reads' worth of pieces, and read what comes
    back until the gateway closes or a completed response arrives."""
    import socket as sockets

    with sockets.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        sock.sendall(
            b"GET /v1/responses HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 101"), answer
        sock.sendall(frame[:3])  # a header split across reads
        time.sleep(0.05)
        sock.sendall(frame[3:])
        received = answer.partition(b"\r\n\r\n")[2]
        while b"response.completed" not in received and (chunk := sock.recv(65536)):
            received += chunk
        return received


def test_a_client_frame_must_be_masked(gateway):
    request = json.dumps({"type": "response.create", "model": "mock-text", "input": "hi"}).encode()
    assert b"response.completed" in _socket_exchange(gateway, _frame(request, b"\x01\x02\x03\x04"))
    assert b"response." not in _socket_exchange(gateway, _frame(request, None))  # closed, nothing run
