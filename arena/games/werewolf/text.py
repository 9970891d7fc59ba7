"""werewolf-v1 text: the action format, its parser, the per-view legal choices and the prompt."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from maro.arena.engine import InvalidAction
from maro.arena.engine.text import GameText, commands, last_command, with_worked_example
from maro.arena.games.werewolf.state import SAY_LIMIT

ACTION_FORMAT = "[Say: text] | [Pass] | [Kill: N] | [Inspect: N] | [Protect: N] | [Vote: N] | [Vote: none]"
_COMMAND = commands(("say", "pass", "kill", "inspect", "protect", "vote"))
# Speech may not contain the characters that the engine's own role tags and view keys use,
# so no speech can ever look like an announced role or a leaked private record.
_UNSAFE = re.compile(r'[\[\]{}()"\\\x00-\x1f\x7f]')
_PHASES = {
    "night_chat": "the night: the werewolves' private chat",
    "night": "the night: werewolves, seer and doctor act at once",
    "day_talk": "the day discussion: living seats speak in seat order",
    "day_vote": "the day vote: all living seats vote at once",
    "over": "the end of the match",
}


def tag(seat: int, role: str) -> str:
    """How events announce a role; `hidden_from` lists these for roles not yet revealed."""
    return f"(seat {seat}: {role})"


def clean_speech(text: str) -> str:
    return " ".join(_UNSAFE.sub(" ", text).split())


def parse_action(text: str) -> tuple[str, int | str | None]:
    """(kind, argument) of the LAST bracketed command, so that a model may reason first:
    a seat number for kill/inspect/protect/vote (None for `[Vote: none]`), the speech for say."""
    kind, arg = last_command(text, _COMMAND, f"end your reply with one command such as {ACTION_FORMAT}")
    if kind == "pass":
        if arg:
            raise InvalidAction(f"[Pass] takes no argument, got {arg!r}; to speak use [Say: text]")
        return kind, None
    if kind == "say":
        speech = clean_speech(arg)
        if not speech:
            raise InvalidAction("[Say: text] needs some text; to stay silent use [Pass]")
        if len(speech) > SAY_LIMIT:
            raise InvalidAction(f"your speech has {len(speech)} characters; the limit is {SAY_LIMIT}")
        return kind, speech
    if kind == "vote" and arg.lower() == "none":
        return kind, None
    number = arg.lower().removeprefix("seat").strip()
    if not re.fullmatch(r"\d+", number):
        extra = " or none" if kind == "vote" else ""
        raise InvalidAction(f"[{kind.title()}: N] needs a seat number{extra}, got {arg!r}; e.g. [{kind.title()}: 2]")
    return kind, int(number)


def format_action(kind: str, arg: int | str | None) -> str:
    if kind == "pass":
        return "[Pass]"
    if kind == "vote" and arg is None:
        return "[Vote: none]"
    return f"[{kind.title()}: {arg}]"


def banned_protect(view: Mapping[str, Any]) -> int | None:
    """The seat the doctor may not protect tonight: last night's, unless repeats are allowed."""
    if view["settings"]["doctor_repeat"]:
        return None
    last = [p for p in view.get("doctor_protections", []) if p["night"] == view["day"] - 1]
    return last[0]["seat"] if last else None


def choices(view: Mapping[str, Any]) -> dict[str, tuple[int | None, ...]]:
    """What this seat may do now, judged from its view: command -> allowed seats ((), for speech)."""
    me, living, phase = view["seat"], view["alive"], view["phase"]
    if view["finished"] or me not in living:
        return {}
    wolf = view["role"] == "werewolf"
    others = tuple(s for s in living if s != me)
    if phase == "day_talk" or (phase == "night_chat" and wolf):
        return {"say": (), "pass": ()}
    if phase == "day_vote":
        return {"vote": others + (None,)}
    if phase != "night":
        return {}
    if wolf:
        return {"kill": tuple(s for s in living if view["known_roles"].get(str(s)) != "werewolf")}
    if view["role"] == "seer":
        return {"inspect": others}
    if view["role"] == "doctor":
        return {"protect": tuple(s for s in living if s != banned_protect(view))}
    return {}


