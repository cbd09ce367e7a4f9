"""The aisearch-py demo: LangChain and LlamaIndex over AI Search, offline by default.

What `make demo` runs. Without Cloudflare credentials it starts `aisearch_local` (the local,
wire-compatible AI Search server) on 127.0.0.1 with a temporary data directory, uploads the
bundled sample corpus (a coffee roastery's knowledge base) through the core client, and shows:

1. a LangChain retrieval with scores and sources;
2. a filtered search (a metadata filter on the folder);
3. a LangChain `ChatAISearch` answer streamed token by token (with `context_expansion=1`: each
   retrieved chunk is read with its neighbours, so a list cut by a chunk boundary is answered
   whole), its citations mapped to their
   sources, and its sources, the cited ones first; locally, a line saying the answer comes
   from an extractive stand-in and the command that switches to an OpenAI-compatible model;
4. query rewriting: the query the service actually searched with (`search_query`);
5. an agent's tool call: `AISearchSearchTool` invoked as an agent invokes it (there is no
   tool-calling model offline, so the demo makes the call itself and says so);
6. a multi-instance search where one instance fails (an injected fault) and its error is
   reported beside the other instances' results;
7. a LlamaIndex streaming query (`context_expansion=1` too) with its `source_nodes`.

The server stops on exit, on Ctrl-C and on SIGTERM.

With `CLOUDFLARE_ACCOUNT_ID`, `CLOUDFLARE_API_TOKEN` and `AISEARCH_DEMO_INSTANCE` set, every
part but 6 runs against that Cloudflare instance instead (nothing is uploaded), and part 6 is
skipped: faults can only be injected into the local server.

Needs `pip install "aisearch-py[langchain,llamaindex,local]"` (or `[examples]`): both frameworks
and the local server, which brings `rich`; the wordllama embedder below also needs
`aisearch-py[semantic]`. Nothing to start first: without Cloudflare credentials the script
starts its own local AI Search server (`aisearch_local` on 127.0.0.1, a free port, a temporary
data directory) and stops it at the end; `make serve` is not needed.

    python examples/demo.py                             # or: make demo
    AISEARCH_DEMO_EMBEDDER=wordllama python examples/demo.py   # the semantic local embedder
"""

from __future__ import annotations

import logging
import os
import re
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

from rich import box
from rich.console import Console
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from aisearch import AISearchClient

console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)

MAIN_INSTANCE = "coffee"
# The multi-instance part splits the corpus by folder into three instances.
SPLIT = {
    "beans-and-roasting": ("beans/", "roasting/"),
    "brewing-and-gear": ("brewing/", "equipment/", "troubleshooting/"),
    "cafe-menu": ("recipes/",),
}
FAULTY_INSTANCE = "cafe-menu"

RETRIEVAL_QUERY = "How long should an espresso shot take?"
FILTER = {"folder": "troubleshooting/"}
CHAT_QUESTION = "How do I fix channeling in espresso?"
# a follow-up that means nothing on its own: rewriting makes it a standalone query
CONVERSATION = [
    {"role": "user", "content": "Why is my espresso sour?"},
    {"role": "assistant", "content": "A sour shot is usually under-extracted [1]."},
    {"role": "user", "content": "How do I fix it?"},
]
TOOL_QUERY = "How many days should beans rest after roasting before brewing?"
# `make serve` with an OpenAI-compatible model (here Ollama's) answering instead of the
# extractive stand-in; the flags are aisearch_local.cli's
SWITCH_GENERATOR = (
    "aisearch-local serve --sample-corpus --instance coffee "
    "--generator openai:llama3.2@http://127.0.0.1:11434"
)
MULTI_QUERY = "How long should coffee rest after roasting before I brew espresso?"
LLAMA_QUESTION = "What causes a slow drawdown in a V60?"
# the answers read each retrieved chunk with its neighbour on either side: a section that a
# chunk boundary cuts (a list of causes) reaches the answer whole
CONTEXT = 1


@dataclass
class Target:
    """Where the demo runs: the client plus the instance names to use."""

    client: AISearchClient
    instance: str
    live: bool
    server: Any = None  # aisearch_local.testing.LocalServer when local
    timings: dict[str, float] = field(default_factory=dict)


