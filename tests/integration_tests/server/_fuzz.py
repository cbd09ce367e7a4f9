"""Request fuzzing of aisearch_local over real HTTP (shared by the test suite and the benchmark).

:func:`fuzz_requests` is a Hypothesis strategy of raw HTTP requests covering every route of
``aisearch_local.app``'s route table, with valid-ish bodies carrying hostile values (NaN,
Infinity, 1e400, huge integers, lone surrogates, deep nesting, wrong types, "²" in filters),
hostile path ids (``..``, ``%2e%2e``, encoded separators, control characters, out-of-charset,
too long) and hostile query parameters. Requests are sent with :mod:`http.client`, which puts
the path on the wire as given (no dot-segment normalisation, unlike httpx).

:func:`check_response` says what is wrong with an answer (a 5xx, an error that is not the
Cloudflare envelope) and :func:`read_everything` walks every read route over every stored
namespace, instance, item and job, returning the ones that did not answer 2xx.
"""

from __future__ import annotations

import http.client
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from hypothesis import strategies as st

from aisearch_local.app import _routes
from aisearch_local.testing import LocalServer
from tests._support import hostile_values

ACCOUNT = "fuzz-account"
NAMESPACE = "fuzz-ns"
INSTANCE = "fuzz"
SACRIFICE = "fuzz-del"  # the only namespace/instance a DELETE with a valid id aims at

# -- hostile building blocks --------------------------------------------------------------------

# path segments exactly as they go on the wire
HOSTILE_SEGMENTS = [
    "..",
    ".",
    "%2e%2e",
    "%2E%2E",
    ".%2e",
    "%2e",
    "a%2Fb",
    "a%2fsearch",
    "a%5Cb",
    "a%00b",
    "a%0Ab",
    "a%09",
    "%7F",
    "A",
    "Fuzz",
    "a" * 65,
    "x" * 300,
    "%C3%A9",
    "%ED%A0%80",
    "%FF",
    "a.b",
    "a%20b",
    "-a",
    "a--b",
    "a-",
    "%252e%252e",
    "a;b",
    "a@b",
    "~a",
    "%2e%2e/",
    "../",
    ".%2e/",
    "%2e/",
    "a/",
]

SPECIAL_STRINGS = [
    "\ud800",
    "x\udfff",
    "\udc00\ud800",
    "²",
    "١٢٣",
    "..",
    "../etc/passwd",
    "/abs",
    "a\x00b",
    "line\nbreak",
    "",
    " ",
    "💥",
    "9" * 30,
]

SPECIAL_NUMBERS: list[Any] = [
    float("nan"),
    float("inf"),
    float("-inf"),
    2**53,
    -(2**53),
    2**63,
    10**400,
    1e308,
    -0.0,
    0,
    1,
    -1,
    0.5,
]

BIG_INT_TEXT = "1" + "0" * 5000

scalars = hostile_values(
    st.sampled_from(SPECIAL_STRINGS), st.sampled_from(SPECIAL_NUMBERS), text_size=12
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=8) | st.sampled_from(SPECIAL_STRINGS), inner, max_size=3)
    ),
    max_leaves=8,
)


class _Raw:
    """A JSON fragment inserted verbatim (huge integers, deep nesting)."""

    def __init__(self, text: str) -> None:
        self.text = text


RAW_FRAGMENTS = [
    _Raw(BIG_INT_TEXT),
    _Raw("-" + BIG_INT_TEXT),
    _Raw("1e400"),
    _Raw("-1e400"),
    _Raw("NaN"),
    _Raw("Infinity"),
    _Raw("-Infinity"),
    _Raw("[" * 3000 + "]" * 3000),
    _Raw('{"a":' * 40 + "1" + "}" * 40),
    _Raw('"\\ud800"'),
    _Raw('"\\udfff\\ud800"'),
]

hostile_values = st.one_of(json_values, st.sampled_from(RAW_FRAGMENTS))


