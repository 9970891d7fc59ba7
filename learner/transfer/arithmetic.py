"""Math reasoning with exact answers: arithmetic and grade-school word problems from a seed.

Item k of a seed is drawn from `random.Random(f"math:{seed}:{k}")`; every answer is an integer
computed here, so grading is exact. `extract_answer` reads the final number of a reply the ways
models give it (`#### 42`, `\\boxed{42}`, `the answer is 42`, else the last number).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass

INSTRUCTION = "Solve the problem. Give the final answer as a number on the last line, like: Answer: 42"
NAMES = ("Ana", "Ben", "Chen", "Dana", "Eli", "Fatima", "Goran", "Hana", "Ivan", "Jia", "Kofi", "Lena", "Mateo",
         "Nia", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tariq")
ITEMS_ = ("apples", "pencils", "stickers", "marbles", "books", "cookies", "cards", "stamps", "shells", "coins")
CATEGORIES = ("arithmetic", "shopping", "sharing", "rates", "ages", "remaining")


@dataclass(frozen=True)
class MathItem:
    id: str
    category: str
    prompt: str
    answer: int

    def check(self, reply: str) -> bool:
        return extract_answer(reply) == self.answer


_NUMBER = r"-?\d[\d,]*(?:\.\d+)?"


def _to_int(text: str) -> int | None:
    text = text.replace(",", "")
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if value == int(value) else None


def extract_answer(reply: str) -> int | None:
    """The reply's final answer as an integer, or None when it gives none (or a fraction)."""
    for pattern in (rf"####\s*({_NUMBER})", rf"\\boxed\{{\s*({_NUMBER})\s*\}}",
                    rf"[Aa]nswer(?: is)?\s*[:=]?\s*\$?\s*({_NUMBER})"):
        found = re.findall(pattern, reply)
        if found:
            return _to_int(found[-1])
    numbers = re.findall(_NUMBER, reply)
    return _to_int(numbers[-1]) if numbers else None


def _arithmetic(rng: random.Random) -> tuple[str, int]:
    a, b, c = rng.randint(2, 60), rng.randint(2, 30), rng.randint(2, 12)
    form = rng.randrange(4)
    if form == 0:
        return f"What is {a} + {b} * {c}?", a + b * c
    if form == 1:
        return f"What is ({a} + {b}) * {c}?", (a + b) * c
    if form == 2:
        return f"What is {a * c} / {c} - {b}?", a - b
    return f"What is {a} * {c} - {b}?", a * c - b


def _shopping(rng: random.Random) -> tuple[str, int]:
    name, thing = rng.choice(NAMES), rng.choice(ITEMS_)
    n, price, paid = rng.randint(2, 9), rng.randint(2, 15), 0
    paid = n * price + rng.randint(1, 40)
    return (f"{name} buys {n} {thing} at {price} dollars each and pays with {paid} dollars. "
            f"How many dollars of change does {name} get?"), paid - n * price


def _sharing(rng: random.Random) -> tuple[str, int]:
    name, thing = rng.choice(NAMES), rng.choice(ITEMS_)
    friends, each = rng.randint(2, 8), rng.randint(2, 12)
    extra = rng.randint(0, friends - 1)
    return (f"{name} has {friends * each + extra} {thing} and shares them equally among {friends} friends, "
            f"keeping the ones left over. How many {thing} does each friend get?"), each


def _rates(rng: random.Random) -> tuple[str, int]:
    speed, hours = rng.randint(20, 90), rng.randint(2, 7)
    name = rng.choice(NAMES)
    return f"{name} drives at {speed} kilometres per hour for {hours} hours. How many kilometres is that?", \
        speed * hours


def _ages(rng: random.Random) -> tuple[str, int]:
    a, b = rng.sample(NAMES, 2)
    age, gap, years = rng.randint(5, 40), rng.randint(2, 25), rng.randint(2, 15)
    return f"{a} is {age} years old. {b} is {gap} years older than {a}. How old will {b} be in {years} years?", \
        age + gap + years


def _remaining(rng: random.Random) -> tuple[str, int]:
    name, thing = rng.choice(NAMES), rng.choice(ITEMS_)
    start, gave, got = rng.randint(20, 90), rng.randint(1, 19), rng.randint(1, 30)
    return (f"{name} had {start} {thing}, gave away {gave}, then bought {got} more. "
            f"How many {thing} does {name} have now?"), start - gave + got


GENERATORS: dict[str, Callable[[random.Random], tuple[str, int]]] = {
    "arithmetic": _arithmetic, "shopping": _shopping, "sharing": _sharing, "rates": _rates, "ages": _ages,
    "remaining": _remaining,
}


def item(seed: int, index: int) -> MathItem:
    rng = random.Random(f"math:{seed}:{index}")
    category = CATEGORIES[index % len(CATEGORIES)]
    question, answer = GENERATORS[category](rng)
    return MathItem(f"math-{seed}-{index}", category, f"{question}\n{INSTRUCTION}", answer)


def items(seed: int, n: int) -> list[MathItem]:
    return [item(seed, i) for i in range(n)]
