"""How a match's seats are filled: the plan a caller sends, and the seam through which the
layer above supplies server-side players (scripted bots, model agents).

The arena plays no seat itself. `MatchService` takes a `SeatFactory`; without one, `bot` and
`model` seats are refused and every seat is played by a remote client. `maro.agents.seats`
holds the factory the `maro` command line gives the server.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from maro.arena.auth import Principal
    from maro.arena.match.messages import Submission, TurnPrompt

SEAT_KINDS = ("remote", "open", "bot", "model")
SERVER_KINDS = ("bot", "model")
"""Seats the server plays through its `SeatFactory`."""


@dataclass(frozen=True)
class SeatPlan:
    """remote: token to the creator; open: token via the lobby; bot: a scripted bot;
    model: a server-side LangGraph agent playing `model`, a name of the server's model registry
    (its endpoint and key are the operator's). `api_base` is refused: callers never choose
    where the server sends anything."""

    kind: str
    bot: str = ""
    name: str = ""
    model: str = ""
    api_base: str = ""

    def player_name(self, seat: int) -> str:
        if self.name.strip():
            return self.name
        if self.kind == "bot":
            return self.bot
        if self.kind == "model":
            return f"model:{self.model}"
        return f"seat-{seat}"


class ServerPlayer(Protocol):
    """A seat the server plays: answers each turn prompt (with the last refusal's reason)."""

    async def act(self, prompt: TurnPrompt, rejection: str | None) -> Submission: ...


class SeatFactory(Protocol):
    """Server-side players for `bot` and `model` seats.

    `check` runs for every such seat before the match exists and raises the service's
    `BadRequest` or `PermissionDenied` (with the seat number in the message) for a plan the
    server will not play: an unknown bot, a bot of another game, a model seat a non-admin asks
    for, a model the server has no entry or key for. `player` is called once the match exists,
    only for plans `check` accepted.
    """

    def check(self, seat: int, plan: SeatPlan, game_id: str, principal: Principal) -> None: ...

    def player(self, seat: int, plan: SeatPlan, game_id: str, rng: random.Random) -> ServerPlayer: ...

    def offers(self, game_id: str, principal: Principal) -> list[SeatPlan]:
        """The seats a page offers as opponents in `game_id`: its bots, and the registry's
        models where `principal` may ask for them. `check` still decides."""
        ...
