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
