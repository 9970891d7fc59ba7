"""kuhn_poker-v1 text: the action format, its parser, card phrases and the prompt a model plays from."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from maro.arena.engine import InvalidAction
from maro.arena.engine.text import GameText, no_action, with_worked_example

CARDS = ("Jack", "Queen", "King")
ACTIONS = ("check", "bet", "call", "fold")
ACTION_FORMAT = "[Check] | [Bet] | [Call] | [Fold]"
_BRACKET = re.compile(r"\[\s*([^\]:]*?)\s*(?::\s*([^\]]*))?\]")


def card_phrase(hand: int, role: str, card: str) -> str:
    """How a card is written in events and views; the colon after the hand number keeps
    'Hand 1:' from matching inside 'Hand 11:', so `hidden_from` can look for exactly this."""
    return f"Hand {hand}: {role} holds the {card}"


def parse_action(text: str) -> str:
    """The last bracketed poker command in `text` (so a model may reason first), lower case."""
    brackets = list(_BRACKET.finditer(text or ""))
    known = [m for m in brackets if m.group(1).lower() in ACTIONS]
    if not known:
        if brackets:
            word = brackets[-1].group(1)
            raise InvalidAction(f"[{word}] is not an action in Kuhn poker; reply with one of {ACTION_FORMAT}")
        raise no_action(text, f"reply with exactly one of {ACTION_FORMAT}")
    last = known[-1]
    kind = last.group(1).lower()
    if last.group(2) is not None and last.group(2).strip():
        arg = last.group(2).strip()
        raise InvalidAction(f"[{kind.title()}] takes no argument (every bet is exactly 1 chip), got {arg!r}")
    return kind


def check_against(kind: str, to_call: int) -> None:
    """Refuse a command that does not answer the betting situation, saying what would."""
    if to_call and kind in ("check", "bet"):
        raise InvalidAction(f"you face a bet of 1 chip, so you cannot {kind}; answer it with [Call] or [Fold]")
    if not to_call and kind in ("call", "fold"):
        raise InvalidAction(f"nobody has bet, so there is nothing to {kind}; use [Check] or [Bet]")


def format_action(kind: str) -> str:
    return f"[{kind.title()}]"


def _history(view: Mapping[str, Any]) -> str:
    moves = [f"the {m['role']} player {m['action']}s" for m in view["history"]]
    return "; ".join(moves).capitalize() + "." if moves else "No actions yet in this hand."


def _past(view: Mapping[str, Any]) -> str:
    if not view["past_hands"]:
        return ""
    lines = [f"- Hand {h['hand']}: {', '.join(h['actions'])}; {h['result']}" for h in view["past_hands"]]
    shown = [c for c in view["known_cards"] if not c.startswith(f"Hand {view['hand']}:")]
    return "Earlier hands:\n" + "\n".join(lines) + "\nCards you have seen: " + "; ".join(shown) + ".\n"


def render_prompt(view: Mapping[str, Any], legal_actions: Sequence[str]) -> list[dict]:
    """System rules and goal, one worked example turn, then the current situation."""
    rules = (
        "You are playing Kuhn poker against one opponent. The deck has three cards, Jack < Queen < King; "
        "each player antes 1 chip and gets one private card. The player to act first may [Check] or [Bet] "
        "(1 chip). Facing a bet you may [Call] (add 1 chip, then the higher card wins the pot) or [Fold] "
        "(give up the pot). If both check, the higher card wins the antes. "
        f"The match has {view['rounds']} hand(s); who acts first alternates between hands. "
        f"You are the {view['role']} player. Your goal: win as many chips as possible. "
        f"On your turn reply with exactly one action and nothing else: {ACTION_FORMAT}."
    )
    first = "you act first" if view["you_act_first"] else "your opponent acts first"
    current = (
        f"{_past(view)}Hand {view['hand']} of {view['rounds']}: your card is the {view['your_card']}; {first}. "
        f"{_history(view)} Pot: {view['pot']} chips. Your chips so far: {view['your_chips']:+d}. "
        f"Legal actions: {', '.join(legal_actions)}. Your action?"
    )
    # The worked example is a fixed situation written in the same prose as the current one.
    example = (
        "Hand 1 of 1: your card is the Queen; your opponent acts first. The first player bets. "
        "Pot: 3 chips. Your chips so far: +0. Legal actions: [Call], [Fold]. Your action?"
    )
    # A bare action: a small model copies the example's shape, and prose before the action is
    # what it loses the format in (see docs/benchmarks.md, valid-action rate).
    reply = "[Call]"
    return with_worked_example(rules, example, reply, current)


def check(view: Mapping[str, Any], action_text: str) -> str:
    """The canonical action in `action_text`, judged from the seat's view alone, or
    InvalidAction with the reason (the arena still decides)."""
    kind = parse_action(action_text)
    check_against(kind, view["to_call"])
    return format_action(kind)


TEXT = GameText(check=check, render_prompt=render_prompt)
