"""scripts/unasync.py: the sync twins are generated, current, and say so in their first line."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def load_script():
    spec = importlib.util.spec_from_file_location("unasync", ROOT / "scripts" / "unasync.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["unasync"] = module
    spec.loader.exec_module(module)
    return module


def test_every_generated_file_is_current_and_marked():
    unasync = load_script()
    assert unasync.main(["--check"]) == 0
    sources = sorted(p.name for p in (ROOT / "aisearch" / "_async").glob("*.py"))
    generated = sorted(p.name for p in (ROOT / "aisearch" / "_sync").glob("*.py"))
    assert sources == generated
    for name in generated:
        first = (ROOT / "aisearch" / "_sync" / name).read_text().splitlines()[0]
        assert first.startswith(f"# GENERATED from aisearch/_async/{name} by scripts/unasync.py")
        assert first.endswith("do not edit by hand.")


def test_the_substitutions():
    unasync = load_script()
    source = '''class _AsyncTransport(_BaseClient[httpx.AsyncClient]):
    """Asynchronous (async) example: ``await client.search(...)``."""

    async def stream(self) -> AsyncGenerator[StreamEvent, None]:
        async with AsyncAttempt(request, None) as attempt:
            await response.aread()
            await asleep(1)
            async for sse in events:
                yield sse
        await response.aclose()
        return await agather(*calls)

    # unasync: async only
    async def close(self) -> None:
        await self.aclose()

    # unasync: end
    async def __aenter__(self) -> AsyncAISearchClient:
        return AsyncEventStream(self.aiter_bytes(), run_async, new_async_client())
'''
    expected = '''class _Transport(_BaseClient[httpx.Client]):
    """Synchronous (sync) example: ``client.search(...)``."""

    def stream(self) -> Generator[StreamEvent, None, None]:
        with Attempt(request, None) as attempt:
            response.read()
            sleep(1)
            for sse in events:
                yield sse
        response.close()
        return gather(*calls)

    def __enter__(self) -> AISearchClient:
        return EventStream(self.iter_bytes(), run_sync, new_client())
'''
    out = unasync.unasync_text("x.py", source, set())
    assert out.splitlines()[0].startswith("# GENERATED from aisearch/_async/x.py")
    assert out.split("\n", 1)[1] == expected
    # words that merely contain a rule's text are left alone
    assert unasync.unasync_line("StopAsyncIteration; areader; my_aclose\n", set()) == (
        "StopAsyncIteration; areader; my_aclose\n"
    )