def _raise_keyboard_interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def _short(text: str, width: int = 110) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


# --------------------------------------------------------------------------------------------
# Setting up: the local server and its instances, or a Cloudflare instance
# --------------------------------------------------------------------------------------------


def live_settings() -> tuple[str, str, str] | None:
    names = ("CLOUDFLARE_ACCOUNT_ID", "CLOUDFLARE_API_TOKEN", "AISEARCH_DEMO_INSTANCE")
    values = [os.environ.get(n, "").strip() for n in names]
    return (values[0], values[1], values[2]) if all(values) else None


@contextmanager
def local_target() -> Iterator[Target]:
    from aisearch_local.sample_corpus import CUSTOM_METADATA, iter_sample_documents
    from aisearch_local.testing import LocalServer

    with ExitStack() as stack:
        data_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="aisearch-demo-"))
        started = time.perf_counter()
        # the server's default, deterministic hashing embedder; AISEARCH_DEMO_EMBEDDER=wordllama
        # uses the semantic one from the `semantic` extra
        embedder = os.environ.get("AISEARCH_DEMO_EMBEDDER", "hashing")
        server = stack.enter_context(
            LocalServer(data_dir=data_dir, token="demo-token", embedder=embedder)
        )
        client = stack.enter_context(
            AISearchClient(
                account_id=server.account_id, api_token=server.token, base_url=server.base_url
            )
        )
        console.print(
            Panel.fit(
                f"[bold]aisearch_local[/] listening on {server.base_url}\n"
                f"data directory {data_dir} (deleted on exit)\n"
                f"embedder {embedder}, extractive generation (no LLM)",
                title="local AI Search server",
                border_style="cyan",
            )
        )
        target = Target(client=client, instance=MAIN_INSTANCE, live=False, server=server)
        docs = list(iter_sample_documents())
        plan = [(MAIN_INSTANCE, docs)] + [
            (name, [d for d in docs if d.key.startswith(folders)])
            for name, folders in SPLIT.items()
        ]
        config = {
            "custom_metadata": CUSTOM_METADATA,
            "index_method": {"vector": True, "keyword": True},
            # natural-language questions: any query term may match (BM25 "or"), not all
            "retrieval_options": {"keyword_match_mode": "or"},
        }
        total = sum(len(batch) for _, batch in plan)
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as progress:
            upload = progress.add_task("uploading the sample corpus", total=total)
            for name, _ in plan:
                client.create_instance(name, **config)
            # a few uploads in flight at once (the pooled client is thread-safe)
            with ThreadPoolExecutor(max_workers=4) as pool:
                futures = [
                    pool.submit(client.upload_item, name, doc.key, doc.data, metadata=doc.metadata)
                    for name, batch in plan
                    for doc in batch
                ]
                for future in as_completed(futures):
                    future.result()
                    progress.advance(upload)
            indexing = progress.add_task("indexing", total=total)
            done_per_instance: dict[str, int] = {}

            def on_progress(done: int, _total: int, _items: Any, name: str = "") -> None:
                done_per_instance[name] = done
                progress.update(indexing, completed=sum(done_per_instance.values()))

            for name, _ in plan:
                client.wait_until_indexed(
                    name,
                    timeout=60,
                    poll_interval=0.2,
                    on_progress=lambda d, t, i, n=name: on_progress(d, t, i, n),
                )
        target.timings["setup"] = time.perf_counter() - started
        console.print(
            f"[green]✓[/] {len(docs)} documents in instance [bold]{MAIN_INSTANCE}[/] and split "
            f"over {len(SPLIT)} more instances ({', '.join(SPLIT)}) "
            f"in {target.timings['setup']:.1f} s\n"
        )
        yield target


@contextmanager
def cloudflare_target(account_id: str, api_token: str, instance: str) -> Iterator[Target]:
    with AISearchClient(account_id=account_id, api_token=api_token) as client:
        console.print(
            Panel.fit(
                f"Cloudflare AI Search instance [bold]{instance}[/] "
                "(CLOUDFLARE_ACCOUNT_ID, CLOUDFLARE_API_TOKEN, AISEARCH_DEMO_INSTANCE are set)",
                title="live mode",
                border_style="yellow",
            )
        )
        yield Target(client=client, instance=instance, live=True)


