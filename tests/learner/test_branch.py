"""The branch update mode: K candidates per logged state, scored by the estimator, group-relative."""

from __future__ import annotations

import json

import pytest
import torch

from maro.arena.engine import make_game
from maro.arena.store.records import BehaviorRecord, MatchRecord, SeatRecord
from maro.learner import maro
from maro.learner.branch import (
    BranchConfig,
    Candidate,
    PolicySampler,
    branch_samples,
    decision_states,
    group_advantages,
)
from maro.learner.config import UpdateConfig
from maro.learner.credit import MaroConfig
from maro.learner.maro import Variant
from maro.learner.samples import TrainSample, encode_sample

BARGAIN = make_game("bargaining-v1")
UPDATE = UpdateConfig(batch_size=2, max_prompt_tokens=256, max_completion_tokens=8, beta=0.0, temperature=0.7)


def logged_match(game, moves, match_id="m1", seed=4, model_seats=None):
    """Play `moves` (one dict of texts per step), logging behaviors the way the runner does."""
    state, _ = game.init(seed)
    behaviors, index = [], [0] * game.num_players()
    for turn, texts in enumerate(moves):
        after, _ = game.step(state, texts)
        for seat, text in sorted(texts.items()):
            model = model_seats is None or seat in model_seats
            view = game.view(state, seat)
            behaviors.append(BehaviorRecord(
                match_id=match_id, seat=seat, role=game.role(state, seat), turn=turn, index=index[seat], attempt=0,
                accepted=True, action_text=text, model="smollm2@base" if model else "",
                messages=game.game_text.render_prompt(view, game.legal_actions(state, seat)) if model else [],
                completion=text if model else "", snapshot_before=game.snapshot(state),
                snapshot_after=game.snapshot(after), id=len(behaviors) + 1))
            index[seat] += 1
        state = after
    seats = tuple(SeatRecord(s, "remote", f"p{s}", game.role(state, s)) for s in range(game.num_players()))
    record = MatchRecord(match_id=match_id, game_id=game.spec.id, seed=seed, params={}, status="finished",
                         seats=seats, outcome=state.outcome, end_reason=state.end_reason)
    return record, behaviors


def bargain(match_id="m1", model_seats=None):
    moves = [{0: "[Offer: 80]"}, {1: "[Offer: 50]"}, {0: "[Offer: 60]"}, {1: "[Accept]"}]
    return logged_match(BARGAIN, moves, match_id, model_seats=model_seats)


class Scripted:
    """A sampler that answers the same K texts at every state (no tokens: the trainer recomputes)."""

    def __init__(self, texts):
        self.texts, self.prompts = texts, []

    def sample(self, prompts, k):
        self.prompts += list(prompts)
        return [[Candidate(t, [], []) for t in self.texts[:k]] for _ in prompts]


def test_decision_states_are_accepted_model_behaviors_with_the_other_seats_actions():
    record, behaviors = bargain(model_seats=(1,))
    states = decision_states([record], behaviors)
    assert [s.behavior.id for s in states] == [2, 4]
    assert all(s.others == {} for s in states)  # sequential turns: nobody else acts
    aborted = MatchRecord(**{**record.__dict__, "status": "aborted"})
    assert decision_states([aborted], behaviors) == []


