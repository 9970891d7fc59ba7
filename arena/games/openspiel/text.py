"""OpenSpiel games as text: rules rendered from the game's type and parameters, a short note per
game family where one helps, a worked example drawn from the game itself, and the parser that
matches a reply's last bracketed action against the legal actions' texts."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from maro.arena.engine import GameText, InvalidAction
from maro.arena.engine.text import no_action, with_worked_example

_BRACKET = re.compile(r"\[([^\[\]]*)\]")
PROMPT_ACTIONS = 60
"""The most legal actions a prompt lists (every legal action is accepted)."""

FAMILY_NOTES = {
    "kuhn_poker": "Kuhn poker: cards are 0 (Jack) < 1 (Queen) < 2 (King); each player antes 1 and holds one "
                  "card. Your information state is your card, then the betting so far (p = pass, b = bet). "
                  "Pass checks or folds; Bet bets or calls 1 chip. The higher card wins at showdown.",
    "leduc_poker": "Leduc poker: a six-card deck (two suits of J, Q, K), one private card each, a public card "
                   "after the first betting round, raises of 2 then 4; a pair with the public card wins.",
    "liars_dice": "Liar's dice: each player rolls dice in secret; bids name a quantity and a face over all dice; "
                  "bid higher or call Liar when you doubt the last bid.",
    "goofspiel": "Goofspiel: each turn a prize card is shown and every player bids one of its own cards at once; "
                 "the highest bid wins the prize; most points wins.",
    "bargaining": "Bargaining (Deal or no Deal): divide a pool of items; each player values them privately. "
                  "Offer a split (what you keep) or Agree to the last offer; no deal gives nothing.",
    "negotiation": "Negotiation: divide a pool of items valued privately by each player, by proposals.",
    "tic_tac_toe": "Tic-tac-toe: x moves first; three in a row wins. Actions name the mark and (row, column).",
    "connect_four": "Connect four: drop a piece into a column; four in a line wins.",
    "matrix": "A one-shot matrix game: every player picks an action at once, and the payoffs follow.",
    "blotto": "Colonel Blotto: every player splits its troops over the fields at once; most fields won wins.",
}


def family(short_name: str) -> str:
    return "matrix" if short_name.startswith("matrix_") else short_name


def describe(game) -> str:
    """The game's type in a few words: players, turns, chance and information."""
    kind = game.get_type()
    turns = "simultaneous moves" if kind.dynamics.name == "SIMULTANEOUS" else "turns in order"
    chance = "no chance" if kind.chance_mode.name == "DETERMINISTIC" else "chance"
    info = {"PERFECT_INFORMATION": "perfect information", "ONE_SHOT": "one shot"}.get(
        kind.information.name, "imperfect information")
    utility = kind.utility.name.lower().replace("_", "-")
    return f"{game.num_players()} players, {turns}, {chance}, {info}, {utility}"


def normal(text: str) -> str:
    return " ".join(text.split()).casefold()


def match(action_text: str, texts: Mapping[int, str]) -> int:
    """The action id of the reply's last bracketed legal action, or InvalidAction with the reason."""
    by_text = {normal(t): a for a, t in texts.items()}
    found = _BRACKET.findall(action_text or "")
    for said in reversed(found):
        if normal(said) in by_text:
            return by_text[normal(said)]
    shown = listing(list(texts.values()), 12)
    if found:
        raise InvalidAction(f"[{found[-1].strip()[:80]}] is not a legal action now; legal: {shown}")
    raise no_action(action_text, f"reply with one legal action in brackets: {shown}")


def listing(texts: Sequence[str], limit: int) -> str:
    shown = ", ".join(f"[{t}]" for t in texts[:limit])
    return shown + (f" (and {len(texts) - limit} more)" if len(texts) > limit else "")


def check(view: Mapping[str, Any], action_text: str) -> str:
    """The canonical action of a reply, from the seat's view alone (its `legal` list)."""
    texts = {a: t for a, t in view.get("legal", [])}
    if not texts:
        raise InvalidAction("it is not your turn")
    return f"[{texts[match(action_text, texts)]}]"


def situation(view: Mapping[str, Any], legal_actions: Sequence[str]) -> str:
    parts = []
    if "information_state" in view:
        parts.append(f"Your information state:\n{view['information_state'] or '(empty)'}")
    if "observation" in view and view.get("observation") != view.get("information_state"):
        parts.append(f"Your observation:\n{view['observation'] or '(empty)'}")
    legal = [a[1:-1] for a in legal_actions]
    parts.append(f"Legal actions: {listing(legal, PROMPT_ACTIONS)}. Your action?")
    return "\n\n".join(parts)


def game_text(game) -> GameText:
    """The GameText of one loaded OpenSpiel game."""
    kind = game.get_type()
    note = FAMILY_NOTES.get(family(kind.short_name), "")
    example: list[tuple[str, str]] = []

    def worked_example(view: Mapping[str, Any]) -> tuple[str, str]:
        # A fixed situation of the same game (seed 0, its first decision), not of this match.
        if not example:
            from maro.arena.engine import make_game

            rules = make_game(view["game"])
            state, _ = rules.init(0)
            seat = min(rules.acting(state))
            obs = rules.observe(state, seat)
            example.append((situation(obs.view, obs.legal_actions), obs.legal_actions[0]))
        return example[0]

    def render_prompt(view: Mapping[str, Any], legal_actions: Sequence[str]) -> list[dict]:
        rules = (
            f"You are playing {kind.long_name} (OpenSpiel's {view['game'].partition(':')[2]}): "
            f"{describe(game)}. " + (f"{note} " if note else "")
            + f"You are player {view['seat']} of {view['players']}. Each turn you see what you know as "
            "OpenSpiel writes it. Your goal: the highest return you can get. On your turn reply with exactly "
            "one legal action in square brackets, copied from the list, and nothing else."
        )
        shown, reply = worked_example(view)
        return with_worked_example(rules, shown, reply, situation(view, legal_actions))

    return GameText(check=check, render_prompt=render_prompt)

