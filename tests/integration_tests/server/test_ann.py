"""ANN (HNSW) vector search over real HTTP: same answers as exact, writes seen, files checked.

A dense embedder (the hashing embedder's vectors under a fixed rotation: same cosines, dense
rows) and ``ann_min_rows`` forced low stand in for wordllama at 20,000 rows and more.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

import aisearch_local.search as search_module
from aisearch_local.ann import AnnIndex, AnnManager
from aisearch_local.embed import HashingEmbedder
from aisearch_local.records import NewChunk
from aisearch_local.testing import LocalServer
from tests.integration_tests.server._helpers import search, upload

pytestmark = pytest.mark.integration

WORDS = [
    *[
        "espresso",
        "grind",
        "roast",
        "bean",
        "water",
        "kettle",
        "ratio",
        "bloom",
        "crema",
        "milk",
        "steam",
        "burr",
        "acidity",
    ],
    *[
        "body",
        "origin",
        "washed",
        "natural",
        "honey",
        "filter",
        "paper",
        "chemex",
        "aeropress",
        "temperature",
    ],
    *[
        "extraction",
        "tamp",
        "portafilter",
        "basket",
        "dose",
        "yield",
        "pressure",
        "pump",
        "boiler",
        "grouphead",
    ],
    *[
        "scale",
        "timer",
        "dripper",
        "carafe",
        "decanter",
        "siphon",
        "moka",
        "percolator",
        "cupping",
        "aroma",
    ],
    *["finish", "sweetness", "bitterness", "clarity"],
]
N_DOCS = 400


class DenseEmbedder:
    """The hashing embedder rotated by a fixed orthogonal matrix: every row dense."""

    def __init__(self, dim: int = 64) -> None:
        self._inner = HashingEmbedder(dim)
        q, _ = np.linalg.qr(np.random.default_rng(7).standard_normal((dim, dim)))
        self._rotation = q.astype(np.float32)
        self.dim = dim
        self.name = f"dense-test-{dim}"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out: np.ndarray = (self._inner.embed(texts) @ self._rotation).astype(np.float32)
        return out


def texts(n: int = N_DOCS, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=12)) for _ in range(n)]


QUERIES = texts(25, seed=1)


@pytest.fixture(autouse=True)
def _state_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


def _server(data_dir: Path | None, mode: str, **kw: Any) -> LocalServer:
    return LocalServer(
        data_dir=data_dir,
        in_memory=data_dir is None,
        embedder=DenseEmbedder(),
        vector_search=mode,
        ann_min_rows=kw.pop("ann_min_rows", 100),
        **kw,
    )


def _client(server: LocalServer) -> httpx.Client:
    return httpx.Client(base_url=server.account_url, headers=server.headers, timeout=60)


def seed(server: LocalServer, instance: str = "ann", n: int = N_DOCS) -> None:
    svc = server.service
    assert svc is not None
    inst = svc.store.get_instance("default", instance)
    if inst is None:
        inst = svc.create_instance("default", {"id": instance})
    docs = texts(n)
    emb = svc.embedder.embed(docs)
    rows = [
        (f"d{i}.txt", t.encode(), {"group": i % 4}, 1000 + i, [NewChunk(t, 0, len(t))], e[None])
        for i, (t, e) in enumerate(zip(docs, emb, strict=True))
    ]
    svc.store.bulk_insert(inst, rows)


def graph_ready(server: LocalServer, instance: str = "ann") -> AnnManager:
    """Search once (which starts the build), then wait for the graph."""
    svc = server.service
    assert svc is not None and svc.searcher.ann is not None
    inst = svc.store.get_instance("default", instance)
    assert inst is not None
    with _client(server) as http:
        search(http, instance, "espresso", retrieval_type="vector")
    assert svc.searcher.ann.wait(inst, 60)
    return svc.searcher.ann


def vector_keys(http: httpx.Client, query: str, **kw: Any) -> list[str]:
    result = search(
        http,
        "ann",
        query,
        retrieval_type="vector",
        match_threshold=0,
        max_num_results=10,
        **kw,
    )
    return [c["item"]["key"] for c in result["chunks"]]


@pytest.fixture
def exact_calls(monkeypatch) -> Iterator[list[int]]:
    """Count the exact vector scans (the ANN path makes none)."""
    calls: list[int] = []
    real = search_module.vector_candidates

    def counting(*args: Any, **kw: Any) -> Any:
        calls.append(1)
        return real(*args, **kw)

    monkeypatch.setattr(search_module, "vector_candidates", counting)
    yield calls


def exact_answers(**filters: Any) -> dict[str, list[str]]:
    with _server(None, "exact") as server, _client(server) as http:
        seed(server)
        return {q: vector_keys(http, q, **filters) for q in QUERIES}


def test_ann_answers_like_exact_search_above_the_threshold(exact_calls):
    want = exact_answers()
    exact_calls.clear()
    with _server(None, "auto") as server, _client(server) as http:
        seed(server)
        graph_ready(server)
        exact_calls.clear()
        got = {q: vector_keys(http, q) for q in QUERIES}
    assert exact_calls == []  # every search went through the graph
    recall = np.mean([len(set(got[q]) & set(want[q])) / len(want[q]) for q in QUERIES])
    assert recall >= 0.95
    assert sum(got[q][0] == want[q][0] for q in QUERIES) >= 0.95 * len(QUERIES)


def test_below_the_threshold_and_with_exact_the_scan_stays_exact(exact_calls, tmp_path):
    for mode, min_rows in (("auto", N_DOCS + 1), ("exact", 0)):
        with (
            _server(tmp_path / mode, mode, ann_min_rows=min_rows) as server,
            _client(server) as http,
        ):
            seed(server)
            exact_calls.clear()
            vector_keys(http, QUERIES[0])
            assert exact_calls == [1]
            assert server.service is not None and server.service.searcher.ann is not None
            assert server.service.searcher.ann._entries == {}
        assert not (tmp_path / mode / "ann").exists()


def test_the_environment_variable_sets_the_mode(monkeypatch, exact_calls):
    monkeypatch.setenv("AISEARCH_LOCAL_VECTOR_SEARCH", "exact")
    with _server(None, None, ann_min_rows=0) as server, _client(server) as http:  # type: ignore[arg-type]
        seed(server)
        exact_calls.clear()
        vector_keys(http, QUERIES[0])
        assert exact_calls == [1]
    monkeypatch.setenv("AISEARCH_LOCAL_VECTOR_SEARCH", "fastest")
    with pytest.raises(ValueError, match="AISEARCH_LOCAL_VECTOR_SEARCH\\) must be one of auto"):
        _server(None, None).start()  # type: ignore[arg-type]


def test_writes_are_reflected_in_the_very_next_search(exact_calls):
    with _server(None, "ann") as server, _client(server) as http:
        seed(server)
        graph_ready(server)
        exact_calls.clear()
        new = "zebra quantum lighthouse saxophone glacier"
        item = upload(http, "ann", "new.txt", new)
        assert vector_keys(http, new)[0] == "new.txt"
        # the same key again with other words: the store may re-use its chunk ids
        other = "volcano harpsichord nebula tangerine"
        upload(http, "ann", "new.txt", other)
        chunks = search(http, "ann", other, retrieval_type="vector", match_threshold=0)["chunks"]
        assert chunks[0]["item"]["key"] == "new.txt" and chunks[0]["text"] == other
        assert "new.txt" not in vector_keys(http, new)[:1]
        r = http.delete(f"/ai-search/instances/ann/items/{item['id']}")
        assert r.status_code == 200, r.text
        assert "new.txt" not in vector_keys(http, other)
        doomed = vector_keys(http, QUERIES[3])[0]
        doomed_id = server.service.store.get_item_by_key(  # type: ignore[union-attr]
            server.service.store.get_instance("default", "ann"),  # type: ignore[union-attr,arg-type]
            doomed,
        )["id"]
        assert http.delete(f"/ai-search/instances/ann/items/{doomed_id}").status_code == 200
        assert doomed not in vector_keys(http, QUERIES[3])
        graph_ready(server)  # in step again: the graph serves the searches
        exact_calls.clear()
        assert doomed not in vector_keys(http, QUERIES[3])
        assert exact_calls == []


def test_uploads_and_deletes_reach_the_graph_through_the_table_listener(monkeypatch):
    """A write costs the graph its own rows: no comparison with the whole instance."""
    import aisearch_local.ann as ann_module

    with _server(None, "ann") as server, _client(server) as http:
        seed(server)
        manager = graph_ready(server)
        compares: list[int] = []
        real = ann_module._difference
        monkeypatch.setattr(
            ann_module, "_difference", lambda ann, idx: compares.append(1) or real(ann, idx)
        )
        new = "zebra quantum lighthouse saxophone glacier"
        item = upload(http, "ann", "new.txt", new)
        assert vector_keys(http, new)[0] == "new.txt"
        upload(http, "ann", "new.txt", "volcano harpsichord nebula tangerine")  # re-indexed
        assert vector_keys(http, "volcano harpsichord nebula tangerine")[0] == "new.txt"
        assert http.delete(f"/ai-search/instances/ann/items/{item['id']}").status_code == 200
        assert "new.txt" not in vector_keys(http, new)
        graph_ready(server)
        assert compares == []
        svc = server.service
        assert svc is not None
        inst = svc.store.get_instance("default", "ann")
        assert inst is not None
        idx = svc.store.index(inst)
        live = idx.cids if idx.alive is None else idx.cids[idx.alive]
        graph = manager._entries[inst.pk].ann
        assert graph is not None and np.array_equal(graph.keys, live)


def test_filters_lose_nothing_exact_search_finds(exact_calls):
    flt = {"filters": {"group": 1}}
    want = exact_answers(**flt)
    with _server(None, "ann") as server, _client(server) as http:
        seed(server)
        manager = graph_ready(server)
        manager.filter_exact_factor = 0  # through the graph even for this small instance
        exact_calls.clear()
        got = {q: vector_keys(http, q, **flt) for q in QUERIES}
    assert exact_calls == []
    assert got == want


def test_graph_saved_on_stop_and_loaded_at_restart(tmp_path, monkeypatch):
    with _server(tmp_path, "ann") as server, _client(server) as http:
        seed(server)
        graph_ready(server)
        before = {q: vector_keys(http, q) for q in QUERIES[:5]}
    files = {p.name for p in (tmp_path / "ann").iterdir()}
    assert files == {"1.usearch", "1.keys.npz", "1.json", "1.lock"}
    added: list[int] = []
    real_add = AnnIndex.add

    def counting_add(self: AnnIndex, cids: Any, *args: Any, **kw: Any) -> None:
        added.append(len(cids))
        real_add(self, cids, *args, **kw)

    monkeypatch.setattr(AnnIndex, "add", counting_add)
    with _server(tmp_path, "ann") as server, _client(server) as http:
        manager = graph_ready(server)
        assert manager._entries[1].loaded and added == []  # loaded, not rebuilt
        assert {q: vector_keys(http, q) for q in QUERIES[:5]} == before


@pytest.mark.parametrize("damage", ["garbage-graph", "foreign-key", "stale"])
def test_a_damaged_foreign_or_stale_graph_is_rebuilt_or_caught_up(tmp_path, monkeypatch, damage):
    with _server(tmp_path, "ann") as server:
        seed(server)
        graph_ready(server)
    graph = tmp_path / "ann" / "1.usearch"
    if damage == "garbage-graph":  # a corrupt graph can crash usearch: it must never load
        data = bytearray(graph.read_bytes())
        for pos in np.random.default_rng(5).integers(0, len(data), 64):
            data[pos] ^= 0xFF
        graph.write_bytes(bytes(data))
    elif damage == "foreign-key":  # a data folder copied from another machine or user
        monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "elsewhere"))
    else:  # rows written while the server ran without a graph
        with _server(tmp_path, "exact") as server, _client(server) as http:
            upload(http, "ann", "late.txt", "zebra quantum lighthouse saxophone glacier")
    with _server(tmp_path, "ann") as server, _client(server) as http:
        manager = graph_ready(server)
        entry = manager._entries[1]
        assert entry.loaded == (damage == "stale")
        assert entry.ann is not None and len(entry.ann) == N_DOCS + (damage == "stale")
        if damage == "stale":
            assert vector_keys(http, "zebra quantum lighthouse saxophone glacier")[0] == "late.txt"
    manager = AnnManager(tmp_path / "ann", mode="ann")
    assert manager._base(1) is not None  # the rebuilt graph was saved, signed with our key
    assert AnnIndex.load(tmp_path / "ann" / "1", entry.identity, 64, manager._key or b"")


def test_the_benchmark_runs_and_prints_every_figure(tmp_path):
    """A smoke run of benchmarks/bench_ann.py on 2,000 random vectors (speed is not judged)."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[3]
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((2_000, 32)).astype(np.float32)
    np.save(tmp_path / "v.npy", vecs / np.linalg.norm(vecs, axis=1, keepdims=True))
    np.save(tmp_path / "q.npy", vecs[:20])
    files = ["--vectors", str(tmp_path / "v.npy"), "--queries", str(tmp_path / "q.npy")]
    proc = subprocess.run(
        [sys.executable, str(root / "benchmarks" / "bench_ann.py"), "--sizes", "1000,2000", *files],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env={**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    for needle in ("1,000 rows x 32: exact", "2,000 rows x 32", "ann ef=128", "filter 10%"):
        assert needle in proc.stdout
    assert "first search" in proc.stdout and "recall@10" in proc.stdout