def test_candidates_are_scored_by_direct_utility_and_normalised_within_each_state():
    record, behaviors = bargain()
    texts = ["[Offer: 60]", "[Walk]", "gibberish", "[Accept]"]
    samples, metrics = branch_samples(
        [record], behaviors, MaroConfig(), BranchConfig(candidates=4), UPDATE, None, None, sampler=Scripted(texts))
    assert metrics["branch/states"] == 4 and metrics["branch/candidates"] == 16
    # State 0: the seller opens; [Accept] has nothing to accept and is illegal like the gibberish.
    s0 = BARGAIN.restore(behaviors[0].snapshot_before)
    v0 = BARGAIN.value(s0, 0)
    offer, _ = BARGAIN.step(s0, {0: "[Offer: 60]"})
    walk, _ = BARGAIN.step(s0, {0: "[Walk]"})
    rewards = [BARGAIN.value(offer, 0) - v0, BARGAIN.value(walk, 0) - v0, -1.0, -1.0]
    first = [s for s in samples if s.behavior_id == 1]
    assert [s.completion for s in first] == texts
    assert [s.advantage for s in first] == pytest.approx(maro.group_normalise(rewards, [0] * 4))
    # Two seller and two buyer states: role weights are all 1; every group varies, so all 16 train.
    assert len(samples) == 16 and all(s.weight == pytest.approx(1.0) for s in samples)
    assert metrics["branch/valid_rate"] == pytest.approx(1 - 5 / 16)  # 4 gibberish + 1 opening accept


def test_groups_without_variance_are_left_out_and_rare_roles_weigh_more():
    assert group_advantages([[0.2, 0.2], [1.0, -1.0]]) == [None, pytest.approx([1.0, -1.0], abs=1e-5)]
    rec1, b1 = bargain("m1")
    rec2, b2 = bargain("m2", model_seats=(0,))
    # Identical candidates everywhere: nothing to learn in any of the 6 states.
    samples, metrics = branch_samples([rec1, rec2], b1 + b2, MaroConfig(), BranchConfig(candidates=2), UPDATE,
                                      None, None, sampler=Scripted(["[Walk]", "[Walk]"]))
    assert samples == [] and metrics["branch/groups_zero_variance"] == 6
    samples, _ = branch_samples([rec1, rec2], b1 + b2, MaroConfig(beta=1.0), BranchConfig(candidates=2), UPDATE,
                                None, None, sampler=Scripted(["[Offer: 70]", "[Walk]"]))
    roles = {b.id: b.role for b in b1 + b2}  # ids 1, 3 are the seller's and 2, 4 the buyer's in both matches
    total = {r: sum(s.weight for s in samples if roles[s.behavior_id] == r) for r in ("seller", "buyer")}
    assert total["seller"] == pytest.approx(total["buyer"])  # 4 seller states vs 2 buyer states
    no_roles, _ = branch_samples([rec1, rec2], b1 + b2, MaroConfig(variant=Variant.MARO_NO_ROLES),
                                 BranchConfig(candidates=2), UPDATE, None, None,
                                 sampler=Scripted(["[Offer: 70]", "[Walk]"]))
    assert all(s.weight == 1.0 for s in no_roles)


def test_simultaneous_phases_apply_the_other_seats_logged_actions():
    game = make_game("prisoners_dilemma-v1")
    state, _ = game.init(0)
    moves = []
    while game.phase(state) == "chat":
        (seat,) = game.acting(state)
        moves.append({seat: "[Pass]"})
        state, _ = game.step(state, moves[-1])
    moves.append({0: "[Cooperate]", 1: "[Defect]"})
    record, behaviors = logged_match(game, moves, seed=0)
    record = MatchRecord(**{**record.__dict__, "outcome": (0.0, 0.0)})  # played on to the end elsewhere
    last = [b for b in behaviors if b.turn == len(moves) - 1]
    states = [s for s in decision_states([record], behaviors) if s.behavior.turn == len(moves) - 1]
    assert {s.behavior.seat: s.others for s in states} == {0: {1: "[Defect]"}, 1: {0: "[Cooperate]"}}
    samples, _ = branch_samples([record], last, MaroConfig(), BranchConfig(candidates=2), UPDATE, None, None,
                                sampler=Scripted(["[Cooperate]", "[Defect]"]))
    before = game.restore(last[0].snapshot_before)
    for seat, other, theirs in ((0, 1, "[Defect]"), (1, 0, "[Cooperate]")):
        v = [game.value(game.step(before, {seat: mine, other: theirs})[0], seat) - game.value(before, seat)
             for mine in ("[Cooperate]", "[Defect]")]
        got = [s.advantage for s in samples if s.behavior_id == last[seat].id]
        assert got == pytest.approx(maro.group_normalise(v, [0, 0]))


