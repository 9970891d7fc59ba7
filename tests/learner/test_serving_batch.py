"""Tests for continuous batching: rows joining and leaving a running batch on the tiny model."""

import shutil

import pytest
import torch

from maro.learner.serving.batch import DecodeBatch, Row, generate
from maro.learner.serving.engine import AdapterStore, GenerationEngine, RowRequest, row_generator
from maro.learner.serving.protocol import StreamText

PROMPTS = ["Say hi", "What is two plus two? Explain at length, please.", "x", "Tell me a story about a dragon"]


@pytest.fixture(scope="module")
def lively_model_dir(tiny_model_dir, tmp_path_factory):
    """The tiny model with large random weights: its greedy text varies token to token, unlike the init's."""
    from transformers import AutoModelForCausalLM

    out = tmp_path_factory.mktemp("lively")
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() == 2:
                param.copy_(torch.randn(param.shape, generator=gen) * 0.5)
    model.save_pretrained(out)
    for f in tiny_model_dir.iterdir():
        if f.name.startswith("tokenizer") or f.name.endswith(".jinja"):
            shutil.copy(f, out)
    return out


@pytest.fixture(scope="module")
def engine(lively_model_dir):
    return GenerationEngine(lively_model_dir)


def _rows(engine, max_tokens=10, **kw):
    prompts = [engine.encode_chat([{"role": "user", "content": p}]) for p in PROMPTS]
    return [Row(RowRequest(p, 0.0, 1.0, max_tokens, **kw), None, row_generator(0, i)) for i, p in enumerate(prompts)]


def _generate_alone(engine, prompt_ids, max_tokens):
    out = engine.model.generate(
        torch.tensor([prompt_ids]), attention_mask=torch.ones(1, len(prompt_ids), dtype=torch.long),
        do_sample=False, max_new_tokens=max_tokens, pad_token_id=engine.tokenizer.pad_token_id,
        eos_token_id=engine.eos_ids,
    )
    return out[0, len(prompt_ids) :].tolist()


def test_greedy_rows_joining_a_running_batch_match_plain_generate(engine):
    rows = _rows(engine)
    assert len({tuple(_generate_alone(engine, r.request.prompt_ids, 10)) for r in rows}) == len(rows)
    batch = DecodeBatch(engine)
    batch.admit(rows[:1])
    batch.step()
    batch.step()
    batch.admit(rows[1:3])  # longer and shorter prompts than the running row: both sides get padding
    batch.step()
    batch.admit(rows[3:])
    widths = []
    while batch.rows:
        batch.step()
        widths.append(batch.width)
    for row in rows:
        assert row.output.token_ids == _generate_alone(engine, row.request.prompt_ids, 10)
        assert row.output.finish_reason == "length"
    assert widths[-1] < max(widths)  # finished rows left and their padding columns were cut


def test_rows_leave_when_done_and_the_rest_go_on(engine):
    rows = _rows(engine)
    short = Row(RowRequest(rows[0].request.prompt_ids, 0.0, 1.0, 2), None, row_generator(0, 9))
    batch = DecodeBatch(engine)
    batch.admit([short, *rows])
    assert batch.step() == [short] and short.output.finish_reason == "length"
    assert len(batch.rows) == len(rows)
    while batch.rows:
        batch.step()
    assert rows[1].output.token_ids == _generate_alone(engine, rows[1].request.prompt_ids, 10)


def test_cancelled_row_is_dropped_before_the_next_step(engine):
    rows = _rows(engine, max_tokens=8)
    batch = DecodeBatch(engine)
    batch.admit(rows)
    rows[2].cancelled = True
    assert batch.drop_cancelled() == [rows[2]]
    assert rows[2].output.finish_reason == "cancelled" and len(rows[2].output.token_ids) == 1
    while batch.rows:
        batch.step()
    assert rows[3].output.token_ids == _generate_alone(engine, rows[3].request.prompt_ids, 8)


def test_logprobs_match_the_tempered_distribution_of_one_forward(engine):
    row = Row(RowRequest(_rows(engine)[1].request.prompt_ids, 0.7, 0.9, 6, top_logprobs=3), None, row_generator(5, 0))
    batch = DecodeBatch(engine)
    batch.admit([row])
    while batch.rows:
        batch.step()
    ids = torch.tensor([row.request.prompt_ids + row.output.token_ids])
    with torch.no_grad():
        logits = engine.base(ids).logits[0, len(row.request.prompt_ids) - 1 : -1] / 0.7
    expected = logits.log_softmax(-1).gather(1, ids[0, len(row.request.prompt_ids) :, None]).squeeze(1)
    got = torch.tensor([e["logprob"] for e in row.output.logprob_entries])
    assert torch.allclose(got, expected, atol=1e-4)
    assert all(len(e["top_logprobs"]) == 3 for e in row.output.logprob_entries)


