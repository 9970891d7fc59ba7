"""From logged records to credited behaviors, for each variant, estimator and staleness rule."""

import math
from dataclasses import replace

import pytest

from maro.arena.engine import make_game
from maro.arena.store.records import BehaviorRecord, MatchRecord, SeatRecord
from maro.learner import maro
from maro.learner.config import MixConfig, RolloutConfig
from maro.learner.credit import CreditState, MaroConfig, adapter_version, credit, version_lag
from maro.learner.estimators import Estimator
from maro.learner.maro import Variant

GAME = make_game("bargaining-v1")
PROMPT = [{"role": "user", "content": "your turn"}]


def logged_match(match_id="m1", seed=4, moves=("[Offer: 80]", "[Offer: 50]", "[Offer: 60]", "[Accept]"),
                 model_seats=(0, 1)):
    """Play `moves`, logging behaviors the way the runner does; seats outside model_seats are bots."""
    state, _ = GAME.init(seed)
    behaviors, index = [], [0, 0]
    for turn, text in enumerate(moves):
        (seat,) = GAME.acting(state)
        after, _ = GAME.step(state, {seat: text})
        model = seat in model_seats
        behaviors.append(BehaviorRecord(
            match_id=match_id, seat=seat, role=GAME.role(state, seat), turn=turn, index=index[seat], attempt=0,
            accepted=True, action_text=text, messages=PROMPT if model else [], completion=text if model else "",
            snapshot_before=GAME.snapshot(state), snapshot_after=GAME.snapshot(after), id=len(behaviors) + 1))
        index[seat] += 1
        state = after
    record = MatchRecord(match_id=match_id, game_id="bargaining-v1", seed=seed, params={}, status="finished",
                         seats=(SeatRecord(0, "remote", "a", "seller"), SeatRecord(1, "remote", "b", "buyer")),
                         outcome=state.outcome, end_reason=state.end_reason)
    return record, behaviors, state


def test_outcome_variant_broadcasts_the_final_result():
    record, behaviors, final = logged_match()
    out = credit([record], behaviors, MaroConfig(variant=Variant.OUTCOME)).credited
    assert {c.behavior.id: c.reward for c in out} == {b.id: final.outcome[b.seat] for b in behaviors}
    assert all(c.advantage == c.reward and c.weight == 1.0 for c in out)


def test_maro_reward_is_the_documented_mix_of_td_credit_and_direct_utility():
    record, behaviors, final = logged_match()
    cfg = MaroConfig(variant=Variant.MARO, alpha=0.25, lambda_=0.0)
    out = {c.behavior.id: c for c in credit([record], behaviors, cfg).credited}
    seller = [b for b in behaviors if b.seat == 0]
    v = [GAME.value(GAME.restore(b.snapshot_before), 0) for b in seller]
    v_after = [GAME.value(GAME.restore(b.snapshot_after), 0) for b in seller]
    d = [v[1] - v[0], final.outcome[0] - v[1]]
    expected = [0.75 * d[k] + 0.25 * (v_after[k] - v[k]) for k in range(2)]
    assert [out[b.id].reward for b in seller] == pytest.approx(expected)
    # role-normalised within the seller's two behaviors: +-1
    assert sorted(out[b.id].advantage for b in seller) == pytest.approx([-1.0, 1.0], abs=1e-4)


def test_ablations_differ_as_declared():
    record, behaviors, final = logged_match()
    base = dict(alpha=0.5, lambda_=0.0)
    no_util = credit([record], behaviors, MaroConfig(variant=Variant.MARO_NO_UTILITY, **base)).credited
    td = maro.td_decompose([GAME.value(GAME.restore(b.snapshot_before), 1) for b in behaviors if b.seat == 1],
                           final.outcome[1])
    assert [c.reward for c in no_util if c.behavior.seat == 1] == pytest.approx(td)
    no_dec = credit([record], behaviors, MaroConfig(variant=Variant.MARO_NO_DECOMPOSE, **base)).credited
    first = no_dec[0]
    u = GAME.value(GAME.restore(first.behavior.snapshot_after), 0) - GAME.value(GAME.restore(first.behavior.snapshot_before), 0)
    assert first.reward == pytest.approx(0.5 * final.outcome[0] + 0.5 * u)
    no_roles = credit([record], behaviors, MaroConfig(variant=Variant.MARO_NO_ROLES, **base)).credited
    assert all(c.weight == 1.0 for c in no_roles)
    assert sum(c.advantage for c in no_roles) == pytest.approx(0.0, abs=1e-6)


