"""One reading of finished matches into per-side outcomes and valid-action rates, on a real store."""

from maro.arena.store.matches import MatchStore
from maro.arena.store.records import BehaviorRecord, MatchRecord, SeatRecord
from maro.learner.rollouts import batch_stats
from maro.learner.stats import iteration_stats, seat_stats

MODEL = "model:openai/smollm2@v0002"


def _match(store, match_id, seed, seats, outcome, finished=True):
    store.create_match(MatchRecord(match_id=match_id, game_id="kuhn_poker-v1", seed=seed, params={}, status="created",
                                   seats=seats, config={}), {})
    store.set_roles(match_id, ["first", "second"])
    ask = [{"role": "user", "content": "your turn"}]
    store.append(match_id, [], [
        BehaviorRecord(match_id, 0, "first", 0, 0, 0, True, "[Bet]", messages=ask, completion="[Bet]"),
        BehaviorRecord(match_id, 0, "first", 1, 1, 0, False, "[Raise]", messages=ask, completion="[Raise]"),
        BehaviorRecord(match_id, 1, "second", 1, 0, 0, True, "[Call]"),  # a bot: no prompt, not an attempt
    ])
    if finished:
        store.finish(match_id, outcome, "showdown")


def test_sides_outcomes_and_attempts_from_one_reading(tmp_path):
    store = MatchStore(tmp_path / "m.sqlite")
    vs_bot = (SeatRecord(0, "remote", MODEL), SeatRecord(1, "bot", "kuhn-bot", bot="kuhn-bot"))
    _match(store, "a", 1, vs_bot, [2.0, -2.0])
    _match(store, "b", 2, vs_bot, [-1.0, 1.0])
    _match(store, "c", 3, vs_bot, [0.0, 0.0], finished=False)  # aborted or live: attempts count, outcomes do not
    ids = ["a", "b", "c", "missing"]

    matches, sides = seat_stats(store, ids, lambda _m, s: "model" if s.kind == "remote" else None)
    assert [m.match_id for m in matches] == ["a", "b", "c"]
    assert [z for _m, _s, z in sides["model"].outcomes] == [2.0, -1.0]
    assert (sides["model"].attempts, sides["model"].accepted) == (6, 3) and sides["model"].valid_rate == 0.5

    demo = batch_stats(store, ["a", "b", "c"])
    assert demo["attempts"] == 6 and demo["valid_rate"] == 0.5 and demo["finished"] == 2
    assert demo["mean_outcome"] == {"first": 0.5} and demo["per_seed"] == {1: [2.0], 2: [-1.0]}

    line = iteration_stats(store, ids, "openai/smollm2@v0002")
    assert line["mean_outcome"] == 0.5 and line["valid_rate"] == 0.5 and line["attempts"] == 6
    assert line["outcome"] == {"kuhn_poker-v1/first": 0.5, "vs_bot/kuhn_poker-v1/first": 0.5}
    assert line["win_rate"]["vs_bot/kuhn_poker-v1/first"] == 0.5 and line["seats"]["kuhn_poker-v1/first"] == 2
    assert iteration_stats(store, ids, "someone-else")["mean_outcome"] is None
