"""The tantivy keyword engine (aisearch_local/keyword.py) against FTS5, in process."""

from __future__ import annotations

import string
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aisearch_local import keyword
from aisearch_local.keyword import ENGINES, check_engine
from aisearch_local.options import resolve_options
from aisearch_local.search import fts_expression, keyword_terms
from aisearch_local.service import LocalService
from aisearch_local.store import InstanceRecord

DOCS = {
    "grind.md": "Grind the coffee beans finer when the espresso runs too fast.",
    "water.md": "Water temperature matters: brewing below 90 degrees tastes sour.",
    "milk.md": "Steaming milk for a latte: keep the wand just under the surface.",
    "tea.md": "Green tea brews at a lower temperature than black tea.",
    "kettle.md": "A gooseneck kettle pours water slowly over the coffee grounds.",
    "crema.md": "Crema forms when espresso is brewed under nine bars of pressure.",
}
QUERIES = [
    "coffee",
    "espresso pressure",
    "water temperature",
    "tea temperature",
    "coffee water kettle",
    "milk latte",
    "beans grounds",
    "nothing here matches",
    "text:foo OR (",
    "_ coffee",  # a term without a token: FTS5's AND matches nothing, its OR the rest
    "coffee_beans",
]


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[LocalService]:
    service = LocalService(tmp_path, embedder="hashing", keyword_engine="tantivy")
    yield service
    service.close()


def make(svc: LocalService, iid: str = "k", **config: Any) -> InstanceRecord:
    inst = svc.create_instance("default", {"id": iid, **config})
    for i, (key, text) in enumerate(DOCS.items()):
        item = svc.index_document(inst, key=key, data=text.encode(), metadata={"n": i})
        assert item["status"] == "completed"
    return inst


def search(svc: LocalService, inst: InstanceRecord, query: str, **opts: Any) -> list[str]:
    resolved = resolve_options({"retrieval": {"retrieval_type": "keyword", **opts}}, inst.config)
    return [c["item"]["key"] for c in svc.searcher.search(inst, query, resolved)]


def fts5(svc: LocalService, inst: InstanceRecord, query: str, mode: str) -> set[int]:
    terms = keyword_terms(query, trigram=False)
    return (
        {cid for cid, _ in svc.store.keyword(inst, fts_expression(terms, mode), 1000)}
        if terms
        else set()
    )


