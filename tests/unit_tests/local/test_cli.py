"""The aisearch-local command line (no sockets: ingest and inspect only, serve's parsing)."""

from __future__ import annotations

import argparse
import json

import pytest

from aisearch_local.cli import FAULT_FIELDS, _parse_fault, build_parser, main
from aisearch_local.service import Fault, LocalService


def test_parse_fault():
    assert _parse_fault("docs:status=503,retry_after=2,times=3") == (
        "default",
        "docs",
        {"status": 503, "retry_after": 2, "times": 3},
    )
    assert _parse_fault("team/faq:truncate_stream,latency_ms=50") == (
        "team",
        "faq",
        {"truncate_stream": True, "latency_ms": 50},
    )
    with pytest.raises(argparse.ArgumentTypeError, match="unknown key 'boom'"):
        _parse_fault("docs:boom=1")
    with pytest.raises(argparse.ArgumentTypeError, match="expected"):
        _parse_fault("docs")
    with pytest.raises(argparse.ArgumentTypeError, match="status must be an integer"):
        _parse_fault("docs:status=abc")


def test_fault_fields_match_the_service():
    assert set(FAULT_FIELDS) == set(Fault.__dataclass_fields__)


def test_serve_defaults_bind_loopback():
    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port, args.embedder, args.generator) == (
        "127.0.0.1",
        8787,
        "hashing",
        "extractive",
    )
    assert args.token is None and args.fault is None


def test_ingest_then_inspect(tmp_path, capsys):
    src = tmp_path / "src"
    (src / "guides").mkdir(parents=True)
    (src / "guides" / "kettle.md").write_text("Gooseneck kettles pour slowly.")
    (src / "guides" / "kettle.md.meta.json").write_text(json.dumps({"level": "beginner"}))
    (src / "image.png").write_bytes(b"\x89PNG")
    data = tmp_path / "data"
    assert main(["ingest", str(src), "--instance", "docs", "--data-dir", str(data)]) == 0
    err = capsys.readouterr().err
    assert "1 indexed" in err and "1 errors" in err and "image.png" in err

    svc = LocalService(data, embedder="hashing", generator="extractive")
    try:
        inst = svc.store.get_instance("default", "docs")
        assert inst is not None and inst.source_dir == str(src.resolve())
        items = {i["key"]: i for i in svc.store.list_items(inst)}
        assert items["guides/kettle.md"]["metadata"] == {"level": "beginner"}
        assert items["image.png"]["status"] == "error"
    finally:
        svc.close()

    # a second ingest is incremental
    assert main(["ingest", str(src), "--instance", "docs", "--data-dir", str(data)]) == 0
    assert "1 unchanged" in capsys.readouterr().err

    assert main(["inspect", "--data-dir", str(data), "--instance", "docs"]) == 0
    out = capsys.readouterr().out
    assert "docs" in out and "hashing-v1-384" in out and "image.png" in out


def test_inspect_of_a_folder_without_data_fails_and_creates_nothing(tmp_path, capsys):
    typo = tmp_path / "typo"
    assert main(["inspect", "--data-dir", str(typo)]) == 2
    assert "no aisearch-local data" in capsys.readouterr().err
    assert not typo.exists()


