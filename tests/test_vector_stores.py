"""Vector stores and `file_search`, driven by the official SDK over real HTTP (every JSON body and
stream event validated against OpenAI's spec): stores, their files and batches ingested in the
background, the search endpoint with its filters, and the `file_search` tool run by the gateway
on every provider's fake upstream."""

from __future__ import annotations

import io
import os
import signal
import time

import openai
import psycopg
import pytest
from conftest import chat_models, sdk
from gateway import Gateway
from helpers import create, stream, types, wait_until

LAUNCH = b"# Launch\nThe launch code is PELICAN-42. Keep it secret.\n"
LUNCH = b"<html><body><h1>Lunch</h1><p>Lunch is served at noon in the blue room.</p></body></html>"
GARDEN = b"Tomatoes need sun, water and patience. The garden opens in May."


@pytest.fixture(scope="module")
def library(multi):
    """A store of three files with attributes, ingested."""
    store = multi.vector_stores.create(name="library", metadata={"team": "ops"})
    uploads = {
        name: multi.files.create(file=(name, content), purpose="assistants").id
        for name, content in [("launch.md", LAUNCH), ("lunch.html", LUNCH), ("garden.txt", GARDEN)]
    }
    batch = multi.vector_stores.file_batches.create_and_poll(
        vector_store_id=store.id,
        files=[
            {"file_id": uploads["launch.md"], "attributes": {"team": "ops", "year": 2026}},
            {"file_id": uploads["lunch.html"], "attributes": {"team": "kitchen", "year": 2025}},
            {"file_id": uploads["garden.txt"], "attributes": {"team": "garden", "year": 2024}},
        ],
    )
    assert batch.status == "completed" and batch.file_counts.completed == 3, batch
    return store.id, uploads


def test_a_store_its_files_and_batches(multi):
    store = multi.vector_stores.create(name="notes", expires_after={"anchor": "last_active_at", "days": 7})
    assert store.status == "completed" and store.file_counts.total == 0 and store.expires_at == store.last_active_at + 7 * 86400
    added = multi.vector_stores.files.upload_and_poll(vector_store_id=store.id, file=("launch.md", io.BytesIO(LAUNCH)))
    assert added.status == "completed" and added.usage_bytes > 0 and added.last_error is None
    assert added.chunking_strategy.type == "static" and added.chunking_strategy.static.max_chunk_size_tokens == 800
    batch = multi.vector_stores.file_batches.upload_and_poll(
        vector_store_id=store.id, files=[("a.txt", io.BytesIO(b"apples")), ("b.txt", io.BytesIO(b"pears"))]
    )
    assert batch.status == "completed" and batch.file_counts.completed == 2
    assert len(list(multi.vector_stores.file_batches.list_files(batch.id, vector_store_id=store.id))) == 2
    got = multi.vector_stores.retrieve(store.id)
    assert got.file_counts.completed == 3 and got.usage_bytes > 0 and got.name == "notes"
    assert store.id in [listed.id for listed in multi.vector_stores.list()]
    assert multi.vector_stores.update(store.id, name="renamed", metadata={"k": "v"}).name == "renamed"
    changed = multi.vector_stores.files.update(added.id, vector_store_id=store.id, attributes={"lang": "en"})
    assert changed.attributes == {"lang": "en"}
    assert multi.vector_stores.files.delete(added.id, vector_store_id=store.id).deleted
    assert [f.id for f in multi.vector_stores.files.list(store.id)] == sorted([f.id for f in multi.vector_stores.files.list(store.id)], reverse=True)
    assert len(list(multi.vector_stores.files.list(store.id))) == 2
    assert multi.vector_stores.delete(store.id).deleted
    with pytest.raises(openai.NotFoundError):
        multi.vector_stores.retrieve(store.id)


def test_search_ranks_filters_and_thresholds(multi, library):
    store_id, uploads = library
    found = multi.vector_stores.search(store_id, query="what is the launch code?")
    assert found.data[0].file_id == uploads["launch.md"] and "PELICAN-42" in found.data[0].content[0].text
    assert found.data[0].filename == "launch.md" and 0 < found.data[0].score <= 1 and found.data[0].attributes == {"team": "ops", "year": 2026}
    several = multi.vector_stores.search(store_id, query=["lunch room", "garden tomatoes"], max_num_results=5)
    assert {r.file_id for r in several.data[:2]} == {uploads["lunch.html"], uploads["garden.txt"]} and several.search_query == ["lunch room", "garden tomatoes"]
    html = next(r for r in several.data if r.file_id == uploads["lunch.html"])
    assert "<p>" not in html.content[0].text and "noon" in html.content[0].text  # HTML is read as its text
    kitchen = multi.vector_stores.search(store_id, query="lunch launch garden", filters={"type": "eq", "key": "team", "value": "kitchen"})
    assert [r.file_id for r in kitchen.data] == [uploads["lunch.html"]]
    recent = multi.vector_stores.search(
        store_id,
        query="lunch launch garden",
        filters={"type": "and", "filters": [{"type": "gte", "key": "year", "value": 2025}, {"type": "nin", "key": "team", "value": ["kitchen"]}]},
    )
    assert [r.file_id for r in recent.data] == [uploads["launch.md"]]
    scores = [r.score for r in multi.vector_stores.search(store_id, query="lunch launch garden").data]
    assert len(scores) == 3 and scores == sorted(scores, reverse=True) and scores[0] > scores[-1]
    kept = multi.vector_stores.search(store_id, query="lunch launch garden", ranking_options={"score_threshold": scores[-1] + 1e-6}).data
    assert [r.score for r in kept] == scores[:-1]
    unmatched = multi.vector_stores.search(store_id, query="zebra").data  # no word in common: ranked by embeddings alone
    assert unmatched and all(r.score <= 0.5 for r in unmatched)


