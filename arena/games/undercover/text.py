"""undercover-v1 text: the word pairs, the action format, its parser, and the prompt a model plays from."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from maro.arena.engine import InvalidAction
from maro.arena.engine.text import GameText, commands, last_command, with_worked_example

ACTION_FORMAT = "[Describe: text] on your description turn | [Vote: N] during the vote"
DESCRIBE_MIN, DESCRIBE_MAX = 3, 150
DEFAULT_PAIRS: tuple[tuple[str, str], ...] = (
    ("coffee", "tea"), ("cat", "tiger"), ("apple", "pear"), ("guitar", "violin"), ("beach", "desert"),
    ("pizza", "burger"), ("train", "bus"), ("doctor", "nurse"), ("rose", "tulip"), ("soccer", "rugby"),
    ("wolf", "dog"), ("butter", "cheese"), ("moon", "sun"), ("pen", "pencil"), ("bicycle", "motorcycle"),
    ("honey", "sugar"), ("library", "bookstore"), ("shark", "dolphin"), ("snow", "rain"), ("chess", "checkers"),
)
# Missed description turns and random play use these; none names a word of the default pairs.
NEUTRAL = ("It is something most people have come across.", "You can find it in many places.",
           "People have different feelings about it.", "It is quite common in everyday life.")
_COMMAND = commands(("describe", "vote"))


def clean_text(text: str) -> str:
    """One line without brackets or quotes, so a description cannot forge a command or a view entry."""
    text = re.sub(r"[\[\]{}\"\n\r\t]+", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def names_word(text: str, word: str) -> bool:
    """Whether `text` contains `word` itself (any case, also as a plural), as a whole word."""
    return re.search(rf"\b{re.escape(word)}(s|es)?\b", text, re.IGNORECASE) is not None


def reveal_phrase(seat: int, role: str) -> str:
    """How an elimination reveals a role; the same phrase marks a leak before the reveal."""
    return f"Seat {seat} was {'an undercover' if role == 'undercover' else 'a civilian'}"


def word_line(word: str) -> str:
    return f'Your secret word is "{word}".'


def parse_action(text: str, phase: str) -> tuple[str, str | int]:
    """Return (kind, description text or voted seat) of the last bracketed command in `text`.

    The last command wins so that a model may reason before answering.
    """
    wanted = "[Describe: text]" if phase == "describe" else "[Vote: N] with N a seat number"
    kind, arg = last_command(text, _COMMAND, f"it is the {phase} phase: reply with {wanted}")
    if kind != phase:
        raise InvalidAction(f"[{kind.title()}] is not allowed now: it is the {phase} phase; reply with {wanted}")
    if kind == "vote":
        digits = arg.lower().removeprefix("seat").strip()
        if not re.fullmatch(r"\d+", digits):
            raise InvalidAction(f"the vote {arg!r} is not a seat number; write e.g. [Vote: 2]")
        return "vote", int(digits)
    description = clean_text(arg)
    if len(description) < DESCRIBE_MIN:
        raise InvalidAction(f"the description needs at least {DESCRIBE_MIN} characters: [Describe: a hint about your word]")
    if len(description) > DESCRIBE_MAX:
        raise InvalidAction(f"the description has {len(description)} characters; at most {DESCRIBE_MAX} are allowed")
    return "describe", description


def format_action(kind: str, arg: str | int) -> str:
    return f"[{kind.title()}: {arg}]"


def _record(view: Mapping[str, Any]) -> str:
    lines = []
    for r in range(1, view["round"] + 1):
        lines += [f"- Round {d['round']}, seat {d['seat']}: {d['text']}" for d in view["descriptions"] if d["round"] == r]
        lines += [f"- Round {v['round']} vote: {v['result']}" for v in view["votes"] if v["round"] == r]
    return "\n".join(lines) if lines else "- Nothing said yet."


def _situation(word: str, seat: int, alive: Sequence[int], record: str, phase: str, legal: str) -> str:
    ask = "Your turn to describe your word" if phase == "describe" else "Vote now"
    seats = ", ".join(str(s) for s in alive)
    return (f"Your word: {word}. You are seat {seat}. Seats still in the game: {seats}.\n"
            f"What happened so far:\n{record}\n{ask}. Legal actions: {legal}. Your action?")


def render_prompt(view: Mapping[str, Any], legal_actions: Sequence[str]) -> list[dict]:
    """System rules and goal, one worked example turn, then the current situation."""
    u = view["undercovers"]
    rules = (
        f"You play 'Who is the undercover' with {view['players']} players. {view['players'] - u} civilians share one "
        f"secret word; {u} undercover(s) got a related but different word. Nobody is told their role: you only know "
        f"your own word, which is {view['word']}. Each round every remaining seat describes its word in one short "
        "line, in seat order, without saying the word itself; then everyone votes at once for another remaining "
        "seat. The seat with the most votes is out and its role is revealed; a tie eliminates nobody. Civilians win "
        f"when every undercover is out; undercovers win when they are at least as many as the civilians left, or "
        f"when they survive {view['max_rounds']} rounds. Your goal: work out from the descriptions whether your word "
        "is the majority's. If it is, vote out the seats whose descriptions do not fit; if it is not, blend in and "
        f"vote out civilians. Reply with exactly one action: {ACTION_FORMAT}."
    )
    word = "lighthouse" if view["word"] != "lighthouse" else "lantern"
    if view["phase"] == "describe":
        record, legal, reply = "- Nothing said yet.", "[Describe: text]", "[Describe: It stands near the sea and shines at night.]"
    else:
        record = ("- Round 1, seat 0: It guides ships.\n- Round 1, seat 1: It is tall and near the coast.\n"
                  "- Round 1, seat 2: You can eat it with a spoon.\n- Round 1, seat 3: It shines at night.")
        legal, reply = "[Vote: N] with N one of 0, 2, 3", "Seat 2 does not fit the others. [Vote: 2]"
    example = _situation(word, 1 if view["phase"] == "vote" else 0, (0, 1, 2, 3), record, view["phase"], legal)
    current = _situation(view["word"], view["seat"], view["alive"], _record(view), view["phase"], ", ".join(legal_actions))
    return with_worked_example(rules, example, reply, current)


def check(view: Mapping[str, Any], action_text: str) -> str:
    """The canonical action in `action_text`, judged from the seat's view alone, or
    InvalidAction with the reason (the arena still decides)."""
    if view["finished"]:
        raise InvalidAction("the game is over")
    kind, arg = parse_action(action_text, view["phase"])
    if kind == "describe" and names_word(arg, view["word"]):
        raise InvalidAction(f"your description contains your word {view['word']!r} itself; hint at it without naming it")
    if kind == "vote" and (arg == view["seat"] or arg not in view["alive"]):
        others = ", ".join(str(s) for s in view["alive"] if s != view["seat"])
        why = "you cannot vote for yourself" if arg == view["seat"] else f"seat {arg} is not in the game"
        raise InvalidAction(f"{why}; vote for one of seats {others}")
    return format_action(kind, arg)


TEXT = GameText(check=check, render_prompt=render_prompt)
