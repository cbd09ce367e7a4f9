"""Snapshots: ``aisearch-local export`` / ``import`` (aisearch_local/snapshot.py).

A round trip over real HTTP (two servers, identical answers), the embedder check, no
re-embedding, atomicity, and hostile files: each refused with a message naming what is wrong,
and nothing written.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aisearch_local.cli import main
from aisearch_local.embed import HashingEmbedder
from aisearch_local.options import resolve_options
from aisearch_local.records import InstanceRecord
from aisearch_local.sample_corpus import CUSTOM_METADATA, SAMPLE_CORPUS_DIR
from aisearch_local.service import LocalService
from aisearch_local.snapshot import (
    Limits,
    SnapshotError,
    export_snapshot,
    import_snapshot,
    read_snapshot,
)
from aisearch_local.testing import LocalServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

QUERIES = ["espresso grind size", "how long to steep a french press", "light roast acidity"]


def _seed(svc: LocalService) -> None:
    """Two instances in two namespaces: a folder, metadata, an error item, custom config."""
    inst = svc.create_instance(
        "default",
        {"id": "coffee", "custom_metadata": CUSTOM_METADATA, "chunk_size": 64},
        source_dir=str(SAMPLE_CORPUS_DIR / "brewing"),
    )
    svc.sync_source(inst)
    svc.index_document(
        inst, key="notes/tea.md", data=b"Green tea brews at 80 degrees.", metadata={"author": "x"}
    )
    svc.index_document(inst, key="empty.md", data=b"   ", metadata={})  # status error
    svc.create_namespace("team", "the team's", {})
    other = svc.create_instance(
        "team",
        {"id": "beans", "indexing_options": {"keyword_tokenizer": "trigram"}},
        source_dir=str(SAMPLE_CORPUS_DIR / "beans"),
    )
    svc.sync_source(other)


@pytest.fixture(scope="module")
def snapshot_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A data folder seeded by :func:`_seed` and its snapshot (exported with the CLI)."""
    root = tmp_path_factory.mktemp("snap")
    svc = LocalService(root / "source")
    _seed(svc)
    svc.close()
    assert main(["export", str(root / "all.zip"), "--data-dir", str(root / "source")]) == 0
    return root / "source", root / "all.zip"


def _http(server: LocalServer) -> httpx.Client:
    return httpx.Client(base_url=server.account_url, headers=server.headers, timeout=60)


def _view(server: LocalServer) -> dict[str, Any]:
    """Everything a client can read of both instances: config, items, chunks, searches."""
    out: dict[str, Any] = {}
    with _http(server) as http:
        for ns, iid in (("default", "coffee"), ("team", "beans")):
            base = f"/ai-search/namespaces/{ns}/instances/{iid}"
            config = http.get(base).json()["result"]
            for volatile in ("public_endpoint_id", "local_source_dir"):
                config.pop(volatile, None)
            items = http.get(f"{base}/items", params={"per_page": 50}).json()["result"]
            chunks = {
                it["id"]: http.get(f"{base}/items/{it['id']}/chunks").json()["result"]
                for it in items
            }
            searches = [
                http.post(f"{base}/search", json={"query": q}).json()["result"] for q in QUERIES
            ]
            vector_only = [
                http.post(
                    f"{base}/search",
                    json={
                        "query": q,
                        "ai_search_options": {"retrieval": {"retrieval_type": "vector"}},
                    },
                ).json()["result"]
                for q in QUERIES
            ]
            out[f"{ns}/{iid}"] = (config, items, chunks, searches, vector_only)
    return out


def test_a_round_trip_gives_identical_configs_items_chunks_and_search_scores(
    snapshot_file: tuple[Path, Path], tmp_path: Path
) -> None:
    source, snap = snapshot_file
    assert main(["import", str(snap), "--data-dir", str(tmp_path / "copy")]) == 0
    with LocalServer(data_dir=source, token="t") as a:
        before = _view(a)
    with LocalServer(data_dir=tmp_path / "copy", token="t") as b:
        after = _view(b)
    assert after == before
    config, items, _, searches, vector_only = after["default/coffee"]
    assert config["custom_metadata"] == CUSTOM_METADATA and config["chunk_size"] == 64
    assert {it["status"] for it in items} == {"completed", "error"}
    assert any(it["metadata"] == {"author": "x"} for it in items)
    assert all(s["chunks"] for s in searches) and all(s["chunks"] for s in vector_only)
    assert after["team/beans"][0]["indexing_options"]["keyword_tokenizer"] == "trigram"


