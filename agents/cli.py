"""`maro agent ...`: run LangGraph agents against an arena; list the model registry. Also `maro
play` (a person in the terminal), which the root command line mounts at the top level."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Annotated

import typer

agent_app = typer.Typer(help="LangGraph agents: play open seats of an arena; the model registry.",
                        no_args_is_help=True)

RegistryOption = Annotated[Path | None, typer.Option(
    help="Model registry file (TOML or YAML); default $MARO_MODELS, then ./maro-models.toml, then built-in names.")]


@agent_app.command("run")
def agent_run(
    arena: Annotated[str, typer.Option(help="The arena's HOST:PORT.")],
    game: Annotated[str, typer.Option(help="The game whose open seats to take.")],
    model: Annotated[str | None, typer.Option(
        help="A model name from the registry (NAME@vNNNN pins an adapter of our model server); "
             "default: the registry's default.")] = None,
    seats: Annotated[int, typer.Option(help="Agents playing at once, each taking seat after seat.")] = 1,
    matches: Annotated[int | None, typer.Option(help="Stop after this many matches in all; default: until Ctrl-C.")] = None,
    match_id: Annotated[str | None, typer.Option(help="Play this match's seat (with --token) instead of the lobby.")] = None,
    token: Annotated[str | None, typer.Option(help="Seat token for --match-id.")] = None,
    registry: RegistryOption = None,
    think: Annotated[bool, typer.Option(help="Private reasoning before each action (never shown to the arena).")] = False,
    persona: Annotated[str, typer.Option(help="Who the agent plays as, e.g. 'a blunt trader who never bluffs'.")] = "",
    memory_tokens: Annotated[int, typer.Option(
        help="Token budget of the agent's notes of the match in its prompt (what it played, thought, had "
             "refused); 0 leaves them out.")] = 0,
    retry_budget: Annotated[int, typer.Option(help="Local repairs of an unparseable reply before the arena judges it.")] = 1,
    name: Annotated[str, typer.Option(help="Player name recorded and rated by the arena; default agent:<model>.")] = "",
    tls: Annotated[bool, typer.Option(help="Connect with TLS (system roots).")] = False,
    key: Annotated[str | None, typer.Option(envvar="MARO_ARENA_KEY", show_default=False,
                                            help="The arena key, for arenas started with a key file.")] = None,
) -> None:
    """Join open seats through the lobby (or one given seat) and play until Ctrl-C or --matches.

    A first Ctrl-C takes no new seats and lets the matches in progress finish; a second quits now.
    """
    from pydantic import ValidationError

    from maro.agents.llm import ModelCallError
    from maro.agents.registry import ModelRegistry, RegistryError
    from maro.agents.run import AgentRunConfig, AgentRunError, AgentRunner

    try:
        config = AgentRunConfig(arena=arena, game=game, model=model, registry=registry, seats=seats, matches=matches,
                                match_id=match_id, token=token, think=think, persona=persona,
                                memory_tokens=memory_tokens, retry_budget=retry_budget, name=name, tls=tls,
                                key=key)
        settings = ModelRegistry.load(registry).settings(model)
    except ValidationError as exc:
        raise typer.BadParameter("; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())) from None
    except RegistryError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None

    async def main() -> None:
        runner = AgentRunner(config, settings)
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGINT, runner.interrupt)
        except (NotImplementedError, RuntimeError):  # not on the main thread, or not on this platform
            pass
        await runner.run()

    try:
        asyncio.run(main())
    except (AgentRunError, ModelCallError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


@agent_app.command("models")
def agent_models(registry: RegistryOption = None) -> None:
    """List the model names of the registry, with where they point (keys are never shown)."""
    from maro.agents.registry import ModelRegistry, RegistryError

    try:
        reg = ModelRegistry.load(registry)
    except RegistryError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"# {reg.source}" + (f"; default {reg.data.default}" if reg.data.default else ""))
    for name in reg.names():
        entry = reg.entry(name)
        where = entry.api_base or (f"key from ${entry.api_key_env}" if entry.api_key_env else "hosted")
        typer.echo(f"{name:20} {entry.model:40} {where}" + (f"  # {entry.description}" if entry.description else ""))


def play(
    game: Annotated[str, typer.Option(help="The game to play.")] = "bargaining-v1",
    vs: Annotated[str | None, typer.Option(help="Opponents: a bot name; a model name of the registry "
                                               "(`maro agent models`), played by the LangGraph agent in this "
                                               "process; or model:NAME, a model seat the arena runs (a name "
                                               "of its registry). Default: the game's bot.")] = None,
    arena: Annotated[str | None, typer.Option(help="Arena host:port; default: an arena in this process.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of a new match.")] = 0,
    params: Annotated[str | None, typer.Option(help="Game parameters as a JSON object.")] = None,
    seat: Annotated[int | None, typer.Option(help="Your seat in a new match (default 0).")] = None,
    players: Annotated[int | None, typer.Option(help="Seats of a new match (default: what the game's "
                                                     "parameters give).")] = None,
    match_id: Annotated[str | None, typer.Option(help="Join this existing match (with --token).")] = None,
    token: Annotated[str | None, typer.Option(help="Seat token for --match-id.")] = None,
    name: Annotated[str, typer.Option(help="Your display name (an arena with keys rates your key's principal).")] = "human",
    key: Annotated[str | None, typer.Option(envvar="MARO_ARENA_KEY", show_default=False,
                                            help="The arena key, for an --arena started with a key file.")] = None,
    registry: Annotated[str | None, typer.Option(help="Model registry file for --vs NAME (default: $MARO_MODELS, "
                                                      "./maro-models.toml, else the built-in names).")] = None,
) -> None:
    """Play a game yourself in the terminal against bots or a model."""
    import json

    from maro.agents.human import PlayError, play_human

    try:
        table = json.loads(params) if params else None
    except json.JSONDecodeError as exc:
        typer.echo(f"error: --params is not JSON: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        asyncio.run(play_human(arena, game, vs, seed=seed, params=table,
                               seat=seat, match_id=match_id, token=token, name=name, registry=registry,
                               players=players, key=key))
    except PlayError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except (KeyboardInterrupt, EOFError):
        typer.echo("\nbye")