# --------------------------------------------------------------------------------------------
# The seven parts
# --------------------------------------------------------------------------------------------


def part_retrieval(target: Target) -> None:
    from langchain_aisearch import AISearchRetriever

    console.rule("[bold]1. LangChain retrieval: AISearchRetriever")
    retriever = AISearchRetriever(instance_id=target.instance, k=4, client=target.client)
    console.print(f"[dim]retriever.invoke({RETRIEVAL_QUERY!r})[/]")
    docs = retriever.invoke(RETRIEVAL_QUERY)
    table = Table(box=box.SIMPLE_HEAVY, show_lines=False, expand=True)
    table.add_column("#", justify="right", style="bold")
    table.add_column("score", justify="right")
    table.add_column("source", style="cyan", no_wrap=True)
    table.add_column("difficulty")
    table.add_column("text", ratio=1)
    for i, doc in enumerate(docs, 1):
        meta = doc.metadata
        table.add_row(
            str(i),
            f"{meta.get('score', 0.0):.3f}",
            str(meta.get("source", "?")),
            str(meta.get("difficulty", "")),
            Text(_short(doc.page_content, 100)),
        )
    console.print(table)


def part_filtered(target: Target) -> None:
    from langchain_aisearch import AISearchRetriever

    console.rule("[bold]2. Filtered search: a metadata filter on the folder")
    retriever = AISearchRetriever(instance_id=target.instance, k=4, client=target.client)
    console.print(f"[dim]retriever.invoke({RETRIEVAL_QUERY!r}, filters={FILTER!r})[/]")
    docs = retriever.invoke(RETRIEVAL_QUERY, filters=FILTER)
    table = Table(box=box.SIMPLE_HEAVY, expand=True)
    table.add_column("#", justify="right", style="bold")
    table.add_column("score", justify="right")
    table.add_column("folder", style="magenta", no_wrap=True)
    table.add_column("source", style="cyan", no_wrap=True)
    table.add_column("text", ratio=1)
    for i, doc in enumerate(docs, 1):
        meta = doc.metadata
        table.add_row(
            str(i),
            f"{meta.get('score', 0.0):.3f}",
            str(meta.get("folder", "")),
            str(meta.get("source", "?")),
            Text(_short(doc.page_content, 80)),
        )
    console.print(table)
    inside = sum(1 for d in docs if d.metadata.get("folder") == FILTER["folder"])
    console.print(f"[dim]{inside} of {len(docs)} results are in {FILTER['folder']}[/]")


