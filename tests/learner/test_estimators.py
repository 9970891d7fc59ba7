"""Value estimators: the game heuristic, rollouts against a pool, the LLM judge (LiteLLM mock_response), the mix."""

import asyncio

import pytest

from maro.agents import llm
from maro.arena.engine import make_game
from maro.learner import credit as credit_module
from maro.learner.config import JudgeConfig, MixConfig, RolloutConfig
from maro.learner.credit import MaroConfig
from maro.learner.estimators import (
    GameEstimator,
    JudgeEstimator,
    MixEstimator,
    RolloutEstimator,
    estimator_stats,
    judge_messages,
    make_estimator,
    parse_probability,
)

BARGAIN = make_game("bargaining-v1")


def opening(seed=4, moves=("[Offer: 80]",)):
    state, _ = BARGAIN.init(seed)
    for text in moves:
        (seat,) = BARGAIN.acting(state)
        state, _ = BARGAIN.step(state, {seat: text})
    return state


def mock_complete(answer: str):
    """LiteLLM's own mock_response behind the project's one model call, counting calls."""
    calls = []

    async def complete(messages, settings):
        calls.append(messages)
        return await llm.complete(messages, settings, mock_response=answer)

    return complete, calls


# --- game ------------------------------------------------------------------------------------------

def test_game_estimator_is_the_game_heuristic_and_stays_importable_from_credit():
    assert credit_module.GameEstimator is GameEstimator
    state = opening()
    est = GameEstimator(BARGAIN)
    assert est.value(BARGAIN.snapshot(state), 1) == pytest.approx(BARGAIN.value(state, 1))


# --- rollout ---------------------------------------------------------------------------------------

PRICE = 60  # between cost 35 and value 69 of seed 4


def fixed_price_policy(game, state, seat, rng):
    """Seller asks PRICE; buyer accepts any standing offer."""
    view = game.view(state, seat)
    return "[Accept]" if view["standing_offer"] and view["role"] == "buyer" else f"[Offer: {PRICE}]"


def test_rollout_averages_final_outcomes_of_the_pool():
    state = opening(moves=())
    assert (state.cost, state.value) == (35, 69)
    est = RolloutEstimator(BARGAIN, RolloutConfig(samples=3, pool=["model"]), model_policy=fixed_price_policy)
    # Every continuation: seller offers 60, buyer accepts -> payoffs (60 - 35) / 34, (69 - 60) / 34.
    expected = (25 / 34, 9 / 34)
    assert est.value(BARGAIN.snapshot(state), 0) == pytest.approx(expected[0])
    assert est.value(BARGAIN.snapshot(state), 1) == pytest.approx(expected[1])
    assert est.stats["rollout/continuations"] == 6


def test_rollout_is_deterministic_per_seed_and_cached():
    snap = BARGAIN.snapshot(opening())
    config = RolloutConfig(samples=6, pool=["bot", "random"], seed=3)
    a, b = RolloutEstimator(BARGAIN, config), RolloutEstimator(BARGAIN, config)
    assert a.value(snap, 0) == b.value(snap, 0)
    assert -1.0 <= a.value(snap, 0) <= 1.0
    before = a.stats["rollout/continuations"]
    a.value(snap, 0)
    assert a.stats["rollout/continuations"] == before  # second call from the cache
    others = {RolloutEstimator(BARGAIN, config.model_copy(update={"seed": s})).value(snap, 0) for s in range(6)}
    assert len(others) > 1  # the seed matters


def test_rollout_of_a_finished_state_is_its_outcome():
    state = opening(moves=("[Offer: 80]", "[Accept]"))
    est = RolloutEstimator(BARGAIN, RolloutConfig(samples=4))
    assert est.value(BARGAIN.snapshot(state), 0) == pytest.approx(state.outcome[0])
    assert est.stats["rollout/continuations"] == 0


def test_rollout_plays_simultaneous_phases_and_replaces_illegal_actions():
    game = make_game("prisoners_dilemma-v1")
    state, _ = game.init(1)
    est = RolloutEstimator(game, RolloutConfig(samples=3, pool=["model"]),
                           model_policy=lambda g, s, seat, rng: "not an action")
    value = est.value(game.snapshot(state), 0)
    assert -1.0 <= value <= 1.0
    assert est.stats["rollout/invalid_actions"] > 0  # every action was replaced by a random legal one
    assert est.stats["rollout/truncated"] == 0


def test_rollout_cap_scores_the_heuristic_and_counts_it():
    state = opening(moves=())
    est = RolloutEstimator(BARGAIN, RolloutConfig(samples=1, pool=["model"], max_steps=1),
                           model_policy=fixed_price_policy)
    after, _ = BARGAIN.step(state, {0: f"[Offer: {PRICE}]"})
    assert est.value(BARGAIN.snapshot(state), 0) == pytest.approx(BARGAIN.value(after, 0))
    assert est.stats["rollout/truncated"] == 1


def test_rollout_pool_names_are_checked():
    with pytest.raises(ValueError, match="model policy"):
        RolloutEstimator(BARGAIN, RolloutConfig(pool=["model"]))
    with pytest.raises(ValueError, match="unknown rollout policy"):
        RolloutEstimator(BARGAIN, RolloutConfig(pool=["oracle"]))


