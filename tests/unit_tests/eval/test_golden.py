"""Golden sets: the BEIR folder (tsv or json judgements) and the simple JSONL, and bad input."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from aisearch_eval import SAMPLE_GOLDEN_SET, GoldenSetError, load_golden_set


def _beir(tmp_path: Path, *, qrels_json: bool = False, gz: bool = False) -> Path:
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "queries.jsonl").write_text(
        '{"_id": "q1", "text": "what is a"}\n{"_id": "q2", "text": "b?"}\n'
        '{"_id": "q3", "text": "unjudged"}\n',
        encoding="utf-8",
    )
    if qrels_json:
        (tmp_path / "qrels.json").write_text('{"q1": ["10"], "q2": {"20": 2, "21": 0}}')
    else:
        (tmp_path / "qrels").mkdir()
        (tmp_path / "qrels" / "test.tsv").write_text(
            "query-id\tcorpus-id\tscore\nq1\t10\t1\nq2\t20\t2\nq2\t21\t0\n"
        )
    corpus = '{"_id": "10", "title": "A", "text": "about a"}\n{"_id": "20", "text": "b"}\n'
    if gz:
        with gzip.open(tmp_path / "corpus.jsonl.gz", "wt", encoding="utf-8") as fh:
            fh.write(corpus)
    else:
        (tmp_path / "corpus.jsonl").write_text(corpus, encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(("qrels_json", "gz"), [(False, False), (True, True)])
def test_beir_folder(tmp_path: Path, qrels_json: bool, gz: bool) -> None:
    golden = load_golden_set(_beir(tmp_path, qrels_json=qrels_json, gz=gz))
    assert golden.queries == {"q1": "what is a", "q2": "b?"}
    assert golden.skipped == 1
    assert golden.judgements["q1"] == {"10.txt": 1.0}
    assert golden.judgements["q2"] == {"20.txt": 2.0, "21.txt": 0.0}
    docs = list(golden.documents())
    assert [(d.key, d.content()) for d in docs] == [("10.txt", "A\n\nabout a"), ("20.txt", "b")]


def test_key_template(tmp_path: Path) -> None:
    golden = load_golden_set(_beir(tmp_path), key_template="scifact/{id}.md")
    assert golden.judgements["q1"] == {"scifact/10.md": 1.0}
    with pytest.raises(GoldenSetError, match=r"key_template: must contain only the field \{id\}"):
        load_golden_set(tmp_path, key_template="{doc}.txt")


def test_the_sample_set_loads() -> None:
    golden = load_golden_set(SAMPLE_GOLDEN_SET)
    assert len(golden) >= 12
    assert golden.judgements["slow-drawdown"]["troubleshooting/slow-drawdown-pour-over.md"] == 2
    assert golden.limit(3).queries == dict(list(golden.queries.items())[:3])
    assert list(golden.documents()) == []


def test_sample_set_keys_exist_in_the_sample_corpus() -> None:
    from aisearch_local.sample_corpus import iter_sample_documents

    keys = {doc.key for doc in iter_sample_documents()}
    golden = load_golden_set(SAMPLE_GOLDEN_SET)
    assert {k for j in golden.judgements.values() for k in j} <= keys


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"query": "q", "expected": []}', "line 1: expected: must be a non-empty list of keys"),
        ('{"query": "", "expected": ["a"]}', "line 1: query: must be a non-empty string"),
        ('{"expected": ["a"]}', "line 1: query: must be a non-empty string"),
        ('{"query": "q", "expected": {"a": NaN}}', "line 1: not valid JSON"),
        ('{"query": "q", "expected": {"a": true}}', "expected: a: grade: must be a finite number"),
        ('["q"]', "line 1: must be a JSON object"),
        ("{", "line 1: not valid JSON"),
        ("", "holds no queries"),
    ],
)
def test_simple_jsonl_errors_name_line_and_field(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "set.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(GoldenSetError, match=message.replace("[", r"\[")):
        load_golden_set(path)


def test_duplicate_ids_and_missing_paths(tmp_path: Path) -> None:
    path = tmp_path / "set.jsonl"
    path.write_text('{"id": "a", "query": "x", "expected": ["k"]}\n' * 2, encoding="utf-8")
    with pytest.raises(GoldenSetError, match="line 2: id: 'a' is used twice"):
        load_golden_set(path)
    with pytest.raises(GoldenSetError, match="no such file or folder"):
        load_golden_set(tmp_path / "absent")
    with pytest.raises(GoldenSetError, match=r"not a BEIR folder \(no queries.jsonl\)"):
        load_golden_set(tmp_path)


def test_beir_errors(tmp_path: Path) -> None:
    folder = _beir(tmp_path)
    with pytest.raises(GoldenSetError, match=r"no judgements: expected qrels/train.tsv"):
        load_golden_set(folder, split="train")
    (folder / "qrels" / "test.tsv").write_text("q9\t1\t1\n")
    with pytest.raises(GoldenSetError, match=r"missing from queries.jsonl \(first: 'q9'\)"):
        load_golden_set(folder)
    (folder / "qrels" / "test.tsv").write_text("q1\t1\tnan\n")
    with pytest.raises(GoldenSetError, match="line 1: grade: must be a finite number"):
        load_golden_set(folder)
    (folder / "qrels" / "test.tsv").write_text("q1\t1\n")
    with pytest.raises(GoldenSetError, match="line 1: must be query-id, corpus-id and score"):
        load_golden_set(folder)
    (folder / "qrels" / "test.tsv").write_text("q1\t10\t1\n")
    (folder / "corpus.jsonl").write_text(json.dumps({"_id": "10", "text": 3}) + "\n")
    with pytest.raises(GoldenSetError, match="line 1: title and text: must be strings"):
        list(load_golden_set(folder).documents())


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_json = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(
        st.fixed_dictionaries({}, optional={"query": _json, "expected": _json, "id": _json}),
        max_size=3,
    )
    | st.lists(st.text(max_size=20), max_size=3)
)
def test_any_jsonl_loads_or_fails_with_golden_set_error(tmp_path: Path, rows) -> None:
    path = tmp_path / "fuzz.jsonl"
    lines = [r if isinstance(r, str) else json.dumps(r) for r in rows]
    path.write_text("\n".join(lines).replace("\r", ""), encoding="utf-8", errors="surrogatepass")
    try:
        golden = load_golden_set(path)
    except GoldenSetError:
        return
    for judgements in golden.judgements.values():
        assert judgements and all(isinstance(g, float) for g in judgements.values())


def test_bytes_that_are_not_utf8_are_a_golden_set_error(tmp_path: Path) -> None:
    path = tmp_path / "set.jsonl"
    path.write_bytes(b'{"query": "ok", "expected": ["a"]}\n{"query": "\xff"}\n')
    with pytest.raises(GoldenSetError, match=r"set\.jsonl: cannot be read as UTF-8 text \("):
        load_golden_set(path)
    folder = _beir(tmp_path / "beir")
    (folder / "corpus.jsonl").unlink()
    (folder / "corpus.jsonl.gz").write_bytes(b"not gzip")
    with pytest.raises(GoldenSetError, match="cannot be read as UTF-8 text"):
        list(load_golden_set(folder).documents())
