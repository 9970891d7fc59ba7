"""MARO's pure functions against hand-computed numbers."""

import pytest

from maro.learner import maro


def test_td_decompose_one_step_credits_sum_to_outcome_less_start_value():
    credits = maro.td_decompose([0.2, 0.5, 0.1], 1.0, lambda_=0.0)
    assert credits == pytest.approx([0.3, -0.4, 0.9])
    assert sum(credits) == pytest.approx(1.0 - 0.2)


def test_td_decompose_lambda_one_is_monte_carlo_credit():
    assert maro.td_decompose([0.2, 0.5, 0.1], 1.0, lambda_=1.0) == pytest.approx([0.8, 0.5, 0.9])


def test_td_decompose_lambda_blends_like_gae():
    # c2 = 0.9, c1 = -0.4 + 0.5 * 0.9, c0 = 0.3 + 0.5 * c1
    assert maro.td_decompose([0.2, 0.5, 0.1], 1.0, lambda_=0.5) == pytest.approx([0.325, 0.05, 0.9])


def test_td_decompose_single_and_empty():
    assert maro.td_decompose([0.25], -1.0) == pytest.approx([-1.25])
    assert maro.td_decompose([], 1.0) == []


def test_direct_utility_and_mix():
    assert maro.direct_utility(0.1, 0.4) == pytest.approx(0.3)
    assert maro.mix_reward(1.0, 0.3, alpha=0.25) == pytest.approx(0.75 + 0.075)
    assert maro.mix_reward(1.0, 0.3, alpha=0.0) == 1.0


def test_group_normalise_per_role_and_zero_variance_gives_zero():
    adv = maro.group_normalise([1.0, 3.0, 10.0, 10.0], ["a", "a", "b", "b"])
    assert adv == pytest.approx([-1.0, 1.0, 0.0, 0.0], abs=1e-5)


def test_group_normalise_single_behavior_is_zero():
    assert maro.group_normalise([0.7], ["seller"]) == [0.0]


def test_role_weights_equalise_role_totals():
    w = maro.role_weights(["s", "s", "s", "b"], beta=1.0)
    assert w == pytest.approx([2 / 3, 2 / 3, 2 / 3, 2.0])
    assert sum(w[:3]) == pytest.approx(w[3])
    assert sum(w) / len(w) == pytest.approx(1.0)


def test_role_weights_beta_zero_and_half():
    assert maro.role_weights(["s", "s", "b"], beta=0.0) == pytest.approx([1.0, 1.0, 1.0])
    w = maro.role_weights(["s", "s", "s", "b"], beta=0.5)
    assert w == pytest.approx([0.84530, 0.84530, 0.84530, 1.46410], abs=1e-4)
    assert maro.role_weights([], beta=1.0) == []


def test_ema_baselines_judge_each_outcome_against_the_baseline_before_it():
    adv, baselines = maro.ema_baselines({}, [1.0, -1.0], ["s", "s"], decay=0.9)
    assert adv == pytest.approx([1.0, -1.1])
    assert baselines["s"] == pytest.approx(-0.01)


def test_unknown_variant_fails_loudly():
    with pytest.raises(ValueError):
        maro.Variant("maro-plus")


def test_mix_values_normalises_the_weights():
    # (0.5 * 3 + (-1.0) * 1) / (3 + 1) = 0.125
    assert maro.mix_values([0.5, -1.0], [3.0, 1.0]) == pytest.approx(0.125)
    assert maro.mix_values([0.2, 0.9], [1.0, 0.0]) == pytest.approx(0.2)
    with pytest.raises(ValueError):
        maro.mix_values([0.2], [0.0])
    with pytest.raises(ValueError):
        maro.mix_values([0.2, 0.1], [2.0, -1.0])


def test_staleness_factor_drop_and_reweight_beyond_the_limit():
    assert maro.staleness_factor(5, None, "drop", 0.5) == 1.0  # no rule
    assert maro.staleness_factor(None, 0, "drop", 0.5) == 1.0  # unversioned model: kept
    assert maro.staleness_factor(2, 2, "drop", 0.5) == 1.0  # within the limit
    assert maro.staleness_factor(3, 2, "drop", 0.5) is None
    # reweight: decay ** (lag - max_staleness) = 0.5 ** 3
    assert maro.staleness_factor(5, 2, "reweight", 0.5) == pytest.approx(0.125)
    assert maro.staleness_factor(1, 0, "reweight", 0.8) == pytest.approx(0.8)
    with pytest.raises(ValueError):
        maro.staleness_factor(3, 0, "ignore", 0.5)