def no_fts5(svc: LocalService, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> list[tuple[int, float]]:
        raise AssertionError("FTS5 answered a keyword search")

    monkeypatch.setattr(svc.store, "keyword", refuse)


@pytest.mark.parametrize("mode", ["and", "or"])
def test_tantivy_matches_the_chunks_fts5_matches(svc, mode):
    inst = make(svc)
    for query in QUERIES:
        terms = keyword_terms(query, trigram=False)
        got = {cid for cid, _ in svc.store.keyword_hits(inst, terms, mode, 1000, len(DOCS))}
        assert got == fts5(svc, inst, query, mode), query
    assert inst.pk in svc.store.keywords._live  # tantivy answered


def test_keyword_search_goes_through_tantivy_best_first(svc, monkeypatch):
    inst = make(svc)
    no_fts5(svc, monkeypatch)
    got = search(svc, inst, "coffee espresso", keyword_match_mode="or")
    assert got[0] == "grind.md"  # the one chunk with both words
    assert set(got) == {"grind.md", "crema.md", "kettle.md"}
    assert search(svc, inst, "coffee espresso") == ["grind.md"]  # and


def test_a_filter_applies_after_the_keyword_hits(svc, monkeypatch):
    inst = make(svc)
    no_fts5(svc, monkeypatch)
    flt = {"filename": "kettle.md"}
    assert search(svc, inst, "coffee", keyword_match_mode="or", filters=flt) == ["kettle.md"]
    assert search(svc, inst, "tea", filters=flt) == []


def test_writes_and_deletes_are_in_the_very_next_search(svc, monkeypatch):
    inst = make(svc)
    no_fts5(svc, monkeypatch)
    assert search(svc, inst, "coffee")  # the index is built
    item = svc.index_document(inst, key="new.md", data=b"Cortado and flat white.", metadata={})
    assert search(svc, inst, "cortado") == ["new.md"]
    svc.index_document(inst, key="new.md", data=b"Now only a macchiato.", metadata={})
    assert search(svc, inst, "cortado") == []
    assert search(svc, inst, "macchiato") == ["new.md"]
    svc.delete_item(inst, item)
    assert search(svc, inst, "macchiato") == []
    assert svc.store.keywords._live[inst.pk].index.num_docs == len(DOCS)


def test_a_failed_write_leaves_nothing(svc, monkeypatch):
    inst = make(svc)
    assert search(svc, inst, "coffee")
    real = svc.store._insert_chunks

    def fail(*args: Any, **kwargs: Any) -> None:
        real(*args, **kwargs)
        raise RuntimeError("disk full")

    monkeypatch.setattr(svc.store, "_insert_chunks", fail)
    with pytest.raises(RuntimeError):
        svc.index_document(inst, key="lost.md", data=b"Affogato.", metadata={})
    monkeypatch.undo()
    no_fts5(svc, monkeypatch)
    assert search(svc, inst, "affogato") == []
    assert search(svc, inst, "coffee", keyword_match_mode="or")


def test_a_write_is_acknowledged_only_once_the_index_holds_it(svc, monkeypatch):
    """Write A commits, then stalls before the keyword index; write B commits after it: B's
    change cannot be applied before A's, so B waits (and, A not coming, drops the index)
    rather than being acknowledged while the next search would miss it."""
    inst = make(svc)
    assert search(svc, inst, "coffee")  # the tantivy index is built
    keywords = svc.store.keywords
    real = keywords.apply
    entered, release = threading.Event(), threading.Event()
    first: list[int] = []

    def stalled(pk: int, change: Any) -> None:
        if not first:  # write A: preempted between its COMMIT and the keyword index
            first.append(change.gen)
            entered.set()
            release.wait(30)
        real(pk, change)

    monkeypatch.setattr(keywords, "apply", stalled)
    monkeypatch.setattr(keyword, "APPLY_WAIT_S", 0.5)
    a = threading.Thread(
        target=svc.index_document,
        args=(inst,),
        kwargs={"key": "a.md", "data": b"A cortado.", "metadata": {}},
    )
    a.start()
    try:
        assert entered.wait(30)
        svc.index_document(inst, key="b.md", data=b"A macchiato.", metadata={})  # acknowledged
        no_fts5(svc, monkeypatch)
        assert search(svc, inst, "macchiato") == ["b.md"]
    finally:
        release.set()
        a.join(30)
    assert search(svc, inst, "cortado") == ["a.md"]
    # in step: writes in order never wait
    svc.index_document(inst, key="c.md", data=b"A lungo.", metadata={})
    assert search(svc, inst, "lungo") == ["c.md"]


def test_a_write_by_another_process_is_seen_by_a_rebuild(svc, tmp_path, monkeypatch):
    inst = make(svc)
    assert search(svc, inst, "cortado") == []
    other = LocalService(tmp_path, embedder="hashing", keyword_engine="fts5")
    try:
        record = other.store.get_instance("default", "k")
        assert record is not None
        other.index_document(record, key="other.md", data=b"A cortado, please.", metadata={})
        other.store.delete_item(record, other.store.get_item_by_key(record, "tea.md")["_pk"])
    finally:
        other.close()
    no_fts5(svc, monkeypatch)
    assert search(svc, inst, "cortado") == ["other.md"]
    assert search(svc, inst, "green tea") == []


def test_trigram_instances_and_the_fts5_engine_keep_fts5(svc, tmp_path):
    tri = make(svc, "tri", indexing_options={"keyword_tokenizer": "trigram"})
    assert search(svc, tri, "espresso") == ["grind.md", "crema.md"] or search(
        svc, tri, "espresso"
    ) == ["crema.md", "grind.md"]
    assert tri.pk not in svc.store.keywords._live
    plain = LocalService(tmp_path / "plain", embedder="hashing", keyword_engine="fts5")
    try:
        inst = make(plain)
        assert search(plain, inst, "coffee", keyword_match_mode="or")
        assert plain.store.keywords._live == {}
    finally:
        plain.close()


def test_auto_keeps_fts5_below_its_threshold_and_builds_tantivy_above(tmp_path, monkeypatch):
    service = LocalService(tmp_path, embedder="hashing", keyword_engine="auto")
    try:
        inst = make(service)
        keywords = service.store.keywords
        assert search(service, inst, "coffee", keyword_match_mode="or")
        assert keywords._live == {} and keywords._builds == {}  # small: FTS5
        keywords.min_rows = 1
        assert search(service, inst, "coffee", keyword_match_mode="or")  # FTS5 meanwhile
        build = keywords._builds.get(inst.pk)
        if build is not None:
            assert build.done.wait(60)
        assert inst.pk in keywords._live
        no_fts5(service, monkeypatch)
        assert set(search(service, inst, "coffee", keyword_match_mode="or")) == {
            "grind.md",
            "kettle.md",
        }
    finally:
        service.close()


def test_indexing_counts_a_background_build_until_it_ends(tmp_path, monkeypatch):
    started, release = threading.Event(), threading.Event()
    real = keyword.TantivyIndex.add_many

    def held(self: keyword.TantivyIndex, docs: Any) -> None:
        started.set()
        assert release.wait(60)
        real(self, docs)

    monkeypatch.setattr(keyword.TantivyIndex, "add_many", held)
    service = LocalService(tmp_path, embedder="hashing", keyword_engine="auto")
    try:
        inst = make(service)
        keywords = service.store.keywords
        keywords.min_rows = 1
        assert service.store.indexing() == 0
        assert search(service, inst, "coffee", keyword_match_mode="or")  # FTS5 meanwhile
        assert started.wait(60)
        assert service.store.indexing() == 1  # what /_local/health reports as "indexing"
        release.set()
        build = keywords._builds.get(inst.pk)
        if build is not None:
            assert build.done.wait(60)
        assert service.store.indexing() == 0
    finally:
        release.set()
        service.close()


def test_a_data_folder_keeps_the_index_in_files_removed_when_it_is_let_go(tmp_path):
    import fcntl
    import gc
    import os

    folder = tmp_path / "keyword"
    # a folder a killed process left (its owner lock no longer held): removed at start
    stale = folder / "4194303-abcdefgh"
    (stale / "seg").mkdir(parents=True)
    (stale / ".owner.lock").write_bytes(b"")
    (stale / "seg" / "x.idx").write_bytes(b"x")
    # one a live process holds (any pid namespace): kept
    held = folder / "1-heldheld"
    held.mkdir()
    fd = os.open(held / ".owner.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    # anything else is never touched: other names, no owner lock, files
    others = [folder / "2024-report", folder / "123-abcdefgh.txt", folder / "7-nolock00"]
    others[0].mkdir()
    others[1].write_bytes(b"keep")
    others[2].mkdir()
    service = LocalService(tmp_path, embedder="hashing", keyword_engine="tantivy")
    try:
        assert not stale.exists() and held.exists() and all(p.exists() for p in others)
        inst = make(service)
        assert search(service, inst, "coffee", keyword_match_mode="or")
        live = service.store.keywords._live[inst.pk]
        path = live.index.path
        assert path is not None and Path(path).parent == folder and any(Path(path).iterdir())
        del live
        service.store.keywords.drop(inst.pk)
        gc.collect()
        assert not Path(path).exists()  # let go: its files are gone
        assert search(service, inst, "coffee", keyword_match_mode="or")  # built again
        again = service.store.keywords._live[inst.pk].index.path
        assert again is not None and Path(again).exists()
        # its owner lock is held: another store's start-up cleanup leaves it alone
        from aisearch_local.keyword import remove_stale

        remove_stale(folder)
        assert Path(again).exists()
    finally:
        service.close()
        os.close(fd)
    gc.collect()
    assert not Path(again).exists()  # closed: gone too
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [held.name] + [p.name for p in others]
    )
    in_memory = LocalService(None, embedder="hashing", keyword_engine="tantivy")
    try:
        inst = make(in_memory)
        assert search(in_memory, inst, "coffee", keyword_match_mode="or")
        assert in_memory.store.keywords._live[inst.pk].index.path is None
    finally:
        in_memory.close()


def test_a_symlinked_keyword_folder_is_never_followed(tmp_path):
    outside = tmp_path / "home"
    (outside / "1999-photosxx").mkdir(parents=True)  # the folder name pattern, unlocked
    (outside / "1999-photosxx" / ".owner.lock").write_bytes(b"")
    (outside / "notes.txt").write_bytes(b"mine")
    data = tmp_path / "data"
    data.mkdir()
    (data / "keyword").symlink_to(outside, target_is_directory=True)
    service = LocalService(data, embedder="hashing", keyword_engine="tantivy")
    try:
        inst = make(service)
        assert search(service, inst, "coffee", keyword_match_mode="or")
        assert service.store.keywords._live[inst.pk].index.path is None  # in memory instead
    finally:
        service.close()
    assert sorted(p.name for p in outside.iterdir()) == ["1999-photosxx", "notes.txt"]


def test_an_import_replace_by_another_process_is_seen_by_the_running_server(tmp_path, monkeypatch):
    from aisearch_local.snapshot import export_snapshot, import_snapshot

    other = LocalService(tmp_path / "other", embedder="hashing")
    made = other.create_instance("default", {"id": "k"})
    other.index_document(made, key="new.md", data=b"A cortado is small.", metadata={})
    export_snapshot(other.store, tmp_path / "snap.zip")
    other.close()
    server = LocalService(tmp_path / "data", embedder="hashing", keyword_engine="tantivy")
    try:
        inst = make(server)
        assert set(search(server, inst, "espresso")) == {"grind.md", "crema.md"}  # built
        cli = LocalService(tmp_path / "data", embedder="hashing")  # the CLI, another process
        ((new, *_),) = import_snapshot(cli, tmp_path / "snap.zip", replace=True)
        cli.close()
        assert new.pk == inst.pk  # the same pk again: only a new generation tells them apart
        now = server.store.get_instance("default", "k")
        assert now is not None
        no_fts5(server, monkeypatch)
        assert search(server, now, "espresso") == []  # the replaced chunks are gone
        assert search(server, now, "cortado") == ["new.md"]
    finally:
        server.close()


def test_an_unknown_engine_is_refused_naming_the_option():
    assert check_engine("tantivy") == "tantivy"
    with pytest.raises(ValueError) as err:
        LocalService(None, embedder="hashing", keyword_engine="lucene")
    assert str(err.value) == (
        "keyword engine (--keyword-engine, AISEARCH_LOCAL_KEYWORD_ENGINE) must be one of "
        f"{', '.join(ENGINES)}, got 'lucene'"
    )


@pytest.fixture(scope="module")
def fuzz_svc() -> Iterator[tuple[LocalService, InstanceRecord]]:
    service = LocalService(None, embedder="hashing", keyword_engine="tantivy")
    yield service, make(service)
    service.close()


WORDS = sorted({w.strip(".:,").lower() for text in DOCS.values() for w in text.split()})
SYNTAX = ["OR", "AND", "NOT", "NEAR", "(", ")", '"', "*", "^", ":", "text:", "-", "+", "_", "\\"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(query=st.text(max_size=60), mode=st.sampled_from(["and", "or"]))
def test_any_query_text_is_answered_without_an_error(fuzz_svc, query, mode):
    svc, inst = fuzz_svc
    terms = keyword_terms(query, trigram=False)
    hits = svc.store.keyword_hits(inst, terms, mode, 1000, len(DOCS))
    assert all(isinstance(cid, int) and score > 0 for cid, score in hits)


# what the random fragments are made of: no letters, since the two engines' stemmers differ on
# some words (test_the_stemmers_differ_on_a_few_words); the corpus's own words come from WORDS
NOT_LETTERS = string.digits + string.punctuation + " \t\n"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    parts=st.lists(
        st.sampled_from(WORDS + SYNTAX)
        | st.text(alphabet=NOT_LETTERS, max_size=8)
        | st.builds("".join, st.lists(st.sampled_from(WORDS + SYNTAX), max_size=3)),
        max_size=8,
    ),
    mode=st.sampled_from(["and", "or"]),
)
def test_hostile_query_text_is_never_query_syntax(fuzz_svc, parts, mode):
    # ASCII: the two engines fold non-ASCII letters differently (tantivy's ascii_fold maps
    # "þ" to "th", FTS5 keeps it: docs/DEPS-keyword.md)
    svc, inst = fuzz_svc
    query = " ".join(parts)
    terms = keyword_terms(query, trigram=False)
    got = {cid for cid, _ in svc.store.keyword_hits(inst, terms, mode, 1000, len(DOCS))}
    assert got == fts5(svc, inst, query, mode)


def test_the_stemmers_differ_on_a_few_words(fuzz_svc):
    # FTS5's original Porter stems "ate" to "at" (tea.md: "brews at a lower"); tantivy's
    # Porter2 keeps "ate" (docs/DEPS-keyword.md): found by the fuzz above when its fragments
    # held letters, so they no longer do
    svc, inst = fuzz_svc
    terms = keyword_terms("ate", trigram=False)
    assert fts5(svc, inst, "ate", "or") == {
        cid
        for cid, _ in svc.store.keyword_hits(
            inst, keyword_terms("at", trigram=False), "or", 1000, len(DOCS)
        )
    }
    assert svc.store.keyword_hits(inst, terms, "or", 1000, len(DOCS)) == []


def test_the_cli_option_and_the_environment_choose_the_engine(monkeypatch):
    from aisearch_local.cli import UserError, _service, build_parser

    args = build_parser().parse_args(["serve", "--in-memory", "--keyword-engine", "fts5"])
    assert args.keyword_engine == "fts5"
    svc = _service(None, "hashing", "extractive", keyword_engine=args.keyword_engine)
    assert svc.store.keywords.engine == "fts5"
    svc.close()
    monkeypatch.setenv("AISEARCH_LOCAL_KEYWORD_ENGINE", "tantivy")
    svc = _service(None, "hashing", "extractive")
    assert svc.store.keywords.engine == "tantivy"
    svc.close()
    monkeypatch.setenv("AISEARCH_LOCAL_KEYWORD_ENGINE", "lucene")
    with pytest.raises(UserError, match=r"AISEARCH_LOCAL_KEYWORD_ENGINE\) must be one of auto"):
        _service(None, "hashing", "extractive")


def test_an_instance_without_a_generation_is_built_once_and_rebuilt_after_a_write(svc, monkeypatch):
    # a snapshot import writes no generation; the instance's next write creates one
    inst = make(svc)
    with svc.store.transaction() as cur:
        cur.execute("DELETE FROM meta WHERE key = ?", (f"vectors:{inst.pk}",))
    reads: list[int] = []
    real = svc.store.keyword_source
    monkeypatch.setattr(svc.store.keywords, "_source", lambda pk: reads.append(pk) or real(pk))
    no_fts5(svc, monkeypatch)
    for _ in range(3):
        assert set(search(svc, inst, "coffee", keyword_match_mode="or")) == {
            "grind.md",
            "kettle.md",
        }
    assert reads == [inst.pk]
    svc.index_document(inst, key="new.md", data=b"A cortado.", metadata={})
    assert search(svc, inst, "cortado") == ["new.md"]
    assert reads == [inst.pk, inst.pk]


def test_writes_that_finish_out_of_order_are_applied_in_generation_order(svc, monkeypatch):
    inst = make(svc)
    assert search(svc, inst, "coffee")  # the index is built
    keywords = svc.store.keywords
    held: list[tuple[int, Any]] = []
    real = keywords.apply
    monkeypatch.setattr(keywords, "apply", lambda pk, change: held.append((pk, change)))
    svc.index_document(inst, key="a.md", data=b"A cortado.", metadata={})
    svc.index_document(inst, key="a.md", data=b"A macchiato.", metadata={})
    svc.delete_item(inst, svc.store.get_item_by_key(inst, "grind.md"))
    monkeypatch.undo()
    live = keywords._live[inst.pk]
    # each write applies its change from its own thread; the last one's arrives first and
    # waits for the others, which apply it with theirs (the three writes are this process's
    # own and still under way, as they are in a real write until their change is applied)
    monkeypatch.setattr(keywords, "_own", lambda _pk: {change.gen for _, change in held})
    threads = [threading.Thread(target=real, args=held_one) for held_one in reversed(held)]
    for t in threads:
        t.start()
        time.sleep(0.05)
    for t in threads:
        t.join(30)
    assert keywords._live[inst.pk] is live  # applied in order, not rebuilt
    no_fts5(svc, monkeypatch)
    assert search(svc, inst, "cortado") == []
    assert search(svc, inst, "macchiato") == ["a.md"]
    assert search(svc, inst, "espresso") == ["crema.md"]


def test_a_generation_of_another_process_drops_the_index_at_once(svc, monkeypatch):
    """A write that finds another process's generation before its own (``serve --workers``)
    does not wait APPLY_WAIT_S for it (it never comes: it is only in SQLite): the index is
    dropped at once and the next search rebuilds it, with both writes."""
    inst = make(svc)
    assert search(svc, inst, "coffee")  # the index is built
    keywords = svc.store.keywords
    # another process on the same folder (a LocalService of its own: its own store)
    other = LocalService(svc.store.data_dir, embedder="hashing", keyword_engine="fts5")
    try:
        other_inst = other.require_instance("default", inst.id)
        other.index_document(other_inst, key="other.md", data=b"A cortado.", metadata={})
    finally:
        other.close()

    def no_wait(timeout: float | None = None) -> bool:
        raise AssertionError("the write waited for another process's generation")

    monkeypatch.setattr(keywords._advanced, "wait", no_wait)
    svc.index_document(inst, key="own.md", data=b"A macchiato.", metadata={})
    assert inst.pk not in keywords._live  # dropped, not waited on
    no_fts5(svc, monkeypatch)
    assert search(svc, inst, "cortado") == ["other.md"]
    assert search(svc, inst, "macchiato") == ["own.md"]


def test_tantivy_hits_tie_on_the_lower_chunk_id():
    # equal texts score equally: the order is the chunk id's, whatever order tantivy found them
    index = keyword.TantivyIndex()
    cids = [907, 12, 455, 3, 78, 300, 41]
    index.add_many([(cid, "espresso grinder burr") for cid in cids])
    index.add_many([(5, "espresso espresso espresso grinder"), (6, "a teapot")])
    index.commit()
    hits = index.search(["espresso"], "or", 10)
    assert [cid for cid, _ in hits] == [5, *sorted(cids)]
    scores = [score for _, score in hits]
    assert scores[0] > scores[1] and len(set(scores[1:])) == 1
    assert index.search(["espresso"], "or", 3)[0][0] == 5
    assert index.search(["nothing"], "or", 10) == []
