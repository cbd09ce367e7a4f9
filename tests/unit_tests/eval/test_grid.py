"""The grid: assignments, products, files, and bad options named before any query is sent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aisearch_eval import Config, GridError, build_grid, load_grid_file, parse_assignment


def test_parse_assignment_short_names_and_json_values() -> None:
    assert parse_assignment("retrieval_type=vector,hybrid") == (
        "retrieval.retrieval_type",
        ["vector", "hybrid"],
    )
    assert parse_assignment("match_threshold=0,0.5") == ("retrieval.match_threshold", [0, 0.5])
    assert parse_assignment("reranking=true,false") == ("reranking.enabled", [True, False])
    assert parse_assignment('boost_by=[[{"field": "rating"}], null]') == (
        "retrieval.boost_by",
        [[{"field": "rating"}], None],
    )
    assert parse_assignment("cache.enabled=false") == ("cache.enabled", [False])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("retrieval_type", "must be NAME=VALUE"),
        ("retrieval_type=", "must be NAME=VALUE"),
        ("=x", "option name: must not be empty"),
        ("boost_by=[", "must be a non-empty JSON list"),
    ],
)
def test_parse_assignment_errors(text: str, message: str) -> None:
    with pytest.raises(GridError, match=message):
        parse_assignment(text)


def test_build_grid_product_with_base_and_default() -> None:
    grid = build_grid(
        [
            parse_assignment("retrieval_type=keyword,hybrid"),
            parse_assignment("fusion_method=rrf,max"),
        ],
        base={"retrieval": {"max_num_results": 30}},
    )
    assert [c.name for c in grid] == [
        "default",
        "retrieval_type=keyword fusion_method=rrf",
        "retrieval_type=keyword fusion_method=max",
        "retrieval_type=hybrid fusion_method=rrf",
        "retrieval_type=hybrid fusion_method=max",
    ]
    assert grid[0].options == {"retrieval": {"max_num_results": 30}}
    assert grid[-1].options == {
        "retrieval": {"max_num_results": 30, "retrieval_type": "hybrid", "fusion_method": "max"}
    }


def test_null_unsets_and_named_configs_merge_with_base() -> None:
    grid = build_grid(
        [("retrieval.max_num_results", [None])],
        base={"retrieval": {"max_num_results": 30, "retrieval_type": "keyword"}},
        configs=[Config("or", {"retrieval": {"keyword_match_mode": "or"}})],
        include_default=False,
    )
    assert grid[0].options == {
        "retrieval": {
            "max_num_results": 30,
            "retrieval_type": "keyword",
            "keyword_match_mode": "or",
        }
    }
    assert grid[1].options == {"retrieval": {"retrieval_type": "keyword"}}


@pytest.mark.parametrize(
    ("vary", "message"),
    [
        (
            [("retrieval.max_num_results", [90])],
            "configuration 'max_num_results=90': ai_search_options.retrieval.max_num_results: "
            "must be an integer between 1 and 50 (got 90)",
        ),
        (
            [("retrieval.fusion_method", ["sum"])],
            "ai_search_options.retrieval.fusion_method: must be one of 'rrf' or 'max'",
        ),
        ([("retrieval.match_threshold", [float("nan")])], "match_threshold"),
        ([("retrieval.bogus", [1])], "ai_search_options.retrieval.bogus"),
        ([("retrieval.retrieval_type.x", [1])], "retrieval.retrieval_type: must be one of"),
        (
            [("retrieval.retrieval_type", ["x"]), ("retrieval.retrieval_type.y", [1])],
            "retrieval_type is not an object",
        ),
    ],
)
def test_bad_options_are_refused_with_the_field(vary, message: str) -> None:
    with pytest.raises(GridError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_grid(vary)


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(GridError, match="configuration names must be distinct \\('default'\\)"):
        build_grid(configs=[Config("default", {})])


def test_grid_file_forms(tmp_path: Path) -> None:
    path = tmp_path / "grid.json"
    path.write_text(
        json.dumps([{"name": "kw", "options": {"retrieval": {"retrieval_type": "keyword"}}}])
    )
    configs, vary = load_grid_file(path)
    assert configs == [Config("kw", {"retrieval": {"retrieval_type": "keyword"}})] and vary == []
    path.write_text(json.dumps({"vary": {"fusion_method": ["rrf", "max"]}}))
    assert load_grid_file(path) == ([], [("retrieval.fusion_method", ["rrf", "max"])])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "cannot read a JSON grid"),
        ('{"other": 1}', "must be a list of configurations or an object with configs/vary"),
        ('[{"options": {}}]', r"configs\[0\]: must be"),
        ('{"vary": {"fusion_method": []}}', "vary: must map option names to non-empty lists"),
    ],
)
def test_grid_file_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "grid.json"
    path.write_text(content)
    with pytest.raises(GridError, match=message):
        load_grid_file(path)
