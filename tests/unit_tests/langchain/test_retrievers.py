from __future__ import annotations

import copy
import json
import pickle
import threading
import warnings
from typing import Any

import httpx
import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.load import dumpd, dumps
from langchain_core.runnables import RunnableLambda
from pydantic import ValidationError

from aisearch import (
    AISearchError,
    AllInstancesFailedError,
    APIStatusError,
    BoostBy,
    InvalidRequestError,
    NotFoundError,
    SearchTarget,
)
from langchain_aisearch import (
    AISearchInstanceWarning,
    AISearchMultiRetriever,
    AISearchRetriever,
    AISearchSearchTool,
    ChatAISearch,
    InstanceSearchError,
)

from .conftest import TOKEN, Recorder, chunk, make_clients, search_envelope

# --------------------------------------------------------------------------- validation


def test_construction_without_credentials_does_not_raise_first_call_does():
    retriever = AISearchRetriever(instance_id="docs")
    with pytest.raises(AISearchError, match="CLOUDFLARE_ACCOUNT_ID"):
        retriever.invoke("q")
    retriever = AISearchRetriever(instance_id="docs", account_id="acc")
    with pytest.raises(AISearchError, match="CLOUDFLARE_API_TOKEN"):
        retriever.invoke("q")


@pytest.mark.parametrize("k", [0, 51, -1, True, 2.5, "3"])
def test_k_out_of_range_names_field_and_range(k):
    with pytest.raises(ValidationError, match="k"):
        AISearchRetriever(instance_id="docs", k=k)


@pytest.mark.parametrize("k", [0, 51, "3", 2.5, True])
def test_per_call_k_validated_before_network(search_server, k):
    recorder, sync, _ = search_server
    retriever = AISearchRetriever(instance_id="docs", client=sync)
    with pytest.raises(ValueError, match=r"k: must be an integer between 1 and 50"):
        retriever.invoke("q", k=k)
    assert recorder.requests == []


def test_per_call_bad_filter_is_a_typed_error_before_network(search_server):
    recorder, sync, _ = search_server
    retriever = AISearchRetriever(instance_id="docs", client=sync)
    with pytest.raises(
        InvalidRequestError, match=r"filters\.rating: unsupported operator '\$near'"
    ):
        retriever.invoke("q", filters={"rating": {"$near": 4}})
    assert recorder.requests == []


@pytest.mark.parametrize(
    ("build", "wrong", "meant"),
    [
        (lambda: AISearchRetriever(instance_id="coffee", top_k=3), "top_k", "k"),
        (lambda: AISearchRetriever(instance_id="c", similarity_top_k=3), "similarity_top_k", "k"),
        (lambda: AISearchRetriever(instnce_id="coffee"), "instnce_id", "instance_id"),
        (lambda: AISearchRetriever.model_validate({"instance_id": "c", "top_k": 3}), "top_k", "k"),
        (lambda: AISearchMultiRetriever(instance_id=["a", "b"]), "instance_id", "instance_ids"),
        (lambda: ChatAISearch(instance_id="c", temprature=0.2), "temprature", "temperature"),
        (
            lambda: AISearchSearchTool(retriver=AISearchRetriever(instance_id="c")),
            "retriver",
            "retriever",
        ),
        (lambda: AISearchRetriever(instance_id="c", api_tokn=TOKEN), "api_tokn", "api_token"),
    ],
)
def test_misspelt_setting_says_which_one_was_meant(build, wrong, meant):
    with pytest.raises(InvalidRequestError) as caught:
        build()
    assert isinstance(caught.value, ValidationError)  # what LangChain code catches
    text = str(caught.value)
    assert f"{wrong}\n  Extra inputs are not permitted (did you mean {meant!r}?)" in text
    assert TOKEN not in text
    [error] = [e for e in caught.value.errors() if e["loc"] == (wrong,)]
    assert error["type"] == "extra_forbidden"


