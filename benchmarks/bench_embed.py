"""Throughput of the local embedders (and of chunking) on ~600-character chunks.

Run: ``.venv/bin/python benchmarks/bench_embed.py [--n 10000] [--repeats 5]``

Prints texts per second (median of the repeats) for each embedder at a few batch sizes, and the
chunking rate, side by side. Offline: the texts are standard-library docstrings (real English
prose) and wordllama uses its bundled weights.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence

from aisearch_local.embed import Embedder, HashingEmbedder, WordLlamaEmbedder
from aisearch_local.ingest import chunk_text


def english_chunks(n: int, chars: int = 600) -> list[str]:
    """``n`` texts of about ``chars`` characters of real English prose, offline.

    The prose is the docstrings of standard-library modules (always installed); consecutive
    windows are cut at word boundaries and reused cyclically until ``n`` texts exist.
    """
    import importlib
    import inspect

    prose: list[str] = []
    for name in STDLIB_MODULES:
        module = importlib.import_module(name)
        for _, obj in inspect.getmembers(module):
            doc = inspect.getdoc(obj)
            if doc and len(doc) > 200:
                prose.append(" ".join(doc.split()))
    words = " ".join(dict.fromkeys(prose)).split()
    texts: list[str] = []
    i = 0
    while len(texts) < n:
        out: list[str] = []
        size = 0
        while size < chars:
            w = words[i % len(words)]
            out.append(w)
            size += len(w) + 1
            i += 1
        texts.append(" ".join(out))
    return texts


STDLIB_MODULES = (
    "argparse",
    "asyncio",
    "collections",
    "csv",
    "datetime",
    "decimal",
    "email",
    "functools",
    "http.client",
    "inspect",
    "io",
    "itertools",
    "json",
    "logging",
    "os",
    "pathlib",
    "pickle",
    "re",
    "shutil",
    "socket",
    "sqlite3",
    "string",
    "subprocess",
    "tarfile",
    "threading",
    "unittest",
    "urllib.request",
    "xml.dom.minidom",
    "zipfile",
)


BATCHES = (32, 256, 1024)

# Query -> paraphrased passage with little word overlap (semantic) or a shared key phrase.
PARAPHRASES = [
    ("How do I make espresso at home?", "Pulling a strong coffee shot with a home machine."),
    ("When are taxes due?", "The filing deadline for the annual return is in April."),
    ("My laptop will not turn on", "The notebook computer does not power up at all."),
    ("best way to learn a language", "Tips for picking up a foreign tongue quickly."),
    ("how to fix a flat bicycle tyre", "Repairing a punctured bike tire with a patch kit."),
    ("symptoms of the flu", "Influenza usually brings fever, aches and a cough."),
    ("cheap flights to Paris", "Low-cost airfare deals for travelling to France's capital."),
    ("how to grow tomatoes", "Cultivating tomato plants in your vegetable garden."),
    ("reset a forgotten password", "Recovering access when you cannot remember your login secret."),
    ("what do cats eat", "Feeding your feline: food choices for pet kittens and adults."),
    ("car engine overheating", "The vehicle's motor runs too hot and the gauge climbs."),
    ("how to sleep better", "Ways to improve your rest and fall asleep at night."),
]


def paraphrase_top1(emb: Embedder) -> float:
    """Share of queries whose own paraphrase ranks first among all passages."""
    queries = emb.embed([q for q, _ in PARAPHRASES])
    passages = emb.embed([p for _, p in PARAPHRASES])
    best = (queries @ passages.T).argmax(axis=1)
    return float((best == range(len(PARAPHRASES))).mean())


def rate(fn: Callable[[], object], count: int, repeats: int) -> float:
    """Median items per second over ``repeats`` runs (after one warm-up)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return count / statistics.median(times)


def bench_embedder(emb: Embedder, texts: Sequence[str], batch: int, repeats: int) -> float:
    def run() -> None:
        for i in range(0, len(texts), batch):
            emb.embed(texts[i : i + batch])

    return rate(run, len(texts), repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5_000, help="number of 600-char texts")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    texts = english_chunks(args.n)
    avg = sum(len(t) for t in texts) / len(texts)
    print(f"{len(texts)} texts, {avg:.0f} chars on average; median of {args.repeats} runs")

    embedders: list[Embedder] = [HashingEmbedder()]
    try:
        embedders.append(WordLlamaEmbedder())
    except Exception as exc:  # wordllama not installed
        print(f"wordllama skipped: {exc}")

    header = f"{'embedder':<28}" + "".join(f"{'batch ' + str(b):>14}" for b in BATCHES)
    print(header)
    print("-" * len(header))
    results: dict[str, float] = {}
    for emb in embedders:
        row = f"{emb.name:<28}"
        for batch in BATCHES:
            r = bench_embedder(emb, texts, batch, args.repeats)
            results[f"{emb.name}@{batch}"] = r
            row += f"{r:>10,.0f}/s  "
        print(row)

    print()
    for emb in embedders:
        top1 = paraphrase_top1(emb)
        print(f"{emb.name:<28} paraphrase top-1: {top1:.2f} ({len(PARAPHRASES)} pairs)")

    if len(embedders) == 2:
        h, w = (results[f"{e.name}@256"] for e in embedders)
        print(f"\nhashing / wordllama at batch 256: {h / w:.2f}x")

    document = "\n\n".join(texts[:2000])
    n_chunks = len(chunk_text(document, chunk_size=100, chunk_overlap=10))
    r = rate(lambda: chunk_text(document, chunk_size=100, chunk_overlap=10), n_chunks, args.repeats)
    print(
        f"\nchunk_text (chunk_size=100 words, 10% overlap): {r:,.0f} chunks/s ({n_chunks} chunks)"
    )
    target = 10_000
    hashing = results[f"{embedders[0].name}@256"]
    print(f"hashing embedder vs the 10,000 texts/s target: {hashing / target:.2f}x")


if __name__ == "__main__":
    main()
