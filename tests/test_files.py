"""The Files API, driven by the official SDK (every JSON answer validated against OpenAI's spec),
and `file_id` in a response's input reaching each provider's fake upstream as the stored bytes."""

from __future__ import annotations

import base64
import time

import httpx2 as httpx
import openai
import pytest
from conftest import chat_models, sdk
from gateway import Gateway
from helpers import assert_envelope, create

NOTES = b"The launch code is PELICAN-42.\n"
# a 1x1 transparent PNG
PIXEL = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=")
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture(scope="module")
def small_files(fake_chat, tmp_path_factory):
    """A gateway that keeps files of at most 1 KiB."""
    workdir = tmp_path_factory.mktemp("files")
    gw = Gateway({"models": chat_models(fake_chat), "database_url": f"sqlite:///{workdir}/r.db", "max_file_bytes": 1024}, workdir).start()
    yield gw
    gw.stop()


def test_upload_list_read_and_delete_a_file(multi):
    made = multi.files.create(file=("notes.txt", NOTES, "text/plain"), purpose="user_data")
    assert made.id.startswith("file_") and made.bytes == len(NOTES) and made.filename == "notes.txt" and made.purpose == "user_data"
    assert made.expires_at is None  # a user_data file stays until deleted
    assert multi.files.retrieve(made.id).model_dump() == made.model_dump()
    assert multi.files.content(made.id).content == NOTES
    other = multi.files.create(file=("pixel.png", PIXEL), purpose="vision")  # no declared type: the name says image/png
    listed = [file.id for file in multi.files.list()]
    assert listed.index(other.id) < listed.index(made.id)  # newest first
    vision = [file.id for file in multi.files.list(purpose="vision")]
    assert other.id in vision and made.id not in vision
    deleted = multi.files.delete(made.id)
    assert deleted.id == made.id and deleted.deleted
    with pytest.raises(openai.NotFoundError):
        multi.files.retrieve(made.id)
    with pytest.raises(openai.NotFoundError):
        multi.files.delete(made.id)


def test_listing_pages_through_every_file(multi):
    made = [multi.files.create(file=(f"page-{i}.txt", b"x"), purpose="assistants").id for i in range(5)]
    first = multi.files.list(purpose="assistants", limit=2, order="asc")
    assert first.has_more and len(first.data) == 2
    every = [file.id for file in multi.files.list(purpose="assistants", limit=2, order="asc")]  # the SDK follows `after`
    assert [file_id for file_id in every if file_id in made] == made


def test_expires_after_and_batch_files_expire(multi):
    now = int(time.time())
    soon = multi.files.create(file=("a.txt", b"a"), purpose="user_data", expires_after={"anchor": "created_at", "seconds": 3600})
    assert now + 3600 <= soon.expires_at <= now + 3602
    batch = multi.files.create(file=("b.jsonl", b"{}\n"), purpose="batch")
    assert batch.expires_at is not None and batch.expires_at - batch.created_at == 30 * 24 * 3600
    with pytest.raises(openai.BadRequestError) as refused:
        multi.files.create(file=("a.txt", b"a"), purpose="user_data", expires_after={"anchor": "created_at", "seconds": 60})
    assert refused.value.body["param"] == "expires_after.seconds"


def test_bad_uploads_are_refused_in_the_envelope(small_files):
    client = sdk(small_files)
    with pytest.raises(openai.APIStatusError) as too_large:
        client.files.create(file=("big.txt", b"x" * 2048), purpose="user_data")
    assert too_large.value.status_code == 413 and too_large.value.body["code"] == "file_too_large" and too_large.value.body["param"] == "file"
    with pytest.raises(openai.BadRequestError) as purpose:
        client.files.create(file=("a.txt", b"a"), purpose="homework")  # type: ignore[arg-type]
    assert purpose.value.body["param"] == "purpose"
    for body, headers in [({"purpose": "user_data"}, {}), (None, {"Content-Type": "application/json"})]:
        answer = httpx.post(small_files.url + "/v1/files", data=body, headers=headers, content=b"{}" if body is None else None)
        assert answer.status_code == 400, answer.text
        assert_envelope(answer.json())
    assert httpx.get(small_files.url + "/v1/files/file_" + "0" * 48).status_code == 404
    assert httpx.get(small_files.url + "/v1/files/%00").status_code == 404