@pytest.mark.parametrize(
    ("build", "wrong", "meant"),
    [
        (lambda: AISearchRetriever(instance_id="coffee"), "top_k", "k"),
        (lambda: ChatAISearch(instance_id="c"), "temprature", "temperature"),
        (
            lambda: AISearchSearchTool(retriever=AISearchRetriever(instance_id="c")),
            "retriver",
            "retriever",
        ),
        (lambda: AISearchRetriever(instance_id="c"), "api_tokn", "api_token"),
    ],
)
def test_assigning_a_misspelt_setting_says_which_one_was_meant(build, wrong, meant):
    obj = build()
    with pytest.raises(InvalidRequestError) as caught:
        setattr(obj, wrong, TOKEN)
    assert isinstance(caught.value, ValidationError)
    text = str(caught.value)
    assert f"Object has no attribute {wrong!r} (did you mean {meant!r}?)" in text
    assert TOKEN not in text and TOKEN not in repr(caught.value.errors())
    assert not hasattr(obj, wrong)


def test_an_unknown_setting_like_no_real_one_gets_no_guess():
    with pytest.raises(InvalidRequestError) as caught:
        AISearchRetriever(instance_id="coffee", zzzz=1)
    assert "zzzz\n  Extra inputs are not permitted [type=extra_forbidden]" in str(caught.value)
    assert "did you mean" not in str(caught.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("match_threshold", 1.5),
        ("match_threshold", True),  # a bool is not a number here, even though bool <: int
        ("context_expansion", 4),
        ("context_expansion", True),
        ("metadata_only", 1),
        ("return_on_failure", "yes"),
        ("retrieval_type", "semantic"),
        ("fusion_method", "sum"),
        ("keyword_match_mode", "maybe"),
        ("boost_by", [{"field": "a"}, {"field": "b"}, {"field": "c"}, {"field": "d"}]),
        ("filters", {"folder": {"$regex": "x"}}),
        ("instance_id", "bad id!"),
        ("namespace", ""),
    ],
)
def test_bad_option_rejected_at_construction(field, value):
    params: dict[str, Any] = {"instance_id": "docs", field: value}
    with pytest.raises(ValidationError, match=field):
        AISearchRetriever(**params)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("k", 99),
        ("k", True),
        ("match_threshold", 2),
        ("metadata_only", "no"),
        ("filters", {"a": {"$x": 1}}),
    ],
)
def test_assignment_is_validated_too(field, value):
    retriever = AISearchRetriever(instance_id="docs", k=3, match_threshold=0.5)
    before = {"k": retriever.k, "match_threshold": retriever.match_threshold}
    with pytest.raises(ValidationError, match=field):
        setattr(retriever, field, value)
    assert {"k": retriever.k, "match_threshold": retriever.match_threshold} == before
    retriever.k = 7  # a good value is taken
    assert retriever.k == 7


def test_assignment_failing_a_model_check_changes_nothing():
    # filters pass the field type (a dict) but fail the options check run on the whole model
    retriever = AISearchRetriever(instance_id="docs", filters={"folder": "docs/"})
    with pytest.raises(ValidationError, match=r"filters\.a: unsupported operator '\$x'"):
        retriever.filters = {"a": {"$x": 1}}
    assert retriever.filters == {"folder": "docs/"}


def test_changing_a_connection_setting_rebuilds_the_client(search_server):
    retriever = AISearchRetriever(instance_id="docs", account_id="acc", api_token=TOKEN)
    first = retriever._get_client()
    assert retriever._get_client() is first
    retriever.base_url = "http://127.0.0.1:9/client/v4"
    second = retriever._get_client()
    assert second is not first
    assert second._config.base_url == "http://127.0.0.1:9/client/v4"
    retriever.k = 5  # not a connection setting: the client stays
    assert retriever._get_client() is second


