"""What every game's text module shares: the prompt shape (rules, one worked example turn, then
the current turn) and the bracketed-command parser with its standard refusal."""

from __future__ import annotations

import re
from collections.abc import Iterable

from maro.arena.engine import InvalidAction


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