def test_bad_requests_are_refused_in_the_envelope(multi, library):
    store_id, _ = library
    with pytest.raises(openai.NotFoundError):
        multi.vector_stores.search("vs_" + "0" * 48, query="x")
    with pytest.raises(openai.BadRequestError) as bad_filter:
        multi.vector_stores.search(store_id, query="x", filters={"type": "near", "key": "team", "value": "ops"})
    assert bad_filter.value.body["param"] == "filters"
    with pytest.raises(openai.BadRequestError) as too_many:
        multi.vector_stores.search(store_id, query="x", max_num_results=51)
    assert too_many.value.body["param"] == "max_num_results"
    with pytest.raises(openai.NotFoundError) as unknown_file:
        multi.vector_stores.files.create(vector_store_id=store_id, file_id="file_" + "0" * 48)
    assert unknown_file.value.body["param"] == "file_id"
    with pytest.raises(openai.BadRequestError) as chunking:
        multi.vector_stores.create(chunking_strategy={"type": "static", "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 80}})
    assert chunking.value.body["param"] == "chunking_strategy.static.chunk_overlap_tokens"


def test_a_file_that_cannot_be_read_fails_alone(multi):
    store = multi.vector_stores.create(name="mixed")
    batch = multi.vector_stores.file_batches.upload_and_poll(
        vector_store_id=store.id,
        files=[("broken.pdf", io.BytesIO(b"%PDF-1.7 this is not a pdf")), ("fine.txt", io.BytesIO(b"fine text")), ("blob.bin", io.BytesIO(bytes(range(256))))],
    )
    assert batch.file_counts.completed == 1 and batch.file_counts.failed == 2
    failed = {f.last_error.code for f in multi.vector_stores.files.list(store.id, filter="failed")}
    assert failed == {"invalid_file", "unsupported_file"}


@pytest.mark.parametrize("model", ["mock-file-search", "claude-file-search", "gemini-file-search", "oai-file-search"])
def test_file_search_runs_on_every_provider(multi, library, model):
    store_id, uploads = library
    tools = [{"type": "file_search", "vector_store_ids": [store_id], "max_num_results": 3}]
    events = stream(multi, model=model, input="What is the launch code?", tools=tools, include=["file_search_call.results"])
    kinds = types(events)
    assert (
        kinds.index("response.file_search_call.in_progress")
        < kinds.index("response.file_search_call.searching")
        < kinds.index("response.file_search_call.completed")
    )
    final = events[-1]["response"]
    call = next(item for item in final["output"] if item["type"] == "file_search_call")
    assert call["status"] == "completed" and call["queries"] == ["launch code", "pelican"]
    assert call["results"][0]["file_id"] == uploads["launch.md"] and "PELICAN-42" in call["results"][0]["text"]
    message = final["output"][-1]
    assert "PELICAN-42" in message["content"][0]["text"]  # the fake answers with what the tool told it
    cited = [a for a in message["content"][0]["annotations"] if a["type"] == "file_citation"]
    assert uploads["launch.md"] in {a["file_id"] for a in cited} and all(a["index"] == len(message["content"][0]["text"]) for a in cited)
    stored = multi.responses.retrieve(final["id"]).model_dump(exclude_unset=True)
    assert [item["type"] for item in stored["output"]] == [item["type"] for item in final["output"]]


def test_file_search_without_results_and_refusals(multi, library):
    store_id, _ = library
    body = create(multi, model="mock-file-search", input="What is the launch code?", tools=[{"type": "file_search", "vector_store_ids": [store_id]}])
    call = next(item for item in body["output"] if item["type"] == "file_search_call")
    assert "results" not in call or call["results"] is None  # only under include
    with pytest.raises(openai.NotFoundError):
        multi.responses.create(model="mock-file-search", input="x", tools=[{"type": "file_search", "vector_store_ids": ["vs_" + "0" * 48]}])
    with pytest.raises(openai.BadRequestError) as refused:
        multi.responses.create(model="mock-file-search", input="x", tools=[{"type": "file_search", "vector_store_ids": []}])
    assert refused.value.body["param"] == "tools[0].vector_store_ids"


def test_ingestion_on_one_instance_and_search_on_another(fake_chat, fresh_postgres_url, tmp_path):
    config = {"models": chat_models(fake_chat), "database_url": fresh_postgres_url}
    first, second = Gateway(config, tmp_path).start(), Gateway(config, tmp_path).start()
    try:
        one, other = sdk(first), sdk(second)
        store = one.vector_stores.create(name="shared")
        one.vector_stores.files.upload_and_poll(vector_store_id=store.id, file=("launch.md", io.BytesIO(LAUNCH)))
        found = other.vector_stores.search(store.id, query="launch code")
        assert "PELICAN-42" in found.data[0].content[0].text
        body = create(other, model="mock-file-search", input="Code?", tools=[{"type": "file_search", "vector_store_ids": [store.id]}])
        assert "PELICAN-42" in body["output"][-1]["content"][0]["text"]
    finally:
        first.stop()
        second.stop()


@pytest.mark.parametrize("provider", ["openai", "gemini"])
def test_an_embeddings_upstream_embeds_chunks_and_queries(fake_chat, fake_gemini, tmp_path, provider):
    fake, base_url = (fake_chat, fake_chat.url + "/v1") if provider == "openai" else (fake_gemini, fake_gemini.url + "/v1beta")
    config = {
        "models": chat_models(fake_chat),
        "database_url": f"sqlite:///{tmp_path}/r.db",
        "embeddings": {"provider": provider, "base_url": base_url, "model": "embed-small", "api_key": "sk-embeddings-secret"},
    }
    gw = Gateway(config, tmp_path).start()
    try:
        client = sdk(gw)
        store = client.vector_stores.create(name="upstream")
        client.vector_stores.file_batches.upload_and_poll(
            vector_store_id=store.id, files=[("launch.md", io.BytesIO(LAUNCH)), ("garden.txt", io.BytesIO(GARDEN))]
        )
        assert any("PELICAN-42" in text for body in fake.embedded for text in _embedded(body, provider))  # the chunks went upstream
        assert all(body["key"] == ("Bearer " if provider == "openai" else "") + "sk-embeddings-secret" for body in fake.embedded)
        found = client.vector_stores.search(store.id, query="pelican")
        assert "PELICAN-42" in found.data[0].content[0].text and found.data[0].score == 1.0  # first by both rankers
        assert _embedded(fake.embedded[-1], provider) == ["pelican"]  # and so did the query
    finally:
        gw.stop()
    assert "sk-embeddings-secret" not in gw.log.read_text()


def _embedded(body: dict, provider: str) -> list[str]:
    """The texts an embeddings request to a fake asked for."""
    if provider == "openai":
        return body["input"]
    return [part["text"] for each in body["requests"] for part in each["content"]["parts"]]


def test_an_ingestion_cut_by_kill_9_is_finished_by_another_instance(fake_chat, fresh_postgres_url, tmp_path):
    config = {"models": chat_models(fake_chat), "database_url": fresh_postgres_url, "instance_ttl": 2}
    doomed = Gateway(config, tmp_path).start()
    client = sdk(doomed)
    words = " ".join(f"word{i % 5000}" for i in range(1_500_000))  # ≈ 10 MB of text: seconds of chunking and embedding
    big = client.files.create(file=("big.txt", (words + "\nThe launch code is PELICAN-42.\n").encode()), purpose="assistants").id
    store = client.vector_stores.create(name="survivor").id
    client.vector_stores.files.create(vector_store_id=store, file_id=big)
    with psycopg.connect(fresh_postgres_url, autocommit=True) as db:
        owner = None
        for _ in range(200):  # until the doomed instance has claimed it
            owner, status = db.execute("SELECT owner, status FROM vector_store_files WHERE file_id = %s", (big,)).fetchone()
            if owner is not None:
                break
            time.sleep(0.01)
        assert owner is not None and status == "in_progress"
        os.kill(doomed.process.pid, signal.SIGKILL)
        doomed.process.wait(10)
        assert db.execute("SELECT owner, status FROM vector_store_files WHERE file_id = %s", (big,)).fetchone() == (owner, "in_progress")  # cut mid-way
    survivor = Gateway(config, tmp_path).start()
    try:
        other = sdk(survivor)
        assert wait_until(lambda: other.vector_stores.files.retrieve(big, vector_store_id=store).status != "in_progress", 60)
        ended = other.vector_stores.files.retrieve(big, vector_store_id=store)
        assert ended.status == "completed", ended.last_error
        assert "PELICAN-42" in other.vector_stores.search(store, query="PELICAN-42 launch code").data[0].content[0].text
    finally:
        survivor.stop()
