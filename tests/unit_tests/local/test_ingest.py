"""Unit tests for aisearch_local.ingest."""

from __future__ import annotations

import itertools
import json
import os
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aisearch_local.ingest import (
    MAX_FILE_BYTES,
    MAX_OTHER_FILE_BYTES,
    SUPPORTED_EXTENSIONS,
    ChunkSpan,
    IngestError,
    SourceFile,
    builtin_attributes,
    chunk_text,
    extract_text,
    file_limit,
    scan_source_dir,
    size_problem,
)

# --------------------------------------------------------------------------------- extraction


def test_supported_extensions() -> None:
    assert {".md", ".markdown", ".txt", ".html", ".htm", ".json"} == SUPPORTED_EXTENSIONS
    assert MAX_FILE_BYTES == 10 * 1024 * 1024
    assert MAX_OTHER_FILE_BYTES == 4 * 1024 * 1024


@pytest.mark.parametrize(
    ("key", "use_ocr", "limit"),
    [
        ("a.md", False, 10 * 1024 * 1024),
        ("src/main.PY", False, 10 * 1024 * 1024),
        ("data.json", False, 10 * 1024 * 1024),
        ("page.html", False, 4 * 1024 * 1024),
        ("scan.pdf", False, 4 * 1024 * 1024),
        ("scan.pdf", True, 10 * 1024 * 1024),
        ("deck.pptx", True, 4 * 1024 * 1024),
        ("Makefile", False, 4 * 1024 * 1024),
    ],
)
def test_file_limit_by_format(key: str, use_ocr: bool, limit: int) -> None:
    assert file_limit(key, use_ocr=use_ocr) == limit
    assert size_problem(key, limit, use_ocr=use_ocr) is None
    problem = size_problem(key, limit + 1, use_ocr=use_ocr)
    assert problem is not None and problem.startswith(f"{key}: file is larger than the {limit}")


def test_markdown_and_text_are_decoded_with_newlines_normalised() -> None:
    md = b"# Espresso\r\n\r\nGrind *fine*.\rDose 18 g.\n"
    assert extract_text("guides/espresso.md", md) == "# Espresso\n\nGrind *fine*.\nDose 18 g.\n"
    assert extract_text("notes.TXT", "\ufeffcafé au lait".encode()) == "café au lait"
    assert extract_text("a.markdown", b"hello") == "hello"


def test_html_extraction() -> None:
    html = b"""<!doctype html>
    <html><head><title>Espresso  Guide</title>
    <meta charset="utf-8"><style>p { color: red }</style>
    <script>var secret = "do not index";</script></head>
    <body><nav>Home</nav>
    <h1>Espresso</h1>
    <p>Grind   fine.
       Dose 18&nbsp;g &amp; yield 36&#160;g.</p>
    <ul><li>Tamp evenly</li><li>Pull 25 s</li></ul>
    <p>Line one<br>Line two</p>
    <pre>ratio = 1:2
  keep indent</pre>
    <noscript>enable js</noscript>
    </body></html>"""
    text = extract_text("guide.html", html)
    blocks = text.split("\n\n")
    assert blocks[0] == "Espresso Guide"  # <title> first
    assert "Espresso" in blocks  # heading is its own paragraph
    assert "Grind fine. Dose 18 g & yield 36 g." in blocks  # entities decoded, spaces collapsed
    assert "Tamp evenly" in blocks and "Pull 25 s" in blocks
    assert "Line one" in blocks and "Line two" in blocks
    assert "ratio = 1:2\n  keep indent" in blocks
    assert "secret" not in text and "color" not in text and "enable js" not in text


def test_html_title_not_duplicated_and_htm_extension() -> None:
    text = extract_text("a.htm", b"<title>Brew</title><h1>Brew</h1><p>Body text.</p>")
    assert text == "Brew\n\nBody text."