def test_deepcopy_shares_injected_clients_and_builds_its_own_otherwise(search_server):
    _, sync, _ = search_server
    injected = AISearchRetriever(instance_id="docs", client=sync, k=3)
    twin = copy.deepcopy(injected)
    assert twin.client is sync and twin.k == 3
    built = AISearchRetriever(instance_id="docs", account_id="acc", api_token=TOKEN)
    own = built._get_client()
    twin = built.model_copy(deep=True)
    assert twin._get_client() is not own
    twin.close()  # closing the copy's clients leaves the original's alone
    assert built._get_client() is own
    assert twin.api_token is not None and twin.api_token.get_secret_value() == TOKEN


def test_pickle_is_refused_with_a_reason():
    retriever = AISearchRetriever(instance_id="docs", account_id="acc", api_token=TOKEN)
    with pytest.raises(TypeError, match="cannot be pickled: it holds credentials") as info:
        pickle.dumps(retriever)
    assert TOKEN not in str(info.value)


def test_multi_max_concurrency_and_k_reject_bools():
    for field in ("k", "max_concurrency"):
        with pytest.raises(ValidationError, match=field):
            AISearchMultiRetriever(instance_ids=["a", "b"], **{field: True})


def test_unknown_per_call_argument_is_rejected(search_server):
    _, sync, _ = search_server
    with pytest.raises(TypeError, match="top_k"):
        AISearchRetriever(instance_id="docs", client=sync).invoke("q", top_k=2)


def test_env_fallbacks(monkeypatch):
    monkeypatch.setenv("CF_ACCOUNT_ID", "acc-env")
    monkeypatch.setenv("CF_AI_SEARCH_API_TOKEN", "tok-env")
    monkeypatch.setenv("AISEARCH_BASE_URL", "http://127.0.0.1:9/client/v4")
    retriever = AISearchRetriever(instance_id="docs")
    assert retriever.account_id == "acc-env"
    assert retriever.api_token is not None
    assert retriever.api_token.get_secret_value() == "tok-env"
    assert retriever.base_url == "http://127.0.0.1:9/client/v4"
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "tok-first")
    assert AISearchRetriever(instance_id="docs").api_token.get_secret_value() == "tok-first"


def test_token_never_in_repr_or_serialised_forms():
    retriever = AISearchRetriever(
        instance_id="docs", account_id="acc", api_token=TOKEN, api_key="KEY-SECRET-9"
    )
    for text in (repr(retriever), str(retriever), dumps(retriever), json.dumps(dumpd(retriever))):
        assert TOKEN not in text
        assert "KEY-SECRET-9" not in text
    assert TOKEN not in retriever.model_dump_json()


# --------------------------------------------------------------------------- requests


# fields, per-call arguments -> the ai_search_options sent (only what is set, per call wins)
SENT_OPTIONS = {
    "per-call k and filters": (
        {
            "k": 5,
            "retrieval_type": "hybrid",
            "reranking": {"enabled": True},
            "filters": {"folder": "a/"},
            "extra_options": {"retrieval": {"future_knob": 1}},
        },
        {"k": 2, "filters": {"lang": "en"}},
        {
            "retrieval": {
                "retrieval_type": "hybrid",
                "filters": {"lang": "en"},
                "max_num_results": 2,
                "future_knob": 1,
            },
            "reranking": {"enabled": True},
        },
    ),
    "cache, custom metadata, keyword mode alias": (
        {
            "k": 2,
            "keyword_match_mode": "fuzzy_match",
            "cache": {"enabled": True},
            "custom_metadata": {"app": "faq"},
        },
        {},
        {
            "retrieval": {"keyword_match_mode": "or", "max_num_results": 2},
            "cache": {"enabled": True},
            "custom_metadata": {"app": "faq"},
        },
    ),
}