def check(view: Mapping[str, Any], text: str) -> str:
    """The canonical action in `text` if this seat may play it now, else InvalidAction saying why."""
    kind, arg = parse_action(text)
    allowed = choices(view)
    if not allowed:
        raise InvalidAction("you have no action now" + (": you are eliminated" if view["seat"] not in view["alive"] else ""))
    if kind not in allowed:
        commands = " or ".join({"say": "[Say: text]", "pass": "[Pass]"}.get(k, f"[{k.title()}: N]") for k in allowed)
        raise InvalidAction(f"[{kind.title()}] is not possible in {_PHASES[view['phase']]}; use {commands}")
    if kind in ("say", "pass") or arg in allowed[kind]:
        return format_action(kind, arg)
    if arg not in range(view["players"]):
        reason = f"there is no seat {arg} (seats are 0 to {view['players'] - 1})"
    elif arg not in view["alive"]:
        reason = f"seat {arg} is dead"
    elif arg == view["seat"]:
        reason = f"you cannot {kind} yourself"
    elif kind == "kill":
        reason = f"seat {arg} is a fellow werewolf"
    else:
        reason = f"seat {arg} was protected last night and may not be protected two nights in a row"
    options = ", ".join("none" if s is None else str(s) for s in allowed[kind])
    raise InvalidAction(f"{reason}; [{kind.title()}: N] takes one of {options}")


def hints(view: Mapping[str, Any]) -> tuple[str, ...]:
    allowed = choices(view)
    out = []
    for kind, seats in allowed.items():
        if kind == "say":
            to = "the pack only" if view["phase"] == "night_chat" else "everyone"
            out.append(f"[Say: text] (to {to}, at most {SAY_LIMIT} characters)")
        elif kind == "pass":
            out.append("[Pass] (stay silent)")
        else:
            # Every choice written out: small models copy a template's `N` literally.
            out.extend(format_action(kind, s) for s in seats if s is not None)
            if None in seats:
                out.append("[Vote: none] (abstain)")
    return tuple(out)


_GOALS = {
    "werewolf": "You are a WEREWOLF (team werewolves). Pick victims at night with the pack, hide who you "
    "are in the day, and steer the vote onto villagers.",
    "seer": "You are the SEER (team village). Each night inspect one seat and privately learn whether it "
    "is a werewolf; use this to lead the village's vote onto the werewolves.",
    "doctor": "You are the DOCTOR (team village). Each night protect one seat (yourself allowed) from the "
    "werewolves; help the village vote out the werewolves.",
    "villager": "You are a VILLAGER (team village). You have no night action; find the werewolves from "
    "what is said and how seats vote, and vote them out.",
}

# One worked turn per (phase, role) from an imaginary match: small models copy the format only
# after seeing it used. They never tag roles, so they cannot look like a leaked fact.
_TALK = f"[Say: text] (at most {SAY_LIMIT} characters); [Pass] (stay silent)"
_EXAMPLES = {
    "night_chat": ("You are seat 2, your packmate is seat 1. Night 2. Living seats: 0, 1, 2, 4, 5. Day 1: seat 4 said: I suspect seat 1.",
                   _TALK, "[Say: Seat 4 is onto us. Let us attack seat 4 tonight.]"),
    "werewolf": ("You are seat 2, your packmate is seat 1. Night 2. Living seats: 0, 1, 2, 4, 5. Pack chat: seat 1 said: Let us attack seat 4 tonight.",
                 "[Kill: 0]; [Kill: 4]; [Kill: 5]", "Seat 4 suspects my packmate, so removing it helps us. [Kill: 4]"),
    "seer": ("You are seat 5. Night 2. Living seats: 0, 1, 2, 4, 5. You inspected seat 5 last night: not a werewolf.",
             "[Inspect: 0]; [Inspect: 1]; [Inspect: 2]; [Inspect: 4]", "Seat 1 was quiet and voted oddly; I will check it. [Inspect: 1]"),
    "doctor": ("You are seat 4. Night 2. Living seats: 0, 1, 2, 4, 5. Day 1: seat 2 said: I am the seer.",
               "[Protect: 0]; [Protect: 1]; [Protect: 2]; [Protect: 4]; [Protect: 5]", "A seer claim makes seat 2 the likely target. [Protect: 2]"),
    "day_talk": ("You are seat 5. Day 2. Living seats: 0, 1, 2, 4, 5. Seat 0 was killed in the night. "
                 "Day 1 votes: seat 1 voted for seat 4, seat 4 voted for seat 1, the rest abstained.",
                 _TALK, "[Say: Seat 1 pushed hard against seat 4 right before seat 0 died. I suspect seat 1.]"),
    "day_vote": ("You are seat 5. Day 2 vote. Living seats: 0, 1, 2, 4, 5. Seat 2 said: I am the seer and I suspect seat 1. "
                 "Seat 4 said: I agree, I suspect seat 1.",
                 "[Vote: 0]; [Vote: 1]; [Vote: 2]; [Vote: 4]; [Vote: none] (abstain)", "Two seats point at seat 1 and the seer claim backs it. [Vote: 1]"),
}


def _plural(role: str) -> str:
    return "werewolves" if role == "werewolf" else role + "s"


