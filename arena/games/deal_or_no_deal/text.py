"""deal_or_no_deal-v1 text: the action format, its parser, and the prompt a model plays from."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from maro.arena.engine import InvalidAction
from maro.arena.engine.text import GameText, no_action, with_worked_example

ITEMS = ("books", "hats", "balls")
SINGULAR = {"books": "book", "hats": "hat", "balls": "ball"}
ACTION_FORMAT = "[Propose: books=N hats=N balls=N] | [Accept] | [Walk]"
_COMMANDS = ("propose", "accept", "walk", "reject")
_BRACKET = re.compile(r"\[\s*([^\]:]*?)\s*(?::\s*([^\]]*))?\]")
_PAIR = re.compile(r"([A-Za-z]+)\s*[=:]\s*([^\s,;]+)")


def parse_action(text: str, pool: Sequence[int]) -> tuple[str, tuple[int, ...] | None]:
    """Return (kind, what the proposer takes) of the last bracketed command in `text`.

    The last command wins so that a model may reason before answering.
    """
    brackets = list(_BRACKET.finditer(text or ""))
    known = [m for m in brackets if m.group(1).lower() in _COMMANDS]
    if not known:
        if brackets:
            word = brackets[-1].group(1)
            raise InvalidAction(f"[{word}] is not an action here; reply with one of {ACTION_FORMAT}")
        raise no_action(text, f"reply with exactly one of {ACTION_FORMAT}")
    kind, arg = known[-1].group(1).lower(), (known[-1].group(2) or "").strip()
    if kind == "reject":
        raise InvalidAction("there is no separate [Reject]: a counter-proposal [Propose: ...] rejects the standing one, "
                            "[Walk] ends without a deal")
    if kind != "propose":
        if arg:
            raise InvalidAction(f"[{kind.title()}] takes no argument, got {arg!r}")
        return kind, None
    return "propose", _parse_take(arg, pool)


def _parse_take(arg: str, pool: Sequence[int]) -> tuple[int, ...]:
    if not arg:
        raise InvalidAction("a proposal says what you take: [Propose: books=N hats=N balls=N]")
    take: dict[str, int] = {}
    rest = _PAIR.sub("", arg).strip(" ,;")
    if rest:
        raise InvalidAction(f"could not read {rest!r} in the proposal; write it as books=N hats=N balls=N")
    for name, raw in _PAIR.findall(arg):
        key = name.lower() if name.lower() in ITEMS else name.lower() + "s"
        if key not in ITEMS:
            raise InvalidAction(f"unknown item {name!r}; the items are {', '.join(ITEMS)}")
        if key in take:
            raise InvalidAction(f"{key} is named twice in the proposal")
        count = raw.strip(",;")
        if not count.isdigit():
            raise InvalidAction(f"the number of {key} {count!r} is not a whole number from 0 up")
        take[key] = int(count)
    missing = [k for k in ITEMS if k not in take]
    if missing:
        raise InvalidAction(f"the proposal must name every item type; missing: {', '.join(missing)} (write 0 for none)")
    for key, have in zip(ITEMS, pool):
        if take[key] > have:
            raise InvalidAction(f"you cannot take {take[key]} {key}: the pool has only {have}")
    return tuple(take[k] for k in ITEMS)


def format_action(kind: str, take: Sequence[int] | None) -> str:
    if kind == "propose":
        return "[Propose: " + " ".join(f"{k}={n}" for k, n in zip(ITEMS, take)) + "]"
    return f"[{kind.title()}]"


def describe(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{n} {k if n != 1 else SINGULAR[k]}" for k, n in counts.items())


def worth(counts: Mapping[str, int], values: Mapping[str, int]) -> int:
    return sum(n * values[k] for k, n in counts.items())


def _history(view: Mapping[str, Any]) -> str:
    lines = []
    for move in view["history"]:
        if move["kind"] == "propose":
            lines.append(f"- The {move['role']} proposed to take {describe(move['take'])}.")
    return "\n".join(lines) if lines else "- No proposals yet."


def _standing(view: Mapping[str, Any]) -> str:
    offer = view["standing_proposal"]
    if offer is None or offer["role"] == view["role"]:
        return "There is no proposal from the other side to accept."
    you_get = offer["other_gets"]
    return (f"Standing proposal from the {offer['role']}: you would get {describe(you_get)}, "
            f"worth {worth(you_get, view['your_values'])} of {view['total_value']} to you.")


def render_prompt(view: Mapping[str, Any], legal_actions: Sequence[str]) -> list[dict]:
    """System rules and goal, one worked example turn, then the current situation."""
    values = ", ".join(f"{SINGULAR[k]} {v}" for k, v in view["your_values"].items())
    rules = (
        f"You are the {view['role']}, dividing a pool of items with one other negotiator: "
        f"{describe(view['items'])}. Each side has private values per item; the whole pool is worth "
        f"{view['total_value']} to each side. Your private values per item: {values}. "
        "The other side's values differ and are unknown to you. Take turns: [Propose: books=N hats=N balls=N] "
        "names what YOU take (the other side gets the rest); [Accept] accepts the other side's latest "
        "proposal; [Walk] ends without a deal. "
        f"After {view['max_turns']} turns in all there is no deal. Your score is the value of what you get "
        f"divided by {view['total_value']}; no deal scores {view['no_deal_payoff']:g}. Your goal: the highest score. "
        f"Reply with exactly one action, last in your reply: {ACTION_FORMAT}."
    )
    current = (
        f"Proposals so far:\n{_history(view)}\n{_standing(view)}\n"
        f"Turns left: {view['turns_left']}. Legal actions: {', '.join(legal_actions)}. Your action?"
    )
    # A fixed example situation, written in the same prose as the current one.
    example = (
        "Proposals so far:\n- The other negotiator proposed to take 2 books, 1 hat, 0 balls.\n"
        "Standing proposal from the other negotiator: you would get 0 books, 1 hat, 3 balls, worth 4 of 10 to you.\n"
        "Turns left: 7. Legal actions: [Propose: books=N hats=N balls=N], [Accept], [Walk]. Your action?"
    )
    reply = "Four is too little; I keep the hats I value and leave them the books. [Propose: books=0 hats=2 balls=1]"
    return with_worked_example(rules, example, reply, current)


def check(view: Mapping[str, Any], action_text: str) -> str:
    """The canonical action in `action_text`, judged from the seat's view alone, or
    InvalidAction with the reason (the arena still decides)."""
    kind, take = parse_action(action_text, tuple(view["items"].values()))
    standing = view["standing_proposal"]
    if kind == "accept" and (standing is None or standing["role"] == view["role"]):
        raise InvalidAction("there is no proposal from the other side to accept; propose with [Propose: ...]")
    return format_action(kind, take)


TEXT = GameText(check=check, render_prompt=render_prompt)