def test_oversize_file_message_does_not_claim_a_wrong_size(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    (src / "big.md").write_bytes(b"x" * 10_500_000)
    code = main(["ingest", str(src), "--instance", "docs", "--data-dir", str(tmp_path / "d")])
    err = capsys.readouterr().err
    assert "big.md: file is larger than the 10485760 byte (10 MiB) limit" in err
    assert "10485761" not in err and "big.md: big.md" not in err
    assert "1 errors" in err
    assert code == 0  # the run completed; the file is reported as an error item


def test_ingest_rejects_missing_folder(tmp_path, capsys):
    code = main(
        ["ingest", str(tmp_path / "nope"), "--instance", "x", "--data-dir", str(tmp_path / "d")]
    )
    assert code == 2
    assert "is not a folder" in capsys.readouterr().err


def test_ingest_with_other_embedder_is_refused(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.md").write_text("text")
    data = tmp_path / "data"
    assert main(["ingest", str(src), "--instance", "docs", "--data-dir", str(data)]) == 0
    capsys.readouterr()
    code = main(
        [
            "ingest",
            str(src),
            "--instance",
            "docs",
            "--data-dir",
            str(data),
            "--embedder",
            "hashing:64",
        ]
    )
    assert code == 1
    assert "--embedder" in capsys.readouterr().err


def test_inspect_and_stats_have_different_help(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    lines = {ln.split()[0]: " ".join(ln.split()[1:]) for ln in out.splitlines() if ln.strip()}
    assert lines["inspect"] != lines["stats"]
    assert "alias of inspect" in out
    pages = []
    for name in ("inspect", "stats"):
        with pytest.raises(SystemExit):
            main([name, "--help"])
        pages.append(capsys.readouterr().out.split("options:")[0].split("\n", 2)[2])
    assert pages[0] != pages[1]


def test_version_flag(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"aisearch-local {version('aisearch-py')}\n"


def test_a_user_error_is_one_line_and_an_exit_status(tmp_path, capsys):
    code = main(["serve", "--source", str(tmp_path / "nope"), "--instance", "x"])
    assert code == 2
    assert capsys.readouterr().err == (
        f"aisearch-local: error: --source {tmp_path / 'nope'}: not a folder\n"
    )


def test_sync_cooldown_flag(capsys):
    assert build_parser().parse_args(["serve"]).sync_cooldown == 0.0
    assert build_parser().parse_args(["serve", "--sync-cooldown", "30"]).sync_cooldown == 30.0
    for bad, why in (("nan", "between 0 and 86400"), ("-1", "between 0"), ("x", "not a number")):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["serve", "--sync-cooldown", bad])
        assert why in capsys.readouterr().err


def test_strict_and_lenient_flags(capsys):
    assert build_parser().parse_args(["serve"]).strict is False
    assert build_parser().parse_args(["serve", "--strict"]).strict is True
    assert build_parser().parse_args(["serve", "--lenient"]).strict is False
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--strict", "--lenient"])
    assert "not allowed with argument" in capsys.readouterr().err


def test_workers_flag(capsys):
    assert build_parser().parse_args(["serve"]).workers == 1
    assert build_parser().parse_args(["serve", "--workers", "2"]).workers == 2
    assert build_parser().parse_args(["serve", "--workers", "64"]).workers == 64
    for bad in ("0", "65", "-1", "two", "1.5"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["serve", "--workers", bad])
        err = capsys.readouterr().err
        assert f"argument --workers: {bad!r}: must be a whole number from 1 to 64" in err


def test_workers_need_a_data_folder(capsys):
    assert main(["serve", "--in-memory", "--workers", "2"]) == 2
    assert capsys.readouterr().err == (
        "aisearch-local: error: --workers 2 needs a data folder (--data-dir) that the workers "
        "share: --in-memory keeps the database inside one process\n"
    )


def test_workers_leave_no_state_folder_when_the_service_cannot_open(capsys, monkeypatch, tmp_path):
    # serve --workers creates the shared state before it opens the service (which is given it):
    # a service that cannot open must not leave the state's folder in the temp folder
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr("aisearch_local.cli._bind_workers", lambda host, port, workers: [])
    data = tmp_path / "data"
    assert main(["serve", "--workers", "2", "--data-dir", str(data), "--embedder", "nope"]) == 1
    assert "--embedder nope" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("aisearch-local-")] == []


def test_workers_need_linux(capsys, monkeypatch):
    monkeypatch.setattr("sys.platform", "darwin")
    assert main(["serve", "--workers", "2"]) == 2
    assert capsys.readouterr().err == (
        "aisearch-local: error: --workers 2 needs Linux, whose kernel spreads the connections "
        "over the workers' sockets (SO_REUSEPORT); run one process here\n"
    )


@pytest.mark.parametrize("token", [None, "s3cret", "caf\u00e9", "bad\udcffbyte"])
def test_the_token_crosses_the_workers_pipe_unchanged(token: str | None) -> None:
    # serve --workers writes it into each worker's pipe: a --token whose bytes were not UTF-8
    # (a lone surrogate in argv) must not stop serve, and must arrive as it was
    from aisearch_local.workers import _token_bytes, _token_from

    assert _token_from(_token_bytes(token)) == token
