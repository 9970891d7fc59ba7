"""A PettingZoo AEC environment over any registered arena game, with text observations and actions."""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import Mapping
from typing import Any

import numpy as np
from gymnasium import logger, spaces
from pettingzoo import AECEnv
from pettingzoo.utils.wrappers import OrderEnforcingWrapper

from maro.arena.engine import Event, Game, GameError, Observation, State, make_game

OBS_MAX_CHARS = 1_000_000
"""Observations are the seat's view as ASCII JSON; generous so long transcripts still fit."""
ACTION_MAX_CHARS = 512
CHARSET = string.printable


class TextObservation(str):
    """The view's JSON text, carrying the Text space's dtype: PettingZoo's api_test compares
    `observation.dtype` with the space's, which a plain str lacks."""

    __slots__ = ()
    dtype = np.dtype(str)


def env(game_id: str, params: Mapping[str, Any] | None = None, *, max_retries: int = 2,
        render_mode: str | None = None, max_turns: int | None = None) -> AECEnv:
    """The AEC environment of `game_id`, wrapped in PettingZoo's order enforcement."""
    return OrderEnforcingWrapper(ArenaAECEnv(game_id, params, max_retries=max_retries,
                                             render_mode=render_mode, max_turns=max_turns))


class ArenaAECEnv(AECEnv):
    """One arena match as an AEC game; agents `seat_0`..`seat_{n-1}`.

    Acting seats are selected one at a time (simultaneous phases too: the joint action is applied
    once every acting seat has given one, so none sees another's choice). An invalid action keeps
    the agent selected with `infos[agent]["rejection"]`; after `max_retries` retries the game's
    declared fallback applies, as in the arena's runner: its default action, or a forfeit.
    Rewards are 0 until the end, then each seat's outcome. `max_turns` (engine steps) truncates.
    """

    def __init__(self, game_id: str, params: Mapping[str, Any] | None = None, *, max_retries: int = 2,
                 render_mode: str | None = None, max_turns: int | None = None):
        super().__init__()
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if render_mode not in (None, "human", "ansi"):
            raise ValueError(f"render_mode must be None, 'human' or 'ansi', not {render_mode!r}")
        self.game: Game = make_game(game_id, params)
        self.metadata = {"name": f"maro_{game_id}", "render_modes": ["human", "ansi"], "is_parallelizable": False}
        self.render_mode = render_mode
        self.max_retries, self.max_turns = max_retries, max_turns
        self.possible_agents = [f"seat_{s}" for s in range(self.game.num_players())]
        self._seat = {agent: s for s, agent in enumerate(self.possible_agents)}
        # One space object per agent, kept across resets, so seeding a space sticks.
        self._obs_spaces = {a: spaces.Text(OBS_MAX_CHARS, min_length=0, charset=CHARSET) for a in self.possible_agents}
        self._act_spaces = {a: spaces.Text(ACTION_MAX_CHARS, min_length=0, charset=CHARSET)
                            for a in self.possible_agents}

    def observation_space(self, agent: str) -> spaces.Text:
        return self._obs_spaces[agent]

    def action_space(self, agent: str) -> spaces.Text:
        return self._act_spaces[agent]

    def seat(self, agent: str) -> int:
        return self._seat[agent]

    # --- the AEC cycle -----------------------------------------------------------------------
    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> None:
        """Deal a new match from `seed` (a fresh random one when None); `options` are unused."""
        self.match_seed = secrets.randbits(63) if seed is None else seed
        self.game_state, opening = self.game.init(self.match_seed)
        self.events: list[Event] = list(opening)
        self.agents = list(self.possible_agents)
        self.rewards = {a: 0.0 for a in self.agents}
        self._cumulative_rewards = {a: 0.0 for a in self.agents}
        self.terminations = {a: False for a in self.agents}
        self.truncations = {a: False for a in self.agents}
        self.turns = 0
        self._delivered = [0] * len(self.agents)  # events each seat has seen, up to its last action
        self._observations: dict[int, tuple[Observation, TextObservation]] = {}
        self._start_turn()
        self.infos = {a: self._info(self._seat[a]) for a in self.agents}

    def step(self, action: str | None) -> None:
        agent = self.agent_selection
        if self.terminations[agent] or self.truncations[agent]:
            self._was_dead_step(action)
            return
        seat = self._seat[agent]
        self._cumulative_rewards[agent] = 0.0
        self._clear_rewards()
        reason = self._rejection(seat, action)
        if reason is None:
            self._accept(seat, str(action))
            return
        self._attempts[seat] += 1
        attempts_left = self.max_retries + 1 - self._attempts[seat]
        if attempts_left > 0:
            self.infos[agent] = {**self._info(seat), "rejection": reason, "attempts_left": attempts_left}
            return
        default = self.game.fallback_action(self.game_state, seat)
        if default is not None:
            self._accept(seat, default)
        else:
            why = f"{self._attempts[seat]} invalid actions (last: {reason})"
            self._apply(*self.game.forfeit(self.game_state, seat, why))

    def _rejection(self, seat: int, action: Any) -> str | None:
        """Why the engine refuses `action` now, or None when it accepts it."""
        if not isinstance(action, str):
            kind = type(action).__name__
            return f"the action must be text in the format {self.game.spec.action_format!r}, not {kind}"
        try:
            self.game.validate(self.game_state, seat, action)
        except GameError as exc:
            return getattr(exc, "reason", str(exc))
        return None

    def _accept(self, seat: int, text: str) -> None:
        self._joint[seat] = text
        self._pending.remove(seat)
        self._delivered[seat] = len(self.events)
        if self._pending:
            self.infos[self.possible_agents[seat]] = self._info(seat)
            self.agent_selection = self.possible_agents[self._pending[0]]
            return
        self._apply(*self.game.step(self.game_state, self._joint))

    def _apply(self, state: State, events: list[Event]) -> None:
        """Move to the state after a turn (or a forfeit): rewards, ends, the next turn, infos."""
        self.game_state = state
        self.events.extend(events)
        self.turns += 1
        self._observations.clear()
        if state.finished:
            for agent in self.agents:
                self.rewards[agent] = float(state.outcome[self._seat[agent]])
                self.terminations[agent] = True
            self._accumulate_rewards()
        elif self.max_turns is not None and self.turns >= self.max_turns:
            self.truncations = {a: True for a in self.agents}
        else:
            self._start_turn()
        self.infos = {a: self._info(self._seat[a]) for a in self.agents}

    def _start_turn(self) -> None:
        acting = sorted(self.game.acting(self.game_state))
        if not acting:
            raise RuntimeError(f"{self.game.spec.id}: no seat acts in an unfinished state")
        self._pending, self._joint = acting, {}
        self._attempts = {seat: 0 for seat in acting}
        self.agent_selection = self.possible_agents[acting[0]]

    def _over(self) -> bool:
        return self.game_state.finished or any(self.truncations.values())

    def _info(self, seat: int) -> dict[str, Any]:
        """Role, whether the seat is to act, legal action hints, and visible events since its last action."""
        acting = seat in self._pending and not self._over()
        obs, _ = self._observation(seat)
        events = [e.text for e in self.events[self._delivered[seat]:] if e.visible_to(seat)]
        info = {
            "role": obs.role,  # as the seat knows it, not `game.role` (which may be hidden from it)
            "acting": acting,
            "legal_actions": list(obs.legal_actions) if acting else [],
            "events": events,
        }
        if self.game_state.finished:
            info["end_reason"] = self.game_state.end_reason
        return info

    # --- what agents and spectators see -------------------------------------------------------
    def observe(self, agent: str) -> TextObservation:
        """The seat's view as ASCII JSON: the only place hidden facts leave the engine."""
        return self._observation(self._seat[agent])[1]

    def _observation(self, seat: int) -> tuple[Observation, TextObservation]:
        """The engine's observation of the current state and its view as JSON; one per seat and state."""
        if seat not in self._observations:
            obs = self.game.observe(self.game_state, seat)
            self._observations[seat] = obs, TextObservation(json.dumps(obs.view, ensure_ascii=True))
        return self._observations[seat]

    def state(self) -> str:
        """The omniscient snapshot (JSON), for centralised critics; never give it to a seat."""
        return self.game.snapshot(self.game_state)

    def render(self) -> str | None:
        """The transcript so far as an omniscient spectator sees it (private events marked)."""
        if self.render_mode is None:
            logger.warn("render() called without a render_mode; pass render_mode='ansi' or 'human'")
            return None
        lines = [f"{self.metadata['name']} seed={self.match_seed}"]
        for e in self.events:
            to = f"[to {', '.join(f'seat_{s}' for s in e.private_to)}] " if e.private_to else ""
            lines.append(f"{to}{e.text}")
        if self.game_state.finished:
            lines.append(f"end: {self.game_state.end_reason}; outcome {list(self.game_state.outcome)}")
        text = "\n".join(lines)
        if self.render_mode == "human":
            print(text)
            return None
        return text

    def close(self) -> None:
        """Nothing to release: the game is pure."""

    def __str__(self) -> str:
        return self.metadata["name"]