def _vectors_by_key(svc: LocalService, inst: InstanceRecord) -> dict[str, bytes]:
    return {row["key"]: emb.tobytes() for row, _, _, emb in svc.store.export_items(inst)}


def _search(svc: LocalService, ns: str, iid: str, query: str) -> list[dict[str, Any]]:
    inst = svc.require_instance(ns, iid)
    return svc.searcher.search(inst, query, resolve_options(None, inst.config))


class _SpyEmbedder:
    """The hashing embedder's name and vectors, recording every text it is asked to embed."""

    def __init__(self) -> None:
        self.inner = HashingEmbedder()
        self.name = self.inner.name
        self.dim = self.inner.dim
        self.texts: list[str] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.texts.extend(texts)
        return self.inner.embed(texts)


def test_import_embeds_nothing_and_keeps_the_exported_vectors(
    snapshot_file: tuple[Path, Path],
) -> None:
    source, snap = snapshot_file
    spy = _SpyEmbedder()
    svc = LocalService(None, embedder=spy)
    import_snapshot(svc, snap)
    assert spy.texts == []  # not one chunk re-embedded
    original = LocalService(source)
    for ns, iid in (("default", "coffee"), ("team", "beans")):
        got = _vectors_by_key(svc, svc.require_instance(ns, iid))
        want = _vectors_by_key(original, original.require_instance(ns, iid))
        assert got == want  # bit for bit
    assert _search(svc, "default", "coffee", "grind")
    assert spy.texts == ["grind"]  # only the query is embedded
    original.close()
    svc.close()


def test_an_in_memory_server_serves_an_imported_snapshot(snapshot_file: tuple[Path, Path]):
    _, snap = snapshot_file
    with LocalServer(in_memory=True) as server:
        assert server.service is not None
        import_snapshot(server.service, snap, only=[("team", "beans")], target=("default", "b"))
        with _http(server) as http:
            r = http.post("/ai-search/instances/b/search", json={"query": "arabica"})
            assert r.status_code == 200 and r.json()["result"]["chunks"], r.text
            r = http.get("/ai-search/instances")
            assert [i["id"] for i in r.json()["result"]] == ["b"]