def test_json_flattening() -> None:
    doc = {
        "name": "V60",
        "specs": {"ratio": "1:16", "temps": [92, 94]},
        "steps": [{"t": 30, "action": "bloom"}, {"t": 120, "action": "pour"}],
        "ok": True,
        "none": None,
        "empty": {},
    }
    text = extract_text("recipes/v60.json", json.dumps(doc).encode())
    assert text.splitlines() == [
        "name: V60",
        "specs.ratio: 1:16",
        "specs.temps: 92, 94",
        "steps[0].t: 30",
        "steps[0].action: bloom",
        "steps[1].t: 120",
        "steps[1].action: pour",
        "ok: true",
        "none: null",
        "empty: {}",
    ]
    assert extract_text("list.json", b'["a", "b"]') == "a, b"
    assert extract_text("scalar.json", b'"just text"') == "just text"


@pytest.mark.parametrize(
    ("key", "data", "reason"),
    [
        ("report.pdf", b"%PDF-1.7", r"unsupported file type \.pdf; supported: \.htm, \.html"),
        ("Makefile", b"all:", r"unsupported file type \(none\)"),
        ("img.PNG", b"\x89PNG", r"unsupported file type \.png"),
        ("bad.txt", b"ok \xff\xfe bytes", r"not valid UTF-8 text \(undecodable byte at offset 3\)"),
        ("big.md", b"a" * (MAX_FILE_BYTES + 1), r"larger than the 10485760 byte \(10 MiB\) limit"),
        (
            "big.html",
            b"a" * (MAX_OTHER_FILE_BYTES + 1),
            r"larger than the 4194304 byte \(4 MiB\) limit of its format \(10 MiB applies to "
            r"plain text, code, and PDFs with indexing_options.use_ocr\)",
        ),
        ("blank.md", b"  \n\t\n", r"no text to index"),
        ("empty.txt", b"", r"no text to index"),
        ("scripts.html", b"<script>x()</script><style>a{}</style>", r"no text to index"),
        ("bad.json", b'{"a": }', r"invalid JSON \(Expecting value at line 1 column 7\)"),
        ("empty.json", b"{}", r"no text to index"),
    ],
)
def test_extract_errors_name_key_and_reason(key: str, data: bytes, reason: str) -> None:
    with pytest.raises(IngestError) as info:
        extract_text(key, data)
    message = str(info.value)
    assert message.startswith(f"{key}: ")
    assert re.search(reason, message), message


def test_file_exactly_at_limit_is_accepted() -> None:
    assert len(extract_text("max.txt", b"a" * MAX_FILE_BYTES)) == MAX_FILE_BYTES


# ----------------------------------------------------------------------------------- chunking


def _doc(paragraphs: int = 30, sentences: int = 6) -> str:
    paras = []
    for p in range(paragraphs):
        sents = [
            f"Paragraph {p} sentence {s} talks about espresso grind dose and yield."
            for s in range(sentences)
        ]
        paras.append(" ".join(sents))
    return "\n\n".join(paras)


def _covered(text: str, chunks: list[ChunkSpan]) -> None:
    covered = bytearray(len(text))
    for c in chunks:
        assert text[c.start : c.end] == c.text
        covered[c.start : c.end] = b"\x01" * (c.end - c.start)
    for m in re.finditer(r"\S", text):
        assert covered[m.start()], f"char {m.start()} not in any chunk"


@pytest.mark.parametrize(("size", "overlap"), [(16, 0), (64, 10), (128, 30), (256, 10), (512, 0)])
def test_chunks_respect_size_cover_text_and_overlap(size: int, overlap: int) -> None:
    text = _doc()
    chunks = chunk_text(text, chunk_size=size, chunk_overlap=overlap)
    assert len(chunks) >= 2
    _covered(text, chunks)
    for c in chunks:
        assert 1 <= len(c.text.split()) <= size
    for a, b in itertools.pairwise(chunks):
        assert a.start < b.start  # always advances
        shared = len(text[b.start : a.end].split()) if b.start < a.end else 0
        assert shared <= size * overlap // 100
        if overlap == 0:
            assert b.start >= a.end
    # deterministic
    assert chunk_text(text, chunk_size=size, chunk_overlap=overlap) == chunks


