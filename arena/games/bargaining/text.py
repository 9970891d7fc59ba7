"""bargaining-v1 text: the action format, its parser, and the prompt a model plays from."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from maro.arena.engine import InvalidAction
from maro.arena.engine.text import GameText, commands, last_command, with_worked_example

ACTION_FORMAT = "[Offer: N] | [Accept] | [Walk]"
_COMMAND = commands(("offer", "accept", "walk"), lead=r"\s*\$?\s*")


def parse_action(text: str, price_max: int) -> tuple[str, int | None]:
    """Return (kind, price) of the last bracketed command in `text`.

    The last command wins so that a model may reason before answering.
    """
    kind, arg = last_command(text, _COMMAND, f"reply with exactly one of {ACTION_FORMAT}")
    if kind != "offer":
        if arg:
            raise InvalidAction(f"[{kind.title()}] takes no argument, got {arg!r}")
        return kind, None
    if not arg:
        raise InvalidAction("an offer needs a price: [Offer: N] with N a whole number")
    if not re.fullmatch(r"\d+", arg.replace(",", "")):
        raise InvalidAction(f"the price {arg!r} is not a whole number; write e.g. [Offer: 55]")
    price = int(arg.replace(",", ""))
    if price > price_max:
        raise InvalidAction(f"the price {price} is above the maximum {price_max}")
    return "offer", price


def format_action(kind: str, price: int | None) -> str:
    return f"[Offer: {price}]" if kind == "offer" else f"[{kind.title()}]"


def _goal(role: str, private: Mapping[str, Any]) -> str:
    if role == "seller":
        cost = private["cost"]
        return (
            f"You are the SELLER. The item cost you {cost}; selling below {cost} loses money. "
            "Your goal: sell at the highest price the buyer will accept."
        )
    value = private["value"]
    return (
        f"You are the BUYER. The item is worth {value} to you; paying above {value} loses money. "
        "Your goal: buy at the lowest price the seller will accept."
    )


def _history(view: Mapping[str, Any]) -> str:
    lines = []
    for move in view["history"]:
        if move["kind"] == "offer":
            lines.append(f"- The {move['role']} offered {move['price']}.")
        elif move["kind"] == "accept":
            lines.append(f"- The {move['role']} accepted.")
        else:
            lines.append(f"- The {move['role']} walked away.")
    return "\n".join(lines) if lines else "- No offers yet."


# One worked turn per role: a small model follows the format only after seeing it used.
_EXAMPLES = {
    "seller": ("- No offers yet.", "Turns left: 8", "[Offer: N], [Walk]", "[Offer: 95]"),
    "buyer": ("- The seller offered 90.", "Turns left: 7", "[Offer: N], [Accept], [Walk]", "[Offer: 62]"),
}


def render_prompt(view: Mapping[str, Any], legal_actions: Sequence[str]) -> list[dict]:
    """System rules and goal, one worked example turn, then the current situation."""
    # The rules every seat shares come first and the seat's role and private value last, so the
    # model server's prompt-prefix cache serves the shared part to every seat of every match.
    rules = (
        f"You are negotiating the price of one item. Seller and buyer take turns; at most "
        f"{view['max_rounds']} rounds, then there is no deal and both get nothing. On your turn reply "
        f"with exactly one action and nothing else: {ACTION_FORMAT}. [Accept] takes the other side's "
        f"latest offer. {_goal(view['role'], view['private'])}"
    )
    current = (
        f"Offers so far:\n{_history(view)}\n"
        f"Turns left: {view['turns_left']}. Legal actions: {', '.join(legal_actions)}. Your action?"
    )
    history, left, legal, reply = _EXAMPLES[view["role"]]
    example = f"Offers so far:\n{history}\n{left}. Legal actions: {legal}. Your action?"
    return with_worked_example(rules, example, reply, current)


def check(view: Mapping[str, Any], action_text: str) -> str:
    """The canonical action in `action_text`, judged from the seat's view alone, or
    InvalidAction with the reason (the arena still decides)."""
    kind, price = parse_action(action_text, view["price_max"])
    last = view["history"][-1] if view["history"] else None
    if kind == "accept" and (last is None or last["kind"] != "offer" or last["role"] == view["role"]):
        raise InvalidAction("there is no offer from the other side to accept; make an offer with [Offer: N]")
    return format_action(kind, price)


TEXT = GameText(check=check, render_prompt=render_prompt)