def encode(value: Any) -> str:
    """JSON-encode a value as a permissive client would (NaN literals, ``\\ud800`` escapes)."""
    raws: list[str] = []

    def swap(v: Any) -> Any:
        if isinstance(v, _Raw):
            raws.append(v.text)
            return f"@@RAW{len(raws) - 1}@@"
        if isinstance(v, dict):
            return {k: swap(x) for k, x in v.items()}
        if isinstance(v, list):
            return [swap(x) for x in v]
        return v

    text = json.dumps(swap(value), ensure_ascii=True, allow_nan=True)
    return re.sub(r'"@@RAW(\d+)@@"', lambda m: raws[int(m.group(1))], text)


HOSTILE_BODIES = [
    b"",
    b"null",
    b"[]",
    b'"x"',
    b"3",
    b"{",
    b'{"a": NaN}',
    b'{"query": Infinity}',
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 5000 + b"1" + b"}" * 5000,
    b'{"x": ' + BIG_INT_TEXT.encode() + b"}",
    b"\xff\xfe\x00",
    b'{"query": "\\ud800"}',
    b'{"\\ud800": 1}',
    b'{"query": "a", "query": 1}',
]

# -- valid-ish values per field -------------------------------------------------------------------

FILTERS: list[Any] = [
    {"folder": "docs/"},
    {"timestamp": "²"},
    {"timestamp": {"$gte": "١٢٣"}},
    {"timestamp": {"$gte": 1700000000}},
    {"timestamp": {"$lt": 1e400}},
    {"tag": {"$in": ["a", "b"]}},
    {"tag": {"$in": "a"}},
    {"tag": {"$nin": [None]}},
    {"$or": [{"a": 1}]},
    {"tag": {"$regex": "x"}},
    {"tag": []},
    {"": 1},
    [],
    "folder",
    {"type": "eq", "key": "folder", "value": "docs/"},
    {"type": "or", "filters": [{"type": "eq", "key": "a", "value": 1}]},
    {"type": "and", "filters": "x"},
    {"type": "eq", "key": ["a"], "value": 1},
]

RETRIEVAL_FIELDS: dict[str, list[Any]] = {
    "retrieval_type": ["vector", "keyword", "hybrid", "x", ["hybrid"]],
    "match_threshold": [0, 0.3, 1, 2, "0.5"],
    "max_num_results": [1, 5, 50, 51, 0, 2.5],
    "filters": FILTERS,
    "context_expansion": [0, 1, 3, 4],
    "fusion_method": ["rrf", "max", ["max"], {"a": 1}],
    "keyword_match_mode": ["and", "or", "exact_match", ["and"], {"x": 1}],
    "boost_by": [[{"field": "timestamp", "direction": "desc"}], [{"field": ["x"]}], [1], "x"],
    "metadata_only": [True, False, "yes"],
    "return_on_failure": [True, False, 0],
}

