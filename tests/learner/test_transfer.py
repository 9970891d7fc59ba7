"""`maro transfer`: the instruction checkers on hand-written replies, the seeded generators, answer
extraction, the paired summary, and a tiny-model run end to end through the local model server."""

import json
import re

import pytest

from maro.learner.transfer import arithmetic, instructions
from maro.learner.transfer.instructions import CHECKERS
from maro.learner.transfer.run import TransferConfig, run_transfer, summarise
from tests.helpers import save_tiny_adapter

CASES = [  # category, spec, a reply that passes, one that fails
    ("words_at_least", {"n": 5}, "one two three four five", "one two three four"),
    ("words_at_most", {"n": 3}, "short and sweet", "this is far too long"),
    ("words_at_most", {"n": 3}, "fine.", ""),
    ("sentences", {"n": 2}, "It rained. We stayed in!", "It rained. We stayed in. Then it stopped."),
    ("include_keywords", {"keywords": ["river", "copper"]}, "A copper boat on the River.", "A river only."),
    ("forbidden_words", {"forbidden": ["the", "and"]}, "Rain fell on theatres.", "Rain and snow."),
    ("lowercase", {}, "all small, no capitals here.", "Not all small."),
    ("lowercase", {}, "all small, no capitals here.", "123 456"),
    ("uppercase", {}, "ALL LOUD!", "ALL LOUD but one"),
    ("bullets", {"n": 2}, "- first point\n- second point", "- first point\n- second point\nand a tail"),
    ("bullets", {"n": 2}, "* first\n* second", "- only one"),
    ("json", {}, '{"story": "a rainy day"}', "story: a rainy day"),
    ("json", {}, '```json\n{"a": 1}\n```', "[1, 2]"),
    ("ending", {"phrase": "The end."}, "Once upon a time. The end.", "The end. Once upon a time."),
    ("no_commas", {}, "No commas at all here.", "Yes, a comma."),
    ("paragraphs", {"n": 2}, "First part.\n\nSecond part.", "First part.\nSecond line, same paragraph."),
]


@pytest.mark.parametrize("category, spec, good, bad", CASES)
def test_each_checker_passes_a_good_reply_and_fails_a_bad_one(category, spec, good, bad):
    assert CHECKERS[category](good, **spec) and not CHECKERS[category](bad, **spec)


def test_items_come_from_the_seed_alone_and_are_thousands_apart():
    first = instructions.items(7, 3000)
    assert first == instructions.items(7, 3000) and first != instructions.items(8, 3000)
    assert len({i.prompt for i in first}) > 2000
    assert {i.category for i in first} == set(instructions.CATEGORIES)
    math = arithmetic.items(7, 3000)
    assert math == arithmetic.items(7, 3000) and len({i.prompt for i in math}) > 2800
    assert {i.category for i in math} == set(arithmetic.CATEGORIES)


def test_math_answers_are_exact():
    for item in arithmetic.items(0, 600):
        if item.category == "arithmetic":
            expression = re.search(r"What is (.*)\?", item.prompt).group(1)
            assert eval(expression, {"__builtins__": {}}) == item.answer  # noqa: S307 - our own digits and signs
        assert item.check(f"Working it out...\nAnswer: {item.answer}")
        assert not item.check(f"Answer: {item.answer + 1}")
    rates = next(i for i in arithmetic.items(0, 12) if i.category == "rates")
    speed, hours = map(int, re.findall(r"\d+", rates.prompt.split("\n")[0]))
    assert rates.answer == speed * hours


@pytest.mark.parametrize("reply, answer", [
    ("The total is 12 apples.\n#### 12", 12), ("So \\boxed{1,024}.", 1024), ("The answer is 7.", 7),
    ("Answer: -3", -3), ("3 + 4 = 7, so 7", 7), ("It costs $5.00 in all. Answer: $5.00", 5), ("I cannot say.", None),
    ("Half: 2.5", None), ("Answer: 8 (after checking 9)", 8),
])
def test_answer_extraction(reply, answer):
    assert arithmetic.extract_answer(reply) == answer


