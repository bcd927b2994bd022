"""Projects and API keys: the organization API (validated against OpenAI's organization
objects), keys that reach only their project's stored objects (another project's id is a 404
exactly like an unknown one, on every endpoint that takes an id), model allowlists, revocation
seen by every instance, and the `rejoinder keys` command. Real PostgreSQL, real processes."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx2 as httpx
import openai
import pytest
from conftest import chat_models, sdk
from gateway import Gateway
from helpers import create, wait_until
from spec import check_error, validating_client

MASTER = "sk-master-0123456789abcdef"


class Admin:
    """The organization API under the master key, every answer validated against the spec."""

    def __init__(self, gw: Gateway) -> None:
        self.url = gw.url + "/v1/organization"
        self.http = validating_client()
        self.headers = {"Authorization": f"Bearer {MASTER}"}

    def call(self, method: str, path: str, body: dict | None = None, status: int = 200) -> dict:
        answer = self.http.request(method, self.url + path, json=body, headers=self.headers)
        assert answer.status_code == status, answer.text
        return answer.json()

    def project(self, name: str, **limits) -> str:
        return self.call("POST", "/projects", {"name": name, **limits})["id"]

    def key(self, project: str, name: str = "k", **limits) -> dict:
        return self.call("POST", f"/projects/{project}/api_keys", {"name": name, **limits})


@pytest.fixture(scope="module")
def keyed(fake_chat, postgres_url, tmp_path_factory):
    """Two instances on one PostgreSQL, with a master key."""
    workdir = tmp_path_factory.mktemp("projects")
    config = {"models": chat_models(fake_chat), "database_url": postgres_url, "master_key": MASTER}
    first = Gateway(config, workdir).start()
    second = Gateway(config, workdir).start()
    yield first, second
    first.stop()
    second.stop()


@pytest.fixture(scope="module")
def admin(keyed):
    return Admin(keyed[0])


def test_projects_and_keys_through_the_organization_api(keyed, admin):
    project = admin.call("POST", "/projects", {"name": "Search", "allowed_models": ["mock-*"], "rpm": 100})
    assert project["object"] == "organization.project" and project["status"] == "active" and project["rpm"] == 100
    assert admin.call("GET", f"/projects/{project['id']}")["name"] == "Search"
    renamed = admin.call("POST", f"/projects/{project['id']}", {"name": "Search team", "rpm": None})
    assert renamed["name"] == "Search team" and "rpm" not in renamed and renamed["allowed_models"] == ["mock-*"]
    created = admin.key(project["id"], "ci", tpm=5000)
    assert created["value"].startswith("sk-rj-") and created["id"].startswith("key_") and created["tpm"] == 5000
    assert created["redacted_value"].startswith(created["value"][:10]) and created["value"] not in created["redacted_value"]
    listed = admin.call("GET", f"/projects/{project['id']}/api_keys")
    assert [key["id"] for key in listed["data"]] == [created["id"]] and "value" not in listed["data"][0]
    assert created["value"] not in json.dumps(listed)
    got = admin.call("GET", f"/projects/{project['id']}/api_keys/{created['id']}")
    assert got["name"] == "ci" and "value" not in got
    assert project["id"] in [p["id"] for p in admin.call("GET", "/projects?limit=100")["data"]]
    # the key works, and an archived project's keys stop working
    assert create(sdk(keyed[0], created["value"]), model="mock-text", input="Hi")["status"] == "completed"
    archived = admin.call("DELETE", f"/projects/{project['id']}")
    assert archived["status"] == "archived" and archived["archived_at"] is not None
    assert project["id"] not in [p["id"] for p in admin.call("GET", "/projects?limit=100")["data"]]
    with pytest.raises(openai.AuthenticationError):
        sdk(keyed[0], created["value"]).responses.create(model="mock-text", input="Hi")
    admin.call("POST", f"/projects/{project['id']}/api_keys", {"name": "late"}, status=400)
    admin.call("DELETE", "/projects/proj_default", status=400)
    admin.call("GET", "/projects/proj_nope", status=404)
    admin.call("POST", "/projects", {"name": "x", "rpm": 0}, status=400)
    admin.call("POST", "/projects", {"name": "x", "allowed_models": ["a*b"]}, status=400)


def test_only_the_master_key_may_use_the_organization_api(keyed, admin):
    key = admin.key(admin.project("Plain"))["value"]
    for path in ("/v1/organization/projects", "/v1/organization/usage", "/metrics"):
        answer = httpx.get(keyed[0].url + path, headers={"Authorization": f"Bearer {key}"})
        assert answer.status_code == 403, path
        check_error(answer.json())
        assert answer.json()["error"]["code"] == "insufficient_permissions"
    bad = httpx.get(keyed[0].url + "/v1/models", headers={"Authorization": "Bearer sk-rj-forged"})
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "invalid_api_key"


def _not_found(call) -> tuple[int, str | None]:
    """The status and code a call fails with."""
    with pytest.raises(openai.APIStatusError) as failed:
        call()
    body = failed.value.response.json()
    check_error(body)
    return failed.value.status_code, body["error"]["code"]


def test_a_key_sees_only_its_projects_objects(keyed, admin):
    """Every endpoint that takes an id answers another project's id exactly as an unknown one."""
    gw = keyed[0]
    our_project = admin.project("Ours")
    ours, theirs = sdk(gw, admin.key(our_project)["value"]), sdk(gw, admin.key(admin.project("Theirs"))["value"])
    stored = create(ours, model="mock-text", input="Hi")
    queued = ours.responses.create(model="mock-paced", input="Count", background=True)
    conversation = ours.conversations.create(items=[{"type": "message", "role": "user", "content": "Hello"}])
    item_id = ours.conversations.items.list(conversation.id).data[0].id
    prompt = httpx.post(gw.url + "/v1/prompts", json={"template": {"instructions": "Be brief."}}, headers={"Authorization": f"Bearer {ours.api_key}"}).json()
    unknown_response, unknown_conversation, unknown_prompt = "resp_" + "0" * 48, "conv_" + "0" * 48, "pmpt_" + "0" * 48

    def both(call, real: str, unknown: str) -> None:
        assert _not_found(lambda: call(real)) == _not_found(lambda: call(unknown)), call

    both(lambda rid: theirs.responses.retrieve(rid), stored["id"], unknown_response)
    both(lambda rid: theirs.responses.input_items.list(rid), stored["id"], unknown_response)
    both(lambda rid: theirs.responses.delete(rid), stored["id"], unknown_response)
    both(lambda rid: theirs.responses.cancel(rid), queued.id, unknown_response)
    both(lambda rid: list(theirs.responses.retrieve(rid, stream=True)), queued.id, unknown_response)
    both(lambda rid: theirs.responses.create(model="mock-text", input="Go on", previous_response_id=rid), stored["id"], unknown_response)
    both(lambda iid: theirs.responses.create(model="mock-text", input=[{"type": "item_reference", "id": iid}]), stored["output"][0]["id"], "msg_nope")
    both(lambda cid: theirs.conversations.retrieve(cid), conversation.id, unknown_conversation)
    both(lambda cid: theirs.conversations.update(cid, metadata={"a": "b"}), conversation.id, unknown_conversation)
    both(lambda cid: theirs.conversations.delete(cid), conversation.id, unknown_conversation)
    both(lambda cid: theirs.conversations.items.list(cid), conversation.id, unknown_conversation)
    both(lambda cid: theirs.conversations.items.create(cid, items=[{"type": "message", "role": "user", "content": "x"}]), conversation.id, unknown_conversation)
    both(lambda cid: theirs.conversations.items.retrieve(item_id, conversation_id=cid), conversation.id, unknown_conversation)
    both(lambda cid: theirs.conversations.items.delete(item_id, conversation_id=cid), conversation.id, unknown_conversation)
    both(lambda cid: theirs.responses.create(model="mock-text", input="x", conversation=cid), conversation.id, unknown_conversation)
    both(lambda pid: theirs.responses.create(model="mock-text", input="x", prompt={"id": pid}), prompt["id"], unknown_prompt)
    file_id, unknown_file = ours.files.create(file=("ours.txt", b"ours"), purpose="user_data").id, "file_" + "0" * 48
    both(lambda fid: theirs.files.retrieve(fid), file_id, unknown_file)
    both(lambda fid: theirs.files.content(fid), file_id, unknown_file)
    both(lambda fid: theirs.files.delete(fid), file_id, unknown_file)
    both(
        lambda fid: theirs.responses.create(model="mock-text", input=[{"role": "user", "content": [{"type": "input_file", "file_id": fid}]}]),
        file_id,
        unknown_file,
    )
    assert file_id not in [file.id for file in theirs.files.list()]
    for method in ("GET", "DELETE"):
        statuses = [
            httpx.request(method, f"{gw.url}/v1/prompts/{pid}", headers={"Authorization": f"Bearer {theirs.api_key}"}).status_code
            for pid in (prompt["id"], unknown_prompt)
        ]
        assert statuses == [404, 404], method
    listed = httpx.get(gw.url + "/v1/prompts", headers={"Authorization": f"Bearer {theirs.api_key}"}).json()
    assert prompt["id"] not in [p["id"] for p in listed["data"]]
    # ids are each project's own: theirs can make a prompt under our prompt's id (nothing shows it is taken), and keeps it apart
    their_headers = {"Authorization": f"Bearer {theirs.api_key}"}
    made = httpx.post(gw.url + "/v1/prompts", json={"id": prompt["id"], "template": {"instructions": "Be long."}}, headers=their_headers)
    assert made.status_code == 200 and made.json()["id"] == prompt["id"]
    assert httpx.delete(f"{gw.url}/v1/prompts/{prompt['id']}", headers=their_headers).status_code == 200
    our_prompt = httpx.get(f"{gw.url}/v1/prompts/{prompt['id']}", headers={"Authorization": f"Bearer {ours.api_key}"}).json()
    assert our_prompt["template"]["instructions"] == "Be brief."  # ours is untouched
    # … and everything is still there for its own project
    assert ours.responses.retrieve(stored["id"]).id == stored["id"]
    assert ours.conversations.items.retrieve(item_id, conversation_id=conversation.id).id == item_id
    assert sdk(keyed[1], ours.api_key).files.content(file_id).content == b"ours"  # uploaded through one instance, read through the other
    assert create(ours, model="mock-text", input="Go on", previous_response_id=stored["id"])["status"] == "completed"
    assert ours.responses.cancel(queued.id).status in ("cancelled", "completed")
    # the master key acts in the default project, or in the one the OpenAI-Project header names
    assert _not_found(lambda: sdk(gw, MASTER).responses.retrieve(stored["id"]))[0] == 404
    as_ours = openai.OpenAI(base_url=gw.url + "/v1", api_key=MASTER, project=our_project, max_retries=0, http_client=validating_client())
    assert as_ours.responses.retrieve(stored["id"]).id == stored["id"]
    with pytest.raises(openai.AuthenticationError):  # a project key cannot name another project
        openai.OpenAI(base_url=gw.url + "/v1", api_key=theirs.api_key, project=our_project, max_retries=0).responses.retrieve(stored["id"])


