"""The report as a table (Markdown or plain rows) and as a plot (PNG, needs matplotlib)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from aisearch_eval.runner import EvalReport

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["failures_markdown", "figure", "plot", "table_rows", "to_markdown"]


def _options(options: object) -> str:
    text = json.dumps(options, separators=(",", ":"), sort_keys=True)
    return "(instance defaults)" if text in ("{}", "null") else text


def table_rows(report: EvalReport) -> tuple[list[str], list[list[str]]]:
    """The header and one row per configuration: metrics, then answered/empty/failed counts."""
    header = ["configuration", *report.metric_names, "answered", "empty", "failed"]
    rows = []
    for r in report.results:
        cells = [f"{r.metrics[m]:.3f}" if m in r.metrics else "-" for m in report.metric_names]
        rows.append([r.config.name, *cells, str(r.answered), str(r.empty), str(len(r.failures))])
    return header, rows


def _escape(cell: str) -> str:
    return cell.replace("|", "\\|").replace("\n", " ")


def to_markdown(report: EvalReport) -> str:
    """The table as Markdown, with each configuration's options below it, and the failures."""
    header, rows = table_rows(report)
    lines = [
        f"Golden set `{report.golden}` ({report.queries} queries) on instance "
        f"`{report.instance}`; metrics are means over the answered queries.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|",
        *("| " + " | ".join(_escape(c) for c in row) + " |" for row in rows),
        "",
        "Options per configuration:",
        "",
        *(f"- {_escape(r.config.name)}: `{_options(r.config.options)}`" for r in report.results),
    ]
    failures = failures_markdown(report)
    return "\n".join(lines + (["", *failures] if failures else [])) + "\n"


def failures_markdown(report: EvalReport, limit: int = 20) -> list[str]:
    """Lines listing the failed queries of every configuration (at most ``limit`` each)."""
    lines: list[str] = []
    for r in report.results:
        if not r.failures:
            continue
        lines.append(f"Failed queries of {r.config.name} ({len(r.failures)}):")
        lines.extend(
            f"- {f.query_id} {f.query[:60]!r}: {_escape(f.error)[:200]}" for f in r.failures[:limit]
        )
        if len(r.failures) > limit:
            lines.append(f"- ... and {len(r.failures) - limit} more")
    return lines


def figure(report: EvalReport) -> Figure:
    """A grouped bar chart of the metrics per configuration (a matplotlib ``Figure``).

    Built without ``pyplot``: it changes no backend and opens no window (in a notebook with
    ``%matplotlib inline`` the figure displays as the cell's value).

    Raises:
        ImportError: If matplotlib is not installed (``pip install "aisearch-py[eval]"``).
    """
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError('the plot needs matplotlib: pip install "aisearch-py[eval]"') from exc
    names = report.metric_names
    configs = report.results
    width = 0.8 / max(len(configs), 1)
    fig = Figure(figsize=(max(6.0, 1.1 * len(names) + 0.3 * len(configs)) + 3.5, 4.5))
    ax = fig.add_subplot()
    for i, r in enumerate(configs):
        xs = [j + (i - (len(configs) - 1) / 2) * width for j in range(len(names))]
        ax.bar(xs, [r.metrics.get(m, 0.0) for m in names], width, label=r.config.name[:50])
    ax.set_xticks(list(range(len(names))), names)
    ax.set_ylim(0, 1)
    ax.set_ylabel("mean over answered queries")
    ax.set_title(f"{report.golden} on {report.instance} ({report.queries} queries)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def plot(report: EvalReport, path: str | Path) -> Path:
    """Save :func:`figure` as a PNG and return its path."""
    path = Path(path)
    figure(report).savefig(path, dpi=100)
    return path