def test_policy_sampler_records_the_tempered_log_probs_of_what_it_sampled(tiny_model_dir, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    record, behaviors = bargain()
    prompts = [b.messages for b in behaviors[:2]]
    adapter = tmp_path / "adapter"
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    lora = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    get_peft_model(base, lora).save_pretrained(adapter)  # fresh LoRA: B = 0, the same policy as the base
    sampler = PolicySampler(tiny_model_dir, adapter, UPDATE, BranchConfig(candidates=3, batch_rows=4))
    groups = sampler.sample(prompts, 3)
    assert [len(g) for g in groups] == [3, 3]
    assert [[c.text for c in g] for g in sampler.sample(prompts, 3)] == [[c.text for c in g] for g in groups]

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    for messages, group in zip(prompts, groups):
        for c in group:
            assert 1 <= len(c.token_ids) == len(c.logprobs) <= UPDATE.max_completion_tokens
            sample = TrainSample(0, messages, c.text, 0.0, old_logprobs=c.logprobs, old_token_ids=c.token_ids)
            enc = encode_sample(sample, tokenizer, max_prompt_tokens=UPDATE.max_prompt_tokens,
                                max_completion_tokens=UPDATE.max_completion_tokens)
            assert enc.completion_ids == c.token_ids and enc.old_logprobs is not None  # the trainer uses them
            with torch.no_grad():
                logits = model(input_ids=torch.tensor([enc.prompt_ids + enc.completion_ids])).logits[0]
            logits = logits[len(enc.prompt_ids) - 1 : -1] / UPDATE.temperature
            picked = torch.log_softmax(logits, -1).gather(1, torch.tensor(c.token_ids)[:, None]).squeeze(1)
            assert picked.tolist() == pytest.approx(c.logprobs, abs=1e-4)


def test_run_update_in_branch_mode_samples_scores_trains_and_publishes(tiny_model_dir, tmp_path):
    from maro.learner.adapters import AdapterRegistry
    from maro.learner.update import LearnerConfig, UpdateMode, run_update

    record, behaviors = bargain()

    class Store:
        def get_match(self, match_id, with_events=True):
            return record

        def behaviors(self, match_ids):
            return behaviors

    adapters = AdapterRegistry(tmp_path / "adapters")
    config = LearnerConfig(mode="branch", update=UPDATE, branch=BranchConfig(candidates=2, max_states=2))
    sampler = Scripted(["[Offer: 65]", "nonsense"])
    result = run_update(Store(), adapters, tiny_model_dir, ["m1"], config, sampler=sampler)
    assert result.version == "v0001" and result.samples == 4
    assert len(sampler.prompts) == 2  # max_states
    meta = json.loads((adapters.path("v0001") / "maro.json").read_text())
    assert meta["config"]["mode"] == UpdateMode.BRANCH
    assert meta["metrics"]["branch/groups_kept"] == 2.0 and meta["metrics"]["maro/steps"] >= 1


def test_branch_with_the_tiny_policy_end_to_end(tiny_model_dir):
    """The real sampler on real game prompts: candidates are scored, none crash (a random model
    writes no legal action, so every group ties at the invalid reward and is left out)."""
    record, behaviors = bargain()
    samples, metrics = branch_samples([record], behaviors, MaroConfig(), BranchConfig(candidates=2, max_states=2),
                                      UPDATE, tiny_model_dir, None)
    assert metrics["branch/candidates"] == 4.0
    assert metrics["branch/groups_kept"] + metrics["branch/groups_zero_variance"] == 2.0
    assert all(s.old_logprobs and len(s.old_logprobs) == len(s.old_token_ids) for s in samples)
