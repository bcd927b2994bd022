"""Embeddings for vector stores: the model shipped with the gateway (WordLlama's `l2_supercat`,
256 dimensions, whose weights and tokenizer are inside its PyPI wheel: nothing is fetched at
run time), or an upstream's: `/v1/embeddings` (OpenAI, or any server that speaks it) or
Gemini's `batchEmbedContents`. Every
vector comes back as float32 of unit length, so a dot product is the cosine."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path
from typing import Any, Protocol

import orjson

from rejoinder.protocol.errors import ApiError
from rejoinder.providers.http import Upstream, UpstreamLimits

BATCH = 256  # texts per upstream call


class Embedder(Protocol):
    async def embed(self, texts: list[str]) -> Any:
        """A float32 array, one unit-length row per text."""
        ...


class Embedded:
    """The model inside the `wordllama` package, loaded on first use (0.2 s, ~20 MB), run on a
    thread: about a millisecond per short query, a second per thousand 800-token chunks here."""

    async def embed(self, texts: list[str]) -> Any:
        return await asyncio.to_thread(self.embed_now, texts)

    @staticmethod
    def embed_now(texts: list[str]) -> Any:
        return _model().embed(texts, norm=True).astype("float32")


@functools.cache
def _model() -> Any:
    import wordllama  # only a gateway that embeds loads it (and numpy, tokenizers)

    return wordllama.WordLlama.load(cache_dir=Path(wordllama.__file__).parent, disable_download=True)


class _Upstream:
    """An embeddings upstream, called with `BATCH` texts at a time: its URL, the body it takes
    and where its answer holds the vectors are its subclass's."""

    def __init__(self, url: str, headers: dict[str, str], api_key: str | None, limits: UpstreamLimits) -> None:
        self.url = url
        self.upstream = Upstream({"Content-Type": "application/json", **headers}, api_key, limits)

    async def embed(self, texts: list[str]) -> Any:
        rows: list[list[float]] = []
        for start in range(0, len(texts), BATCH):
            batch = texts[start : start + BATCH]
            async with self.upstream.call(self.url, orjson.dumps(self.body(batch)), stream=False) as reply:
                answer = orjson.loads(await reply.body())
            found = self.vectors(answer) if isinstance(answer, dict) else None
            if found is None or len(found) != len(batch):
                raise ApiError(502, "The embeddings upstream answered with the wrong number of vectors.", type="server_error", code="upstream_error")
            rows += found
        return _unit(rows)

    def body(self, batch: list[str]) -> dict[str, Any]:
        raise NotImplementedError

    def vectors(self, answer: dict[str, Any]) -> list[list[float]] | None:
        raise NotImplementedError


class OpenAIEmbeddings(_Upstream):
    """`POST {base_url}/embeddings`, as OpenAI and the servers that copy it answer it."""

    def __init__(self, base_url: str, api_key: str | None, model: str, limits: UpstreamLimits) -> None:
        super().__init__(base_url.rstrip("/") + "/embeddings", {"Authorization": f"Bearer {api_key}"} if api_key else {}, api_key, limits)
        self.model = model

    def body(self, batch: list[str]) -> dict[str, Any]:
        return {"model": self.model, "input": batch, "encoding_format": "float"}

    def vectors(self, answer: dict[str, Any]) -> list[list[float]] | None:
        data = answer.get("data")
        return [each["embedding"] for each in sorted(data, key=lambda each: each.get("index", 0))] if isinstance(data, list) else None


class GeminiEmbeddings(_Upstream):
    """`POST {base_url}/models/{model}:batchEmbedContents`, Gemini's embeddings."""

    def __init__(self, base_url: str, api_key: str | None, model: str, limits: UpstreamLimits) -> None:
        super().__init__(f"{base_url.rstrip('/')}/models/{model}:batchEmbedContents", {"x-goog-api-key": api_key} if api_key else {}, api_key, limits)
        self.model = f"models/{model}"

    def body(self, batch: list[str]) -> dict[str, Any]:
        return {"requests": [{"model": self.model, "content": {"parts": [{"text": text}]}} for text in batch]}

    def vectors(self, answer: dict[str, Any]) -> list[list[float]] | None:
        found = answer.get("embeddings")
        return [each.get("values") or [] for each in found] if isinstance(found, list) else None


def _unit(rows: list[list[float]]) -> Any:
    import numpy

    vectors = numpy.asarray(rows, dtype="float32")
    return vectors / numpy.maximum(numpy.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def embedder(config: Any) -> Embedder:
    """What the config's `embeddings` names."""
    if config.provider == "embedded":
        return Embedded()
    limits = UpstreamLimits(timeout=config.timeout, first_event_timeout=config.timeout, total_timeout=config.timeout)
    made = OpenAIEmbeddings if config.provider == "openai" else GeminiEmbeddings
    return made(config.base_url, config.api_key, config.model, limits)
