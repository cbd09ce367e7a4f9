"""``aisearch-eval``: score an instance's retrieval on a golden set, for a grid of options.

    aisearch-eval GOLDEN --instance ID [--vary retrieval_type=vector,keyword,hybrid] ...

Credentials come from the environment, as for the client (``CLOUDFLARE_ACCOUNT_ID``,
``CLOUDFLARE_API_TOKEN``; ``AISEARCH_BASE_URL`` or ``--base-url`` for a local server), never
from the command line. The exit status is 0 when every query was answered, 1 when some
failed (they are listed), 2 for bad arguments or a bad golden set.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aisearch import AISearchError, AsyncAISearchClient
from aisearch_eval.golden import DEFAULT_KEY_TEMPLATE, GoldenSetError, load_golden_set
from aisearch_eval.grid import (
    GridError,
    build_grid,
    load_grid_file,
    parse_assignment,
    set_option,
)
from aisearch_eval.report import failures_markdown, plot, table_rows, to_markdown
from aisearch_eval.runner import (
    DEFAULT_DEPTH,
    EvalReport,
    _check,
    evaluate,
    upload_corpus,
)

__all__ = ["main"]


def _ks(text: str) -> list[int]:
    try:
        ks = [int(k) for k in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be comma-separated integers (got {text!r})"
        ) from None
    if not ks or min(ks) < 1 or max(ks) > 50:
        raise argparse.ArgumentTypeError(f"must be integers between 1 and 50 (got {text!r})")
    return ks


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="aisearch-eval",
        description="Score an AI Search instance (Cloudflare or aisearch-local) on a golden set: "
        "nDCG@10, recall@k, MRR and hit@k per configuration of search options.",
    )
    p.add_argument("golden", help="a BEIR folder (queries.jsonl, qrels/) or a JSONL of "
                   '{"query": ..., "expected": [keys]}')  # fmt: skip
    p.add_argument("--instance", required=True, help="the instance id")
    p.add_argument("--namespace", default=None, help="the instance's namespace")
    p.add_argument("--base-url", default=None, help="API base URL (a local server's URL)")
    p.add_argument("--account-id", default=None, help="account id (or CLOUDFLARE_ACCOUNT_ID)")
    p.add_argument("--split", default="test", help="BEIR split: qrels/<split>.tsv (test)")
    p.add_argument("--key-template", default=DEFAULT_KEY_TEMPLATE,
                   help="BEIR doc id to item key (default %(default)s)")  # fmt: skip
    p.add_argument("--vary", action="append", default=[], metavar="NAME=V1,V2",
                   help="an option and the values to try; several make a product")  # fmt: skip
    p.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                   help="an option every configuration gets")  # fmt: skip
    p.add_argument("--grid", type=Path, default=None, help="a JSON grid file")
    p.add_argument("--no-default", action="store_true", help="do not run the defaults")
    p.add_argument("--k", type=_ks, default=[1, 5, 10], help="recall/hit cut-offs (1,5,10)")
    p.add_argument("--depth", type=int, default=DEFAULT_DEPTH,
                   help="max_num_results unless a configuration sets it (%(default)s)")  # fmt: skip
    p.add_argument("--concurrency", type=int, default=8, help="searches in flight (8)")
    p.add_argument("--max-retries", type=int, default=5, help="the client's retries (5)")
    p.add_argument("--limit", type=int, default=None, help="only the first N queries")
    p.add_argument("--create-instance", action="store_true",
                   help="create the instance (no options) if it does not exist")  # fmt: skip
    p.add_argument("--upload", action="store_true", help="upload the BEIR corpus first")
    p.add_argument("--markdown", type=Path, default=None, help="write the table as Markdown")
    p.add_argument("--plot", type=Path, default=None, help="write a PNG bar chart")
    p.add_argument("--json", type=Path, default=None, help="write every score as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str, int, int], None]]:
    try:
        from rich.progress import Progress
    except ImportError:  # pragma: no cover - rich comes with the [eval] extra
        enabled = False
    if not enabled:
        yield lambda _name, _done, _total: None
        return
    with Progress(transient=True) as bar:
        tasks: dict[str, Any] = {}

        def update(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(name[:40], total=total)
            bar.update(tasks[name], completed=done)

        yield update


def _print_table(report: EvalReport) -> None:
    header, rows = table_rows(report)
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # pragma: no cover - rich comes with the [eval] extra
        print("\t".join(header))
        for row in rows:
            print("\t".join(row))
        return
    table = Table(title=f"{report.golden} on {report.instance} ({report.queries} queries)")
    for i, name in enumerate(header):
        table.add_column(name, justify="left" if i == 0 else "right", no_wrap=i == 0)
    for row in rows:
        table.add_row(*row)
    Console(width=max(120, 11 * len(header) + max(len(r[0]) for r in rows))).print(table)


async def _run(args: argparse.Namespace) -> int:
    golden = load_golden_set(args.golden, split=args.split, key_template=args.key_template)
    golden = golden.limit(args.limit)
    configs, vary = load_grid_file(args.grid) if args.grid else ([], [])
    vary = vary + [parse_assignment(v) for v in args.vary]
    base: dict[str, Any] = {}
    for text in args.option:
        path, values = parse_assignment(text)
        if len(values) != 1:
            raise GridError(f"--option {text!r}: takes one value (use --vary for several)")
        set_option(base, path, values[0])
    grid = build_grid(vary, base=base, configs=configs, include_default=not args.no_default)
    if not grid:
        raise GridError("no configuration to run: drop --no-default or add --vary/--grid")
    _check(args.k, args.concurrency, args.depth, grid)  # before any upload or query
    async with AsyncAISearchClient(
        account_id=args.account_id,
        base_url=args.base_url,
        max_retries=args.max_retries,
        namespace=args.namespace or "default",
    ) as client:
        if args.create_instance:
            await client.create_instance(args.instance, exist_ok=True)
        if args.upload:
            print(f"uploading the corpus of {golden.name} ...", file=sys.stderr)
            up = await upload_corpus(client, args.instance, golden, concurrency=args.concurrency)
            rate = up.uploaded / up.seconds if up.seconds else 0.0
            print(
                f"uploaded {up.uploaded} document(s) in {up.seconds:.1f} s "
                f"({rate:.0f}/s), {len(up.failures)} failed",
                file=sys.stderr,
            )
            for key, error in up.failures[:20]:
                print(f"  {key}: {error}", file=sys.stderr)
        with _progress(not args.no_progress) as on_progress:
            report = await evaluate(
                client,
                args.instance,
                golden,
                grid,
                ks=args.k,
                concurrency=args.concurrency,
                depth=args.depth,
                on_progress=on_progress,
            )
    _print_table(report)
    for line in failures_markdown(report):
        print(line)
    if args.markdown:
        args.markdown.write_text(to_markdown(report), encoding="utf-8")
        print(f"markdown: {args.markdown}")
    if args.json:
        args.json.write_text(json.dumps(report.to_dict(), indent=1), encoding="utf-8")
        print(f"json: {args.json}")
    if args.plot:
        print(f"plot: {plot(report, args.plot)}")
    return 1 if any(r.failures for r in report.results) else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        return asyncio.run(_run(args))
    except (GoldenSetError, GridError, ValueError) as exc:
        print(f"aisearch-eval: error: {exc}", file=sys.stderr)
        return 2
    except AISearchError as exc:
        print(f"aisearch-eval: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
