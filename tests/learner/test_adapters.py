"""Adapter versions are published whole, numbered in order, with their metadata."""

from maro.learner.adapters import AdapterRegistry


def test_publish_numbers_versions_and_moves_latest(tmp_path):
    registry = AdapterRegistry(tmp_path / "adapters")
    assert registry.latest() is None and registry.versions() == []
    for expected in ("v0001", "v0002"):
        staged = registry.staging()
        (staged / "adapter_config.json").write_text("{}")
        assert registry.publish(staged, {"metrics": {"loss": 1.0}}) == expected
        assert registry.latest() == expected and not staged.exists()
    assert registry.versions() == ["v0001", "v0002"]
    assert registry.metadata("v0002") == {"version": "v0002", "metrics": {"loss": 1.0}}
    assert sorted(p.name for p in registry.root.iterdir()) == ["LATEST", "v0001", "v0002"]


def test_discarded_staging_leaves_no_version(tmp_path):
    registry = AdapterRegistry(tmp_path)
    staged = registry.staging()
    (staged / "partial.bin").write_bytes(b"x")
    registry.discard(staged)
    assert registry.versions() == [] and list(tmp_path.iterdir()) == []


def test_trained_match_ids_collect_every_versions_data_range(tmp_path):
    registry = AdapterRegistry(tmp_path)
    assert registry.trained_match_ids() == set()
    for ids in (["m1", "m2"], ["m3"]):
        registry.publish(registry.staging(), {"data": {"match_ids": ids}})
    assert registry.trained_match_ids() == {"m1", "m2", "m3"}


def test_model_names_parse_format_and_lag_in_one_place():
    from maro.learner.adapters import ModelRef, is_version, read_latest, version_names

    assert ModelRef.parse("smollm2") == ModelRef("smollm2") and ModelRef.parse("smollm2").number is None
    assert ModelRef.parse("openai/smollm2@v0011") == ModelRef("openai/smollm2", "v0011")
    assert ModelRef.parse("smollm2@base").number == 0 and ModelRef.parse("smollm2@v0002").lag("v0005") == 3
    assert ModelRef.parse("smollm2@v0007").lag(None) == 0 and ModelRef.parse("smollm2").lag("v0002") is None
    assert ModelRef.parse("a@b@v0003") == ModelRef("a@b", "v0003")
    assert ModelRef.parse("model@latest") == ModelRef("model@latest")  # not a version: part of the name
    assert ModelRef("smollm2", "v0004").format() == "smollm2@v0004" and ModelRef("x").format() == "x"
    assert is_version("v12") and not is_version("v") and not is_version("w0001")
    assert version_names(None) == [] and read_latest(None) is None
