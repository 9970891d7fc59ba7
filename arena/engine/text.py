"""What every game's text module shares: the GameText it exports, the prompt shape (rules, one
worked example turn, then the current turn) and the bracketed-command parser with its standard
refusal."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from maro.arena.errors import InvalidAction


@dataclass(frozen=True)
class GameText:
    """How a game reads and writes as text, apart from its rules: what a player can check before
    sending (`check(view, text)`: the canonical action judged from the seat's view alone, or
    InvalidAction with the reason; the arena still decides) and the chat messages a model plays
    from (`render_prompt(view, legal_actions)`, with one worked example). Each game's `text`
    module exports one as `TEXT`; `text_for(game_id)` finds it."""

    check: Callable[[Mapping[str, Any], str], str]
    render_prompt: Callable[[Mapping[str, Any], Sequence[str]], list[dict]]


def commands(verbs: Iterable[str], lead: str = r"\s*") -> re.Pattern:
    """`[Verb]` or `[Verb: argument]` for these verbs, any case; `lead` is what may precede the
    argument after the colon (bargaining's prices allow a `$`)."""
    return re.compile(r"\[\s*(" + "|".join(verbs) + r")\s*(?::" + lead + r"([^\]]*))?\]", re.IGNORECASE)


def no_action(text: str, advice: str) -> InvalidAction:
    """The refusal of a reply without any command: its start, then what to write."""
    return InvalidAction(f"no action found in {(text or '').strip()[:80]!r}; {advice}")


def last_command(text: str, pattern: re.Pattern, advice: str) -> tuple[str, str]:
    """(verb in lower case, argument stripped or "") of the LAST command in `text`, so that a
    model may reason before answering; `no_action(text, advice)` when there is none."""
    found = list(pattern.finditer(text or ""))
    if not found:
        raise no_action(text, advice)
    return found[-1].group(1).lower(), (found[-1].group(2) or "").strip()


def with_worked_example(rules: str, example: str, reply: str, current: str) -> list[dict]:
    """Chat messages: small models follow an action format only after seeing it used once."""
    return [
        {"role": "system", "content": rules},
        {"role": "user", "content": example},
        {"role": "assistant", "content": reply},
        {"role": "user", "content": current},
    ]