# --- judge -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, p", [
    ("PROBABILITY: 0.75", 0.75), ("probability is 80%", 0.8), ("I'd say 0.3", 0.3), ("Probability: .4", 0.4),
    ("Seat 1 looks strong. PROBABILITY: 1", 1.0), ("PROBABILITY: 7", None), ("no idea", None), ("", None),
])
def test_parse_probability(text, p):
    assert parse_probability(text) == (pytest.approx(p) if p is not None else None)


def test_judge_maps_probability_and_caches_by_content(tmp_path):
    complete, calls = mock_complete("PROBABILITY: 0.8")
    config = JudgeConfig(cache_path=tmp_path / "judge.sqlite")
    est = JudgeEstimator(BARGAIN, config, complete)
    snap = BARGAIN.snapshot(opening())
    assert est.value(snap, 1) == pytest.approx(0.6)  # 2p - 1
    assert est.value(snap, 1) == pytest.approx(0.6)
    assert len(calls) == 1
    again = JudgeEstimator(BARGAIN, config, complete)  # a rerun reads the file, calls nothing
    assert again.value(snap, 1) == pytest.approx(0.6)
    assert len(calls) == 1 and again.stats["judge/disk_hits"] == 1


def test_judge_batches_distinct_prompts_and_skips_finished_states():
    complete, calls = mock_complete("PROBABILITY: 0.25")
    est = JudgeEstimator(BARGAIN, JudgeConfig(concurrency=2), complete)
    snaps = [BARGAIN.snapshot(opening(moves=m)) for m in [(), ("[Offer: 80]",), ("[Offer: 80]", "[Offer: 50]")]]
    done = opening(moves=("[Offer: 80]", "[Walk]"))
    values = est.values([(s, 0) for s in snaps] + [(BARGAIN.snapshot(done), 0)])
    assert values == pytest.approx([-0.5, -0.5, -0.5, 0.0])
    assert len(calls) == 3


def test_judge_bad_answers_fall_back_and_are_counted():
    complete, _ = mock_complete("I cannot tell.")
    snap = BARGAIN.snapshot(opening())
    neutral = JudgeEstimator(BARGAIN, JudgeConfig(), complete)
    assert neutral.value(snap, 0) == 0.0
    assert neutral.stats["judge/bad_answers"] == 1 and neutral.stats["judge/fallbacks"] == 1
    game = JudgeEstimator(BARGAIN, JudgeConfig(fallback="game"), complete)
    assert game.value(snap, 0) == pytest.approx(BARGAIN.value(opening(), 0))

    async def broken(messages, settings):
        raise ConnectionError("down")

    failing = JudgeEstimator(BARGAIN, JudgeConfig(), broken)
    assert failing.value(snap, 0) == 0.0 and failing.stats["judge/errors"] == 1


def test_judge_works_when_called_from_inside_an_event_loop():
    complete, calls = mock_complete("PROBABILITY: 0.9")
    est = JudgeEstimator(BARGAIN, JudgeConfig(), complete)

    async def main():
        return est.value(BARGAIN.snapshot(opening()), 0)

    assert asyncio.run(main()) == pytest.approx(0.8)
    assert len(calls) == 1


@pytest.mark.parametrize("game_id", ["bargaining-v1", "undercover-v1", "werewolf-v1"])
def test_judge_prompt_holds_only_the_seats_own_view(game_id):
    game = make_game(game_id)
    state, _ = game.init(7)
    for seat in range(game.num_players()):
        text = "\n".join(m["content"] for m in judge_messages(game, state, seat))
        assert "PROBABILITY" in text
        for secret in game.hidden_from(state, seat):
            assert secret not in text, (seat, secret)


def test_judge_config_never_stores_an_api_key():
    config = JudgeConfig(model=llm.ModelSettings(model="openai/x", api_key="sk-secret"))
    assert "sk-secret" not in MaroConfig(judge=config).model_dump_json()


# --- mix and construction --------------------------------------------------------------------------

def test_mix_weights_the_parts_after_normalising():
    complete, _ = mock_complete("PROBABILITY: 0.8")
    state = opening()
    g = BARGAIN.value(state, 0)
    est = MixEstimator({"game": GameEstimator(BARGAIN), "judge": JudgeEstimator(BARGAIN, JudgeConfig(), complete)},
                       {"game": 1.0, "judge": 3.0})
    assert est.value(BARGAIN.snapshot(state), 0) == pytest.approx((g + 3 * 0.6) / 4)
    assert estimator_stats(est)["estimator/judge/calls"] == 1


def test_make_estimator_follows_the_config():
    assert MaroConfig().estimator == "game"
    assert isinstance(make_estimator(MaroConfig(), BARGAIN), GameEstimator)
    # games without a heuristic (the adapted ones) get rollouts from the default
    assert isinstance(make_estimator(MaroConfig(), make_game("textarena:KuhnPoker-v0")), RolloutEstimator)
    assert isinstance(make_estimator(MaroConfig(estimator="rollout"), BARGAIN), RolloutEstimator)
    assert isinstance(make_estimator(MaroConfig(estimator="judge"), BARGAIN), JudgeEstimator)
    mix = make_estimator(MaroConfig(estimator="mix", mix=MixConfig(weights={"game": 1.0, "rollout": 0.0})), BARGAIN)
    assert isinstance(mix, MixEstimator) and list(mix.parts) == ["game"]
    with pytest.raises(ValueError):
        MaroConfig(estimator="oracle")
    with pytest.raises(ValueError):
        MixConfig(weights={"game": 0.0})
    with pytest.raises(ValueError):
        MaroConfig(rollout={"samples": 2, "unknown": 1})