def part_chat(target: Target) -> None:
    from langchain_aisearch import ChatAISearch

    console.rule("[bold]3. LangChain chat: ChatAISearch, streamed, with citations")
    # context_expansion=1: each retrieved chunk comes with its neighbours, so a list that
    # continues past the chunk the search found ("Causes and fixes", items 1 to 8) reaches the
    # answer whole
    chat = ChatAISearch(
        instance_id=target.instance, k=4, context_expansion=CONTEXT, client=target.client
    )
    console.print(
        f"[dim]ChatAISearch(..., k=4, context_expansion={CONTEXT}).stream({CHAT_QUESTION!r})[/]\n"
    )
    message: Any = None
    tokens = 0
    for chunk in chat.stream(CHAT_QUESTION):
        message = chunk if message is None else message + chunk  # the whole answer
        if isinstance(chunk.content, str) and chunk.content:
            tokens += 1
            console.print(Text(chunk.content, style="bold"), end="")
    console.print(f"\n\n[dim]{tokens} streamed pieces[/]")
    sources: list[dict[str, Any]] = message.response_metadata.get("sources") or []
    # LangChain's standard citations: each [n] marker, the claim it closes, its source
    citations = [
        annotation
        for block in message.content_blocks
        if block["type"] == "text"
        for annotation in block.get("annotations", [])
        if annotation["type"] == "citation"
    ]
    table = Table(title="citations -> sources", box=box.SIMPLE, title_justify="left")
    table.add_column("marker", justify="right", style="bold")
    table.add_column("source", style="cyan", no_wrap=True)
    table.add_column("claim", ratio=1)
    for citation in citations:
        n = citation["extras"]["source_index"]
        claim = message.text[citation["start_index"] : citation["end_index"]]
        table.add_row(f"[{n}] ->", str(citation.get("title", "?")), Text(_short(claim, 70)))
    console.print(table)
    cited = {c["extras"]["source_index"] for c in citations}
    order = sorted(range(1, len(sources) + 1), key=lambda n: n not in cited)
    table = Table(title="sources, the cited ones first", box=box.SIMPLE, title_justify="left")
    table.add_column("[n]", justify="right", style="bold")
    table.add_column("", style="green")
    table.add_column("source", style="cyan")
    table.add_column("score", justify="right")
    for n in order:
        source = sources[n - 1]
        item = source.get("item") or {}
        table.add_row(
            f"[{n}]",
            "cited" if n in cited else "",
            str(item.get("key", "?")),
            f"{source.get('score', 0.0):.3f}",
        )
    console.print(table)
    if not target.live:
        console.print(
            "[yellow]Local answers come from an extractive stand-in[/] (the best-matching "
            "sentences, each with its \\[n]), not a language model. To answer with an "
            "OpenAI-compatible model (here Ollama's llama3.2; set "
            "AISEARCH_LOCAL_UPSTREAM_API_KEY for a hosted one), start the local server with:"
        )
        console.print(f"  [bold]{SWITCH_GENERATOR}[/]", soft_wrap=True)


def part_rewrite(target: Target) -> None:
    console.rule("[bold]4. Query rewriting: the query the service actually searched with")
    console.print(
        f"[dim]a follow-up question: {CONVERSATION[-1]['content']!r}, after "
        f"{CONVERSATION[0]['content']!r}\n"
        "client.search(instance, messages=conversation, options=...)[/]"
    )
    table = Table(box=box.SIMPLE_HEAVY, expand=True)
    table.add_column("query rewriting", no_wrap=True)
    table.add_column("search_query (what the service searched with)", style="bold")
    table.add_column("top result", style="cyan", no_wrap=True)
    for enabled in (False, True):
        options = {"query_rewrite": {"enabled": enabled}, "retrieval": {"max_num_results": 3}}
        result = target.client.search(target.instance, messages=CONVERSATION, options=options)
        top = result.chunks[0].item.key if result.chunks and result.chunks[0].item else "-"
        table.add_row("on" if enabled else "off", repr(result.search_query), str(top))
    console.print(table)


def part_tool(target: Target) -> None:
    from langchain_aisearch import AISearchRetriever, AISearchSearchTool

    console.rule("[bold]5. An agent's tool call: AISearchSearchTool")
    tool = AISearchSearchTool(
        retriever=AISearchRetriever(instance_id=target.instance, k=3, client=target.client)
    )
    call = {"type": "tool_call", "id": "call-1", "name": tool.name, "args": {"query": TOOL_QUERY}}
    console.print(
        "[dim]Offline there is no tool-calling model, so the demo makes the call an agent's "
        "model would make (pass the tool to `create_agent(model, \\[tool])` and a real model "
        "makes it):[/]\n"
        f"tool call  -> {tool.name}(query={TOOL_QUERY!r})"
    )
    message = tool.invoke(call)
    console.print(
        f"tool result -> a {type(message).__name__} with {len(message.artifact)} Documents as "
        "its artifact; the model reads:"
    )
    content = str(message.content)
    for header in re.finditer(r"^\[\d+\] .*$", content, flags=re.M):
        first = next((ln for ln in content[header.end() :].splitlines() if ln.strip()), "")
        console.print(Text(f"  {header.group()}", style="cyan"))
        console.print(Text(f"    {_short(first, 100)}"))


