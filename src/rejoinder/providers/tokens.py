"""Counting tokens where no upstream counts them: OpenAI's o200k_base BPE, from `bpe-openai`,
which ships its vocabularies inside the package (tiktoken would fetch them at run time, which
fails offline). The tokenizer loads on first use (about a second, and some 100 MB), so a
gateway that never counts never pays for it.

Counts follow OpenAI's accounting for chat messages: each message costs its content's tokens
plus 3, and a reply is primed with 3 more; tools count as their JSON. For models that are not
OpenAI's it is an estimate: their own tokenizers differ by some percent.
"""

from __future__ import annotations

import functools
from typing import Any

import orjson

_PER_MESSAGE = 3
_PRIMING = 3


@functools.cache
def _encoding() -> Any:
    import bpe_openai

    return bpe_openai.get_encoding("o200k_base")


_PIECE = 500_000  # characters encoded at once: bpe-openai refuses a text of a million or more


def _tokens(text: str) -> list[int]:
    """`text`'s tokens, encoded in pieces cut at spaces (where a token cannot span the cut) when
    it is too long for the encoder in one."""
    if len(text) <= _PIECE:
        return _encoding().encode_ordinary(text)
    tokens: list[int] = []
    start = 0
    while start < len(text):
        end = min(len(text), start + _PIECE)
        if end < len(text):
            cut = text.rfind(" ", start + 1, end)
            end = cut if cut > start else end
        tokens += _encoding().encode_ordinary(text[start:end])
        start = end
    return tokens


def count_text(text: str) -> int:
    return len(_tokens(text)) if text else 0


def count_chat(body: dict[str, Any]) -> int:
    """The input tokens of a Chat Completions request body."""
    total = _PRIMING
    for message in body["messages"]:
        total += _PER_MESSAGE
        content = message.get("content")
        if isinstance(content, str):
            total += count_text(content)
        elif isinstance(content, list):
            total += sum(count_text(part.get("text", "")) if part.get("type") == "text" else 85 for part in content)  # an image: OpenAI's low-detail price
        for call in message.get("tool_calls") or ():
            total += count_text(call["function"]["name"]) + count_text(call["function"]["arguments"])
    if body.get("tools"):
        total += count_text(orjson.dumps(body["tools"]).decode())
    return total


def windows(text: str, size: int, overlap: int) -> list[str]:
    """`text` cut into pieces of at most `size` tokens, each beginning `overlap` tokens before
    the last one ended (how OpenAI chunks a file for a vector store)."""
    tokens = _tokens(text)
    step = size - overlap
    starts = range(0, max(len(tokens) - overlap, 1), step)
    return [_encoding().decode_bytes(tokens[start : start + size]).decode("utf-8", "ignore") for start in starts]
