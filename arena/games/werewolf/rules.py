"""werewolf-v1: a hidden-role village of 5-9 seats; night kills, a seer, a doctor and day votes."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

import maro.arena.games.werewolf.text as text
from maro.arena.engine import Event, Game, GameSpec, register, view_entry
from maro.arena.games.werewolf.state import (
    DOCTOR,
    ROLES,
    SEER,
    TEAMS,
    VILLAGER,
    WOLF,
    DayVote,
    Night,
    Speech,
    WerewolfParams,
    WerewolfState,
    deal,
    next_night_phase,
    plurality,
    team_of,
    winner,
)

# Private notes open with a parenthesised channel name; speech cannot contain parentheses, so
# these prefixes appear only in the notes and `hidden_from` can list them as they are.
PACK_CHAT, PACK_NOTE, SEER_NOTE, DOCTOR_NOTE = "(pack chat)", "(pack)", "(seer)", "(doctor)"


class Action(BaseModel):
    """A parsed action: a command, its target seat (None for abstaining) and the speech for say."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str
    target: int | None = None
    speech: str = ""


@register
class Werewolf(Game[WerewolfState, WerewolfParams]):
    """Phases night_chat -> night -> day_talk -> day_vote, repeated until a team wins or the days run out."""

    spec = GameSpec(
        id="werewolf-v1",
        description="Hidden-role social deduction: werewolves kill at night, the village votes by day.",
        roles=ROLES,
        min_players=5,
        max_players=9,
        action_format=text.ACTION_FORMAT,
        fallback="default",
        teams=TEAMS,
        win_threshold=0.0,  # +1 team win, -1 loss, 0 draw at the day limit
    )
    game_text = text.TEXT
    params_model = WerewolfParams
    state_model = WerewolfState
    players_param = "players"

    def role(self, state: WerewolfState, seat: int) -> str:
        return state.roles[seat]

    def team(self, state: WerewolfState, seat: int) -> str:
        return team_of(state.roles[seat])

    def init(self, seed: int) -> tuple[WerewolfState, list[Event]]:
        rng = random.Random(seed)
        roles = deal(self.params, rng)
        state = WerewolfState(roles=roles, alive=(True,) * len(roles), phase="night", rng_state=rng.getrandbits(63))
        state = state.model_copy(update={"phase": next_night_phase(state, self.params)})
        pack = tuple(state.wolves())
        events = [Event("start", f"Werewolf with {len(roles)} seats: {self.params.wolf_count} werewolf(s), a seer, "
                                 f"a doctor, the rest villagers. Night 1 begins.")]
        events += [Event("role", f"Your role {text.tag(s, r)}.", private_to=(s,)) for s, r in enumerate(roles)]
        events.append(Event("pack", "The pack: " + ", ".join(text.tag(w, WOLF) for w in pack) + ".", private_to=pack))
        return state, events

    # --- who acts and what they may do ----------------------------------------------------------
    def _acting(self, state: WerewolfState) -> frozenset[int]:
        living = state.living()
        if state.phase == "night_chat":
            pack = state.wolves()
            return frozenset({pack[state.turn % len(pack)]})
        if state.phase == "night":
            return frozenset(s for s in living if state.roles[s] != VILLAGER)
        if state.phase == "day_talk":
            return frozenset({living[state.turn % len(living)]})
        return frozenset(living)

    def parse(self, state: WerewolfState, seat: int, action_text: str) -> Action:
        # The view holds everything the seat needs to judge its action, so the view-based check is
        # the whole rule; the state adds nothing beyond it.
        kind, arg = text.parse_action(text.check(self.view(state, seat), action_text))
        return Action(kind=kind, speech=arg) if kind == "say" else Action(kind=kind, target=arg)

    def legal_actions(self, state: WerewolfState, seat: int) -> tuple[str, ...]:
        return text.hints(self.view(state, seat))

    def random_action(self, state: WerewolfState, seat: int, rng: random.Random) -> str:
        allowed = text.choices(self.view(state, seat))
        if "say" in allowed:
            others = [s for s in state.living() if s != seat]
            return rng.choice(["[Pass]", f"[Say: I suspect seat {rng.choice(others)}.]", "[Say: I am on your side.]"])
        (kind, seats), = allowed.items()
        return text.format_action(kind, rng.choice(seats))

    def default_action(self, state: WerewolfState, seat: int) -> str:
        """Silence for speech, abstention for the vote, the doctor protects itself when it may,
        the seer inspects the lowest seat not yet inspected, a werewolf picks the lowest victim."""
        view = self.view(state, seat)
        allowed = text.choices(view)
        if "say" in allowed:
            return "[Pass]"
        (kind, seats), = allowed.items()
        if kind == "vote":
            return "[Vote: none]"
        if kind == "protect" and seat in seats:
            return text.format_action(kind, seat)
        if kind == "inspect":
            seen = {v["seat"] for v in view["seer_visions"]}
            seats = [s for s in seats if s not in seen] or seats
        return text.format_action(kind, seats[0])

    # --- the step flow: one handler per phase -----------------------------------------------------
    def transition(self, state: WerewolfState, actions: Mapping[int, Any]) -> tuple[WerewolfState, list[Event]]:
        handler = {"night_chat": self._pack_chat, "night": self._night, "day_talk": self._talk, "day_vote": self._vote}
        return handler[state.phase](state, actions)

    def _pack_chat(self, state: WerewolfState, actions: Mapping[int, Action]) -> tuple[WerewolfState, list[Event]]:
        (seat, action), = actions.items()
        said = f": {action.speech}" if action.speech else " stays silent."
        event = Event("pack_chat", f"{PACK_CHAT} Night {state.day}, seat {seat}{said}", seat=seat,
                      private_to=tuple(state.wolves(living_only=False)))
        turns = self.params.night_chat_turns * len(state.wolves())
        return self._spoke(state, seat, action, pack=True, turns=turns, then="night"), [event]

    def _night(self, state: WerewolfState, actions: Mapping[int, Action]) -> tuple[WerewolfState, list[Event]]:
        by_kind = {a.kind: (s, a.target) for s, a in actions.items() if a.kind != "kill"}
        picks = tuple((s, a.target) for s, a in sorted(actions.items()) if a.kind == "kill")
        target = plurality((t for _, t in picks), tie="lowest")
        protected = by_kind.get("protect", (None, None))[1]
        inspected = by_kind.get("inspect", (None, None))[1]
        died = None if target == protected else target
        night = Night(day=state.day, picks=picks, target=target, protected=protected, inspected=inspected, died=died)
        alive = tuple(up and s != died for s, up in enumerate(state.alive))
        state = state.model_copy(update={"nights": state.nights + (night,), "alive": alive})
        listed = ", ".join(f"seat {w} picks seat {t}" for w, t in picks)
        events = [Event("pack_attack", f"{PACK_NOTE} Night {night.day}: {listed}; the pack attacks seat {target}.",
                        private_to=tuple(state.wolves(living_only=False)))]
        if inspected is not None:
            verdict = WOLF if state.roles[inspected] == WOLF else "not a werewolf"
            events.append(Event("vision", f"{SEER_NOTE} Night {night.day} vision: {text.tag(inspected, verdict)}.",
                                private_to=(by_kind["inspect"][0],)))
        if protected is not None:
            note = f"{DOCTOR_NOTE} Night {night.day}: you protect seat {protected}."
            events.append(Event("protect", note, private_to=(by_kind["protect"][0],)))
        if died is None:
            events.append(Event("dawn", f"Day {state.day} dawns: nobody died in the night."))
        else:
            news = f"seat {died} was killed in the night{self._reveal(state, died)}"
            events.append(Event("dawn", f"Day {state.day} dawns: {news}.", seat=died))
        phase = "day_talk" if self.params.day_discussion_rounds else "day_vote"
        return self._settle(state.model_copy(update={"phase": phase, "turn": 0}), events)

    def _talk(self, state: WerewolfState, actions: Mapping[int, Action]) -> tuple[WerewolfState, list[Event]]:
        (seat, action), = actions.items()
        said = f"Seat {seat} says: {action.speech}" if action.kind == "say" else f"Seat {seat} stays silent."
        turns = self.params.day_discussion_rounds * len(state.living())
        return self._spoke(state, seat, action, pack=False, turns=turns, then="day_vote"), [Event(action.kind, said, seat=seat)]

    @staticmethod
    def _spoke(state: WerewolfState, seat: int, action: Action, pack: bool, turns: int, then: str) -> WerewolfState:
        """Record a speech and advance the speaking turn; the phase moves on after `turns` turns."""
        if action.kind == "say":
            speech = Speech(day=state.day, seat=seat, pack=pack, text=action.speech)
            state = state.model_copy(update={"speeches": state.speeches + (speech,)})
        if state.turn + 1 < turns:
            return state.model_copy(update={"turn": state.turn + 1})
        return state.model_copy(update={"turn": 0, "phase": then})

    def _vote(self, state: WerewolfState, actions: Mapping[int, Action]) -> tuple[WerewolfState, list[Event]]:
        ballots = tuple((s, a.target) for s, a in sorted(actions.items()))
        out = plurality((t for _, t in ballots), tie="none")
        alive = tuple(up and s != out for s, up in enumerate(state.alive))
        vote = DayVote(day=state.day, ballots=ballots, eliminated=out)
        state = state.model_copy(update={"votes": state.votes + (vote,), "alive": alive})
        cast = ", ".join(f"seat {s} for {'nobody' if t is None else f'seat {t}'}" for s, t in ballots)
        result = "nobody is eliminated" if out is None else f"seat {out} is eliminated{self._reveal(state, out)}"
        events = [Event("vote", f"Day {state.day} votes: {cast}; {result}.", seat=out)]
        state, events = self._settle(state, events)
        if state.finished:
            return state, events
        if state.day >= self.params.max_days:
            events.append(Event("end", f"Day {state.day} ends undecided: the match is a draw."))
            return self._end(state, None, f"draw: no team won within {self.params.max_days} days", events)
        state = state.model_copy(update={"day": state.day + 1, "turn": 0})
        return state.model_copy(update={"phase": next_night_phase(state, self.params)}), events

    def _settle(self, state: WerewolfState, events: list[Event]) -> tuple[WerewolfState, list[Event]]:
        """End the match when a team has won; otherwise leave it as it is."""
        won = winner(state)
        if won is None:
            return state, events
        why = "every werewolf is dead" if won == "village" else "the werewolves are as many as the others"
        events.append(Event("end", f"The {won} win: {why}."))
        return self._end(state, won, f"{won} win: {why}", events)

    def _end(self, state: WerewolfState, won: str | None, reason: str, events: list[Event]) -> tuple[WerewolfState, list]:
        outcome = [0.0 if won is None else (1.0 if team_of(r) == won else -1.0) for r in state.roles]
        events.append(Event("reveal", "Roles: " + ", ".join(text.tag(s, r) for s, r in enumerate(state.roles)) + "."))
        state = state.model_copy(update={"phase": "over", "winner": won})
        return self.finish(state, outcome, reason), events

    def _reveal(self, state: WerewolfState, seat: int) -> str:
        return f" {text.tag(seat, state.roles[seat])}" if self.params.reveal_on_death else ""

    # --- what each seat knows -------------------------------------------------------------------
    def known_roles(self, state: WerewolfState, seat: int) -> dict[int, str]:
        """Own role, fellow werewolves, roles revealed on death, wolves the seer found; all at the end."""
        if state.finished:
            return dict(enumerate(state.roles))
        known = {seat: state.roles[seat]}
        if state.roles[seat] == WOLF:
            known.update({w: WOLF for w in state.wolves(living_only=False)})
        if self.params.reveal_on_death:
            known.update({s: state.roles[s] for s, _, _ in state.deaths()})
        if state.roles[seat] == SEER:
            seen = [n.inspected for n in state.nights if n.inspected is not None]
            known.update({s: WOLF for s in seen if state.roles[s] == WOLF})
        return dict(sorted(known.items()))

    def view(self, state: WerewolfState, seat: int) -> dict[str, Any]:
        role, p = state.roles[seat], self.params
        view = {
            "game": self.spec.id, "seat": seat, "role": role, "team": team_of(role), "players": p.players,
            "day": state.day, "max_days": p.max_days, "phase": state.phase,
            "alive": state.living(),
            "dead": [{"seat": s, "day": d, "cause": c} for s, d, c in state.deaths()],
            "known_roles": {str(s): r for s, r in self.known_roles(state, seat).items()},
            "role_counts": {r: state.roles.count(r) for r in ROLES},
            "settings": {"reveal_on_death": p.reveal_on_death, "doctor_repeat": p.doctor_repeat,
                         "night_chat_turns": p.night_chat_turns, "day_discussion_rounds": p.day_discussion_rounds,
                         "max_days": p.max_days},
            "speeches": [{"day": x.day, "seat": x.seat, "text": x.text} for x in state.speeches if not x.pack],
            "votes": [{"day": v.day, "ballots": {str(s): t for s, t in v.ballots}, "eliminated": v.eliminated} for v in state.votes],
            "finished": state.finished, "winner": state.winner, "end_reason": state.end_reason,
        }
        if role == WOLF:
            view["pack_chat"] = [{"night": x.day, "seat": x.seat, "text": x.text} for x in state.speeches if x.pack]
            view["pack_attacks"] = [{"night": n.day, "target": n.target, "picks": {str(w): t for w, t in n.picks}} for n in state.nights]
        elif role == SEER:
            view["seer_visions"] = [{"night": n.day, "seat": n.inspected, "werewolf": state.roles[n.inspected] == WOLF}
                                    for n in state.nights if n.inspected is not None]
        elif role == DOCTOR:
            view["doctor_protections"] = [{"night": n.day, "seat": n.protected} for n in state.nights if n.protected is not None]
        return view

    def hidden_from(self, state: WerewolfState, observer: int) -> list[str]:
        known = self.known_roles(state, observer)
        hidden = []
        for s, r in enumerate(state.roles):
            if s not in known:
                hidden += [view_entry(str(s), r), text.tag(s, r)]
        role = state.roles[observer]
        hidden += [] if role == WOLF else [view_entry("pack_chat"), view_entry("pack_attacks"), PACK_CHAT, PACK_NOTE]
        hidden += [] if role == SEER else [view_entry("seer_visions"), SEER_NOTE]
        hidden += [] if role == DOCTOR else [view_entry("doctor_protections"), DOCTOR_NOTE]
        return hidden

    # --- text side ------------------------------------------------------------------------------