def test_rae_uses_persistent_role_baselines():
    record, behaviors, final = logged_match()
    state = CreditState()
    first = credit([record], behaviors, MaroConfig(variant=Variant.RAE, rae_decay=0.5), state)
    assert first.credited[0].reward == pytest.approx(final.outcome[0])  # baseline starts at 0
    assert first.state.baselines["bargaining-v1:seller"] == pytest.approx(0.5 * final.outcome[0])
    assert state.baselines == {}  # credit is pure: the state after is a new one
    second = credit([record], behaviors, MaroConfig(variant=Variant.RAE, rae_decay=0.5), first.state).credited
    assert second[0].reward == pytest.approx(0.5 * final.outcome[0])


def test_bots_unfinished_matches_and_rejected_attempts():
    record, behaviors, _ = logged_match(model_seats=(1,))
    rejected = BehaviorRecord(match_id="m1", seat=1, role="buyer", turn=1, index=0, attempt=0, accepted=False,
                              action_text="??", reason="no action found", messages=PROMPT, completion="??", id=99)
    out = credit([record], behaviors + [rejected], MaroConfig()).credited
    assert {c.behavior.seat for c in out} == {1}
    assert [c.reward for c in out if c.behavior.id == 99] == [-1.0]
    assert credit([record], behaviors + [rejected], MaroConfig(include_rejected=False)).credited[-1].behavior.id != 99
    aborted = MatchRecord(**{**record.__dict__, "status": "aborted"})
    assert credit([aborted], behaviors, MaroConfig()).credited == []


def test_role_weights_balance_a_rare_role():
    rec1, b1, _ = logged_match("m1", model_seats=(0, 1))
    rec2, b2, _ = logged_match("m2", model_seats=(0,))
    out = credit([rec1, rec2], b1 + b2, MaroConfig(beta=1.0)).credited
    totals = {}
    for c in out:
        totals[c.behavior.role] = totals.get(c.behavior.role, 0.0) + c.weight
    assert totals["seller"] == pytest.approx(totals["buyer"])


# --- estimators and staleness ----------------------------------------------------------------------

class TurnEstimator(Estimator):
    """A fake critic with known values: V_0(s) = 0.1 * turns, V_1(s) = -0.2 * turns."""

    def _compute(self, snapshot, seat):
        return (0.1 if seat == 0 else -0.2) * GAME.restore(snapshot).turns