def test_a_project_key_is_held_to_its_models(keyed, admin):
    project = admin.project("Narrow", allowed_models=["mock-*", "chat"])
    key = admin.key(project, allowed_models=["mock-text", "chat"])["value"]
    client = sdk(keyed[0], key)
    assert sorted(model.id for model in client.models.list()) == ["chat"]  # mock-* is a pattern, not a model a key may name as such
    assert create(client, model="mock-text", input="Hi")["status"] == "completed"
    with pytest.raises(openai.PermissionDeniedError) as refused:
        client.responses.create(model="mock-json", input="Hi")
    assert refused.value.body["code"] == "model_not_allowed" and refused.value.body["param"] == "model"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("hang")
    with pytest.raises(openai.NotFoundError) as unknown:  # an unknown name's 404 lists what this key may use, and only that
        client.responses.create(model="gpt-nothing", input="Hi")
    listed = unknown.value.body["message"].split("Models available: ")[1]
    assert "chat" in listed and "hang" not in listed and "unreachable" not in listed
    with pytest.raises(openai.PermissionDeniedError):  # the project's list applies too
        sdk(keyed[0], admin.key(project)["value"]).responses.create(model="hang", input="Hi")


def test_a_revoked_key_stops_working_on_every_instance_within_a_second(keyed, admin):
    project = admin.project("Revoked")
    created = admin.key(project)
    on_second = sdk(keyed[1], created["value"])
    assert create(on_second, model="mock-text", input="Hi")["status"] == "completed"  # the second instance now holds the key
    deleted = admin.call("DELETE", f"/projects/{project}/api_keys/{created['id']}")
    assert deleted == {"object": "organization.project.api_key.deleted", "id": created["id"], "deleted": True}
    with pytest.raises(openai.AuthenticationError):  # at once where it was revoked
        sdk(keyed[0], created["value"]).responses.create(model="mock-text", input="Hi")
    time.sleep(1.0)
    with pytest.raises(openai.AuthenticationError):
        on_second.responses.create(model="mock-text", input="Hi")


