"""Verifiable instruction following: items generated from a seed, each with a deterministic checker.

In the spirit of IFEval's categories: length in words or sentences, required and forbidden
keywords, letter case, bullet lists, JSON output, a fixed ending, no commas, a number of
paragraphs. An item is a writing task on a topic with one instruction; its checker reads the reply
alone. Everything comes from `random.Random(f"{seed}:{index}")`, so item k of a seed is the same
on every machine, and thousands of distinct items come from one seed.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

TOPICS = (
    "a rainy day in a small town", "why people keep houseplants", "the first day at a new job", "a trip to the sea",
    "how bread is made", "a friendly neighbour", "learning to ride a bicycle", "the night sky", "a busy market",
    "winter mornings", "a lost umbrella", "the school library", "cooking for friends", "a long train journey",
    "an old photograph", "the sound of rain", "a garden in spring", "a football match", "moving to a new city",
    "a favourite teacher", "the smell of coffee", "a quiet evening", "a mountain walk", "a birthday surprise",
    "saving money", "a visit to the museum", "learning a new language", "a power cut", "the village bakery",
    "a letter from a friend", "a thunderstorm", "the first snow", "a street musician", "a broken phone",
    "a picnic in the park", "a night without sleep", "a game of chess", "a kind stranger", "an empty beach",
    "the last day of summer",
)
TASKS = ("Write a short story about {topic}.", "Describe {topic}.", "Write a short essay about {topic}.",
         "Write a message to a friend about {topic}.", "Explain to a child {topic_as_subject}.")
KEYWORDS = ("river", "lantern", "copper", "violet", "whistle", "harbor", "pepper", "meadow", "ladder", "silver",
            "orange", "thunder", "pillow", "candle", "marble", "compass", "feather", "garden", "window", "bridge")
ENDINGS = ("Is there anything else I can help with?", "That is all.", "Thank you for reading.", "The end.",
           "See you soon.")
CATEGORIES = ("words_at_least", "words_at_most", "sentences", "include_keywords", "forbidden_words", "lowercase",
              "uppercase", "bullets", "json", "ending", "no_commas", "paragraphs")


@dataclass(frozen=True)
class InstructionItem:
    id: str
    category: str
    prompt: str
    spec: dict[str, Any] = field(default_factory=dict)

    def check(self, reply: str) -> bool:
        return CHECKERS[self.category](reply, **self.spec)


# --- checkers: reply -> bool, pure ---------------------------------------------------------------
def words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z0-9']+", text)


def sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if words(s)]


def _words_at_least(reply: str, n: int) -> bool:
    return len(words(reply)) >= n


def _words_at_most(reply: str, n: int) -> bool:
    return 0 < len(words(reply)) <= n


def _sentences(reply: str, n: int) -> bool:
    return len(sentences(reply)) == n


def _include(reply: str, keywords: list[str]) -> bool:
    found = {w.lower() for w in words(reply)}
    return all(k in found for k in keywords)


def _forbidden(reply: str, forbidden: list[str]) -> bool:
    found = {w.lower() for w in words(reply)}
    return bool(words(reply)) and not any(k in found for k in forbidden)


def _lowercase(reply: str) -> bool:
    return any(c.isalpha() for c in reply) and reply == reply.lower()


def _uppercase(reply: str) -> bool:
    return any(c.isalpha() for c in reply) and reply == reply.upper()


def _bullets(reply: str, n: int) -> bool:
    lines = [line.strip() for line in reply.strip().splitlines() if line.strip()]
    marked = [line for line in lines if re.match(r"^[*-] \S", line)]
    return len(marked) == n and len(marked) == len(lines)


def _json(reply: str) -> bool:
    text = reply.strip()
    fenced = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", text, flags=re.S)
    try:
        value = json.loads(fenced.group(1) if fenced else text)
    except ValueError:
        return False
    return isinstance(value, dict) and bool(value)


def _ending(reply: str, phrase: str) -> bool:
    return reply.strip().endswith(phrase) and len(reply.strip()) > len(phrase)


def _no_commas(reply: str) -> bool:
    return bool(words(reply)) and "," not in reply


def _paragraphs(reply: str, n: int) -> bool:
    parts = [p for p in re.split(r"\n\s*\n", reply.strip()) if words(p)]
    return len(parts) == n


CHECKERS: dict[str, Callable[..., bool]] = {
    "words_at_least": _words_at_least, "words_at_most": _words_at_most, "sentences": _sentences,
    "include_keywords": _include, "forbidden_words": _forbidden, "lowercase": _lowercase, "uppercase": _uppercase,
    "bullets": _bullets, "json": _json, "ending": _ending, "no_commas": _no_commas, "paragraphs": _paragraphs,
}


# --- generation --------------------------------------------------------------------------------------
def _instruction(category: str, rng: random.Random) -> tuple[str, dict[str, Any]]:
    if category == "words_at_least":
        n = rng.choice((20, 30, 40, 50, 60))
        return f"Answer with at least {n} words.", {"n": n}
    if category == "words_at_most":
        n = rng.choice((10, 15, 20, 25, 30))
        return f"Answer with at most {n} words.", {"n": n}
    if category == "sentences":
        n = rng.randint(2, 5)
        return f"Answer in exactly {n} sentences.", {"n": n}
    if category == "include_keywords":
        keys = rng.sample(KEYWORDS, rng.randint(1, 3))
        return f"Use the words {', '.join(repr(k) for k in keys)} in your answer.", {"keywords": keys}
    if category == "forbidden_words":
        keys = rng.sample(("the", "and", "is", "a", "very", "it"), 2)
        return f"Do not use the words {' or '.join(repr(k) for k in keys)} anywhere in your answer.", \
            {"forbidden": keys}
    if category == "lowercase":
        return "Write your whole answer in lowercase letters, with no capital letters at all.", {}
    if category == "uppercase":
        return "Write your whole answer in capital letters only.", {}
    if category == "bullets":
        n = rng.randint(2, 5)
        return (f"Answer with exactly {n} bullet points and nothing else, each on its own line starting "
                "with '- '."), {"n": n}
    if category == "json":
        return "Give your whole answer as a JSON object, and nothing outside it.", {}
    if category == "ending":
        phrase = rng.choice(ENDINGS)
        return f"End your answer with the exact phrase \"{phrase}\" and nothing after it.", {"phrase": phrase}
    if category == "no_commas":
        return "Do not use any commas in your answer.", {}
    n = rng.randint(2, 4)
    return f"Write exactly {n} paragraphs, separated by a blank line.", {"n": n}


def item(seed: int, index: int) -> InstructionItem:
    """Item `index` of `seed`: its category cycles, its topic, task and settings are drawn."""
    rng = random.Random(f"if:{seed}:{index}")
    category = CATEGORIES[index % len(CATEGORIES)]
    topic = rng.choice(TOPICS)
    task = rng.choice(TASKS).format(topic=topic, topic_as_subject=f"what {topic} is like")
    instruction, spec = _instruction(category, rng)
    return InstructionItem(f"if-{seed}-{index}", category, f"{task} {instruction}", spec)


def items(seed: int, n: int) -> list[InstructionItem]:
    return [item(seed, i) for i in range(n)]
