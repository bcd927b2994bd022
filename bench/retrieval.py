"""Benchmark: vector stores and `file_search`, through a real gateway (SQLite, or PostgreSQL with
--postgres) in front of the test suite's fake Chat Completions server, all on 127.0.0.1.

Prints:
- ingestion of `--documents` generated documents (about 5 KB each: 1,000 make ≈ 5 MB) put in
  one store as a file batch: the time from the batch's creation to its completion, the chunks
  made, and the gateway's RSS after;
- search latency (p50/p99, concurrency 1, through HTTP) over the same documents chunked small
  (100 tokens, 30 overlapping: more than 10,000 chunks for 1,000 documents);
- retrieval quality on the same corpus, with known answers: recall@5 of full-text, embedding
  and fused ranking (in process, on the gateway's own database), for questions that name the
  company (lexical) and for questions that only describe it in other words (paraphrased);
- the gateway's own cost of one `file_search` round in a response: a response whose model calls
  `file_search` once (two model turns), minus the same response answered at once, one more
  model turn asked of the fake directly, and the search alone through the search endpoint.

    python bench/retrieval.py [--documents 1000] [--searches 300] [--postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
import statistics
import time

import httpx2 as httpx
from harness import fresh_database, gateway_on_fake, rss_mb  # bench/ is on the path: this script's folder

# (what a company makes, the same said in other words)
PRODUCTS = [
    ("bicycles", "two-wheeled cycles"),
    ("coffee", "roasted espresso beans"),
    ("furniture", "chairs, sofas and tables"),
    ("shoes", "footwear and boots"),
    ("medicine", "pharmaceutical drugs"),
    ("cars", "motor vehicles"),
    ("wine", "red and white vintages"),
    ("toys", "playthings for children"),
    ("boats", "sailing vessels"),
    ("bread", "loaves from a bakery"),
    ("solar panels", "photovoltaic modules"),
    ("watches", "wristwatches and clocks"),
]
CITIES = [
    f"{a}{b}"
    for a in ("Bran", "Cor", "Dun", "Elm", "Fal", "Gar", "Hol", "Ivy", "Jor", "Kel")
    for b in ("ford", "mouth", "ton", "wick", "dale", "holm", "bury", "stead", "gate", "ness")
]
# what a company's pages talk about besides its facts: its trade's own words, and common ones
TRADE = {
    "bicycles": "frame gears pedals saddle chain spokes wheels riders cycling helmets brakes tyres",
    "coffee": "roast beans brewing aroma grinder barista arabica cafe crema harvest cups flavour",
    "furniture": "oak upholstery cushions workshop timber carpentry living room design comfort seating varnish",
    "shoes": "leather soles laces heels sizes stitching walking running comfort insoles fit",
    "medicine": "clinical trials dosage patients tablets prescriptions doctors pharmacy treatment vaccines health",
    "cars": "engines drivers roads fuel dealerships models horsepower transmission safety electric mileage",
    "wine": "vineyard grapes cellar harvest barrels tasting bottles vintage oak sommelier terroir",
    "toys": "games puzzles dolls blocks play kids fun educational plush figures board",
    "boats": "hull sails harbour marina sea captain deck keel anchor crew waves",
    "bread": "dough flour ovens yeast bakers crust rye sourdough baking loaves wheat",
    "solar panels": "energy sunlight cells inverters roofs electricity renewable installation grid efficiency silicon",
    "watches": "dials movements straps precision craftsmanship quartz hands crystal time luxury mechanical",
}
FILLER = (
    "the quarterly report notes steady growth across regions while staff training continued and the board reviewed plans for "
    "new offices supply chains customer service logistics budgets audits hiring marketing partnerships research quality safety "
    "sustainability meetings schedules forecasts inventory shipping contracts compliance pricing"
).split()


def corpus(count: int, seed: int = 7) -> tuple[list[tuple[str, str]], list[tuple[str, int, str]]]:
    """`count` documents `(name, text)` and questions `(kind, the document that answers it, question)`."""
    rng = random.Random(seed)
    docs, questions = [], []
    for i in range(count):
        name = f"Company{i:04d}"
        (product, paraphrase), city = PRODUCTS[i % len(PRODUCTS)], CITIES[(i // len(PRODUCTS)) % len(CITIES)]
        facts = f"{name} manufactures {product}. Its headquarters are in {city}. It was founded in {1900 + i % 120}."
        trade = TRADE[product].split()
        words = [rng.choice(trade) if rng.random() < 0.4 else rng.choice(FILLER) for _ in range(700)]
        filler = " ".join(words[:350]) + ".\n\n" + " ".join(words[350:]) + "."
        docs.append((f"{name.lower()}.md", f"# {name}\n\n{filler}\n\n{facts}\n"))
        if i % 5 == 0:
            questions.append(("lexical", i, f"What does {name} manufacture?"))
            questions.append(("paraphrased", i, f"Which firm in {city} makes {paraphrase}?"))
    return docs, questions


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def ingest(http: httpx.Client, docs: list[tuple[str, str]], chunking: dict) -> tuple[str, list[str], float]:
    """A store holding the documents: its id, the file ids (in the documents' order), and the seconds ingestion took."""
    ids = [http.post("/v1/files", files={"file": (name, text.encode(), "text/markdown")}, data={"purpose": "assistants"}).json()["id"] for name, text in docs]
    store = http.post("/v1/vector_stores", json={"name": "bench"}).json()["id"]
    started = time.monotonic()
    for first in range(0, len(ids), 500):  # a batch holds at most 500 files
        answer = http.post(f"/v1/vector_stores/{store}/file_batches", json={"file_ids": ids[first : first + 500], "chunking_strategy": chunking})
        assert answer.status_code == 200, answer.text
    while (counts := http.get(f"/v1/vector_stores/{store}").json()["file_counts"])["in_progress"]:
        time.sleep(0.2)
    assert counts["completed"] == len(ids), counts
    return store, ids, time.monotonic() - started


def chunks_in(database_url: str, store: str) -> int:
    from sqlalchemy import text

    from rejoinder.store.repository import Store

    db = Store(database_url, readers=1)
    try:
        with db.engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM chunks WHERE store_id = :store"), {"store": store}).scalar_one()
    finally:
        db.close()


def recall(database_url: str, store: str, ids: list[str], questions: list[tuple[str, int, str]]) -> dict[tuple[str, str], float]:
    """recall@5 per (ranking, kind of question), searched in process on the gateway's database."""
    from rejoinder.engine.retrieval import Retrieval
    from rejoinder.providers.embeddings import Embedded
    from rejoinder.store.repository import Store

    db = Store(database_url, readers=1)
    retrieval = Retrieval(db, Embedded())
    found: dict[tuple[str, str], list[bool]] = {}
    try:
        for mode in ("lexical", "vector", "fused"):
            for kind, answer, question in questions:
                results = asyncio.run(retrieval.search("proj_default", [store], [question], 5, mode=mode))
                found.setdefault((mode, kind), []).append(ids[answer] in {r.file_id for r in results})
    finally:
        db.close()
    return {key: sum(hits) / len(hits) for key, hits in found.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=1000)
    parser.add_argument("--searches", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=100, help="responses of each kind for the file_search round's cost")
    parser.add_argument("--postgres", action="store_true", help="a fresh database on the PostgreSQL at 127.0.0.1:5432 instead of SQLite")
    args = parser.parse_args()
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    docs, questions = corpus(args.documents)
    with contextlib.ExitStack() as stack:
        config = {"database_url": stack.enter_context(fresh_database())} if args.postgres else {}
        gateway, fake = stack.enter_context(gateway_on_fake(**config))
        database_url = config.get("database_url") or gateway.config["database_url"]
        http = httpx.Client(base_url=gateway.url, timeout=120)
        size = sum(len(text) for _, text in docs)
        store, ids, took = ingest(http, docs, {"type": "auto"})
        chunks = http.get(f"/v1/vector_stores/{store}").json()
        rss = rss_mb([gateway.process.pid])
        print(f"\nRetrieval benchmark on {'PostgreSQL' if args.postgres else 'SQLite'}, 2 cores")
        print(
            f"ingested {len(docs)} documents ({size / 1e6:.1f} MB, auto chunking) in {took:.1f} s; gateway RSS after: {rss:.0f} MB; store usage {chunks['usage_bytes'] / 1e6:.1f} MB"
        )

        small, _, took_small = ingest(http, docs, {"type": "static", "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 30}})
        count = chunks_in(database_url, small)
        latencies = []
        for i in range(args.searches):
            kind, answer, question = questions[i % len(questions)]
            started = time.perf_counter()
            answer = http.post(f"/v1/vector_stores/{small}/search", json={"query": question, "max_num_results": 10})
            latencies.append(time.perf_counter() - started)
            assert answer.status_code == 200, answer.text
        print(
            f"search over {count:,} chunks (100-token chunks, 30 overlapping; ingested in {took_small:.1f} s): "
            f"p50 {percentile(latencies, 0.5) * 1e3:.1f} ms, p99 {percentile(latencies, 0.99) * 1e3:.1f} ms (HTTP, one at a time)"
        )

        quality = recall(database_url, store, ids, questions)
        print("recall@5          lexical questions   paraphrased questions")
        for mode, label in (("lexical", "full text"), ("vector", "embeddings"), ("fused", "fused")):
            print(f"  {label:<16} {quality[(mode, 'lexical')]:>17.2f}   {quality[(mode, 'paraphrased')]:>21.2f}")

        tool = [{"type": "file_search", "vector_store_ids": [store], "max_num_results": 5}]
        samples: dict[str, list[float]] = {"A": [], "B": [], "S": [], "U": []}
        upstream = httpx.Client(base_url=fake.url, timeout=60)
        turn = {"model": "file-search", "messages": [{"role": "user", "content": "Code?"}, {"role": "tool", "tool_call_id": "c", "content": "results"}]}
        for _ in range(args.rounds):  # interleaved, so a slower moment weighs on every figure alike
            for key, url, body in (
                ("A", "/v1/responses", {"model": "mock-file-search", "input": "What is the launch code?", "tools": tool, "store": False}),
                ("B", "/v1/responses", {"model": "mock-text", "input": "What is the launch code?", "tools": tool, "store": False}),
                ("S", f"/v1/vector_stores/{store}/search", {"query": ["launch code", "pelican"], "max_num_results": 5}),
            ):
                started = time.perf_counter()
                assert http.post(url, json=body).status_code == 200
                samples[key].append(time.perf_counter() - started)
            started = time.perf_counter()
            assert upstream.post("/v1/chat/completions", json=turn).status_code == 200
            samples["U"].append(time.perf_counter() - started)
        p50 = {key: statistics.median(values) * 1e3 for key, values in samples.items()}
        print(
            f"file_search round: A {p50['A']:.2f} ms (a response that searches once), B {p50['B']:.2f} ms (answered at once), "
            f"S {p50['S']:.2f} ms (the search alone), U {p50['U']:.2f} ms (one more model turn): the gateway's own cost A − B − S − U = {p50['A'] - p50['B'] - p50['S'] - p50['U']:.2f} ms"
        )


if __name__ == "__main__":
    main()