def test_the_keys_command(keyed, admin, tmp_path):
    config = tmp_path / "rejoinder.yaml"
    config.write_text(json.dumps({"database_url": keyed[0].config["database_url"]}))

    def rejoinder(*args: str) -> list[dict]:
        done = subprocess.run([sys.executable, "-m", "rejoinder", *args, "--config", str(config)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return [json.loads(line) for line in done.stdout.splitlines()]

    project = rejoinder("projects", "create", "Shell team", "--rpm", "50")[0]
    assert project["id"] in [p["id"] for p in rejoinder("projects", "list")]
    made = rejoinder("keys", "create", "--project", project["id"], "--models", "mock-*", "--tpm", "9000")[0]
    assert made["value"].startswith("sk-rj-")
    listed = rejoinder("keys", "list", "--project", project["id"])
    assert [(key["id"], key["allowed_models"], key["tpm"]) for key in listed] == [(made["id"], ["mock-*"], 9000)]
    assert made["value"] not in json.dumps(listed)
    client = sdk(keyed[1], made["value"])
    assert create(client, model="mock-text", input="Hi")["status"] == "completed"
    rejoinder("keys", "revoke", made["id"])
    assert wait_until(lambda: _refused(client), 1.5)
    failed = subprocess.run(
        [sys.executable, "-m", "rejoinder", "keys", "create", "--project", "proj_nope", "--config", str(config)], capture_output=True, text=True
    )
    assert failed.returncode == 2 and "no active project" in failed.stderr


def _refused(client: openai.OpenAI) -> bool:
    try:
        client.models.list()
    except openai.AuthenticationError:
        return True
    return False


def test_keys_declared_in_the_config(fake_chat, fresh_postgres_url, tmp_path):
    value = "sk-rj-declared-in-the-config-file-0001"
    config = {
        "models": chat_models(fake_chat),
        "database_url": fresh_postgres_url,
        "master_key": MASTER,
        "projects": [{"id": "proj_gitops", "name": "GitOps", "allowed_models": ["mock-*"], "keys": [{"name": "deploy", "value": "${DEPLOY_KEY}", "rpm": 10}]}],
    }
    gw = Gateway(config, tmp_path, env={"DEPLOY_KEY": value}).start()
    try:
        admin = Admin(gw)
        listed = admin.call("GET", "/projects/proj_gitops/api_keys")["data"]
        assert [(key["name"], key["managed_by"], key["rpm"]) for key in listed] == [("deploy", "config", 10)]
        assert create(sdk(gw, value), model="mock-text", input="Hi")["status"] == "completed"
        admin.call("DELETE", f"/projects/proj_gitops/api_keys/{listed[0]['id']}", status=409)
        admin.call("DELETE", "/projects/proj_gitops", status=409)
        assert value not in gw.logs()
        # dropped from the file: gone at the next start
        gw.stop()
        gw.config = {**config, "projects": []}
        gw.start()
        with pytest.raises(openai.AuthenticationError):
            sdk(gw, value).models.list()
    finally:
        gw.stop()


def test_a_conversation_id_a_client_chooses_is_its_projects_own(fake_chat, tmp_path):
    """With `create_missing_conversations`, two projects may each keep a conversation under the
    same id, and neither sees the other's items."""
    config = {"models": chat_models(fake_chat), "database_url": f"sqlite:///{tmp_path}/r.db", "master_key": MASTER, "create_missing_conversations": True}
    gw = Gateway(config, tmp_path).start()
    try:
        admin = Admin(gw)
        ours, theirs = (sdk(gw, admin.key(admin.project(name))["value"]) for name in ("Ours", "Theirs"))
        create(ours, model="mock-text", input="Ours, first", conversation="conv_chosen")
        create(theirs, model="mock-text", input="Theirs, first", conversation="conv_chosen")  # made anew: nothing says the id is taken
        texts = [
            [item.content[0].text for item in client.conversations.items.list("conv_chosen", order="asc").data if item.role == "user"]
            for client in (ours, theirs)
        ]
        assert texts == [["Ours, first"], ["Theirs, first"]]
    finally:
        gw.stop()
