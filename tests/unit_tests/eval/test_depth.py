"""A ranking must be as deep as the deepest metric it reports."""

import pytest

from aisearch_eval.grid import Config
from aisearch_eval.runner import _check


@pytest.mark.parametrize(
    ("ks", "depth", "needed"), [((1, 5, 20), 10, 20), ((1, 5), 5, 10), ((30,), 29, 30)]
)
def test_a_depth_shallower_than_a_metric_is_refused(ks, depth, needed):
    with pytest.raises(ValueError, match=rf"depth: must be at least {needed}\b"):
        _check(ks, 4, depth)


def test_a_deep_enough_ranking_is_accepted():
    assert _check((5, 1, 10), 4, 10) == (1, 5, 10)


def test_a_configuration_asking_fewer_results_than_a_metric_is_refused() -> None:
    shallow = Config("max_num_results=5", {"retrieval": {"max_num_results": 5}})
    deep = Config("max_num_results=20", {"retrieval": {"max_num_results": 20}})
    assert _check((1, 5, 10), 4, 10, [deep]) == (1, 5, 10)
    with pytest.raises(
        ValueError,
        match=r"^max_num_results=5: retrieval\.max_num_results must be at least 10, the deepest "
        r"metric asked \(ndcg@10, k=10\); got 5 ",
    ):
        _check((1, 5, 10), 4, 10, [deep, shallow])


def test_the_command_refuses_it_before_any_query(capsys: pytest.CaptureFixture[str]) -> None:
    from aisearch_eval import SAMPLE_GOLDEN_SET
    from aisearch_eval.cli import main

    argv = [str(SAMPLE_GOLDEN_SET), "--instance", "coffee", "--vary", "max_num_results=5,20"]
    assert main([*argv, "--base-url", "http://127.0.0.1:9/client/v4", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "max_num_results=5: retrieval.max_num_results must be at least 10" in err