def test_overlap_is_a_percentage_of_chunk_size() -> None:
    words = " ".join(f"w{i}" for i in range(1000))  # no sentence boundaries: hard cuts
    chunks = chunk_text(words, chunk_size=100, chunk_overlap=20)
    assert [len(c.text.split()) for c in chunks[:3]] == [100, 100, 100]
    assert chunks[1].text.split()[:20] == chunks[0].text.split()[-20:]
    assert chunks[1].text.split()[0] == "w80"


def test_chunks_prefer_paragraph_then_sentence_boundaries() -> None:
    text = _doc(paragraphs=10, sentences=4)  # 4 x 11 = 44 words per paragraph
    chunks = chunk_text(text, chunk_size=100, chunk_overlap=0)
    for c in chunks[:-1]:
        assert text[c.end : c.end + 2] == "\n\n"  # every cut at a paragraph break
    one_para = " ".join(f"Sentence {i} has exactly six words." for i in range(50))
    chunks = chunk_text(one_para, chunk_size=64, chunk_overlap=0)
    for c in chunks:
        assert c.text.endswith(".")  # cut at sentence ends
        assert c.text.startswith("Sentence")


def _section(title: str, items: int) -> str:
    lines = [f"{i}. **Item {i}.** Tamp the coffee level and wait a little before the shot."
             for i in range(1, items + 1)]  # fmt: skip
    return f"## {title}\n\n" + "\n".join(lines)


def test_a_markdown_heading_starts_a_chunk_and_never_ends_one() -> None:
    # 70 words, then a section of 4 + 8 x 14: its heading falls in the second half of the first
    # window; cut after it, the section would lose its heading to the previous chunk
    intro = " ".join(f"Sentence {i} has exactly six words." for i in range(11)) + " Two more."
    text = f"# Title\n\n{intro}\n\n{_section('Causes and fixes', 8)}\n\n{_section('More', 3)}"
    chunks = chunk_text(text, chunk_size=128, chunk_overlap=20)
    firsts = [c.text.split("\n", 1)[0] for c in chunks]
    assert firsts == ["# Title", "## Causes and fixes", "## More"]
    assert chunks[0].text.endswith("Two more.")  # not with the heading of the next section
    assert chunks[1].text.endswith("before the shot.")
    # the chunk cut before a heading starts at it: no overlap dragged from the section before
    assert chunks[1].start == text.index("## Causes")


def test_no_chunk_ends_with_a_heading_or_a_list_number() -> None:
    # one paragraph of numbered items: the only breaks are line ends and sentence ends
    text = "# Fixes\n\n" + _section("Causes", 30)[len("## Causes\n\n") :]
    for size in (16, 24, 40, 64):
        for c in chunk_text(text, chunk_size=size, chunk_overlap=10):
            last = c.text.splitlines()[-1]
            assert not last.startswith("#"), (size, c.text)
            assert not re.fullmatch(r"\d+\.", c.text.split()[-1]), (size, c.text)


def test_a_heading_inside_a_window_start_keeps_the_size_rules() -> None:
    # headings every few words: a heading before the window's second half is no break
    text = "\n\n".join(f"## Part {i}\n\nOne two three four five six seven." for i in range(40))
    chunks = chunk_text(text, chunk_size=32, chunk_overlap=10)
    _covered(text, chunks)
    for c in chunks:
        assert 16 <= len(c.text.split()) <= 32 or c is chunks[-1]
        assert c.text.startswith("## Part")


def test_short_and_empty_texts() -> None:
    assert chunk_text("") == []
    assert chunk_text("   \n ") == []
    assert chunk_text("  hello world  ") == [ChunkSpan("hello world", 2, 13)]


