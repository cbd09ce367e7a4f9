"""aisearch-eval against a real local server over HTTP: the library and the command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from aisearch import AISearchClient, AsyncAISearchClient
from aisearch_eval import (
    SAMPLE_GOLDEN_SET,
    build_grid,
    evaluate,
    evaluate_sync,
    load_golden_set,
    parse_assignment,
    ranking,
    score_query,
    upload_corpus,
)
from aisearch_local.testing import LocalServer

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
GRID = [parse_assignment("retrieval_type=vector,keyword,hybrid")]


def _env(server: LocalServer) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLOUDFLARE_", "CF_"))}
    env.update(CLOUDFLARE_ACCOUNT_ID=server.account_id, CLOUDFLARE_API_TOKEN=server.token or "")
    env.pop("AISEARCH_BASE_URL", None)
    return env


def _cli(server: LocalServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aisearch_eval.cli", *args, "--base-url", server.base_url],
        env=_env(server),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def _beir(folder: Path) -> Path:
    folder.mkdir(exist_ok=True)
    docs = {
        "d1": ("Cold brew", "Steep coarse coffee in cold water for 18 hours, then filter."),
        "d2": ("Espresso", "Nine bars of pressure push hot water through a fine coffee puck."),
        "d3": ("Tea", "Green tea brews at 80 degrees for two minutes."),
        "d4": ("Milk", "Steam milk to 60 degrees for a glossy microfoam."),
    }
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": i, "title": t, "text": x}) + "\n" for i, (t, x) in docs.items())
    )
    (folder / "queries.jsonl").write_text(
        '{"_id": "1", "text": "how long to steep cold brew"}\n'
        '{"_id": "2", "text": "espresso pressure in bars"}\n'
        '{"_id": "3", "text": "steaming milk temperature"}\n'
    )
    (folder / "qrels").mkdir()
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n1\td1\t1\n2\td2\t1\n3\td4\t1\n"
    )
    return folder


async def test_async_run_scores_the_rankings_the_client_returns(
    local_server: LocalServer, docs_instance: str, async_client: AsyncAISearchClient
) -> None:
    golden = load_golden_set(SAMPLE_GOLDEN_SET)
    seen: list[tuple[str, int, int]] = []
    report = await evaluate(
        async_client,
        docs_instance,
        golden,
        build_grid(GRID),
        concurrency=4,
        on_progress=lambda *a: seen.append(a),
    )
    assert [r.config.name for r in report.results] == [
        "default",
        "retrieval_type=vector",
        "retrieval_type=keyword",
        "retrieval_type=hybrid",
    ]
    assert all(r.answered == len(golden) and not r.failures for r in report.results)
    assert len(seen) == 4 * len(golden) and seen[-1][1:] == (len(golden), len(golden))
    # The scores are those of the rankings the ordinary client gets with the same options.
    hybrid = report.results[3]
    for qid, text in list(golden.queries.items())[:5]:
        result = await async_client.search(
            docs_instance,
            text,
            options={"retrieval": {"retrieval_type": "hybrid", "max_num_results": 20}},
        )
        expected = score_query(ranking(result), golden.judgements[qid], report.ks)
        assert hybrid.per_query[qid] == expected
    for r in report.results:
        for name, value in r.metrics.items():
            per = [s[name] for s in r.per_query.values()]
            assert value == pytest.approx(sum(per) / len(per))


def test_sync_run_equals_the_async_one(
    local_server: LocalServer, docs_instance: str, client: AISearchClient
) -> None:
    import asyncio

    golden = load_golden_set(SAMPLE_GOLDEN_SET).limit(6)
    grid = build_grid(GRID)
    sync_report = evaluate_sync(client, docs_instance, golden, grid, concurrency=3)

    async def run() -> Any:
        async with AsyncAISearchClient(
            account_id=local_server.account_id,
            api_token=local_server.token,
            base_url=local_server.base_url,
        ) as c:
            return await evaluate(c, docs_instance, golden, grid, concurrency=3)

    async_report = asyncio.run(run())
    assert [r.per_query for r in sync_report.results] == [r.per_query for r in async_report.results]


async def test_failed_queries_are_reported_and_rate_limits_retried(
    local_server: LocalServer, make_instance: Any, tmp_path: Path
) -> None:
    instance = make_instance()
    golden = load_golden_set(_beir(tmp_path))
    async with AsyncAISearchClient(
        account_id=local_server.account_id,
        api_token=local_server.token,
        base_url=local_server.base_url,
        max_retries=3,
    ) as client:
        uploaded = await upload_corpus(client, instance, golden, concurrency=2)
        assert (uploaded.uploaded, uploaded.failures) == (4, [])
        try:
            # a 429 with Retry-After 0: the client's retries absorb it, nothing fails
            local_server.set_fault(instance, status=429, retry_after=0, times=2)
            report = await evaluate(client, instance, golden, build_grid(), concurrency=1)
            assert report.results[0].failures == []
            assert report.results[0].answered == 3
            # a 400 is not retried: the query is reported with its error, not dropped
            local_server.set_fault(instance, status=400, code=7001, times=1)
            report = await evaluate(client, instance, golden, build_grid(), concurrency=1)
        finally:
            local_server.clear_faults()
    result = report.results[0]
    assert result.answered == 2
    assert len(result.failures) == 1
    failure = result.failures[0]
    assert failure.query_id == "1" and failure.query == "how long to steep cold brew"
    assert failure.error.startswith("BadRequestError: ")
    assert set(result.per_query) == {"2", "3"}


def test_command_uploads_a_beir_set_and_writes_every_output(
    local_server: LocalServer, tmp_path: Path
) -> None:
    folder = _beir(tmp_path / "beir-mini")
    instance = "eval-beir-mini"
    out = tmp_path / "out"
    out.mkdir()
    proc = _cli(
        local_server,
        str(folder),
        "--instance", instance,
        "--create-instance", "--upload",
        "--vary", "retrieval_type=keyword,hybrid",
        "--option", "keyword_match_mode=or",
        "--k", "1,3",
        "--markdown", str(out / "t.md"),
        "--plot", str(out / "p.png"),
        "--json", str(out / "s.json"),
        "--no-progress",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "uploaded 4 document(s)" in proc.stderr and "0 failed" in proc.stderr
    md = (out / "t.md").read_text()
    assert "| configuration | ndcg@10 | recall@1 | recall@3 | mrr | hit@1 | hit@3 |" in md
    assert "| retrieval_type=keyword |" in md
    assert '- default: `{"retrieval":{"keyword_match_mode":"or"}}`' in md
    assert (out / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((out / "s.json").read_text())
    assert [c["name"] for c in summary["configs"]] == [
        "default",
        "retrieval_type=keyword",
        "retrieval_type=hybrid",
    ]
    # Keyword search with `or` finds each of these three distinctive queries' document first.
    keyword = summary["configs"][1]
    assert keyword["answered"] == 3 and keyword["failed"] == []
    assert keyword["metrics"]["hit@3"] == 1.0


def test_command_lists_failed_queries_and_exits_1(
    local_server: LocalServer, docs_instance: str
) -> None:
    local_server.set_fault(docs_instance, status=400, code=7001, times=1)
    try:
        proc = _cli(
            local_server, str(SAMPLE_GOLDEN_SET), "--instance", docs_instance,
            "--concurrency", "1", "--limit", "3", "--no-progress",
        )  # fmt: skip
    finally:
        local_server.clear_faults()
    assert proc.returncode == 1, proc.stderr
    assert "Failed queries of default (1):" in proc.stdout
    assert "- rest-after-roast 'How long should coffee rest after roasting before I brew it?'" in (
        proc.stdout
    )
    assert "BadRequestError" in proc.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--vary", "max_num_results=90"],
            "aisearch-eval: error: configuration 'max_num_results=90': "
            "ai_search_options.retrieval.max_num_results: must be an integer between 1 and 50 "
            "(got 90)",
        ),
        (["--option", "fusion_method=rrf,max"], "takes one value (use --vary for several)"),
        (["--concurrency", "0"], "concurrency: must be an integer between 1 and 64 (got 0)"),
        (["--upload"], "has no corpus.jsonl to upload"),
    ],
)
def test_command_refuses_bad_arguments_with_exit_2(
    local_server: LocalServer, docs_instance: str, args: list[str], message: str
) -> None:
    proc = _cli(local_server, str(SAMPLE_GOLDEN_SET), "--instance", docs_instance, *args)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert local_server.token not in proc.stderr


def test_command_missing_instance_is_one_clear_error(local_server: LocalServer) -> None:
    proc = _cli(
        local_server, str(SAMPLE_GOLDEN_SET), "--instance", "no-such-instance", "--limit", "2"
    )
    assert proc.returncode == 1
    assert "NotFoundError" in proc.stdout
