"""A ranking must be as deep as the deepest metric it reports."""

import pytest

from aisearch_eval.runner import _check


@pytest.mark.parametrize(
    ("ks", "depth", "needed"), [((1, 5, 20), 10, 20), ((1, 5), 5, 10), ((30,), 29, 30)]
)
def test_a_depth_shallower_than_a_metric_is_refused(ks, depth, needed):
    with pytest.raises(ValueError, match=rf"depth: must be at least {needed}\b"):
        _check(ks, 4, depth)


def test_a_deep_enough_ranking_is_accepted():
    assert _check((5, 1, 10), 4, 10) == (1, 5, 10)
