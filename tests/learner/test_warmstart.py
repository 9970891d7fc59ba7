"""`maro warmstart`: the bots' decisions as replies to the model's own prompts, a published first version."""

from __future__ import annotations

import json

import pytest
import torch

from maro.agents.graph import first_prompt
from maro.arena.engine import make_game
from maro.learner.adapters import AdapterRegistry
from maro.learner.config import UpdateConfig
from maro.learner.loop import SelfPlayConfig, SelfPlayRun
from maro.learner.update import LearnerConfig
from maro.learner.warmstart import WarmStartConfig, imitation_examples, warm_start


def test_examples_are_the_bot_actions_on_the_prompts_a_model_seat_gets():
    examples = imitation_examples("kuhn_poker-v1", matches=30, seed=5)
    assert len(examples) >= 60  # every hand has at least two decisions
    actions = {e["completion"][0]["content"] for e in examples}
    assert actions == {"[Check]", "[Bet]", "[Call]", "[Fold]"}
    game = make_game("kuhn_poker-v1")
    state, _ = game.init(5)
    opener = sorted(game.acting(state))[0]
    obs = game.observe(state, opener)
    assert examples[0]["prompt"] == first_prompt("kuhn_poker-v1", obs.view, obs.legal_actions)
    # Each prompt names the acting seat's own card and never the other's.
    for e in examples:
        text = " ".join(m["content"] for m in e["prompt"][-1:])
        assert text.count("your card is the") == 1
    assert imitation_examples("kuhn_poker-v1", matches=30, seed=5) == examples  # seeded


def test_examples_refuse_a_bot_of_another_game():
    with pytest.raises(ValueError, match="plays bargaining-v1"):
        imitation_examples("kuhn_poker-v1", matches=1, seed=0, bot="bargaining-bot")


def test_warm_start_publishes_the_first_version_and_self_play_starts_from_it(tiny_model_dir, tmp_path):
    run = tmp_path / "run"
    config = WarmStartConfig(games=["kuhn_poker-v1"], matches=12, epochs=3, learning_rate=5e-3, batch_size=8,
                             update=UpdateConfig(lora_layers=1, max_prompt_tokens=256))
    version, metrics = warm_start(run, tiny_model_dir, config)
    assert version == "v0001"
    assert metrics["warmstart/last_loss"] < metrics["warmstart/first_loss"]
    registry = AdapterRegistry(run / "adapters")
    meta = registry.metadata(version)
    assert meta["stage"] == "warmstart" and meta["parent"] is None
    assert meta["data"]["games"]["kuhn_poker-v1"]["examples"] == metrics["warmstart/examples"]
    adapter_config = json.loads((registry.path(version) / "adapter_config.json").read_text())
    assert adapter_config["layers_to_transform"] is not None  # placed where self-play trains

    # The imitation moved the policy toward the bot's replies.
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    example = imitation_examples("kuhn_poker-v1", matches=1, seed=99)[0]
    prompt = tok.apply_chat_template(example["prompt"], add_generation_prompt=True, tokenize=False)
    ids = tok(prompt, add_special_tokens=False)["input_ids"]
    reply = tok(example["completion"][0]["content"], add_special_tokens=False)["input_ids"]

    def logp(model) -> float:
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids + reply])).logits[0, len(ids) - 1:-1]
        return torch.log_softmax(logits.float(), -1).gather(1, torch.tensor(reply)[:, None]).sum().item()

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    before = logp(base)
    tuned = PeftModel.from_pretrained(base, registry.path(version)).eval()
    assert logp(tuned) > before

    # A second warm start into the same folder is refused; self-play there starts from the warm start.
    with pytest.raises(ValueError, match="first version"):
        warm_start(run, tiny_model_dir, config)
    selfplay = SelfPlayRun(SelfPlayConfig(run_dir=run, games=["kuhn_poker-v1"], learner=LearnerConfig(
        update=UpdateConfig(lora_layers=1))))
    assert selfplay.state.version == "v0001"


def test_cli_warm_starts_with_the_self_play_learner_settings(tiny_model_dir, tmp_path):
    from typer.testing import CliRunner

    from maro.learner.cli import app
    from maro.learner.loop import default_learner

    runner = CliRunner(env={"COLUMNS": "80"})
    run = tmp_path / "run"
    result = runner.invoke(app, ["warmstart", "--game", "kuhn_poker-v1", "--run-dir", str(run), "--matches", "4",
                                 "--epochs", "1", "--model", str(tiny_model_dir)])
    assert result.exit_code == 0, result.output
    assert "warm start" in result.output and "v0001" in result.output
    meta = AdapterRegistry(run / "adapters").metadata("v0001")
    assert meta["config"]["update"]["lora_layers"] == default_learner().update.lora_layers
    again = runner.invoke(app, ["warmstart", "--game", "kuhn_poker-v1", "--run-dir", str(run), "--model",
                                str(tiny_model_dir)])
    assert again.exit_code == 2 and "first version" in _flat(again.output)
    bad = runner.invoke(app, ["warmstart", "--game", "kuhn_poker-v1", "--run-dir", str(tmp_path / "b"),
                              "--bot", "nonsense", "--model", str(tiny_model_dir)])
    assert bad.exit_code == 2 and "GAME=NAME" in _flat(bad.output)


def _flat(output: str) -> str:
    """Rich's boxes and line wrapping undone."""
    import re

    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", output).split())