def test_seeded_rows_repeat_whatever_shares_their_batch(engine):
    prompt = _rows(engine)[0].request.prompt_ids
    alone = generate(engine, [RowRequest(prompt, 1.0, 1.0, 6)], seed=3)[0].token_ids
    others = [RowRequest(r.request.prompt_ids, 1.0, 1.0, 6) for r in _rows(engine)]
    crowd = generate(engine, [RowRequest(prompt, 1.0, 1.0, 6), *others], seed=3)
    assert crowd[0].token_ids == alone


def test_ignore_eos_generates_exactly_max_tokens(engine):
    prompt = _rows(engine)[0].request.prompt_ids
    out = generate(engine, [RowRequest(prompt, 1.0, 1.0, 40, ignore_eos=True)], seed=1)[0]
    assert len(out.token_ids) == 40 and out.finish_reason == "length"


def test_rows_of_different_adapters_share_a_batch_and_match_running_alone(lively_model_dir, tmp_path):
    from tests.helpers import save_tiny_adapter

    engine = GenerationEngine(lively_model_dir)
    store = AdapterStore(engine, tmp_path)
    save_tiny_adapter(lively_model_dir, tmp_path / "v0001", seed=0)
    store.ensure("v0001")
    prompts = [r.request.prompt_ids for r in _rows(engine)]
    adapters = ["v0001", None, "v0001", None]
    alone = [generate(engine, [RowRequest(p, 0.0, 1.0, 6)], a)[0].token_ids for p, a in zip(prompts, adapters)]
    mixed = [Row(RowRequest(p, 0.0, 1.0, 6), a, row_generator(0, i)) for i, (p, a) in enumerate(zip(prompts, adapters))]
    batch = DecodeBatch(engine)
    batch.admit(mixed)
    while batch.rows:
        batch.step()
    assert [r.output.token_ids for r in mixed] == alone
    assert alone[0] != generate(engine, [RowRequest(prompts[0], 0.0, 1.0, 6)], None)[0].token_ids


def test_stream_text_holds_back_a_possible_stop_string():
    text = StreamText(["END"])
    assert text.release("Hello E") == "Hello "
    assert text.release("Hello EN") == ""
    assert text.release("Hello ENx") == "ENx"
    assert text.release("Hello ENx and END more") == " and "
    assert text.finish("Hello ENx and ") == ""
    plain = StreamText([])
    assert plain.release("caf\ufffd") == "caf" and plain.finish("café") == "é"
    kept = StreamText(["]"], include_stop=True)
    assert kept.release("[Bet") == "[Bet" and kept.release("[Bet] and more") == "]"


def test_a_cached_prompt_prefix_gives_the_same_tokens_and_log_probs(tiny_model_dir):
    """Prompts that share their start (a game's rules, a repair turn) prefill only the rest."""
    from maro.learner.serving.batch import DecodeBatch, Row
    from maro.learner.serving.engine import GenerationEngine, row_generator
    from maro.learner.serving.prefix import PrefixCache

    engine = GenerationEngine(tiny_model_dir)
    rules = [{"role": "system", "content": "You play a game of offers. " * 12}]
    prompts = [engine.encode_chat(rules + [{"role": "user", "content": f"Round {i}: your move?"}]) for i in range(4)]
    prompts.append(prompts[0] + engine.encode_chat([{"role": "user", "content": "Try again."}])[1:])

    def run(prefixes, groups):
        batch, out = DecodeBatch(engine, prefixes), {}
        for group in groups:  # admitted one after another, as requests arrive
            live = [Row(RowRequest(prompts[i], 0.0, 1.0, 6, ignore_eos=True), None, row_generator(0, i)) for i in group]
            batch.admit(live)
            while batch.rows:
                batch.step()
            out.update({i: r.output for i, r in zip(group, live)})
        return out

    plain = run(None, [[0], [1, 2], [3, 4]])
    cache = PrefixCache(max_tokens=10_000)
    cached = run(cache, [[0], [1, 2], [3, 4]])
    assert cache.hits == 4 and cache.reused_tokens > 4 * 0.8 * len(prompts[1])  # every later prompt reused
    for i in range(5):
        assert cached[i].token_ids == plain[i].token_ids
        got = [e["logprob"] for e in cached[i].logprob_entries]
        want = [e["logprob"] for e in plain[i].logprob_entries]
        assert max(abs(a - b) for a, b in zip(got, want)) < 1e-4
    # Another adapter's prompts never reuse the base model's KV; a full cache drops the oldest.
    assert cache.match("v0001", prompts[1]) == (None, 0)
    small = PrefixCache(max_tokens=len(prompts[0]) + 1)
    small.put(None, prompts[0], [], [])
    small.put(None, prompts[1], [], [])
    assert len(small) == 1 and small.match(None, prompts[0])[1] < len(prompts[0]) - 1
