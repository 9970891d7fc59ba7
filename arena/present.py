"""A seat's view for people: its facts as lines, and a typed line checked into the game's action
format. The terminal client and the web pages show the same facts and accept the same shortcuts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from maro.arena.engine import InvalidAction, text_for

_HIDDEN_KEYS = frozenset({"game", "role", "seat", "finished", "end_reason", "legal", "messages"})
"""View entries not repeated as facts: the header shows them, the events already told them, or
they only matter once the match is over."""


def format_value(value: Any) -> str:
    """A view value on one line: dicts as `k=v`, lists comma-separated, None as `-`."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={format_value(v)}" for k, v in value.items()) or "-"
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(v) for v in value) or "-"
    return str(value)


def _bulky(value: Any) -> bool:
    """Records of past moves (lists of dicts): the event lines already showed them."""
    return isinstance(value, (list, tuple)) and any(isinstance(v, Mapping) for v in value)


def view_lines(view: Mapping[str, Any]) -> list[str]:
    """The seat's facts as `key: value` lines, any game's view, without bulky histories."""
    lines = []
    for key, value in view.items():
        if key in _HIDDEN_KEYS or "history" in key or _bulky(value):
            continue
        if isinstance(value, Mapping) and key == "private":
            lines += [f"  {k.replace('_', ' ')}: {format_value(v)}" for k, v in value.items()]
        elif isinstance(value, str) and "\n" in value.strip():  # a board or an OpenSpiel string: as drawn
            lines += [f"  {key.replace('_', ' ')}:", *(f"    {row}" for row in value.strip("\n").splitlines())]
        else:
            lines.append(f"  {key.replace('_', ' ')}: {format_value(value)}")
    return lines


def _shortcuts(text: str) -> list[str]:
    """The typed line, then bracketed forms of it: `accept` -> `[accept]`, `offer 50` -> `[offer: 50]`."""
    text = text.strip()
    if not text or "[" in text:
        return [text]
    word, _, rest = text.partition(" ")
    forms = [text, f"[{text}]"]
    if rest.strip():
        forms.append(f"[{word}: {rest.strip()}]")
    return forms


def check_line(game_id: str, view: Mapping[str, Any], line: str) -> str:
    """The canonical action for a typed line (shortcuts allowed), or InvalidAction with the reason
    for the line as typed."""
    check = text_for(game_id).check
    first: InvalidAction | None = None
    for candidate in _shortcuts(line):
        try:
            return check(view, candidate)
        except InvalidAction as exc:
            first = first or exc
    raise first  # type: ignore[misc]
