"""From logged records to credited behaviors, for each variant."""

import pytest

from maro.arena.engine import make_game
from maro.arena.records import BehaviorRecord, MatchRecord, SeatRecord
from maro.learner import maro
from maro.learner.credit import CreditState, MaroConfig, credit
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
    out = credit([record], behaviors, MaroConfig(variant=Variant.OUTCOME))
    assert {c.behavior.id: c.reward for c in out} == {b.id: final.outcome[b.seat] for b in behaviors}
    assert all(c.advantage == c.reward and c.weight == 1.0 for c in out)


def test_maro_reward_is_the_documented_mix_of_td_credit_and_direct_utility():
    record, behaviors, final = logged_match()
    cfg = MaroConfig(variant=Variant.MARO, alpha=0.25, lambda_=0.0)
    out = {c.behavior.id: c for c in credit([record], behaviors, cfg)}
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
    no_util = credit([record], behaviors, MaroConfig(variant=Variant.MARO_NO_UTILITY, **base))
    td = maro.td_decompose([GAME.value(GAME.restore(b.snapshot_before), 1) for b in behaviors if b.seat == 1],
                           final.outcome[1])
    assert [c.reward for c in no_util if c.behavior.seat == 1] == pytest.approx(td)
    no_dec = credit([record], behaviors, MaroConfig(variant=Variant.MARO_NO_DECOMPOSE, **base))
    first = no_dec[0]
    u = GAME.value(GAME.restore(first.behavior.snapshot_after), 0) - GAME.value(GAME.restore(first.behavior.snapshot_before), 0)
    assert first.reward == pytest.approx(0.5 * final.outcome[0] + 0.5 * u)
    no_roles = credit([record], behaviors, MaroConfig(variant=Variant.MARO_NO_ROLES, **base))
    assert all(c.weight == 1.0 for c in no_roles)
    assert sum(c.advantage for c in no_roles) == pytest.approx(0.0, abs=1e-6)


def test_rae_uses_persistent_role_baselines():
    record, behaviors, final = logged_match()
    state = CreditState()
    first = credit([record], behaviors, MaroConfig(variant=Variant.RAE, rae_decay=0.5), state)
    assert first[0].reward == pytest.approx(final.outcome[0])  # baseline starts at 0
    assert state.baselines["bargaining-v1:seller"] == pytest.approx(0.5 * final.outcome[0])
    second = credit([record], behaviors, MaroConfig(variant=Variant.RAE, rae_decay=0.5), state)
    assert second[0].reward == pytest.approx(0.5 * final.outcome[0])


def test_bots_unfinished_matches_and_rejected_attempts():
    record, behaviors, _ = logged_match(model_seats=(1,))
    rejected = BehaviorRecord(match_id="m1", seat=1, role="buyer", turn=1, index=0, attempt=0, accepted=False,
                              action_text="??", reason="no action found", messages=PROMPT, completion="??", id=99)
    out = credit([record], behaviors + [rejected], MaroConfig())
    assert {c.behavior.seat for c in out} == {1}
    assert [c.reward for c in out if c.behavior.id == 99] == [-1.0]
    assert credit([record], behaviors + [rejected], MaroConfig(include_rejected=False))[-1].behavior.id != 99
    aborted = MatchRecord(**{**record.__dict__, "status": "aborted"})
    assert credit([aborted], behaviors, MaroConfig()) == []


def test_role_weights_balance_a_rare_role():
    rec1, b1, _ = logged_match("m1", model_seats=(0, 1))
    rec2, b2, _ = logged_match("m2", model_seats=(0,))
    out = credit([rec1, rec2], b1 + b2, MaroConfig(beta=1.0))
    totals = {}
    for c in out:
        totals[c.behavior.role] = totals.get(c.behavior.role, 0.0) + c.weight
    assert totals["seller"] == pytest.approx(totals["buyer"])