def _rules(view: Mapping[str, Any]) -> str:
    cfg, counts = view["settings"], view["role_counts"]
    deal = ", ".join(f"{n} {_plural(role) if n > 1 else role}" for role, n in counts.items() if n)
    chat = ("the werewolves first chat privately (each living werewolf speaks in seat order), then "
            if cfg["night_chat_turns"] else "")
    reveal = " and its role revealed" if cfg["reveal_on_death"] else " (roles stay secret until the end)"
    repeat = "" if cfg["doctor_repeat"] else ", but not the same seat two nights in a row"
    return (
        f"You are playing Werewolf as seat {view['seat']} of {view['players']} seats (numbered 0 to "
        f"{view['players'] - 1}). Roles dealt: {deal}. The werewolves know each other; everyone else "
        "knows only their own role. Teams: the werewolves against the village (everyone else).\n"
        f"Night: {chat}the werewolves pick a victim with [Kill: N] (most picks wins, a tie goes to the "
        "lowest seat), the seer inspects one other seat with [Inspect: N] and privately learns whether it "
        f"is a werewolf, and the doctor protects one seat with [Protect: N] (itself allowed{repeat}). "
        "These happen at once; the victim dies unless the doctor protected it.\n"
        f"Day: the night's death is announced{reveal}. Then each living seat speaks "
        f"{cfg['day_discussion_rounds']} time(s) in seat order with [Say: text] (at most {SAY_LIMIT} "
        "characters; brackets, braces, parentheses and double quotes are removed) or stays silent with "
        "[Pass]. Then all living seats vote at once with [Vote: N] or [Vote: none]; the seat with the "
        "most votes is eliminated; a tie for the most votes eliminates nobody.\n"
        "The village wins when every werewolf is dead; the werewolves win as soon as they are at least "
        f"as many as the other living seats. If day {cfg['max_days']} ends undecided, the match is a draw.\n"
        "Dead seats no longer act. You may think first; end your reply with exactly one bracketed "
        f"action: the last one counts.\n{_GOALS[view['role']]}"
    )


def _record(view: Mapping[str, Any]) -> list[str]:
    """The public record and this seat's private knowledge, day by day."""
    known = view["known_roles"]
    lines = []
    for day in range(1, view["day"] + 1):
        for chat in view.get("pack_chat", []):
            if chat["night"] == day:
                lines.append(f"Night {day}, pack chat: seat {chat['seat']} said: {chat['text']}")
        for attack in view.get("pack_attacks", []):
            if attack["night"] == day:
                lines.append(f"Night {day}: the pack attacked seat {attack['target']}.")
        for vision in view.get("seer_visions", []):
            if vision["night"] == day:
                verdict = "a werewolf" if vision["werewolf"] else "not a werewolf"
                lines.append(f"Night {day}: you inspected seat {vision['seat']}: {verdict}.")
        for prot in view.get("doctor_protections", []):
            if prot["night"] == day:
                lines.append(f"Night {day}: you protected seat {prot['seat']}.")
        for dead in view["dead"]:
            if dead["day"] == day:
                role = f", a {known[str(dead['seat'])]}," if str(dead["seat"]) in known else ""
                how = "was killed in the night" if dead["cause"] == "night" else "was voted out"
                lines.append(f"Day {day}: seat {dead['seat']}{role} {how}.")
        for speech in view["speeches"]:
            if speech["day"] == day:
                lines.append(f"Day {day}: seat {speech['seat']} said: {speech['text']}")
        for vote in view["votes"]:
            if vote["day"] == day:
                cast = ", ".join(f"seat {v} for {'nobody' if t is None else f'seat {t}'}" for v, t in vote["ballots"].items())
                lines.append(f"Day {day} votes: {cast}.")
    return lines or ["Nothing has happened yet."]


def render_prompt(view: Mapping[str, Any], legal_actions: Sequence[str]) -> list[dict]:
    """System rules and goal, one worked example turn, then the current situation."""
    role, phase = view["role"], view["phase"]
    key = role if phase == "night" else phase
    situation, legal, reply = _EXAMPLES.get(key, _EXAMPLES["day_vote"])
    known = ", ".join(f"seat {s} {r}" for s, r in view["known_roles"].items())
    current = (
        f"Day {view['day']}, {_PHASES[phase]}. Living seats: {', '.join(map(str, view['alive']))}. "
        f"Roles you know: {known}.\nWhat has happened:\n- " + "\n- ".join(_record(view))
        + f"\nLegal actions: {'; '.join(legal_actions) or 'none'}. Your action?"
    )
    example = f"(An example from another match.) {situation}\nLegal actions: {legal}. Your action?"
    return with_worked_example(_rules(view), example, reply, current)


TEXT = GameText(check=check, render_prompt=render_prompt)
