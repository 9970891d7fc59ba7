"""Playing batches of matches through the arena with model agents and bots, and their statistics."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import grpc

from maro.agents.bots import default_bot
from maro.agents.client import create_match, open_channel, play_seat
from maro.agents.graph import AgentContext, AgentPlayer
from maro.agents.llm import ModelSettings
from maro.arena.store.matches import MatchStore
from maro.learner.stats import SideStats, means, seat_stats

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MatchPlan:
    """One match to play: which seats the model takes; the others get the game's scripted bot."""

    game_id: str
    seed: int
    model_seats: tuple[int, ...]
    num_players: int = 2
    seat_models: tuple[str, ...] = ()
    """LiteLLM model string per entry of `model_seats` (a pinned adapter version, say); empty
    plays every model seat with the batch's settings."""

    def model_for(self, seat: int, default: str) -> str:
        if not self.seat_models:
            return default
        return self.seat_models[self.model_seats.index(seat)] or default


def match_params(game_id: str, num_players: int) -> dict:
    """Game parameters for a table of `num_players` (games with a variable size take `players`)."""
    from maro.arena.engine import seating

    return seating(game_id, None, num_players)[0]


def mixed_plans(game_id: str, n: int, seed: int, num_players: int = 2) -> list[MatchPlan]:
    """Half self-play (the model in every seat), half against the bot with the model's seat rotated."""
    plans = []
    for i in range(n):
        if i % 2 == 0:
            seats = tuple(range(num_players))
        else:
            seats = ((i // 2) % num_players,)
        plans.append(MatchPlan(game_id, seed + i, seats, num_players))
    return plans


async def create_planned(channel: grpc.aio.Channel, plan: MatchPlan,
                         settings: ModelSettings) -> tuple[str, dict[int, str]]:
    """Create the plan's match: remote seats for the model, the game's scripted bot elsewhere;
    returns its id and the remote seats' tokens."""
    bot = default_bot(plan.game_id)
    seats = [{"kind": "remote", "name": f"model:{plan.model_for(s, settings.model)}"} if s in plan.model_seats
             else {"kind": "bot", "bot": bot} for s in range(plan.num_players)]
    return await create_match(channel, plan.game_id, plan.seed, seats, match_params(plan.game_id, plan.num_players))


async def play_planned(channel: grpc.aio.Channel, plan: MatchPlan, match_id: str, tokens: dict[int, str],
                       settings: ModelSettings, stop_after_action: bool = False) -> None:
    """Play the model seats of a created match to its end, each with its plan's model."""

    def context(model: str) -> AgentContext:
        return AgentContext(settings=settings.model_copy(update={"model": model}), stop_after_action=stop_after_action)

    results = await asyncio.gather(*(
        play_seat(channel, match_id, tokens[s], AgentPlayer(plan.game_id, context(plan.model_for(s, settings.model))))
        for s in plan.model_seats), return_exceptions=True)
    for error in (r for r in results if isinstance(r, BaseException)):
        if not isinstance(error, (grpc.aio.AioRpcError, ConnectionError)):
            raise error
        # One seat's stream failing does not stop the batch: the arena still ends and records
        # the match (fallbacks, forfeit or abort), and its status decides its use.
        log.warning("match %s (seed %d): a seat's stream failed: %s", match_id, plan.seed, error)


async def play_batch(address: str, plans: Sequence[MatchPlan], settings: ModelSettings, *,
                     concurrency: int = 8, on_done: Callable[[str], None] | None = None,
                     on_result: Callable[[int, str], None] | None = None,
                     stop_after_action: bool = False, key: str | None = None) -> list[str]:
    """Play every plan through the arena at `address` (with its `key` where it wants one);
    returns the match ids in plan order.

    `on_done(match_id)` and `on_result(plan_index, match_id)` are called as each match ends;
    `stop_after_action` ends every reply at its action's closing bracket (AgentContext)."""
    limit = asyncio.Semaphore(concurrency)

    async def one(channel: grpc.aio.Channel, index: int, plan: MatchPlan) -> str:
        async with limit:
            match_id, tokens = await create_planned(channel, plan, settings)
            await play_planned(channel, plan, match_id, tokens, settings, stop_after_action)
            if on_done:
                on_done(match_id)
            if on_result:
                on_result(index, match_id)
            return match_id

    async with open_channel(address, key=key) as channel:
        return list(await asyncio.gather(*(one(channel, i, p) for i, p in enumerate(plans))))


def batch_stats(store: MatchStore, match_ids: Sequence[str]) -> dict:
    """Matches, valid-action rate of the model's attempts, and the model's mean outcome per role."""
    matches, sides = seat_stats(store, match_ids, lambda _m, s: "model" if s.kind == "remote" else None)
    model = sides.get("model", SideStats())
    outcomes: dict[str, list[float]] = defaultdict(list)
    per_seed: dict[int, list[float]] = defaultdict(list)
    for m, s, z in model.outcomes:
        outcomes[s.role].append(z)
        per_seed[m.seed].append(z)
    return {
        "matches": len(matches),
        "finished": sum(m.status == "finished" for m in matches),
        "deals": sum(m.end_reason.startswith("deal") for m in matches),
        "attempts": model.attempts,
        "valid_rate": model.valid_rate,
        "mean_outcome": means(outcomes),
        "per_seed": dict(sorted(per_seed.items())),
    }
