"""TextArena environments as text: the prompt is what TextArena told the seat (its rules prompt
first, then the latest messages within a budget), with one worked example drawn from the same
environment; a reply is sent as the seat wrote it, since the environment parses replies itself."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from maro.arena.engine import GameText, InvalidAction
from maro.arena.engine.text import with_worked_example

MAX_ACTION_CHARS = 2000
"""The longest reply a seat may send (TextArena's chat games take free text)."""
PROMPT_FIRST_CHARS = 3000
"""What a prompt keeps of TextArena's first message to the seat (its rules)."""
PROMPT_RECENT_CHARS = 3000
"""What a prompt keeps of the latest messages."""


def checked(action_text: str) -> str:
    """The reply as sent, stripped; InvalidAction when it is empty or too long."""
    action = (action_text or "").strip()
    if not action:
        raise InvalidAction("an empty reply; answer as the game's last message asks")
    if len(action) > MAX_ACTION_CHARS:
        raise InvalidAction(f"a reply of {len(action)} characters; at most {MAX_ACTION_CHARS}")
    return action


def check(view: Mapping[str, Any], action_text: str) -> str:
    """The action of a reply, from the seat's view alone (the environment judges the rest)."""
    if not view.get("your_turn"):
        raise InvalidAction("it is not your turn")
    return checked(action_text)


def json_spelling(said: str) -> str:
    """A message as a serialised view spells it (inside its quotes)."""
    return json.dumps(said)[1:-1]


def players(counts: Sequence[int]) -> str:
    if len(counts) == 1:
        return str(counts[0])
    if list(counts) == list(range(counts[0], counts[-1] + 1)):
        return f"{counts[0]}-{counts[-1]}"
    return ",".join(map(str, counts))


def situation(view: Mapping[str, Any]) -> str:
    messages = view.get("messages") or []
    lines = [f"[{speaker}] {said}" for speaker, _, said in messages]
    first = lines[0][:PROMPT_FIRST_CHARS] if lines else ""
    recent: list[str] = []
    budget = PROMPT_RECENT_CHARS
    for line in reversed(lines[1:]):
        if len(line) > budget:
            recent.append(line[-budget:] if not recent else "[...]")
            break
        recent.append(line)
        budget -= len(line)
    parts = [first, *reversed(recent)]
    legal = view.get("legal") or []
    if legal:
        parts.append("Actions the game accepts now include: " + ", ".join(legal[:20]) + ".")
    parts.append("Your reply?")
    return "\n\n".join(p for p in parts if p)


EXAMPLE = (
    "[Game] You are Player 0. The other player offers you 3 of the 5 coins.\n\n"
    "[Game] Your available actions are: '[Accept]', '[Reject]'\n\n"
    "Actions the game accepts now include: [Accept], [Reject].\n\nYour reply?",
    "Three of five is a fair share. [Accept]",
)
"""The worked example: the reply format on a made-up turn (a real turn of the game would show
some seat's private facts)."""


def game_text(env_id: str) -> GameText:
    """The GameText of one TextArena environment."""

    def render_prompt(view: Mapping[str, Any], legal_actions: Sequence[str]) -> list[dict]:
        rules = (
            f"You are playing {env_id} from TextArena as player {view['seat']} of {view['players']} "
            f"(your role: {view['role'].replace('_', ' ')}). Each turn you see what the game has told you, "
            "its rules first. Reply exactly as the game asks: where it names actions in square brackets, "
            "include exactly one of them; keep any message short."
        )
        return with_worked_example(rules, *EXAMPLE, situation(view))

    return GameText(check=check, render_prompt=render_prompt)