def test_a_snapshot_of_another_embedder_is_refused_naming_both(
    snapshot_file: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, snap = snapshot_file
    code = main(["import", str(snap), "--data-dir", str(tmp_path), "--embedder", "hashing:128"])
    err = capsys.readouterr().err
    assert code == 1
    assert (
        "instance default/coffee was embedded with 'hashing-v1-384' (dimension 384) but this "
        "server's embedder is 'hashing-v1-128' (dimension 128)" in err
    )
    assert "--embedder hashing (import, serve or exec)" in err
    svc = LocalService(tmp_path)
    assert svc.store.list_instances(None) == []  # nothing written
    svc.close()


def test_an_existing_instance_is_refused_unless_replace_and_nothing_is_half_imported(
    snapshot_file: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, snap = snapshot_file
    svc = LocalService(None)
    svc.create_namespace("team", None, {})
    svc.create_instance("team", {"id": "beans"})  # the snapshot's second instance
    with pytest.raises(SnapshotError, match=r"instance team/beans already exists: pass --replace"):
        import_snapshot(svc, snap)
    # the first instance was not written either: one transaction
    assert [i.id for i in svc.store.list_instances(None)] == ["beans"]
    assert svc.store.list_items(svc.require_instance("team", "beans")) == []
    done = import_snapshot(svc, snap, replace=True)
    assert [(i.namespace, i.id, n > 0) for i, n, _ in done] == [
        ("default", "coffee", True),
        ("team", "beans", True),
    ]
    assert svc.store.list_items(svc.require_instance("team", "beans"))
    svc.close()


def test_import_as_another_name_gives_the_ids_an_upload_there_gives(
    snapshot_file: tuple[Path, Path],
) -> None:
    _, snap = snapshot_file
    svc = LocalService(None)
    import_snapshot(svc, snap, only=[("default", "coffee")], target=("default", "copy"))
    inst = svc.require_instance("default", "copy")
    before = {it["key"]: it["id"] for it in svc.store.list_items(inst)}
    item = svc.index_document(inst, key="notes/tea.md", data=b"Oolong.", metadata={})
    assert item["id"] == before["notes/tea.md"]  # an upsert, not a second item
    assert len(svc.store.list_items(inst)) == len(before)
    with pytest.raises(SnapshotError, match=r"a target name takes one instance .* holds 2"):
        import_snapshot(svc, snap, target=("default", "x"))
    with pytest.raises(SnapshotError, match=r"no instance default/nope in the snapshot"):
        import_snapshot(svc, snap, only=[("default", "nope")])
    svc.close()


def test_cli_export_chooses_instances_and_names_unknown_ones(
    snapshot_file: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, _ = snapshot_file
    out = tmp_path / "one.zip"
    assert main(["export", str(out), "--data-dir", str(source), "--instance", "team/beans"]) == 0
    assert [(i.namespace, i.id) for i in read_snapshot(out).instances] == [("team", "beans")]
    assert "exported team/beans:" in capsys.readouterr().err
    assert main(["export", str(out), "--data-dir", str(source), "--instance", "nope"]) == 1
    err = capsys.readouterr().err
    assert "no instance default/nope to export (instances: default/coffee, team/beans)" in err
    assert main(["export", str(out), "--data-dir", str(tmp_path / "none")]) == 2
    assert "no aisearch-local data in" in capsys.readouterr().err
    assert main(["export", str(out), "--data-dir", str(source), "--instance", "A/b"]) == 2
    assert "--instance 'A/b': the namespace must be" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.zip"]  # no temporary file left


# -- hostile snapshots --------------------------------------------------------------------------


def _members(snap: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(snap) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _zip(members: dict[str, bytes], path: Path) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _npy(array: np.ndarray, *, fortran: bool = False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asfortranarray(array) if fortran else array)
    return buf.getvalue()


def _vectors(members: dict[str, bytes]) -> np.ndarray:
    return np.load(io.BytesIO(members["instances/0/embeddings.npy"]))


def _edit_line(members: dict[str, bytes], edit: Callable[[dict[str, Any]], None]) -> None:
    lines = members["instances/0/items.jsonl"].splitlines()
    first = json.loads(lines[0])
    edit(first)
    lines[0] = json.dumps(first).encode()
    members["instances/0/items.jsonl"] = b"\n".join(lines) + b"\n"


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda item: item.__setitem__(key, value)


E = "instances/0/embeddings.npy"
M = "manifest.json"


def _nan(m: dict[str, bytes]) -> None:
    v = _vectors(m).copy()
    v[3, 5] = np.nan
    m[E] = _npy(v)


def _manifest(**changes: Any) -> Callable[[dict[str, bytes]], None]:
    def edit(m: dict[str, bytes]) -> None:
        m[M] = json.dumps({**json.loads(m[M]), **changes}).encode()

    return edit


def _instance(**changes: Any) -> Callable[[dict[str, bytes]], None]:
    def edit(m: dict[str, bytes]) -> None:
        name = "instances/0/instance.json"
        m[name] = json.dumps({**json.loads(m[name]), **changes}).encode()

    return edit


def _rename_in_manifest(m: dict[str, bytes]) -> None:
    manifest = json.loads(m[M])
    manifest["instances"][0] = {"namespace": "default", "id": "other"}
    m[M] = json.dumps(manifest).encode()


def _chunks(**first: Any) -> Callable[[dict[str, Any]], None]:
    """Change the first chunk's text, start or end."""

    def edit(item: dict[str, Any]) -> None:
        for name, value in first.items():
            item[f"chunk_{name}"][0] = value

    return edit


def _data(m: dict[str, bytes]) -> None:
    def edit(item: dict[str, Any]) -> None:
        item["data"] = base64.b64encode(b"changed").decode()

    _edit_line(m, edit)


HOSTILE: dict[str, tuple[Callable[[dict[str, bytes]], None], str]] = {
    "dot-dot member": (lambda m: m.__setitem__("../evil.txt", b"x"), "unexpected member '../evil"),
    "missing vectors": (lambda m: m.pop(E), "missing 'instances/0/embeddings.npy'"),
    "newer version": (_manifest(version=2), "format version 2: this aisearch-local reads"),
    "other format": (_manifest(format="zip"), "not an aisearch-local snapshot"),
    "manifest names": (_rename_in_manifest, "manifest.json: instances[0] does not name"),
    "not json": (lambda m: m.__setitem__(M, b"{nope"), "manifest.json: JSON: is not valid JSON"),
    "NaN constant": (
        lambda m: m.__setitem__(M, b'{"version": NaN}'),
        "manifest.json: version: NaN is not allowed",
    ),
    "NaN vector": (_nan, "embeddings.npy: row 3 holds NaN or infinity"),
    "float64": (lambda m: m.__setitem__(E, _npy(_vectors(m).astype("<f8"))), "float32"),
    "big endian": (lambda m: m.__setitem__(E, _npy(_vectors(m).astype(">f4"))), "float32"),
    "fortran": (lambda m: m.__setitem__(E, _npy(_vectors(m), fortran=True)), "Fortran"),
    "shape": (lambda m: m.__setitem__(E, _npy(_vectors(m)[:, :100])), "but the instance has"),
    "rows": (lambda m: m.__setitem__(E, _npy(_vectors(m)[1:])), "but the instance has"),
    "norm": (lambda m: m.__setitem__(E, _npy(_vectors(m) * 5)), "row 0 has norm 5"),
    "pickle": (
        lambda m: m.__setitem__(E, _npy(np.array([{"a": 1}], dtype=object))),
        "must hold little-endian float32",
    ),
    "not npy": (lambda m: m.__setitem__(E, b"PK\x03\x04 junk"), "not a .npy array"),
    "bad id": (_instance(id="Bad Id"), "id 'Bad Id' is not a valid id"),
    "long id": (_instance(id="a" * 65), "id is longer than 64 characters"),
    "config type": (_instance(config=[]), "config must be an object"),
    "config value": (
        _instance(config={"chunk_size": "big"}),
        "instance default/coffee: config.chunk_size",
    ),
    "dim": (_instance(embedder={"name": "hashing-v1-384", "dim": -1}), "dim must be an integer"),
    "embedder name": (
        _instance(embedder={"name": "hashing\x1b[2J", "dim": 384}),
        "embedder.name must be printable ASCII without spaces",
    ),
    "count": (_instance(items=1), "holds more than the 1 items instance.json says"),
    "key dot-dot": (lambda m: _edit_line(m, _set("key", "../x.md")), "without '.' or '..'"),
    "key control": (lambda m: _edit_line(m, _set("key", "a\x00b")), "control characters"),
    "metadata": (lambda m: _edit_line(m, _set("metadata", {"a": {"b": 1}})), "metadata.a"),
    "status": (lambda m: _edit_line(m, _set("status", "running")), "status must be completed"),
    "escapes": (  # a field name shown in the message cannot drive the terminal
        lambda m: _edit_line(m, _set("metadata", {"a\x1b[2Jb": [1]})),
        "metadata.a\\x1b[2Jb: must be a string, number or boolean",
    ),
    "time": (
        lambda m: _edit_line(m, _set("created_at", "<script>")),
        "line 1: created_at must be an ISO 8601 time",
    ),
    "instance time": (_instance(modified_at="yesterday"), "modified_at must be an ISO 8601"),
    "checksum": (_data, "checksum is not the SHA-256 of data"),
    "base64": (lambda m: _edit_line(m, _set("data", "***")), "data must be base64"),
    "span": (lambda m: _edit_line(m, _chunks(end=10**9)), "chunk_start[0] and chunk_end[0] must"),
    "chunk text": (lambda m: _edit_line(m, _chunks(text=5)), "chunk_text[0] must be a string"),
    "chunk lists": (lambda m: _edit_line(m, _set("chunk_end", [])), "differ in length"),
    "line array": (
        lambda m: m.__setitem__("instances/0/items.jsonl", b"[]\n"),
        "line 1: must be a JSON object",
    ),
    "huge int": (
        lambda m: _edit_line(m, _set("timestamp_ms", 2**60)),
        "line 1: timestamp_ms: the integer 1152921504606846976 is out of range",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_snapshot_is_refused_clearly_and_writes_nothing(
    case: str, snapshot_file: tuple[Path, Path], tmp_path: Path
) -> None:
    _, snap = snapshot_file
    members = _members(snap)
    edit, message = HOSTILE[case]
    edit(members)
    bad = _zip(members, tmp_path / "bad.zip")
    svc = LocalService(None)
    with pytest.raises(SnapshotError) as info:
        import_snapshot(svc, bad)
    assert str(info.value).startswith(f"{bad}: ")
    assert message in str(info.value)
    assert svc.store.list_instances(None) == []
    svc.close()


def test_zip_bombs_duplicates_and_non_zips_are_refused(
    snapshot_file: tuple[Path, Path], tmp_path: Path
) -> None:
    _, snap = snapshot_file
    members = _members(snap)
    bomb = dict(members, **{"instances/0/items.jsonl": b" " * (64 << 20)})
    with pytest.raises(SnapshotError, match=r"items.jsonl: expands \d+ times .* zip bomb"):
        read_snapshot(_zip(bomb, tmp_path / "bomb.zip"))
    with pytest.raises(SnapshotError, match=r"archive: expands to \d+ bytes \(at most 1000\)"):
        read_snapshot(snap, limits=Limits(max_total_bytes=1000))
    with pytest.raises(SnapshotError, match=r"line 1: is longer than 100 bytes"):
        read_snapshot(snap, limits=Limits(max_line_bytes=100))
    with pytest.raises(SnapshotError, match=r"manifest.json: 2 instances \(at most 0\)"):
        read_snapshot(snap, limits=Limits(max_instances=0))
    path = tmp_path / "dup.zip"
    with zipfile.ZipFile(path, "w") as zf, pytest.warns(UserWarning, match="Duplicate name"):
        for name, data in members.items():
            zf.writestr(name, data)
        zf.writestr(M, members[M])
    with pytest.raises(SnapshotError, match=r"member 'manifest.json' appears twice"):
        read_snapshot(path)
    (tmp_path / "text.zip").write_text("hello")
    with pytest.raises(SnapshotError, match=r"not a snapshot \(not a zip archive"):
        read_snapshot(tmp_path / "text.zip")
    with pytest.raises(SnapshotError, match=r"no such file"):
        read_snapshot(tmp_path / "missing.zip")
    with pytest.raises(SnapshotError, match=r"is a folder"):
        read_snapshot(tmp_path)


def test_a_bad_second_instance_leaves_the_first_unwritten(
    snapshot_file: tuple[Path, Path], tmp_path: Path
) -> None:
    _, snap = snapshot_file
    members = _members(snap)
    v = np.load(io.BytesIO(members["instances/1/embeddings.npy"])).copy()
    v[0, 0] = np.inf
    members["instances/1/embeddings.npy"] = _npy(v)
    svc = LocalService(None)
    with pytest.raises(SnapshotError, match=r"instances/1/embeddings.npy: row 0"):
        import_snapshot(svc, _zip(members, tmp_path / "bad.zip"))
    assert svc.store.list_instances(None) == []
    svc.close()


@pytest.fixture(scope="module")
def small_snapshot(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    root = tmp_path_factory.mktemp("small")
    svc = LocalService(None)
    inst = svc.create_instance("default", {"id": "s"})
    svc.index_document(inst, key="a.md", data=b"Espresso is short.", metadata={"n": 1})
    svc.index_document(inst, key="b.md", data=b"Tea is long.", metadata={})
    export_snapshot(svc.store, root / "s.zip")
    svc.close()
    return _members(root / "s.zip")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
ITEM_FIELDS = ["key", "status", "error", "checksum", "metadata", "timestamp_ms", "source_id"]
ITEM_FIELDS += ["created_at", "modified_at", "data", "chunk_text", "chunk_start", "chunk_end"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    field=st.sampled_from(ITEM_FIELDS),
    value=json_values,
    position=st.integers(min_value=0),
    byte=st.integers(min_value=0, max_value=255),
    mode=st.sampled_from(["field", "byte"]),
)
def test_fuzzed_snapshots_import_whole_or_are_refused_with_a_snapshot_error(
    small_snapshot: dict[str, bytes],
    tmp_path_factory: pytest.TempPathFactory,
    field: str,
    value: Any,
    position: int,
    byte: int,
    mode: str,
) -> None:
    members = dict(small_snapshot)
    if mode == "field":
        _edit_line(members, _set(field, value))  # json.dumps writes NaN: the reader refuses it
        raw = io.BytesIO()
        with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in members.items():
                zf.writestr(name, data)
        blob = raw.getvalue()
    else:
        blob = bytearray(_zip(members, tmp_path_factory.mktemp("f") / "x.zip").read_bytes())
        blob[position % len(blob)] = byte
        blob = bytes(blob)
    path = tmp_path_factory.mktemp("fuzz") / "s.zip"
    path.write_bytes(blob)
    svc = LocalService(None)
    try:
        done = import_snapshot(svc, path)
    except SnapshotError as exc:
        assert str(exc).startswith(f"{path}: ")
        assert svc.store.list_instances(None) == []
    else:  # accepted: then whole, and searchable
        inst = done[0][0]
        assert len(svc.store.list_items(inst)) == 2
        _search(svc, inst.namespace, inst.id, "espresso")
    finally:
        svc.close()


@pytest.mark.parametrize(
    ("where", "offset", "value", "message"),
    [
        # "version needed to extract" 6.4: zipfile raises NotImplementedError when it opens
        (b"PK\x01\x02", 6, 64, "not a zip archive: zip file version 6.4"),
        # general purpose flag bit 5 ("compressed patched data"): NotImplementedError on read
        (b"PK\x01\x02", 8, 0x20, "holds patched data"),
    ],
)
def test_zip_features_python_cannot_read_are_a_snapshot_error(
    small_snapshot: dict[str, bytes],
    tmp_path: Path,
    where: bytes,
    offset: int,
    value: int,
    message: str,
) -> None:
    blob = bytearray(_zip(small_snapshot, tmp_path / "ok.zip").read_bytes())
    at = blob.index(where) + offset
    blob[at : at + 2] = value.to_bytes(2, "little")
    path = tmp_path / "s.zip"
    path.write_bytes(bytes(blob))
    svc = LocalService(None)
    try:
        with pytest.raises(SnapshotError, match=message):
            import_snapshot(svc, path)
        assert svc.store.list_instances(None) == []
    finally:
        svc.close()


def test_the_checksum_is_what_the_store_computes(small_snapshot: dict[str, bytes]) -> None:
    line = json.loads(small_snapshot["instances/0/items.jsonl"].splitlines()[0])
    assert line["checksum"] == hashlib.sha256(base64.b64decode(line["data"])).hexdigest()


def test_cli_import_chooses_and_renames(
    snapshot_file: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, snap = snapshot_file
    base = ["import", str(snap), "--data-dir", str(tmp_path)]
    assert main([*base, "--instance", "team/beans", "--as", "b2"]) == 0
    assert "imported default/b2: 8 items" in capsys.readouterr().err
    assert main([*base, "--as", "b3"]) == 1
    assert "a target name takes one instance and the snapshot holds 2" in capsys.readouterr().err
    assert main([*base, "--instance", "team/beans", "--as", "b2"]) == 1
    assert "instance default/b2 already exists: pass --replace" in capsys.readouterr().err
    assert main([*base, "--instance", "team/beans", "--as", "b2", "--replace"]) == 0
    assert main([*base, "--as", "B!"]) == 2
    assert "--as 'B!': the instance id must be" in capsys.readouterr().err