INSTANCE_FIELDS: dict[str, list[Any]] = {
    "type": [None, "r2", "web-crawler", ["r2"]],
    "source": [
        None,
        "bucket",
        3,
        ["a"],
        "/tmp/x/\x00",
        "/tmp/" + "a" * 300,
        "/tmp/x/" + "a/" * 3000,
        "/",
        "/proc/self/../..",
        "bucket\x00",
    ],
    "source_params": [
        None,
        {"prefix": "a/"},
        "x",
        [],
        {"include_items": ["a/**"], "web_crawler": {"parse_type": "sitemap"}},
        {"include_items": [None]},
        {"web_crawler": {"discover_options": {"limit": float("inf")}}},
        {"web_crawler": {"parse_options": {"content_selector": [{"path": "/"}]}}},
    ],
    "ai_search_model": ["@cf/meta/llama-3.3-70b-instruct-fp8-fast", 3, None],
    "embedding_model": ["", None, {"a": 1}],
    "rewrite_query": [True, False, "true"],
    "reranking": [True, False, 1],
    "cache": [True, False, None],
    "cache_threshold": ["close_enough", "nope", ["close_enough"]],
    "cache_ttl": [600, 601, "600", [600]],
    "chunk": [True, False],
    "chunk_size": [16, 256, 15, 4097, 256.0],
    "chunk_overlap": [0, 10, 30, 31, -1],
    "max_num_results": [1, 10, 50, 51],
    "score_threshold": [0, 0.4, 1, 1.5, "0.4"],
    "fusion_method": ["rrf", "max", "min"],
    "hybrid_search_enabled": [True, False, "no"],
    "index_method": [{"vector": True, "keyword": True}, {"vector": False, "keyword": False}, []],
    "indexing_options": [
        {"keyword_tokenizer": "trigram"},
        {"keyword_tokenizer": 3},
        "x",
        {"use_ocr": True},
        {"use_ocr": "notabool"},
        {"use_ocr": None, "future": 1},
    ],
    "retrieval_options": [
        {"keyword_match_mode": "or"},
        {"keyword_match_mode": ["or"]},
        {"boost_by": [{"field": "timestamp"}]},
        {"boost_by": [{"field": 3}]},
        {"boost_by": ["x"]},
        {"boost_by": "x"},
    ],
    "custom_metadata": [
        [{"field_name": "tag", "data_type": "text"}],
        [{"field_name": "timestamp", "data_type": "text"}],
        [{"field_name": ["x"], "data_type": "text"}],
        "x",
    ],
    "metadata": [{}, {"worker_domain": "x"}, "x"],
    "public_endpoint_params": [None, {"enabled": True}, 3],
    "sync_interval": [900, 901],
    "paused": [True, False, "x"],
    "system_prompt_ai_search": ["Be brief.", 3],
    "unknown_field": [1, "x", {"a": [1]}],
}

FAULT_FIELDS: dict[str, list[Any]] = {
    "latency_ms": [0, 1, 600_001, -1, 0.5],
    "status": [503, 429, 200, 600, "503"],
    "code": [7017, -1],
    "retry_after": [0, 1, -1],
    "truncate_stream": [True, False, 1],
    "malformed_body": [False, True],
    "times": [1, 2, -1],
    "unknown": [1],
}

LEGACY_FIELDS: dict[str, list[Any]] = {
    "query": ["espresso", "", 3, ["a"]],
    "max_num_results": [1, 5, 51],
    "ranking_options": [{"score_threshold": 0.2}, {"score_threshold": 2}, "x"],
    "rewrite_query": [True, False, "x"],
    "reranking": [{"enabled": True}, "x"],
    "filters": FILTERS,
    "stream": [False, True, "x"],
    "system_prompt": ["Be brief.", 3],
    "model": ["m", 3],
    "max_tokens": [1, 50, 0, 2.5],
    "stop": ["x", ["a", "b"], [1], ["a"] * 5],
}

CHAT_FIELDS: dict[str, list[Any]] = {
    "model": ["m", 3, None],
    "stream": [False, True, "yes"],
    "max_tokens": [1, 64, 0, -1, True],
    "stop": ["x", ["a"], [1], ["a"] * 5],
}

MESSAGES: list[Any] = [
    [{"role": "user", "content": "how do I make espresso?"}],
    [{"role": "user", "content": [{"type": "text", "text": "grind size"}]}],
    [{"role": "system", "content": "x"}, {"role": "user", "content": "cold brew"}],
    [{"role": "robot", "content": "x"}],
    [{"role": "user", "content": 3}],
    [{"role": "user"}],
    [],
    "hello",
    [[]],
    # multimodal parts (API.md 18.1): images answer 7089 unless keyword retrieval reads the text
    [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/a.png"}}]}],
    [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "grind"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            ],
        }
    ],
    [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": 3}}]}],
    [{"role": "user", "content": [{"type": "audio"}, "bare", {"type": "file", "file": {}}]}],
]