@pytest.mark.parametrize(
    ("kwargs", "field", "bounds"),
    [
        ({"chunk_size": 0}, "chunk_size", "between 16 and 4096"),
        ({"chunk_size": 5000}, "chunk_size", "between 16 and 4096"),
        ({"chunk_size": 64.0}, "chunk_size", "between 16 and 4096"),
        ({"chunk_overlap": -1}, "chunk_overlap", "between 0 and 30"),
        ({"chunk_overlap": 31}, "chunk_overlap", "between 0 and 30"),
        ({"chunk_overlap": True}, "chunk_overlap", "between 0 and 30"),
    ],
)
def test_chunk_arguments_validated(kwargs: dict[str, object], field: str, bounds: str) -> None:
    with pytest.raises(ValueError, match=f"{field} must be an integer {bounds}"):
        chunk_text("some text", **kwargs)  # type: ignore[arg-type]


def test_unicode_offsets_are_character_offsets() -> None:
    text = "Café crème. " * 40
    chunks = chunk_text(text, chunk_size=16, chunk_overlap=10)
    _covered(text, chunks)


# ------------------------------------------------------------------------------- source dirs


def _write(root: Path, rel: str, data: bytes | str, mtime_ns: int | None = None) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def test_scan_source_dir(tmp_path: Path) -> None:
    _write(tmp_path, "brewing/espresso.md", "# Espresso", mtime_ns=1_735_689_600_123_456_789)
    _write(tmp_path, "brewing/espresso.md.meta.json", json.dumps({"level": 2, "tag": "hot"}))
    _write(tmp_path, "brewing/cold.txt", "Cold brew")
    _write(tmp_path, "about.html", "<p>About</p>")
    _write(tmp_path, "scan.pdf", b"%PDF")  # unsupported: still yielded
    _write(tmp_path, ".hidden.md", "secret")
    _write(tmp_path, ".git/config", "x")
    _write(tmp_path, "brewing/.DS_Store", b"\x00")
    _write(tmp_path, "orphan.md.meta.json", "{}")  # sidecar without its document
    _write(tmp_path, "z/deep/er/file.json", '{"a": 1}')

    files = list(scan_source_dir(tmp_path))
    assert [f.key for f in files] == [
        "about.html",
        "brewing/cold.txt",
        "brewing/espresso.md",
        "scan.pdf",
        "z/deep/er/file.json",
    ]
    espresso = files[2]
    assert isinstance(espresso, SourceFile)
    assert espresso.data == b"# Espresso"
    assert espresso.metadata == {"level": 2, "tag": "hot"}
    assert espresso.timestamp_ms == 1_735_689_600_123
    assert espresso.metadata_error is None
    assert files[0].metadata == {}
    assert list(scan_source_dir(tmp_path)) == files  # deterministic


def test_scan_bad_sidecars_are_reported_not_fatal(tmp_path: Path) -> None:
    _write(tmp_path, "a.md", "A")
    _write(tmp_path, "a.md.meta.json", "{not json")
    _write(tmp_path, "b.md", "B")
    _write(tmp_path, "b.md.meta.json", "[1, 2]")
    a, b = scan_source_dir(tmp_path)
    assert a.metadata == {} and "a.md.meta.json: unreadable metadata sidecar" in str(
        a.metadata_error
    )
    assert b.metadata == {} and b.metadata_error == (
        "b.md.meta.json: metadata sidecar must be a JSON object"
    )


def test_scan_oversized_file_is_read_only_past_the_limit(tmp_path: Path) -> None:
    _write(tmp_path, "big.txt", b"a" * (MAX_FILE_BYTES + 1000))
    (big,) = scan_source_dir(tmp_path)
    assert len(big.data) == MAX_FILE_BYTES + 1
    with pytest.raises(IngestError, match=r"big\.txt: file is larger than the 10485760 byte"):
        extract_text(big.key, big.data)