@pytest.mark.parametrize("case", list(SENT_OPTIONS))
def test_request_body_sends_only_set_options_and_per_call_values(search_server, case):
    recorder, sync, _ = search_server
    fields, call, sent = SENT_OPTIONS[case]
    AISearchRetriever(instance_id="docs", client=sync, **fields).invoke("espresso", **call)
    (body,) = recorder.bodies
    assert body["query"] == "espresso"
    assert body["ai_search_options"] == sent
    assert recorder.paths[0].endswith(
        "/accounts/acc/ai-search/namespaces/default/instances/docs/search"
    )
    assert recorder.requests[0][0].headers["authorization"] == f"Bearer {TOKEN}"


def test_reserved_custom_metadata_key_is_refused():
    with pytest.raises(ValidationError, match="custom_metadata: key 'task' is reserved"):
        AISearchRetriever(instance_id="docs", custom_metadata={"task": "x"})


def test_options_follow_assignments_between_calls(search_server):
    # every call sends the options as they are after the latest (validated) assignment; a
    # rejected assignment changes nothing
    recorder, sync, _ = search_server
    retriever = AISearchRetriever(instance_id="docs", client=sync, k=3, filters={"a": 1})
    retriever.invoke("q")
    retriever.invoke("q")
    retriever.match_threshold = 0.3
    retriever.filters = {"b": 2}
    retriever.invoke("q")
    retriever.k = 7
    retriever.invoke("q")
    with pytest.raises(ValidationError):
        retriever.filters = {"c": {"$near": 1}}
    retriever.invoke("q")
    retriever.invoke("q", k=2)
    options = [b["ai_search_options"]["retrieval"] for b in recorder.bodies]
    assert options == [
        {"filters": {"a": 1}, "max_num_results": 3},
        {"filters": {"a": 1}, "max_num_results": 3},
        {"match_threshold": 0.3, "filters": {"b": 2}, "max_num_results": 3},
        {"match_threshold": 0.3, "filters": {"b": 2}, "max_num_results": 7},
        {"match_threshold": 0.3, "filters": {"b": 2}, "max_num_results": 7},
        {"match_threshold": 0.3, "filters": {"b": 2}, "max_num_results": 2},
    ]


def test_options_follow_in_place_changes_between_calls(search_server):
    # the options built for one call are reused by the next only while no option field has
    # changed, in place included
    recorder, sync, _ = search_server
    retriever = AISearchRetriever(
        instance_id="docs",
        client=sync,
        k=2,
        filters={"folder": "a/"},
        boost_by=[{"field": "timestamp", "direction": "desc"}],
        reranking={"enabled": True},
    )
    retriever.invoke("q")
    assert retriever.filters is not None and retriever.reranking is not None
    retriever.filters["folder"] = "b/"
    retriever.invoke("q")
    retriever.reranking.enabled = False
    retriever.invoke("q")
    assert retriever.boost_by is not None
    retriever.boost_by.append(retriever.boost_by[0].model_copy(update={"field": "rating"}))
    retriever.invoke("q")
    sent = [b["ai_search_options"] for b in recorder.bodies]
    assert [s["retrieval"]["filters"] for s in sent] == [{"folder": "a/"}] + [{"folder": "b/"}] * 3
    assert [s["reranking"]["enabled"] for s in sent] == [True, True, False, False]
    assert [len(s["retrieval"]["boost_by"]) for s in sent] == [1, 1, 1, 2]


def test_options_follow_changes_to_equal_values_of_another_type(search_server):
    # 1 == 1.0 == True in Python, but they are sent as 1, 1.0 and true
    recorder, sync, _ = search_server
    retriever = AISearchRetriever(
        instance_id="docs", client=sync, filters={"flag": 1}, custom_metadata={"n": 0}
    )
    retriever.invoke("q")
    retriever.filters = {"flag": True}
    retriever.invoke("q")
    assert retriever.filters is not None
    retriever.filters["flag"] = 1.0
    retriever.custom_metadata = {"n": False}
    retriever.invoke("q")
    sent = [json.loads(r.content)["ai_search_options"] for r, _ in recorder.requests]
    assert [repr(s["retrieval"]["filters"]["flag"]) for s in sent] == ["1", "True", "1.0"]
    assert [repr(s["custom_metadata"]["n"]) for s in sent] == ["0", "0", "False"]


