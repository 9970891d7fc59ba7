"""prisoners_dilemma-v1 text: the action format, its parser, and the prompt a model plays from."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from maro.arena.engine import InvalidAction
from maro.arena.engine.text import GameText, commands, last_command, with_worked_example

ACTION_FORMAT = "[Say: text] | [Pass] during the chat; [Cooperate] | [Defect] during the move phase"
SAY_MAX = 200
_COMMAND = commands(("say", "pass", "cooperate", "defect"))
PHASE_KINDS = {"chat": ("say", "pass"), "move": ("cooperate", "defect")}
PAYOFF = {("cooperate", "cooperate"): 3.0, ("cooperate", "defect"): 0.0,
          ("defect", "cooperate"): 5.0, ("defect", "defect"): 1.0}


def clean_speech(text: str) -> str:
    """Speech is one line without brackets or quotes, so it can never forge a command or a view key."""
    text = re.sub(r"[\[\]{}\"\n\r\t]+", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def parse_action(text: str, phase: str) -> tuple[str, str | None]:
    """Return (kind, speech) of the last bracketed command in `text`, checked against the phase.

    The last command wins so that a model may reason before answering.
    """
    allowed = PHASE_KINDS[phase]
    wanted = "[Say: text] or [Pass]" if phase == "chat" else "[Cooperate] or [Defect]"
    kind, arg = last_command(text, _COMMAND, f"it is the {phase} phase: reply with {wanted}")
    if kind not in allowed:
        later = "moves come after the chat" if phase == "chat" else "the chat is over for this round"
        raise InvalidAction(f"[{kind.title()}] is not allowed now: it is the {phase} phase ({later}); reply with {wanted}")
    if kind != "say":
        if arg:
            raise InvalidAction(f"[{kind.title()}] takes no argument, got {arg!r}")
        return kind, None
    speech = clean_speech(arg)
    if not speech:
        raise InvalidAction("[Say: text] needs some text after the colon, or use [Pass] to stay silent")
    if len(speech) > SAY_MAX:
        raise InvalidAction(f"the message has {len(speech)} characters; at most {SAY_MAX} are allowed")
    return "say", speech


def format_action(kind: str, speech: str | None = None) -> str:
    return f"[Say: {speech}]" if kind == "say" else f"[{kind.title()}]"


def _chat(view: Mapping[str, Any]) -> str:
    lines = [f"- Seat {c['seat']}: {c['text']}" if c["text"] else f"- Seat {c['seat']} passed."
             for c in view["chat"] if c["round"] == view["round"]]
    return "\n".join(lines) if lines else "- Nothing said yet this round."


def _history(view: Mapping[str, Any]) -> str:
    lines = []
    for past in view["history"]:
        moves = ", ".join(f"seat {s} {m}d" for s, m in enumerate(past["moves"]))
        lines.append(f"- Round {past['round']}: {moves}; you earned {past['payoffs'][view['seat']]:g}.")
    return "\n".join(lines) if lines else "- No rounds played yet."


def _situation(view: Mapping[str, Any], history: str, chat: str, legal: str) -> str:
    ask = "Your chat turn" if view["phase"] == "chat" else "Seal your move"
    return (f"Round {view['round']} of {view['rounds']}, {view['phase']} phase.\nEarlier rounds:\n{history}\n"
            f"Chat this round:\n{chat}\n{ask}. Legal actions: {legal}. Your action?")


# One worked turn per phase: a small model follows the format only after seeing it used.
_EXAMPLES = {
    "chat": ("- No rounds played yet.", "- Seat 1: Hello, let us both cooperate.", "[Say: text], [Pass]",
             "[Say: Agreed, I will cooperate as long as everyone does.]"),
    "move": ("- Round 1: seat 0 cooperated, seat 1 cooperated; you earned 3.",
             "- Seat 1: Same again?", "[Cooperate], [Defect]", "[Cooperate]"),
}


def render_prompt(view: Mapping[str, Any], legal_actions: Sequence[str]) -> list[dict]:
    """System rules and goal, one worked example turn, then the current situation."""
    others = view["players"] - 1
    rules = (
        f"You are seat {view['seat']} in a repeated prisoner's dilemma with {view['players']} players and "
        f"{view['rounds']} rounds. Each round first has a free chat ({view['chat_turns']} turn(s) per seat, "
        "in seat order), then every seat secretly picks Cooperate or Defect; the moves are revealed together. "
        "Against each other seat you earn: both cooperate 3, both defect 1, you defect while they cooperate 5, "
        f"you cooperate while they defect 0; your round payoff is the average over the {others} other seat(s). "
        "Your goal: the highest total payoff over all rounds. Chat promises are not binding. "
        f"Reply with exactly one action: {ACTION_FORMAT}. Speech is one line of at most {SAY_MAX} characters."
    )
    history, chat, legal, reply = _EXAMPLES[view["phase"]]
    example_view = {**view, "round": 2 if view["phase"] == "move" else 1, "rounds": max(2, view["rounds"])}
    example = _situation(example_view, history, chat, legal)
    current = _situation(view, _history(view), _chat(view), ", ".join(legal_actions))
    return with_worked_example(rules, example, reply, current)


def check(view: Mapping[str, Any], action_text: str) -> str:
    """The canonical action in `action_text`, judged from the seat's view alone, or
    InvalidAction with the reason (the arena still decides)."""
    if view["finished"]:
        raise InvalidAction("the game is over")
    return format_action(*parse_action(action_text, view["phase"]))


TEXT = GameText(check=check, render_prompt=render_prompt)
