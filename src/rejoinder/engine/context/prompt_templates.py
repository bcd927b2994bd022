"""Prompt templates: where they come from, and how a request's `prompt` becomes its body.

A template is a create-request body without `prompt`: a model and settings, and `instructions`
and `input` messages whose text is Jinja2 (see `engine.templating`). Templates come from
`prompts_dir` (YAML files with explicit versions, read at start and on SIGHUP; they win over
the database for an id in both) or from the REST API (`api.prompts`, the database).

`prompt: {id, version?, variables?}` on a request: the template's rendered input messages come
first, then the request's input; every other field the request sends overrides the template's.
Variables are strings or `input_text`, `input_image` and `input_file` parts. A content part (or
a message's whole content) that is exactly `{{ name }}` becomes that variable's part; text
variables (and `input_text` parts) can also be written anywhere in text.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import msgspec
import orjson
import yaml

from rejoinder.engine import templating
from rejoinder.protocol.errors import ApiError, invalid, not_found
from rejoinder.protocol.ids import is_valid_id
from rejoinder.protocol.request import PromptRef, Request, decode_create_response
from rejoinder.store import prompts as stored
from rejoinder.store.repository import Store

log = logging.getLogger("rejoinder.prompts")

_DECODED_ON_A_THREAD = 256 * 1024  # bytes of body from which decoding leaves the event loop

_PART_TYPES = ("input_text", "input_image", "input_file")


class Found(msgspec.Struct):
    """A template at one version."""

    id: str
    version: str
    default_version: str
    template: dict[str, Any]
    created_at: int
    from_file: bool


def check_template(template: Any) -> dict[str, Any]:
    """A template as it will be used: an object that is a valid create-request body (with a
    stand-in model and input where it has none) and whose texts compile; else a 400 naming the
    field under `template`."""
    if not isinstance(template, dict):
        raise invalid("template", "Invalid 'template': expected an object, a create-request body without 'prompt'.")
    if "prompt" in template:
        raise invalid("template.prompt", "A template cannot itself name a 'prompt'.")
    probe = {"model": "template-check", "input": "template-check", **template}
    try:
        decode_create_response(orjson.dumps(probe))
    except ApiError as exc:
        exc.param = f"template.{exc.param}" if exc.param else "template"
        raise
    if isinstance(template.get("instructions"), str):
        templating.check(template["instructions"], "template.instructions")
    for where, text in _texts(template.get("input")):
        templating.check(text, f"template.{where}")
    return template


def _texts(input_: Any) -> list[tuple[str, str]]:
    """The template texts of an `input`, with where each is."""
    if isinstance(input_, str):
        return [("input", input_)]
    found = []
    for i, item in enumerate(input_ or ()):
        content = item.get("content") if isinstance(item, dict) and item.get("type", "message") == "message" else None
        if isinstance(content, str):
            found.append((f"input[{i}].content", content))
        elif isinstance(content, list):
            found += [
                (f"input[{i}].content[{j}].text", part["text"])
                for j, part in enumerate(content)
                if isinstance(part, dict) and isinstance(part.get("text"), str)
            ]
    return found


class Prompts:
    def __init__(self, store: Store, directory: str | None) -> None:
        self.store = store
        self.directory = Path(directory) if directory else None
        self.files: dict[str, dict[str, Any]] = {}  # id → {"default_version", "versions": {version: template}, "created_at"}
        self.cage = templating.Cage()
        self.reload()

    def reload(self) -> None:
        """Read `prompts_dir` again (at start and on SIGHUP); a broken file is logged and the
        prompts it held are kept as they were."""
        if self.directory is None:
            return
        files = {}
        for path in sorted(self.directory.glob("*.y*ml")):
            try:
                prompt_id, entry = _read(path)
            except (OSError, yaml.YAMLError, ApiError, ValueError) as exc:
                log.error("prompts_dir: %s was not loaded: %s", path.name, getattr(exc, "message", exc))
                old = {key: value for key, value in self.files.items() if value["path"] == path.name}
                files.update(old)
                continue
            files[prompt_id] = entry
        self.files = files
        log.info("prompts_dir: %d prompt(s) loaded from %s", len(files), self.directory)

    async def find(self, prompt_id: str, version: str | None, project: str) -> Found:
        """A prompt at `version` (its default without one): from `prompts_dir` (every project's),
        else `project`'s own; a 404 naming `prompt.id` or `prompt.version` when there is none."""
        entry = self.files.get(prompt_id)
        if entry is not None:
            chosen = version or entry["default_version"]
            if chosen not in entry["versions"]:
                raise not_found(f"Prompt '{prompt_id}' has no version '{chosen}'.", "prompt.version")
            return Found(prompt_id, chosen, entry["default_version"], entry["versions"][chosen], entry["created_at"], True)
        if not is_valid_id(prompt_id):
            raise not_found(f"Prompt with id '{prompt_id[:64]}' not found.", "prompt.id")
        number = int(version) if version is not None and version.isdigit() else None
        if version is not None and number is None:
            raise not_found(f"Prompt '{prompt_id}' has no version '{version[:64]}'.", "prompt.version")
        row = await self.store.transact(stored.get, prompt_id, project, number)
        if row is None:
            if version is not None and await self.store.transact(stored.get, prompt_id, project, None) is not None:
                raise not_found(f"Prompt '{prompt_id}' has no version '{version}'.", "prompt.version")
            raise not_found(f"Prompt with id '{prompt_id}' not found.", "prompt.id")
        return found_of(row)

    async def versions(self, prompt_id: str, project: str) -> list[Found]:
        """Every version of a prompt (`prompts_dir`'s, else `project`'s), oldest first; a 404 when there is none."""
        entry = self.files.get(prompt_id)
        if entry is not None:
            default = entry["default_version"]
            return [Found(prompt_id, version, default, template, entry["created_at"], True) for version, template in entry["versions"].items()]
        rows = await self.store.transact(stored.versions, prompt_id, project) if is_valid_id(prompt_id) else []
        if not rows:
            raise not_found(f"Prompt with id '{prompt_id[:64]}' not found.", "prompt.id")
        return [found_of(row) for row in rows]

    async def decode(self, raw: bytes, project: str) -> tuple[Request, bytes]:
        """A create request as its client sent it, its `prompt` (one `project` may use) applied:
        the request, and its body as it runs (what a background run keeps, and a steered one's
        successor reuses). A large body is decoded on a thread: checking and normalizing a
        100,000-item input is half a second of Python, which the event loop then shares in
        the interpreter's 5 ms slices instead of waiting it out."""
        request = decode_create_response(raw) if len(raw) < _DECODED_ON_A_THREAD else await asyncio.to_thread(decode_create_response, raw)
        if request.body.prompt is None:
            return request, raw
        expanded = await self.expand(raw, request.body.prompt, project)
        return decode_create_response(expanded), expanded

    async def expand(self, raw: bytes, ref: PromptRef, project: str) -> bytes:
        """The request body `raw` with its prompt applied (the prompt's version pinned)."""
        found = await self.find(ref.id, ref.version, project)
        template = found.template
        instructions, rendered = await self.render(template, ref.variables or {})
        body = orjson.loads(raw)
        merged = {key: value for key, value in template.items() if key != "input"}
        if instructions is not None:
            merged["instructions"] = instructions
        merged.update({key: value for key, value in body.items() if key not in ("prompt", "input", "messages")})
        own = body.get("input", body.get("messages", []))
        merged["input"] = rendered + ([{"role": "user", "content": own}] if isinstance(own, str) else own)
        merged["prompt"] = {"id": found.id, "version": found.version, "variables": ref.variables}
        if "model" not in merged:
            raise invalid("model", "Missing required parameter: 'model' (the prompt's template names none).", "missing_required_parameter")
        return orjson.dumps(merged)

    async def render(self, template: dict[str, Any], variables: dict[str, Any]) -> tuple[str | None, list[Any]]:
        """A checked template's instructions and input messages for these variables (what a
        request naming it runs with; the console previews it)."""
        texts, parts = _variables(variables)
        return await self.cage.render(template, texts, parts)


def found_of(row: stored.Version) -> Found:
    return Found(row.prompt_id, str(row.version), str(row.default_version), orjson.loads(row.template), row.created_at, False)


def _read(path: Path) -> tuple[str, dict[str, Any]]:
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict) or not isinstance(raw.get("versions"), dict) or not raw["versions"]:
        raise ValueError("expected a mapping with 'versions': {\"1\": {…a template…}, …}")
    prompt_id = str(raw.get("id") or path.stem)
    versions = {str(version): check_template(template) for version, template in raw["versions"].items()}
    default = str(raw.get("default_version") or list(versions)[-1])
    if default not in versions:
        raise ValueError(f"default_version {default!r} is not one of its versions")
    return prompt_id, {"default_version": default, "versions": versions, "created_at": int(path.stat().st_mtime), "path": path.name}


def _variables(variables: dict[str, Any]) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """Text variables (for text) and part variables (for a part placed alone)."""
    texts, parts = {}, {}
    for name, value in variables.items():
        if isinstance(value, str):
            texts[name] = value
        elif isinstance(value, dict) and value.get("type") in _PART_TYPES:
            parts[name] = value
            if value["type"] == "input_text":
                if not isinstance(value.get("text"), str):
                    raise invalid(f"prompt.variables.{name}", f"Invalid 'prompt.variables.{name}': an input_text part needs its 'text'.")
                texts[name] = value["text"]
        else:
            raise invalid(f"prompt.variables.{name}", f"Invalid 'prompt.variables.{name}': expected a string or an input_text, input_image or input_file part.")
    return texts, parts