def test_an_in_place_change_while_options_are_built_is_not_missed(search_server):
    # another thread changes a filter in place while a call builds its options: that call
    # may send either value, every later call sends the new one. The change is made from
    # inside the build: the validation of a filter condition reads its items.
    recorder, sync, _ = search_server
    armed: list[bool] = []

    class ChangesWhenRead(dict[str, Any]):
        def items(self) -> Any:
            if armed:
                armed.clear()
                assert retriever.filters is not None
                retriever.filters["folder"] = "b/"
            return super().items()

    retriever = AISearchRetriever(
        instance_id="docs",
        client=sync,
        filters={"folder": "a/", "tag": ChangesWhenRead({"$eq": "x"})},
    )
    armed.append(True)
    retriever.invoke("q", k=3)
    retriever.invoke("q", k=3)
    assert [b["ai_search_options"]["retrieval"]["filters"]["folder"] for b in recorder.bodies] == [
        "a/",
        "b/",
    ]


def test_a_filter_value_that_is_not_json_is_named_as_invalid(search_server):
    recorder, sync, _ = search_server
    with pytest.raises(ValidationError, match=r"filters\.x: must be a string"):
        AISearchRetriever(instance_id="docs", client=sync, filters={"x": threading.Lock()})
    retriever = AISearchRetriever(instance_id="docs", client=sync, filters={"x": 1})
    assert retriever.filters is not None
    retriever.filters["x"] = threading.Lock()
    with pytest.raises(InvalidRequestError, match=r"filters\.x: must be a string"):
        retriever.invoke("q")
    assert recorder.requests == []


def test_an_invalid_in_place_change_fails_the_next_call_before_the_network(search_server):
    recorder, sync, _ = search_server
    retriever = AISearchRetriever(instance_id="docs", client=sync, boost_by=[])
    retriever.invoke("q")
    assert retriever.boost_by is not None
    retriever.boost_by.extend(BoostBy(field=f"f{i}", direction="asc") for i in range(4))
    with pytest.raises(InvalidRequestError, match="boost_by"):
        retriever.invoke("q")
    assert len(recorder.bodies) == 1


def test_options_sent_follow_every_change_and_nothing_else(search_server):
    recorder, sync, _ = search_server
    retriever = AISearchRetriever(instance_id="docs", client=sync, k=3, match_threshold=0.2)
    for _ in range(3):
        retriever.invoke("q")
    retriever.invoke("q", k=5)
    retriever.invoke("q", k=5)
    retriever.invoke("q", filters={"x": 1})
    retriever.invoke("q")  # per-call filters apply to their call only
    retriever.match_threshold = 0.5
    retriever.invoke("q")
    sent = [b["ai_search_options"]["retrieval"] for b in recorder.bodies]
    assert [r["max_num_results"] for r in sent] == [3, 3, 3, 5, 5, 3, 3, 3]
    assert [r.get("filters") for r in sent] == [None] * 5 + [{"x": 1}, None, None]
    assert [r["match_threshold"] for r in sent] == [0.2] * 7 + [0.5]


def test_documents_mapped_and_k_respected(search_server):
    _, sync, _ = search_server
    docs = AISearchRetriever(instance_id="docs", client=sync, k=3).invoke("q")
    assert [d.id for d in docs] == ["chunk-1", "chunk-2", "chunk-3"]
    assert docs[0].metadata["instance_id"] == "docs"
    assert docs[0].metadata["search_query"] == "rewritten"
    assert docs[0].metadata["n"] == 1


async def test_async_uses_async_client(search_server):
    recorder, _, asyncc = search_server
    retriever = AISearchRetriever(instance_id="docs", async_client=asyncc)
    docs = await retriever.ainvoke("q", k=2)
    assert len(docs) == 2
    assert len(recorder.requests) == 1