def test_scan_missing_root(tmp_path: Path) -> None:
    with pytest.raises(NotADirectoryError, match="does not exist"):
        list(scan_source_dir(tmp_path / "nope"))


def test_builtin_attributes() -> None:
    assert builtin_attributes("brewing/espresso.md") == {
        "folder": "brewing/",
        "filename": "brewing/espresso.md",
    }
    assert builtin_attributes("a/b/c.txt")["folder"] == "a/b/"
    assert builtin_attributes("root.md") == {"folder": "", "filename": "root.md"}


def test_word_spans_match_the_regex_definition() -> None:
    """The vectorised word finder agrees with re's \\S+ on tricky Unicode whitespace."""
    import random

    from aisearch_local.ingest import _word_spans

    rng = random.Random(7)
    alphabet = "ab \n\t\r\x0b\x0c\u00a0\u2003\u3000\u2028\x1c\x85é漢.!😀"
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        starts, ends = _word_spans(text)
        assert list(zip(starts, ends, strict=True)) == [
            m.span() for m in re.finditer(r"\S+", text)
        ], repr(text)


def test_sentence_end_with_closing_quote_is_a_boundary() -> None:
    sentence = 'He said "pull the shot now." '
    text = (sentence * 3 + "tail " * 40).strip()  # 18 words of sentences, then 40 plain words
    chunks = chunk_text(text, chunk_size=32, chunk_overlap=0)
    assert chunks[0].text.endswith('now."')


_MARKDOWN_LINES = st.sampled_from(
    ["# Title", "## Causes and fixes", "### x", "#tag", "", "1. **Clumps.** Stir.", "8.", "- a b",
     "Plain words here.", "word", "  ## indented", "a. b? c!", "é 漢 😀"]
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(_MARKDOWN_LINES, min_size=1, max_size=120),
    size=st.integers(16, 40),
    overlap=st.integers(0, 30),
)
def test_markdown_chunks_cover_the_text_and_keep_the_size(
    lines: list[str], size: int, overlap: int
) -> None:
    text = "\n".join(lines)
    chunks = chunk_text(text, chunk_size=size, chunk_overlap=overlap)
    _covered(text, chunks)
    for c in chunks:
        assert 1 <= len(c.text.split()) <= size
    for a, b in itertools.pairwise(chunks):
        assert a.start < b.start
        assert len(text[b.start : a.end].split()) <= size * overlap // 100


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs symlinks and FIFOs (POSIX)")
def test_scan_indexes_regular_files_only(tmp_path: Path) -> None:
    """A source folder is untrusted: a symlink out of it is not read, a FIFO does not hang."""
    secret = tmp_path / "secret.txt"
    secret.write_text("AWS_SECRET_ACCESS_KEY=outside the source folder")
    src = tmp_path / "src"
    src.mkdir()
    (src / "real.md").write_text("# Real\n\nA document.")
    (src / "notes.md").symlink_to(secret)  # a cloned repo's `notes.md -> ~/.aws/credentials`
    (src / "linked.md.meta.json").symlink_to(secret)
    (src / "linked.md").write_text("Linked metadata.")
    os.mkfifo(src / "pipe.md")  # opening it for reading would block forever
    files = {sf.key: sf for sf in scan_source_dir(src)}
    assert sorted(files) == ["linked.md", "real.md"]
    assert all(b"AWS_SECRET" not in sf.data for sf in files.values())
    assert files["linked.md"].metadata == {}
    assert "symbolic link" in (files["linked.md"].metadata_error or "")


def test_a_sidecar_over_1_mib_is_reported_not_read(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("A document.")
    (tmp_path / "a.md.meta.json").write_bytes(b'{"k": "' + b"x" * (2 << 20) + b'"}')
    (sf,) = scan_source_dir(tmp_path)
    assert sf.metadata == {}
    assert "larger than 1048576 bytes" in (sf.metadata_error or "")