def test_every_variant_uses_the_estimator_as_documented():
    # Seller acts at turns 0 and 2, buyer at 1 and 3; the buyer's accept ends the match at turn 4.
    record, behaviors, final = logged_match()
    z0, z1 = final.outcome
    alpha, lam = 0.5, 0.0
    seller_before, seller_after = [0.0, 0.2], [0.1, 0.3]
    buyer_before, buyer_after = [-0.2, -0.6], [-0.4, -0.8]
    td = {0: [0.2, z0 - 0.2], 1: [-0.4, z1 + 0.6]}
    u = {0: [a - b for a, b in zip(seller_after, seller_before)], 1: [a - b for a, b in zip(buyer_after, buyer_before)]}
    expected = {
        Variant.OUTCOME: {0: [z0, z0], 1: [z1, z1]},
        Variant.RAE: {0: [z0, z0], 1: [z1, z1]},  # fresh baselines start at 0
        Variant.MARO: {s: [0.5 * d + 0.5 * x for d, x in zip(td[s], u[s])] for s in (0, 1)},
        Variant.MARO_NO_ROLES: {s: [0.5 * d + 0.5 * x for d, x in zip(td[s], u[s])] for s in (0, 1)},
        Variant.MARO_NO_UTILITY: td,
        Variant.MARO_NO_DECOMPOSE: {s: [0.5 * z + 0.5 * x for x in u[s]] for s, z in ((0, z0), (1, z1))},
    }
    for variant, per_seat in expected.items():
        out = credit([record], behaviors, MaroConfig(variant=variant, alpha=alpha, lambda_=lam),
                     estimator_factory=lambda game: TurnEstimator()).credited
        assert [c.behavior.id for c in out] == [b.id for b in behaviors if b.seat == 0] + \
            [b.id for b in behaviors if b.seat == 1], variant
        got = {s: [c.reward for c in out if c.behavior.seat == s] for s in (0, 1)}
        assert got[0] == pytest.approx(per_seat[0]) and got[1] == pytest.approx(per_seat[1]), variant


def _judge_factory(answer="PROBABILITY: 0.7"):
    from maro.agents import llm
    from maro.learner.config import JudgeConfig
    from maro.learner.estimators import JudgeEstimator

    async def complete(messages, settings):
        return await llm.complete(messages, settings, mock_response=answer)

    return lambda game: JudgeEstimator(game, JudgeConfig(), complete)


@pytest.mark.parametrize("estimator", ["game", "rollout", "judge", "mix"])
@pytest.mark.parametrize("variant", list(Variant))
def test_every_variant_runs_on_the_same_records_with_each_estimator(estimator, variant):
    rec1, b1, _ = logged_match("m1")
    rec2, b2, _ = logged_match("m2", seed=9, moves=("[Offer: 90]", "[Offer: 40]", "[Walk]"))
    config = MaroConfig(variant=variant, estimator=estimator, rollout=RolloutConfig(samples=2),
                        mix=MixConfig(weights={"game": 1.0, "rollout": 1.0}))
    factory = _judge_factory() if estimator == "judge" else None
    result = credit([rec1, rec2], b1 + b2, config, estimator_factory=factory)
    out, stats = result.credited, result.stats
    assert sorted(c.behavior.id for c in out) == sorted(b.id for b in b1 + b2)
    assert all(math.isfinite(c.advantage) and c.weight > 0 for c in out)
    if variant not in (Variant.OUTCOME, Variant.RAE) and estimator in ("rollout", "mix"):
        assert stats["estimator/rollout/continuations"] > 0
    if variant not in (Variant.OUTCOME, Variant.RAE) and estimator == "judge":
        assert stats["estimator/judge/calls"] > 0


def test_adapter_versions_of_served_model_names():
    assert adapter_version("smollm2@v0002") == 2
    assert adapter_version("openai/smollm2@v0011") == 11
    assert adapter_version("smollm2@base") == 0
    assert adapter_version("smollm2") is None and adapter_version("") is None
    assert version_lag("smollm2@v0002", "v0005") == 3
    assert version_lag("smollm2@base", "v0001") == 1
    assert version_lag("smollm2@base", None) == 0
    assert version_lag("smollm2@v0003", "v0002") == 0  # a newer behavior is never negatively stale
    assert version_lag("gpt-x", "v0002") is None


def _versioned(behaviors, models):
    return [BehaviorRecord(**{**b.__dict__, "model": m}) for b, m in zip(behaviors, models)]