async def test_close_releases_built_clients_only(search_server):
    _, sync, asyncc = search_server
    injected = AISearchRetriever(instance_id="docs", client=sync, async_client=asyncc)
    await injected.ainvoke("q")
    await injected.aclose()
    assert len(await injected.ainvoke("q")) == 4  # injected clients stay usable
    built = AISearchRetriever(
        instance_id="docs", account_id="acc", api_token=TOKEN, base_url="http://x/client/v4"
    )
    first = built._get_async_client()
    sync_client = built._get_client()
    await built.aclose()
    assert built._get_async_client() is not first
    assert built._get_client() is not sync_client


@pytest.mark.parametrize(
    ("status", "payload", "exc"),
    [
        (
            404,
            {"success": False, "errors": [{"code": 7002, "message": "instance not found"}]},
            NotFoundError,
        ),
        (
            200,
            {"success": False, "errors": [{"code": 1000, "message": "boom"}], "result": None},
            APIStatusError,
        ),
    ],
)
def test_errors_propagate_typed_never_empty(status, payload, exc):
    recorder = Recorder(lambda r, b: httpx.Response(status, json=payload))
    sync, _ = make_clients(recorder)
    with pytest.raises(exc):
        AISearchRetriever(instance_id="docs", client=sync).invoke("q")


def test_ls_params():
    params = AISearchRetriever(instance_id="docs")._get_ls_params()
    assert params["ls_retriever_name"] == "aisearch"
    assert params["ls_vector_store_provider"] == "cloudflare-aisearch"


# --------------------------------------------------------------------------- multi


def _namespace_server(errors: list[dict[str, Any]], chunks: list[dict[str, Any]]):
    recorder = Recorder(
        lambda r, b: httpx.Response(200, json=search_envelope(chunks, errors=errors))
    )
    sync, asyncc = make_clients(recorder)
    return recorder, sync, asyncc


class EventCollector(BaseCallbackHandler):
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def on_custom_event(self, name, data, **kwargs):
        self.events.append((name, data))


def test_multi_uses_namespace_endpoint_up_to_ten():
    recorder, sync, _ = _namespace_server([], [chunk(1, "a"), chunk(2, "b")])
    retriever = AISearchMultiRetriever(instance_ids=["a", "b"], client=sync, k=2)
    assert retriever.uses_namespace_endpoint
    docs = retriever.invoke("q")
    assert [d.metadata["instance_id"] for d in docs] == ["a", "b"]
    (body,) = recorder.bodies
    assert body["ai_search_options"]["instance_ids"] == ["a", "b"]
    assert recorder.paths[0].endswith("/ai-search/namespaces/default/search")


def test_multi_fans_out_beyond_ten_and_across_namespaces():
    def respond(request: httpx.Request, body: dict[str, Any]) -> httpx.Response:
        instance = request.url.path.split("/instances/")[1].split("/")[0]
        score = 0.5 + int(instance[1:]) / 100
        return httpx.Response(200, json=search_envelope([chunk(1, score=score)]))

    recorder = Recorder(respond)
    sync, _ = make_clients(recorder)
    ids = [f"i{n}" for n in range(11)]
    retriever = AISearchMultiRetriever(instance_ids=ids, client=sync, k=3)
    assert not retriever.uses_namespace_endpoint
    docs = retriever.invoke("q")
    assert len(recorder.requests) == 11
    assert [d.metadata["instance_id"] for d in docs] == ["i10", "i9", "i8"]
    other_ns = AISearchMultiRetriever(
        instance_ids=["i1", SearchTarget("i2", namespace="other")], client=sync
    )
    assert not other_ns.uses_namespace_endpoint
    other_ns.invoke("q")
    assert any("/namespaces/other/instances/i2/" in p for p in recorder.paths)