@dataclass
class Target:
    """The ids that exist on the fuzzed server."""

    account: str = ACCOUNT
    namespaces: list[str] = field(default_factory=lambda: ["default", NAMESPACE])
    instances: list[str] = field(default_factory=lambda: [INSTANCE, "fuzz-src"])
    item_ids: list[str] = field(default_factory=list)
    job_ids: list[str] = field(default_factory=list)
    # (namespace, instance) -> (item ids, job ids, the item id a valid DELETE aims at)
    resources: dict[tuple[str, str], tuple[list[str], list[str], str]] = field(default_factory=dict)


@dataclass
class FuzzRequest:
    """One raw request."""

    method: str
    path: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """A short text of the request for failure messages."""
        body = self.body[:200]
        more = f"... ({len(self.body)} bytes)" if len(self.body) > 200 else ""
        return f"{self.method} {self.path[:300]} {body!r}{more}"


# -- setup --------------------------------------------------------------------------------------


def setup_target(server: LocalServer, source_dir: Path) -> Target:
    """Create the namespaces, instances, items and a job the fuzzer aims at."""
    target = Target()
    with httpx.Client(base_url=_account_url(server), headers=server.headers, timeout=60) as http:
        http.post("/ai-search/namespaces", json={"name": NAMESPACE}).raise_for_status()
        for ns in ("default", NAMESPACE):
            r = http.post(
                f"/ai-search/namespaces/{ns}/instances",
                json={
                    "id": INSTANCE,
                    "custom_metadata": [{"field_name": "tag", "data_type": "text"}],
                },
            )
            r.raise_for_status()
            docs = (
                ("docs/espresso.md", "Espresso needs a fine grind."),
                ("b.txt", "x"),
                ("doomed.md", "deleted by the fuzzer"),
            )
            ids = []
            for key, text in docs:
                up = http.post(
                    f"/ai-search/namespaces/{ns}/instances/{INSTANCE}/items",
                    files={"file": (key, text.encode())},
                    data={"metadata": json.dumps({"tag": "a", "n": 1})},
                )
                up.raise_for_status()
                ids.append(up.json()["result"]["id"])
            job = http.post(f"/ai-search/namespaces/{ns}/instances/{INSTANCE}/jobs", json={})
            job.raise_for_status()
            job_id = job.json()["result"]["id"]
            target.resources[(ns, INSTANCE)] = (ids[:-1], [job_id], ids[-1])
            target.item_ids.extend(ids)
            target.job_ids.append(job_id)
        # an instance synced from a folder (created in-process: the folder is the test's own)
        (source_dir / "a.md").write_text("Cold brew steeps for hours.", encoding="utf-8")
        (source_dir / "a.md.meta.json").write_text('{"tag": NaN}', encoding="utf-8")
        (source_dir / "b.md").write_text("Pour over.", encoding="utf-8")
        (source_dir / "b.md.meta.json").write_text('{"tag": {"deep": 1}}', encoding="utf-8")
        (source_dir / "c.json").write_text("[" * 50_000 + "]" * 50_000, encoding="utf-8")
        assert server.service is not None
        inst = server.service.create_instance(
            "default", {"id": "fuzz-src"}, source_dir=str(source_dir)
        )
        del inst
        job = http.post("/ai-search/instances/fuzz-src/jobs", json={})
        job.raise_for_status()
        target.job_ids.append(job.json()["result"]["id"])
        items = http.get("/ai-search/instances/fuzz-src/items").json()["result"] or []
        src_ids = [i["id"] for i in items]
        target.resources[("default", "fuzz-src")] = (src_ids, target.job_ids[-1:], SACRIFICE)
        target.item_ids.extend(src_ids)
    return target


def _account_url(server: LocalServer, account: str = ACCOUNT) -> str:
    return f"{server.base_url}/accounts/{account}"


# -- the strategy -------------------------------------------------------------------------------


def _route_table() -> list[tuple[str, str]]:
    out = []
    for route in _routes():
        for method in sorted(route.methods or ()):
            if method != "HEAD":
                out.append((method, route.path))
    return out


ROUTES = _route_table()