def test_a_file_id_reaches_every_provider_as_its_bytes(multi, fake_chat, fake_anthropic, fake_gemini, fake_responses):
    notes = multi.files.create(file=("notes.txt", NOTES, "text/plain"), purpose="user_data").id
    pdf = multi.files.create(file=("paper.pdf", PDF, "application/pdf"), purpose="user_data").id
    image = multi.files.create(file=("pixel.png", PIXEL, "image/png"), purpose="vision").id
    content = [
        {"type": "input_text", "text": "Read these."},
        {"type": "input_file", "file_id": notes},
        {"type": "input_file", "file_id": pdf},
        {"type": "input_image", "file_id": image},
    ]
    ask = [{"role": "user", "content": content}]
    pdf_data, png_data = base64.b64encode(PDF).decode(), base64.b64encode(PIXEL).decode()

    stored = create(multi, model="mock-text", input=ask)
    parts = fake_chat.last()["messages"][-1]["content"]
    assert parts[1] == {"type": "file", "file": {"file_data": "data:text/plain;base64," + base64.b64encode(NOTES).decode(), "filename": "notes.txt"}}
    assert parts[2]["file"]["file_data"] == "data:application/pdf;base64," + pdf_data
    assert parts[3]["image_url"]["url"] == "data:image/png;base64," + png_data
    kept = multi.responses.input_items.list(stored["id"]).data[0].content
    assert [getattr(part, "file_id", None) for part in kept] == [None, notes, pdf, image]  # the response keeps the ids the client sent

    create(multi, model="claude-text", input=ask)
    blocks = fake_anthropic.last()["messages"][-1]["content"]
    assert blocks[1] == {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": NOTES.decode()}}
    assert blocks[2] == {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": pdf_data}}
    assert blocks[3] == {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png_data}}

    create(multi, model="gemini-text", input=ask)
    inline = [part["inlineData"] for part in fake_gemini.last()["contents"][-1]["parts"] if "inlineData" in part]
    assert inline == [
        {"mimeType": "text/plain", "data": base64.b64encode(NOTES).decode()},
        {"mimeType": "application/pdf", "data": pdf_data},
        {"mimeType": "image/png", "data": png_data},
    ]

    create(multi, model="oai-text", input=ask)
    sent = fake_responses.last()["input"][-1]["content"]
    assert sent[1]["file_data"].endswith(base64.b64encode(NOTES).decode()) and "file_id" not in sent[1]  # our ids are not OpenAI's

    create(multi, model="mock-text", input="And again?", previous_response_id=stored["id"])  # a chain reads the bytes again
    assert fake_chat.last()["messages"][0]["content"][3]["image_url"]["url"] == "data:image/png;base64," + png_data


def test_unknown_and_unfit_file_ids_are_refused(multi):
    unknown = "file_" + "0" * 48
    with pytest.raises(openai.NotFoundError) as missing:
        multi.responses.create(model="mock-text", input=[{"role": "user", "content": [{"type": "input_file", "file_id": unknown}]}])
    assert missing.value.body["code"] == "file_not_found" and missing.value.body["param"] == "input"
    notes = multi.files.create(file=("notes.txt", NOTES, "text/plain"), purpose="user_data").id
    with pytest.raises(openai.BadRequestError) as not_an_image:
        multi.responses.create(model="mock-text", input=[{"role": "user", "content": [{"type": "input_image", "file_id": notes}]}])
    assert not_an_image.value.body["code"] == "invalid_image"
