"""The undercover-v1 bot: guess the other word from the public pair list, hint, blend in, vote the odd seat out."""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from maro.agents.bots import Bot, register_bot
from maro.arena.games.undercover.text import DEFAULT_PAIRS

# Paired words share some hints and differ in others: that overlap is what makes the game.
HINTS: dict[str, tuple[str, ...]] = {
    "coffee": ("morning", "bean", "bitter", "cup", "hot", "espresso"),
    "tea": ("leaf", "cup", "hot", "kettle", "green", "morning"),
    "cat": ("pet", "whiskers", "purr", "claws", "small"),
    "tiger": ("stripes", "jungle", "claws", "wild", "big"),
    "apple": ("fruit", "red", "tree", "crunchy", "pie"),
    "pear": ("fruit", "green", "tree", "juicy", "soft"),
    "guitar": ("strings", "strum", "music", "rock", "wood"),
    "violin": ("strings", "bow", "music", "orchestra", "wood"),
    "beach": ("sand", "sun", "waves", "towel", "summer"),
    "desert": ("sand", "sun", "dry", "camel", "cactus"),
    "pizza": ("cheese", "slice", "oven", "italian", "dough"),
    "burger": ("bun", "beef", "grill", "fries", "fast"),
    "train": ("rails", "station", "ticket", "travel", "carriage"),
    "bus": ("stop", "ticket", "travel", "driver", "road"),
    "doctor": ("hospital", "patients", "diagnosis", "white", "medicine"),
    "nurse": ("hospital", "patients", "care", "injection", "shifts"),
    "rose": ("flower", "red", "thorns", "garden", "petals"),
    "tulip": ("flower", "spring", "bulb", "garden", "petals"),
    "soccer": ("ball", "goal", "kick", "field", "team"),
    "rugby": ("ball", "tackle", "scrum", "field", "team"),
    "wolf": ("pack", "howl", "wild", "forest", "fangs"),
    "dog": ("pet", "bark", "leash", "loyal", "tail"),
    "butter": ("yellow", "toast", "spread", "dairy", "melt"),
    "cheese": ("dairy", "slice", "mouse", "holes", "yellow"),
    "moon": ("night", "sky", "crater", "tides", "round"),
    "sun": ("day", "sky", "hot", "bright", "round"),
    "pen": ("ink", "write", "paper", "office", "click"),
    "pencil": ("write", "paper", "eraser", "sharpen", "graphite"),
    "bicycle": ("pedals", "wheels", "helmet", "ride", "chain"),
    "motorcycle": ("engine", "wheels", "helmet", "ride", "fast"),
    "honey": ("sweet", "bees", "golden", "sticky", "jar"),
    "sugar": ("sweet", "white", "cubes", "baking", "grains"),
    "library": ("books", "quiet", "borrow", "shelves", "reading"),
    "bookstore": ("books", "buy", "shelves", "reading", "shop"),
    "shark": ("ocean", "fins", "teeth", "swim", "danger"),
    "dolphin": ("ocean", "fins", "smart", "swim", "jump"),
    "snow": ("cold", "white", "winter", "flakes", "melt"),
    "rain": ("wet", "clouds", "umbrella", "drops", "grey"),
    "chess": ("board", "king", "pieces", "strategy", "checkmate"),
    "checkers": ("board", "pieces", "jump", "strategy", "red"),
}
_TEMPLATES = ("It makes me think of {} and {}.", "Picture {}, and also {}.", "Two clues: {}, {}.")
_GENERIC = ("It is something familiar to most people.", "You would recognise it at once.", "Many people like it.")
# The pair list is public rule data: knowing it, a seat can guess the other group's word.
PARTNER = {a: b for pair in DEFAULT_PAIRS for a, b in (pair, pair[::-1])}


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def _hint_sets(word: str) -> tuple[set[str], set[str], set[str]]:
    """(hints only of my word, hints only of the partner word, hints of both)."""
    mine, theirs = set(HINTS.get(word, ())), set(HINTS.get(PARTNER.get(word, ""), ()))
    return mine - theirs, theirs - mine, mine & theirs


def _lean(view: Mapping[str, Any]) -> dict[int, int]:
    """Per other seat that has described: partner-only hints said minus my-only hints said
    (above 0: it probably holds the other word)."""
    only_mine, only_theirs, _ = _hint_sets(view["word"])
    lean: dict[int, int] = {}
    for d in view["descriptions"]:
        if d["seat"] != view["seat"]:
            said = _words(d["text"])
            lean[d["seat"]] = lean.get(d["seat"], 0) + len(said & only_theirs) - len(said & only_mine)
    return lean


def _odd_one_out(view: Mapping[str, Any]) -> bool | None:
    """Whether my word looks like the minority's; None while nobody has given anything away."""
    lean = _lean(view)
    other, same = sum(v > 0 for v in lean.values()), sum(v < 0 for v in lean.values())
    return None if other == same == 0 else other > same


def _describe(view: Mapping[str, Any], rng: random.Random) -> str:
    only_mine, only_theirs, shared = (sorted(h) for h in _hint_sets(view["word"]))
    odd = _odd_one_out(view)
    if not only_mine and not shared:
        return f"[Describe: {rng.choice(_GENERIC)}]"
    if odd:
        # Probably the undercover: impersonate the majority with their hints (a shared one first).
        pool = shared + only_theirs
        first, second = (rng.choice(shared) if shared else rng.choice(pool)), rng.choice(only_theirs or pool)
    elif odd is None:
        # No evidence yet: one safe shared hint, one of my own.
        first, second = rng.choice(shared or only_mine), rng.choice(only_mine or shared)
    else:
        # Probably a civilian: own hints let the other civilians recognise me.
        first, second = rng.sample(only_mine + shared, 2) if len(only_mine + shared) > 1 else (only_mine + shared) * 2
    if first == second and len(set(only_mine + shared + only_theirs)) > 1:
        second = rng.choice([h for h in only_mine + shared + only_theirs if h != first])
    return f"[Describe: {rng.choice(_TEMPLATES).format(first, second)}]"


def _vote(view: Mapping[str, Any], rng: random.Random) -> str:
    """The alive seat that leans most to the word I do not hold: for a civilian an undercover,
    for an undercover a civilian. Ties go to the seat with the most earlier votes (others
    suspect it too), then to chance."""
    candidates = [s for s in view["alive"] if s != view["seat"]]
    lean = _lean(view)
    suspicion = Counter(t for b in view["votes"] for _, t in b["votes"])
    key = {s: (lean.get(s, 0), suspicion[s]) for s in candidates}
    best = max(key.values())
    return f"[Vote: {rng.choice([s for s in candidates if key[s] == best])}]"


def undercover_policy(view: Mapping[str, Any], legal_actions: Sequence[str], rng: random.Random) -> str:
    return _describe(view, rng) if view["phase"] == "describe" else _vote(view, rng)


register_bot(Bot("undercover-bot", "undercover-v1", undercover_policy))