def part_multi(target: Target) -> None:
    from langchain_aisearch import AISearchMultiRetriever

    console.rule("[bold]6. Multi-instance search with a failing instance")
    if target.live or target.server is None:
        console.print(
            "[yellow]skipped in live mode:[/] faults can only be injected into the local server. "
            "Run without Cloudflare credentials to see it."
        )
        return
    target.server.set_fault(FAULTY_INSTANCE, status=503, code=7017)
    try:
        retriever = AISearchMultiRetriever(
            instance_ids=list(SPLIT), k=6, on_instance_error="ignore", client=target.client
        )
        console.print(
            f"[dim]injected fault: {FAULTY_INSTANCE} answers HTTP 503\n"
            f"retriever.search_with_errors({MULTI_QUERY!r})[/]"
        )
        docs, errors = retriever.search_with_errors(MULTI_QUERY)
    finally:
        target.server.clear_faults()
    results = Table(box=box.SIMPLE_HEAVY, expand=True)
    results.add_column("instance", style="magenta", no_wrap=True)
    results.add_column("score", justify="right")
    results.add_column("source", style="cyan", no_wrap=True)
    results.add_column("text", ratio=1)
    for doc in docs:
        meta = doc.metadata
        results.add_row(
            str(meta.get("instance_id")),
            f"{meta.get('score', 0.0):.3f}",
            str(meta.get("source")),
            Text(_short(doc.page_content, 80)),
        )
    answered = sorted({str(d.metadata.get("instance_id")) for d in docs})
    console.print(results)
    status = Table(box=box.SIMPLE, title="per-instance status", title_justify="left")
    status.add_column("instance", style="magenta")
    status.add_column("status")
    failed = {e.instance_id: e for e in errors}
    for name in SPLIT:
        if name in failed:
            status.add_row(name, Text(f"✗ {failed[name].message}", style="red"))
        else:
            hits = sum(1 for d in docs if d.metadata.get("instance_id") == name)
            status.add_row(name, Text(f"✓ {hits} result(s) in the top {len(docs)}", style="green"))
    console.print(status)
    console.print(
        f"[dim]{len(answered)} instance(s) answered, {len(errors)} reported an error; "
        "the search itself did not fail.[/]"
    )


def part_llamaindex(target: Target) -> None:
    from llamaindex_aisearch import AISearchQueryEngine

    console.rule("[bold]7. LlamaIndex: AISearchQueryEngine, streaming")
    engine = AISearchQueryEngine(
        target.instance,
        streaming=True,
        similarity_top_k=4,
        context_expansion=CONTEXT,
        client=target.client,
    )
    console.print(
        f"[dim]AISearchQueryEngine(..., similarity_top_k=4, context_expansion={CONTEXT})"
        f".query({LLAMA_QUESTION!r})[/]\n"
    )
    response = engine.query(LLAMA_QUESTION)
    console.print(
        f"[dim]source_nodes are ready before the first token: {len(response.source_nodes)}[/]"
    )
    for token in response.response_gen:
        console.print(Text(token, style="bold"), end="")
    console.print("\n")
    table = Table(title="source_nodes", box=box.SIMPLE, title_justify="left")
    table.add_column("#", justify="right", style="bold")
    table.add_column("score", justify="right")
    table.add_column("source", style="cyan")
    table.add_column("author")
    for i, node in enumerate(response.source_nodes, 1):
        meta = node.node.metadata
        table.add_row(
            str(i), f"{node.score or 0.0:.3f}", str(meta.get("source")), str(meta.get("author", ""))
        )
    console.print(table)


def main() -> int:
    # Configure logging before any third-party import does (wordllama calls basicConfig(INFO)
    # on import, which would print every HTTP request).
    logging.basicConfig(level=logging.WARNING)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if inherited as ignored
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    started = time.perf_counter()
    live = live_settings()
    context = cloudflare_target(*live) if live else local_target()
    try:
        with context as target:
            part_retrieval(target)
            part_filtered(target)
            part_chat(target)
            part_rewrite(target)
            part_tool(target)
            part_multi(target)
            part_llamaindex(target)
    except KeyboardInterrupt:
        console.print("\n[yellow]interrupted: the local server has been stopped.[/]")
        return 130
    stopped = "" if live else " and stopped the local server"
    console.rule(f"[green]demo finished in {time.perf_counter() - started:.1f} s{stopped}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
