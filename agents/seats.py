"""The server-side players of an arena: the `SeatFactory` that `maro arena serve` (and every
in-process arena of the demo, self-play and evaluation) gives the match service.

`bot` seats are scripted bots of the match's game. `model` seats are LangGraph agents playing a
model of the operator's registry, with the operator's endpoint and key: only admin principals may
ask for one, and only by a name the registry holds; a caller never chooses where the server sends
anything.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING

from maro.arena.auth import Principal
from maro.arena.errors import BadRequest, PermissionDenied
from maro.arena.match.inputs import shown
from maro.arena.match.seats import SeatPlan, ServerPlayer

if TYPE_CHECKING:
    from maro.agents.llm import ModelSettings
    from maro.agents.registry import ModelRegistry


class ServerSeats:
    """Bots for `bot` seats; agents on `models` (a model registry) for `model` seats, which
    are refused when `models` is None."""

    def __init__(self, models: ModelRegistry | None = None):
        self.models = models

    @classmethod
    def from_registry(cls, path: Path | None) -> ServerSeats:
        """Model seats from the registry file at `path` (none without one); a broken file raises
        `RegistryError` with its reason."""
        if path is None:
            return cls()
        from maro.agents.registry import ModelRegistry

        return cls(ModelRegistry.load(path))

    def check(self, seat: int, plan: SeatPlan, game_id: str, principal: Principal) -> None:
        if plan.kind == "bot":
            self._bot(seat, plan.bot, game_id)
        elif plan.kind == "model":
            self._settings(seat, plan, principal)
        else:
            raise BadRequest(f"seat {seat}: the server plays bot and model seats, not {plan.kind!r} ones")

    def player(self, seat: int, plan: SeatPlan, game_id: str, rng: random.Random) -> ServerPlayer:
        if plan.kind == "bot":
            from maro.agents.bots import ScriptedPlayer

            return ScriptedPlayer(plan.bot, rng=rng)
        from maro.agents.graph import AgentContext, AgentPlayer

        return AgentPlayer(game_id, AgentContext(settings=self.models.settings(plan.model)))

    def offers(self, game_id: str, principal: Principal) -> list[SeatPlan]:
        from maro.agents.bots import bot_names

        plans = [SeatPlan("bot", bot=name) for name in bot_names(game_id)]
        if self.models is not None and principal.admin:
            plans += [SeatPlan("model", model=name) for name in self.models.names()]
        return plans

    @staticmethod
    def _bot(seat: int, name: str, game_id: str) -> None:
        from maro.agents.bots import get_bot

        try:
            bot = get_bot(name)
        except KeyError as exc:
            raise BadRequest(f"seat {seat}: {exc.args[0]}") from None
        if reason := bot.refusal(game_id):
            raise BadRequest(f"seat {seat}: {reason}")

    def _settings(self, seat: int, plan: SeatPlan, principal: Principal) -> ModelSettings:
        """The registry entry a model seat names. Refused, before the match exists, for callers
        that are not admins, on a server without a registry, and for names the registry lacks or
        whose key this server lacks."""
        from maro.agents.registry import RegistryError

        if not principal.admin:
            raise PermissionDenied(f"seat {seat}: only admin principals may create model seats "
                                   f"({principal.name} is a {principal.role})")
        if self.models is None:
            raise BadRequest(f"seat {seat}: this arena runs no model seats (it was started without --registry); "
                             "play the model from your side in a remote seat")
        if not self.models.knows(plan.model):
            raise BadRequest(f"seat {seat}: model {shown(plan.model)} is not in this server's registry; it runs "
                             f"{', '.join(self.models.names()) or 'none'}")
        try:
            return self.models.settings(plan.model)
        except RegistryError as exc:
            raise BadRequest(f"seat {seat}: {exc}") from exc