def _segment(valid: list[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(valid).map(lambda s: quote(s, safe="")),
        st.sampled_from(valid).map(lambda s: quote(s, safe="")),
        st.sampled_from(HOSTILE_SEGMENTS),
        st.text(max_size=10).map(lambda s: quote(s.encode("utf-8", "surrogatepass"), safe="")),
    )


@st.composite
def _mutated(draw: st.DrawFn, base: dict[str, Any], menu: dict[str, list[Any]]) -> Any:
    body = dict(base)
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(sorted(menu)))
        body[name] = draw(st.one_of(st.sampled_from(menu[name]), hostile_values))
    if draw(st.integers(0, 9)) == 0:
        return draw(hostile_values)
    return body


@st.composite
def _search_body(draw: st.DrawFn, *, chat: bool, namespace: bool) -> Any:
    base: dict[str, Any] = {}
    if chat or draw(st.booleans()):
        base["messages"] = draw(st.sampled_from(MESSAGES))
    else:
        base["query"] = draw(st.sampled_from(["espresso grind", "", "\ud800", 3, "cold brew"]))
    retrieval = draw(_mutated({}, RETRIEVAL_FIELDS))
    options: dict[str, Any] = {"retrieval": retrieval}
    if namespace:
        options["instance_ids"] = draw(
            st.sampled_from([[INSTANCE], [INSTANCE, "missing"], [], ["..", INSTANCE], "x", [3]])
        )
    extra = draw(
        st.sampled_from(
            [
                {},
                {"reranking": {"enabled": True}},
                {"query_rewrite": {"enabled": True}},
                {"cache": {"enabled": False}},
                {"custom_metadata": {"a": 1}},
                {"reranking": "x"},
            ]
        )
    )
    options.update(extra)
    base["ai_search_options"] = options
    if chat:
        return draw(_mutated(base, CHAT_FIELDS))
    return draw(_mutated(base, {"query": ["espresso"], "ai_search_options": [None, "x"]}))


def _multipart(draw: st.DrawFn) -> tuple[bytes, dict[str, str]]:
    boundary = "fuzzboundary"
    key = draw(
        st.sampled_from(
            ["a.md", "docs/x.md", "deep.json", "../x.md", "/abs.md", "a\x01.md", "", "a" * 129]
        )
        | st.text(max_size=12).map(lambda s: s + ".md")
    )
    content = draw(
        st.sampled_from(
            [
                b"hello coffee",
                b"[" * 100_000 + b"]" * 100_000,
                b'{"a": "\\ud800", "n": NaN}',
                b'{"n": ' + BIG_INT_TEXT.encode() + b"}",
                b"\xff\xfe",
                b"",
            ]
        )
    )
    meta = draw(
        st.one_of(
            st.none(),
            st.sampled_from(['{"note": NaN}', '{"note": Infinity}', '{"note": 1e400}']),
            st.sampled_from(['{"note": "\\ud800"}', "[1]", "nope", '{"a": {"b": 1}}']),
            json_values.map(lambda v: encode({"note": v})),
        )
    )
    wait = draw(st.sampled_from(["true", "false", "maybe", None]))
    parts = []
    filename = key.encode("utf-8", "surrogatepass").replace(b'"', b"%22")
    parts.append(
        b'Content-Disposition: form-data; name="file"; filename="'
        + filename
        + b'"\r\nContent-Type: application/octet-stream\r\n\r\n'
        + content
    )
    if meta is not None:
        # metadata as a plain field, or as a file part (curl -F 'metadata=@m.json')
        as_file = draw(st.booleans())
        parts.append(
            b'Content-Disposition: form-data; name="metadata"'
            + (b'; filename="m.json"\r\nContent-Type: application/json' if as_file else b"")
            + b"\r\n\r\n"
            + meta.encode("utf-8", "surrogatepass")
        )
    if wait is not None:
        parts.append(
            b'Content-Disposition: form-data; name="wait_for_completion"\r\n\r\n' + wait.encode()
        )
    body = b"".join(b"--" + boundary.encode() + b"\r\n" + p + b"\r\n" for p in parts)
    body += b"--" + boundary.encode() + b"--\r\n"
    return body, {"content-type": f"multipart/form-data; boundary={boundary}"}