def test_stale_behaviors_are_dropped_by_the_declared_rule():
    record, behaviors, _ = logged_match()
    behaviors = _versioned(behaviors, ["smollm2@v0001", "smollm2@v0003", "smollm2@base", "smollm2"])
    cfg = MaroConfig(variant=Variant.OUTCOME, max_staleness=1, stale_rule="drop")
    result = credit([record], behaviors, cfg, current_version="v0003")
    out, stats = result.credited, result.stats
    # lags 2, 0, 3, unknown: the first and third exceed 1 and go; the unversioned one stays.
    assert [c.behavior.id for c in out] == [2, 4]
    assert [c.lag for c in out] == [0, None]
    assert stats["maro/stale_dropped"] == 2 and stats["maro/unversioned_behaviors"] == 1
    # Without a current version (training from base) nothing lags.
    assert len(credit([record], behaviors, cfg).credited) == 4


def test_stale_behaviors_are_reweighted_by_decay_per_version_past_the_limit():
    record, behaviors, _ = logged_match()
    behaviors = _versioned(behaviors, ["smollm2@v0001", "smollm2@v0003", "smollm2@base", "smollm2"])
    fresh = {c.behavior.id: c for c in credit([record], behaviors, MaroConfig(), current_version="v0003").credited}
    cfg = MaroConfig(max_staleness=1, stale_rule="reweight", stale_decay=0.5)
    result = credit([record], behaviors, cfg, current_version="v0003")
    out, stats = {c.behavior.id: c for c in result.credited}, result.stats
    factors = {1: 0.5, 2: 1.0, 3: 0.25, 4: 1.0}  # 0.5 ** (2 - 1), 1, 0.5 ** (3 - 1), unversioned
    for i, f in factors.items():
        assert out[i].weight == pytest.approx(fresh[i].weight * f)
        assert out[i].advantage == pytest.approx(fresh[i].advantage)
    assert stats["maro/stale_reweighted"] == 2 and stats["maro/stale_dropped"] == 0


def test_run_update_credits_against_the_latest_adapter(tmp_path, monkeypatch):
    from maro.learner import update
    from maro.learner.adapters import AdapterRegistry

    record, behaviors, _ = logged_match()
    behaviors = _versioned(behaviors, ["smollm2@base", "smollm2@v0001", "smollm2@base", "smollm2@v0001"])

    class Store:
        def get_match(self, match_id, with_events=True):
            return record if match_id == record.match_id else None

        def behaviors(self, match_ids):
            return behaviors

    adapters = AdapterRegistry(tmp_path / "adapters")
    adapters.publish(adapters.staging(), {"parent": None})  # v0001 is LATEST
    seen = {}

    def fake_train(samples, **kwargs):
        seen["samples"], seen["init"] = samples, kwargs["init_adapter_dir"]
        return {"maro/loss": 0.0}

    monkeypatch.setattr(update, "train_adapter", fake_train)
    config = update.LearnerConfig(maro=MaroConfig(variant=Variant.OUTCOME, max_staleness=0))
    result = update.run_update(Store(), adapters, tmp_path, [record.match_id], config)
    assert result.version == "v0002" and seen["init"] == adapters.path("v0001")
    assert sorted(s.behavior_id for s in seen["samples"]) == [2, 4]  # the base-model behaviors lag 1
    assert result.metrics["maro/stale_dropped"] == 2.0
    assert update.LearnerConfig().mode == update.UpdateMode.LOGGED


def test_samples_of_base_behaviors_carry_their_logprobs_as_the_reference():
    from maro.arena.store.records import TokenLogprob
    from maro.learner.credit import Credited
    from maro.learner.update import to_sample

    _, behaviors, _ = logged_match()
    lps = (TokenLogprob(token="[", token_id=58, logprob=-0.5),)
    base, adapted = _versioned(behaviors[:2], ["smollm2@base", "smollm2@v0001"])
    samples = [to_sample(Credited(replace(b, logprobs=lps), 1.0, 1.0, 1.0)) for b in (base, adapted)]
    assert [s.old_from_reference for s in samples] == [True, False]
    assert samples[0].old_logprobs == [-0.5] and samples[0].old_token_ids == [58]
    # Without recorded log-probs there is nothing to stand in for the reference.
    assert not to_sample(Credited(replace(base, logprobs=()), 1.0, 1.0, 1.0)).old_from_reference
