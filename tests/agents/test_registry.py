"""The model registry: names to ModelSettings, clear errors, hosted entries through LiteLLM's mock
responses, local entries against the real local model server (tiny model)."""

from pathlib import Path

import pytest

from maro.agents.llm import complete
from maro.agents.registry import ModelRegistry, RegistryError, load_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "models.toml"


def write(tmp_path, text, name="models.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_example_file_loads_and_resolves_every_name():
    env = {"OPENAI_API_KEY": "sk-a", "ANTHROPIC_API_KEY": "sk-b", "GROQ_API_KEY": "sk-c"}
    reg = ModelRegistry.load(EXAMPLE, environ=env)
    assert reg.data.default == "smollm2" and {"smollm2", "smollm2-v3", "gpt-mini"} <= set(reg.names())
    local = reg.settings()
    assert local.model == "openai/smollm2" and local.api_base == "http://127.0.0.1:8008/v1" and local.logprobs
    assert local.api_key is None and local.context_tokens == 2048
    hosted = reg.settings("gpt-mini")
    assert hosted.api_key == "sk-a" and hosted.api_base is None and not hosted.logprobs and hosted.max_tokens == 300
    for name in reg.names():
        reg.settings(name)


def test_a_pinned_adapter_version_of_a_local_entry():
    reg = ModelRegistry.load(EXAMPLE, environ={})
    assert reg.settings("smollm2@v0003").model == "openai/smollm2@v0003"
    assert reg.settings("smollm2@base").api_base == "http://127.0.0.1:8008/v1"
    with pytest.raises(RegistryError, match="hosted model"):
        ModelRegistry.load(EXAMPLE, environ={"OPENAI_API_KEY": "x"}).settings("gpt-mini@v0001")


def test_overrides_apply_on_top():
    settings = ModelRegistry.load(EXAMPLE, environ={}).settings("smollm2", temperature=0.0, max_tokens=8)
    assert settings.temperature == 0.0 and settings.max_tokens == 8


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(RegistryError, match=r"unknown model 'gtp-mini'.*known: .*gpt-mini"):
        ModelRegistry.load(EXAMPLE, environ={}).settings("gtp-mini")


def test_missing_key_names_the_variable():
    with pytest.raises(RegistryError, match=r"\$OPENAI_API_KEY, which is not set"):
        ModelRegistry.load(EXAMPLE, environ={}).settings("gpt-mini")


def test_a_key_in_the_file_is_refused(tmp_path):
    path = write(tmp_path, '[models.x]\nmodel = "openai/gpt-4o"\napi_key = "sk-live-123"\n')
    with pytest.raises(RegistryError, match="api_key_env"):
        ModelRegistry.load(path)


@pytest.mark.parametrize("text, match", [
    ("[models.x\nmodel = 1", "not valid TOML"),
    ('[models.x]\nmodel = "openai/a"\ntemprature = 0.3\n', r"models\.x\.temprature: Extra inputs"),
    ('[models.x]\nmax_tokens = 5\n', r"models\.x\.model: Field required"),
    ('[models.x]\nmodel = "openai/a"\nmax_tokens = -1\n', r"models\.x\.max_tokens"),
    ('default = "y"\n[models.x]\nmodel = "openai/a"\n', "default 'y' is not one of its models"),
])
def test_malformed_files_say_where(tmp_path, text, match):
    with pytest.raises(RegistryError, match=match):
        ModelRegistry.load(write(tmp_path, text))


def test_missing_file_says_how_to_make_one(tmp_path):
    with pytest.raises(RegistryError, match="examples/models.toml"):
        ModelRegistry.load(tmp_path / "nope.toml")


def test_default_lookup_env_then_cwd_then_builtin(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert ModelRegistry.load(environ={}).source == "built-in registry"
    assert ModelRegistry.load(environ={}).settings().api_base == "http://127.0.0.1:8008/v1"
    write(tmp_path, '[models.here]\nmodel = "openai/here"\napi_base = "http://h/v1"\n', "maro-models.toml")
    assert ModelRegistry.load(environ={}).names() == ["here"]
    other = write(tmp_path, '[models.there]\nmodel = "openai/there"\napi_base = "http://t/v1"\n', "other.toml")
    assert ModelRegistry.load(environ={"MARO_MODELS": str(other)}).names() == ["there"]


def test_yaml_works_too(tmp_path):
    path = write(tmp_path, "models:\n  y:\n    model: openai/y\n    api_key_env: Y_KEY\n", "models.yaml")
    assert ModelRegistry.load(path, environ={"Y_KEY": "k"}).settings("y").api_key == "k"


async def test_hosted_entry_through_litellm_mock_response(tmp_path, monkeypatch):
    path = write(tmp_path, '[models.mini]\nmodel = "openai/gpt-4o-mini"\napi_key_env = "TEST_OPENAI_KEY"\n'
                           'max_tokens = 50\n')
    monkeypatch.setenv("TEST_OPENAI_KEY", "sk-test-not-real")
    settings = load_settings("mini", path)
    result = await complete([{"role": "user", "content": "Your move?"}], settings, mock_response="[Offer: 70]")
    assert result.text == "[Offer: 70]" and result.completion_tokens > 0 and result.logprobs == ()


async def test_local_entries_reach_the_local_model_server(tiny_server, tmp_path):
    path = write(tmp_path, f'[models.tiny]\nmodel = "openai/smollm2"\napi_base = "{tiny_server}/v1"\nmax_tokens = 6\n'
                           f'[models.tiny-v3]\nmodel = "openai/smollm2@v0003"\napi_base = "{tiny_server}/v1"\n'
                           'max_tokens = 6\n')
    reg = ModelRegistry.load(path)
    messages = [{"role": "user", "content": "Your move?"}]
    newest = await complete(messages, reg.settings("tiny"))
    assert newest.model.startswith("smollm2@") and newest.completion_tokens > 0
    assert len(newest.logprobs) == newest.completion_tokens and all(t.token_id >= 0 for t in newest.logprobs)
    pinned = await complete(messages, reg.settings("tiny-v3"))
    assert pinned.model == "smollm2@v0003"
    assert (await complete(messages, reg.settings("tiny@base"))).model == "smollm2@base"
    assert (await complete(messages, reg.settings("tiny@v0003"))).model == "smollm2@v0003"