def test_multi_partial_failure_warns_and_emits_custom_event():
    errors = [{"instance_id": "b", "message": "instance b is down"}]
    _, sync, _ = _namespace_server(errors, [chunk(1, "a")])
    retriever = AISearchMultiRetriever(instance_ids=["a", "b"], client=sync)
    collector = EventCollector()
    with pytest.warns(AISearchInstanceWarning, match="instance b is down"):
        docs = retriever.invoke("q", config={"callbacks": [collector]})
    assert [d.id for d in docs] == ["chunk-1"]
    assert collector.events == [
        (
            "aisearch_instance_error",
            {
                "instance_id": "b",
                "message": "instance b is down",
                "error_type": None,
                "status_code": None,
            },
        )
    ]


def _partial_failure_retriever() -> AISearchMultiRetriever:
    errors = [{"instance_id": "b", "message": "instance b is down"}]
    _, sync, asyncc = _namespace_server(errors, [chunk(1, "a")])
    return AISearchMultiRetriever(instance_ids=["a", "b"], client=sync, async_client=asyncc)


def _recorded(call) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    assert [w.category for w in caught] == [AISearchInstanceWarning]
    return caught


@pytest.mark.parametrize("path", ["invoke", "chain", "one-item batch"])
def test_multi_warning_points_at_the_callers_line(path):
    retriever = _partial_failure_retriever()
    runnable = retriever | RunnableLambda(lambda docs: docs) if path == "chain" else retriever
    if path == "one-item batch":
        (w,) = _recorded(lambda: runnable.batch(["q"]))
    else:
        (w,) = _recorded(lambda: runnable.invoke("q"))
    assert w.filename == __file__  # the user's code, not langchain_core's
    assert "instance b is down" in str(w.message)


async def test_multi_warning_points_at_the_callers_line_async():
    retriever = _partial_failure_retriever()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        await retriever.ainvoke("q")
    (w,) = caught
    assert w.filename == __file__


def test_multi_on_instance_error_raise_and_ignore():
    errors = [{"instance_id": "b", "message": "down"}]
    _, sync, _ = _namespace_server(errors, [chunk(1, "a")])
    with pytest.raises(InstanceSearchError, match="b: down") as info:
        AISearchMultiRetriever(
            instance_ids=["a", "b"], client=sync, on_instance_error="raise"
        ).invoke("q")
    assert [e.instance_id for e in info.value.errors] == ["b"]
    docs = AISearchMultiRetriever(
        instance_ids=["a", "b"], client=sync, on_instance_error="ignore"
    ).invoke("q")
    assert len(docs) == 1


def test_multi_all_failed_lists_each_instance():
    errors = [{"instance_id": "a", "message": "x"}, {"instance_id": "b", "message": "y"}]
    _, sync, _ = _namespace_server(errors, [])
    retriever = AISearchMultiRetriever(
        instance_ids=["a", "b"], client=sync, on_instance_error="ignore"
    )
    with pytest.raises(AllInstancesFailedError, match=r"a: x; b: y"):
        retriever.invoke("q")
    docs, errs = retriever.search_with_errors("q")
    assert docs == []
    assert [e.instance_id for e in errs] == ["a", "b"]


async def test_multi_async_search_with_errors():
    errors = [{"instance_id": "b", "message": "down"}]
    _, _, asyncc = _namespace_server(errors, [chunk(1, "a")])
    retriever = AISearchMultiRetriever(instance_ids=["a", "b"], async_client=asyncc)
    docs, errs = await retriever.asearch_with_errors("q", k=1)
    assert [d.id for d in docs] == ["chunk-1"]
    assert errs[0].message == "down"


def test_multi_validates_ids():
    with pytest.raises(ValidationError, match=r"instance_ids\[1\]"):
        AISearchMultiRetriever(instance_ids=["ok", "not ok"])
    with pytest.raises(ValidationError, match="instance_ids"):
        AISearchMultiRetriever(instance_ids=[])