_QUERY_PARAMS: dict[str, list[str]] = {
    "page": ["1", "2", "0", "-1", "x", "9" * 30],
    "per_page": ["1", "50", "100", "101", "x"],
    "search": ["a", "", "\x00"],
    "status": ["completed", "error", "x"],
    "key": ["a.md", ".."],
    "item_id": ["x"],
    "sort_by": ["status", "modified_at", "x"],
    "metadata_filter": [
        '{"timestamp": "²"}',
        '{"folder": "docs/"}',
        '{"a": NaN}',
        '{"a": 1e400}',
        '{"a": "\\ud800"}',
        "[" * 5000,
        '{"tag": {"$in": "a"}}',
        "nope",
        '{"n": ' + "9" * 5000 + "}",
    ],
    "limit": ["1", "100", "101", "x", "9" * 40],
    "offset": ["0", "-1", "9" * 40],
    "namespace": ["default", NAMESPACE, "..", "UP", "a" * 70],
    "order_by_direction": ["desc", "asc", "x"],
    "order_by": ["created_at", "name", ""],
    "hostname": ["docs.example.com", "", "h" * 254, "[::1]", "\x00"],
    "source": ["builtin", "web-crawler:https://a.b", ""],
}


@st.composite
def _query(draw: st.DrawFn) -> str:
    names = draw(st.lists(st.sampled_from(sorted(_QUERY_PARAMS)), max_size=3, unique=True))
    pairs = []
    for name in names:
        value = draw(st.sampled_from(_QUERY_PARAMS[name]) | st.text(max_size=8))
        pairs.append((name, value.encode("utf-8", "surrogatepass")))
    return "?" + urlencode(pairs) if pairs else ""


