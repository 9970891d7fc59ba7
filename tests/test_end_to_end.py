"""The whole loop: arena, LangGraph agents, model server, MARO update, adapter reload, second batch."""

import json

from rich.console import Console

from maro.arena.store.matches import MatchStore
from maro.learner.config import UpdateConfig
from maro.learner.demo import DemoConfig, run_demo
from maro.learner.update import LearnerConfig


async def test_demo_loop_with_tiny_model(tiny_model_dir, tmp_path):
    config = DemoConfig(
        run_dir=tmp_path / "run", model=str(tiny_model_dir), matches=4, max_tokens=8,
        learner=LearnerConfig(update=UpdateConfig(batch_size=4, max_prompt_tokens=512)),
    )
    console = Console(record=True, width=120)
    summary = await run_demo(config, console)

    assert summary["served"] == "smollm2@v0001"
    adapter = tmp_path / "run" / "adapters" / "v0001"
    assert (adapter / "adapter_config.json").exists()
    meta = json.loads((adapter / "maro.json").read_text())
    assert meta["config"]["maro"]["variant"] == "maro" and len(meta["data"]["match_ids"]) == 4
    assert (tmp_path / "run" / "adapters" / "LATEST").read_text().strip() == "v0001"
    for batch in ("before", "after"):
        assert summary[batch]["matches"] == 4 and summary[batch]["finished"] == 4
        assert summary[batch]["attempts"] > 0

    store = MatchStore(tmp_path / "run" / "matches.sqlite")
    matches = store.list_matches(status="finished")
    assert len(matches) == 8
    models = [{b.model for b in store.behaviors([m.match_id]) if b.messages} for m in matches]
    assert models[0] == {"smollm2@base"} and models[-1] == {"smollm2@v0001"}
    text = console.export_text()
    assert "valid-action rate" in text and "mean outcome, seller" in text
    # Both batches played the same seeds: the change is paired by seed, with its interval and a verdict.
    diff = summary["comparison"]["after_minus_before"]
    assert diff["seeds"] == 4 and diff["ci"][0] <= diff["mean"] <= diff["ci"][1]
    assert "after - before, paired over 4 seeds" in text and "after one MARO update:" in text
    assert ("within noise" in text) != diff["supported"]
