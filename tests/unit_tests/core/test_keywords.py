"""The shared keyword options (``**params``): shown, documented and checked like named ones."""

from __future__ import annotations

import inspect

import httpx
import pytest

from aisearch import AISearchClient, AsyncAISearchClient

MESSAGES = [{"role": "user", "content": "Hi"}]
CALLS = [
    ("search", ("docs", "q"), "namspace", "namespace"),
    ("namespace_search", (["docs"], "q"), "extra_option", "extra_options"),
    ("chat_completions", ("docs", MESSAGES), "temprature", "temperature"),
    ("stream_chat_completions", ("docs", MESSAGES), "max_token", "max_tokens"),
    ("namespace_chat_completions", (["docs"], MESSAGES), "stops", "stop"),
    ("stream_namespace_chat_completions", (["docs"], MESSAGES), "modle", "model"),
    ("legacy_search", ("docs", "q"), "max_num_result", "max_num_results"),
    ("legacy_ai_search", ("docs", "q"), "system_promt", "system_prompt"),
    ("stream_legacy_ai_search", ("docs", "q"), "filter", "filters"),
]


@pytest.mark.parametrize(("name", "args", "typo", "meant"), CALLS)
def test_an_unexpected_keyword_is_a_type_error_naming_it(harness, name, args, typo, meant):
    h = harness(lambda request: httpx.Response(500))
    with pytest.raises(TypeError, match=f"unexpected keyword argument '{typo}'") as info:
        h.call(name, *args, **{typo: 1})
    assert f"did you mean '{meant}'?" in str(info.value)
    # as Python words it: the class and the method come first
    assert f"AISearchClient.{name}() got an unexpected" in str(info.value)
    assert h.requests == []


def test_a_keyword_of_another_method_is_rejected(harness):
    h = harness(lambda request: httpx.Response(500))
    with pytest.raises(TypeError, match="unexpected keyword argument 'system_prompt'"):
        h.call("legacy_search", "docs", "q", system_prompt="be brief")
    with pytest.raises(TypeError, match=r"'zzz'$"):
        h.call("search", "docs", "q", zzz=1)
    assert h.requests == []


@pytest.mark.parametrize("cls", [AISearchClient, AsyncAISearchClient])
@pytest.mark.parametrize(("name", "args", "typo", "meant"), CALLS)
def test_the_keywords_are_in_the_signature_and_the_docstring(cls, name, args, typo, meant):
    method = getattr(cls, name)
    params = inspect.signature(method).parameters
    assert params[meant].kind is inspect.Parameter.KEYWORD_ONLY
    assert params[meant].default is None
    assert not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    assert f"\n            {meant}: " in (method.__doc__ or "")
    assert "**params" not in (method.__doc__ or "")


def test_the_sync_and_async_signatures_match():
    for name, *_ in CALLS:
        sync, async_ = getattr(AISearchClient, name), getattr(AsyncAISearchClient, name)
        assert inspect.signature(sync).parameters == inspect.signature(async_).parameters, name