@st.composite
def fuzz_requests(draw: st.DrawFn, target: Target) -> FuzzRequest:
    """One request to a route of the route table, with hostile parts."""
    method, template = draw(st.sampled_from(ROUTES))
    path = template
    # valid ids are drawn together, so an item id belongs to the instance in the same path
    combos = sorted(target.resources) or [("default", INSTANCE)]
    if "{ns}" not in template:
        combos = [c for c in combos if c[0] == "default"] or combos
    ns, instance = draw(st.sampled_from(combos))
    items, jobs, doomed = target.resources.get((ns, instance), ([], [], SACRIFICE))
    for name in re.findall(r"{(\w+)}", template):
        # mostly valid ids, so the handlers behind them are reached too
        valid = draw(st.integers(0, 3)) > 0
        pool = {
            "account_id": [target.account],
            "ns": [ns],
            "instance_id": [instance],
            "rag_id": [instance],
            "item_id": items,
            "job_id": jobs,
        }[name]
        if method == "DELETE" and template.endswith("{" + name + "}"):
            # keep the fuzzed namespaces, instances and items alive
            pool = [doomed] if name == "item_id" else [SACRIFICE]
        if valid:
            seg = quote(draw(st.sampled_from(pool)), safe="") if pool else "none"
        else:
            seg = draw(_segment(pool or ["none"]))
        path = path.replace("{" + name + "}", seg, 1)
    path = "/client/v4" + path if not path.startswith("/client/v4") else path
    headers: dict[str, str] = {"content-type": "application/json"}
    body: Any = None
    raw: bytes | None = None
    if method in ("POST", "PUT", "PATCH"):
        raw = draw(st.sampled_from([None, None, None, None, None, None, *HOSTILE_BODIES]))
        if raw is None:
            if template.endswith("/items") and method == "POST":
                raw, headers = _multipart(draw)
            elif template.endswith(
                ("/namespaces/{ns}/search", "/namespaces/{ns}/chat/completions")
            ):
                body = draw(_search_body(chat=template.endswith("completions"), namespace=True))
            elif template.endswith("/search") and "/rags/" not in template:
                body = draw(_search_body(chat=False, namespace=False))
            elif template.endswith("/chat/completions"):
                body = draw(_search_body(chat=True, namespace=False))
            elif "/rags/" in template:
                body = draw(_mutated({"query": "espresso"}, LEGACY_FIELDS))
            elif template.endswith("/instances") and method == "POST":
                body = draw(_mutated({"id": draw(_new_id())}, INSTANCE_FIELDS))
            elif template.endswith("{instance_id}"):
                body = draw(_mutated({}, INSTANCE_FIELDS))
            elif template.endswith("/namespaces"):
                menu = {
                    "description": ["d", 3, "x" * 300],
                    "public_endpoint_params": [{"a": 1}, None, 3, "x"],
                    "name": ["UP", "..", "a--b", "x" * 65],
                }
                body = draw(_mutated({"name": draw(_new_id())}, menu))
            elif template.endswith("{ns}"):
                menu = {
                    "description": ["d", 3],
                    "public_endpoint_params": [{"a": 1}, None, 3],
                }
                body = draw(_mutated({}, menu))
            elif "/_local/bulk/" in template:
                item_menu = {
                    "key": ["..", "/x", 3, "docs/bulk.md"],
                    "text": [3, None, "", "espresso"],
                    "data": ["!!", "eA==", 3],
                    "metadata": [{"a": 1}, 3, {"n": {"x": 1}}],
                }
                items = draw(st.lists(_mutated({"key": "docs/bulk.md"}, item_menu), max_size=4))
                body = draw(_mutated({"items": items}, {"items": [[], "x", None]}))
            elif template.endswith("/items"):
                body = draw(_mutated({"key": "docs/espresso.md"}, {"key": ["..", "/x", 3]}))
            elif template.endswith("{item_id}"):
                body = draw(_mutated({"next_action": "INDEX"}, {"next_action": ["x", None]}))
            elif template.endswith("/jobs"):
                body = draw(_mutated({}, {"description": ["d", 3, "x" * 2000]}))
            elif template.endswith("{job_id}"):
                body = draw(_mutated({"action": "cancel"}, {"action": ["x", 3]}))
            elif "faults" in template:
                body = draw(_mutated({}, FAULT_FIELDS))
            else:
                body = draw(hostile_values)
            if raw is None:
                raw = encode(body).encode("utf-8", "surrogatepass")
    query = draw(_query()) if method == "GET" else ""
    if draw(st.integers(0, 15)) == 0:
        headers["content-type"] = draw(
            st.sampled_from(
                ["text/plain", "multipart/form-data", "application/x-www-form-urlencoded"]
            )
        )
    return FuzzRequest(method=method, path=path + query, body=raw or b"", headers=headers)


def _new_id() -> st.SearchStrategy[str]:
    return st.one_of(
        st.from_regex(r"\Afz[a-z0-9]{1,6}\Z"),
        st.sampled_from(["UP", "..", "a\n", "a--b", "x" * 65, "", "a.b", "\ud800"]),
    )


# -- sending and checking -------------------------------------------------------------------------