def test_the_summary_pairs_items_and_gives_intervals():
    rows = [{"side": side, "mode": "greedy", "suite": "math", "item": f"i{k}", "category": "ages" if k % 2 else "rates",
             "correct": (side == "A") or k % 4 == 0} for k in range(40) for side in ("A", "B")]
    result = summarise(rows, reps=500)["math"]["greedy"]
    overall = result["all"]
    assert overall["items"] == 40 and overall["A"]["mean"] == 1.0 and overall["B"]["mean"] == 0.25
    assert overall["a_minus_b"]["mean"] == 0.75 and 0 < overall["a_minus_b"]["ci"][0] <= 0.75
    assert set(result) == {"all", "ages", "rates"}


async def test_a_tiny_model_run_end_to_end_resumes_where_it_stopped(tmp_path, tiny_model_dir):
    save_tiny_adapter(tiny_model_dir, tmp_path / "adapter", seed=3)
    config = TransferConfig(run_dir=tmp_path / "run", adapter=tmp_path / "adapter", suite="all", n=3,
                            model=str(tiny_model_dir), concurrency=8, bootstrap=200, max_tokens=12)
    result = await run_transfer(config)
    rows = [json.loads(line) for line in (tmp_path / "run" / "replies.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * 2 * 2 * 3  # sides x modes x suites x items
    assert all(r["error"] == "" for r in rows)
    assert {"if", "math"} == set(result["suites"]) and result["suites"]["math"]["greedy"]["all"]["items"] == 3
    saved = json.loads((tmp_path / "run" / "transfer.json").read_text())
    assert saved["suites"] == result["suites"]
    again = await run_transfer(config.model_copy(update={"n": 4}))  # only the new items are asked
    rows = (tmp_path / "run" / "replies.jsonl").read_text().splitlines()
    assert len(rows) == 2 * 2 * 2 * 4 and again["suites"]["if"]["sampled"]["all"]["items"] == 4
    with pytest.raises(ValueError, match="both the base"):
        await run_transfer(TransferConfig(run_dir=tmp_path / "none", n=2, model=str(tiny_model_dir)))


async def test_a_failed_call_is_asked_again_and_never_counted(tmp_path, monkeypatch):
    from maro.learner.transfer import run

    config = TransferConfig(run_dir=tmp_path, suite="math", n=3, modes=("greedy",))
    items = {i.id: i for i in arithmetic.items(config.seed, 3)}
    first = next(iter(items))
    # A reply file from a run that was killed: one good row, one failed call, a torn line.
    good = {"side": "A", "mode": "greedy", "suite": "math", "item": first, "category": items[first].category,
            "correct": True, "reply": "x", "error": ""}
    failed = dict(good, side="B", correct=False, reply="", error="timed out")
    (tmp_path / "replies.jsonl").write_text(json.dumps(good) + "\n" + json.dumps(failed) + "\n{\"side\": ")
    calls: dict[tuple[str, str], int] = {}

    async def answer(item, model, api_base, api_key, temperature, max_tokens):
        key = (model, item.id)
        calls[key] = calls.get(key, 0) + 1
        if item.id != first and model == "b" and calls[key] == 1:
            return "", "connection reset"  # fails once, then answers
        return f"The answer is {item.answer}.", ""

    monkeypatch.setattr(run, "_answer", answer)
    rows = await run.ask_all(config, {"A": "a", "B": "b"}, "http://unused", None)
    assert len(rows) == 6 and all(r["error"] == "" for r in rows)
    assert ("a", first) not in calls and calls[("b", first)] == 1  # kept, and asked again
    assert all(calls[("b", i)] == 2 for i in items if i != first)
    by = {(r["side"], r["item"]): r["correct"] for r in rows}
    assert by[("A", first)] and all(by[("B", i)] for i in items)
    assert len(run._done(tmp_path / "replies.jsonl")) == 6  # the row written after the torn line stays whole
    fewer = await run.ask_all(config.model_copy(update={"n": 2}), {"A": "a", "B": "b"}, "u", None)
    assert sorted(r["item"] for r in fewer) == sorted(2 * list(items)[:2])  # this n's items only

    async def down(*args):
        return "", "model server stopped"

    monkeypatch.setattr(run, "_answer", down)
    (tmp_path / "down").mkdir()
    with pytest.raises(RuntimeError, match="6 calls failed twice"):
        await run.ask_all(config.model_copy(update={"run_dir": tmp_path / "down"}), {"A": "a", "B": "b"}, "u", None)
    assert run._done(tmp_path / "down" / "replies.jsonl") == {}  # logged, none counted