def send(
    conn: http.client.HTTPConnection, req: FuzzRequest, auth: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    """Send one request on a keep-alive connection; return status, headers and body."""
    headers = {**auth, **req.headers, "content-length": str(len(req.body))}
    conn.request(req.method, req.path, body=req.body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data


def check_response(status: int, headers: dict[str, str], body: bytes) -> str | None:
    """Return what is wrong with an answer, or None: no 5xx nor 3xx, every error an envelope."""
    if status >= 500:
        return f"HTTP {status}: {body[:300]!r}"
    if 300 <= status < 400:  # Cloudflare's API never redirects; a client following one may
        return f"HTTP {status} redirect to {headers.get('location')!r}"  # act on another path
    if status < 400:
        return None
    try:
        doc = json.loads(body)
    except ValueError:
        return f"HTTP {status} error body is not JSON: {body[:300]!r}"
    ok = (
        isinstance(doc, dict)
        and doc.get("success") is False
        and doc.get("result") is None
        and doc.get("messages") == []
        and isinstance(doc.get("errors"), list)
        and len(doc["errors"]) >= 1
        and isinstance(doc["errors"][0].get("code"), int)
        and isinstance(doc["errors"][0].get("message"), str)
    )
    if not ok:
        return f"HTTP {status} error is not the Cloudflare envelope: {body[:300]!r}"
    if "content-type" in headers and "json" not in headers["content-type"]:
        return f"HTTP {status} error has content-type {headers['content-type']!r}"
    return None


def read_everything(server: LocalServer, account: str = ACCOUNT) -> tuple[int, list[str]]:
    """Call every read route on every stored resource; return (calls, failures)."""
    failures: list[str] = []
    calls = 0

    with httpx.Client(
        base_url=_account_url(server, account), headers=server.headers, timeout=60
    ) as http:

        def call(method: str, path: str, **kw: Any) -> httpx.Response | None:
            """Send one request; record a transport error or a status >= 300 as a failure."""
            nonlocal calls
            calls += 1
            where = f"{method} {path!r} {kw.get('params', '')}".rstrip()
            try:
                r = http.request(method, path, **kw)
            except httpx.HTTPError as exc:
                failures.append(f"{where}: {exc!r}")
                return None
            if r.status_code >= 300:
                failures.append(f"{where}: {r.status_code} {r.text[:300]}")
                return None
            return r

        def get(path: str, **params: Any) -> Any:
            r = call("GET", path, params=params)
            if r is None:
                return None
            return r.json() if "json" in r.headers.get("content-type", "") else r.content

        def post(path: str, body: dict[str, Any]) -> None:
            call("POST", path, json=body)

        def all_pages(path: str, per_page: int) -> list[dict[str, Any]]:
            rows: list[dict[str, Any]] = []
            page = 1
            while True:
                doc = get(path, page=page, per_page=per_page)
                if doc is None:
                    return rows
                rows.extend(doc["result"])
                if page >= doc["result_info"]["total_pages"]:
                    return rows
                page += 1

        ask = {"messages": [{"role": "user", "content": "espresso grind"}]}
        namespaces = all_pages("/ai-search/namespaces", 100)
        get("/ai-search/instances", per_page=100)
        for ns in namespaces:
            base = f"/ai-search/namespaces/{quote(ns['name'], safe='')}"
            get(base)
            instances = all_pages(f"{base}/instances", 100)
            for inst in instances:
                iid = quote(inst["id"], safe="")
                ib = f"{base}/instances/{iid}"
                get(ib)
                get(f"{ib}/stats")
                post(f"{ib}/search", {"query": "espresso grind"})
                post(f"{ib}/chat/completions", ask)
                for item in all_pages(f"{ib}/items", 50):
                    item_path = f"{ib}/items/{quote(item['id'], safe='')}"
                    get(item_path)
                    get(f"{item_path}/chunks", limit=100)
                    get(f"{item_path}/download")
                for job in all_pages(f"{ib}/jobs", 100):
                    get(f"{ib}/jobs/{quote(job['id'], safe='')}")
                    get(f"{ib}/jobs/{quote(job['id'], safe='')}/logs")
                if ns["name"] == "default":
                    post(f"/autorag/rags/{iid}/search", {"query": "espresso"})
                    post(f"/autorag/rags/{iid}/ai-search", {"query": "espresso"})
            ids = [i["id"] for i in instances][:10]
            if ids:
                options = {"ai_search_options": {"instance_ids": ids}}
                post(f"{base}/search", {"query": "espresso", **options})
                post(f"{base}/chat/completions", {**ask, **options})
    calls += 1
    health = httpx.get(f"{server.base_url}/_local/health", timeout=60)
    if health.status_code != 200:
        failures.append(f"health: {health.status_code}")
    return calls, failures
