"""The arena's commands: `maro arena serve`, `maro arena keys ...`, `maro games`, `maro replay`,
`maro ratings` and `maro dev protogen`. The root `maro` command (`maro.learner.cli`) mounts them
with `add_commands`; nothing here imports the agents or the learner.

`maro arena serve` plays `bot` and `model` seats through the `SeatFactory` the root hands it in
`ArenaHooks` (the context object of the command line); with none, those seats are refused.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from maro.arena.match.seats import SeatFactory

arena_app = typer.Typer(help="The arena server.", no_args_is_help=True)
dev_app = typer.Typer(help="Developer tools.", no_args_is_help=True)
keys_app = typer.Typer(help="The arena's principals and their keys (a key file holds only hashes).",
                       no_args_is_help=True)
arena_app.add_typer(keys_app, name="keys")


@dataclass(frozen=True)
class ArenaHooks:
    """What the layers above give the arena's commands (as the command line's `ctx.obj`)."""

    seats: Callable[[Path | None], SeatFactory] | None = None
    """Builds the server-side players from `--registry` (None: model seats refused); raises
    `ValueError` with the reason for a broken registry file."""


def add_commands(app: typer.Typer) -> None:
    """Mount the arena's commands on the root `maro` app."""
    app.add_typer(arena_app, name="arena")
    app.add_typer(dev_app, name="dev")
    app.command()(games)
    app.command()(replay)
    app.command()(ratings)


def games(
    all_: Annotated[bool, typer.Option("--all", help="Also every game of the adapted libraries (OpenSpiel), "
                                                      "supported or refused with the reason.")] = False,
) -> None:
    """List the registered games with their roles and player counts."""
    from maro.arena.engine import GAMES, game_class, game_ids

    for gid in game_ids():
        spec = game_class(gid).spec
        players = f"{spec.min_players}" if spec.min_players == spec.max_players else f"{spec.min_players}-{spec.max_players}"
        typer.echo(f"{gid:24} players {players:5} roles {', '.join(spec.roles):30} {spec.description}")
    if not all_:
        families = ", ".join(f"{p}:..." for p in GAMES.families())
        if families:
            typer.echo(f"(and the adapted games {families}: `maro games --all` lists them)")
        return
    refused = []
    for entry in GAMES.catalogue():
        if entry.refused:
            refused.append(entry)
        else:
            typer.echo(f"{entry.id:36} players {entry.players:5} {entry.description}")
    for entry in refused:
        typer.echo(f"{entry.id:36} refused: {entry.refused}")


def replay(
    match_id: Annotated[str, typer.Argument(help="The match to print.")],
    db: Annotated[str, typer.Option(help="Match store: SQLite path or database URL.")] = "runs/demo/matches.sqlite",
    seat: Annotated[int | None, typer.Option(help="Print what this seat saw; omit for the omniscient view.")] = None,
) -> None:
    """Print a match's transcript from the store, from one seat's point of view or omniscient."""
    from maro.arena.match.replay import transcript
    from maro.arena.store.matches import MatchStore

    record = MatchStore(db).get_match(match_id)
    if record is None:
        typer.echo(f"no match {match_id!r} in {db}", err=True)
        raise typer.Exit(1)
    try:
        typer.echo(transcript(record, seat))
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc


@arena_app.command("serve")
def arena_serve(
    ctx: typer.Context,
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
    web_port: Annotated[int | None, typer.Option(help="Serve the web pages (play, watch, replays, ratings, "
                                                      "training runs) on this port, same host, keys and TLS.")] = None,
    runs: Annotated[Path | None, typer.Option(help="A folder of self-play run folders for the training pages.")] = None,
    replica_id: Annotated[str, typer.Option(help="This replica's stable name when several share one database.")] = "",
    advertise: Annotated[str, typer.Option(help="host:port clients of other replicas reach this one at (lobby seats, "
                                                "redirects); default: the address it listens on.")] = "",
    lease: Annotated[float, typer.Option(help="Seconds after a replica's last heartbeat before the others abort its "
                                              "live matches.")] = 15.0,
    workers: Annotated[int, typer.Option(help="Arena processes sharing --port, one replica each (<replica-id>-<k>), "
                                              "to use more cores of this host.")] = 1,
    registry: Annotated[Path | None, typer.Option(help="Model registry naming the models of `model` seats "
                                                     "(keys from this server's environment); without one, "
                                                     "model seats are refused.")] = None,
    log_format: Annotated[str, typer.Option(help="Log lines as `text` or `json`.")] = "text",
    verbose: Annotated[bool, typer.Option(help="Log every match event at INFO.")] = False,
) -> None:
    """Serve the arena over gRPC (with health checking and reflection), and with --web-port its web
    pages, until SIGINT/SIGTERM."""
    from maro.arena.logs import configure
    from maro.arena.match.runner import RunnerConfig
    from maro.arena.transport.grpc.server import ArenaConfig, serve_forever

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
                             metrics_port=metrics_port, web_port=web_port, runs=runs, replica_id=replica_id,
                             advertise=advertise, lease_s=lease, workers=workers, runner=runner)
        hooks = ctx.obj if isinstance(ctx.obj, ArenaHooks) else ArenaHooks()
        if hooks.seats is None and registry is not None:
            raise ValueError("--registry: this installation plays no server-side seats (install maro-arena[agents])")
        seats = hooks.seats(registry) if hooks.seats is not None else None  # a broken file stops the start
        if keys is not None:
            from maro.arena.auth import read_key_file

            read_key_file(keys)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if workers > 1:
        from maro.arena.transport.grpc.workers import serve_workers

        raise typer.Exit(serve_workers(config, hooks.seats, registry, (logging.INFO if verbose else logging.WARNING,
                                                                       log_format)))
    asyncio.run(serve_forever(config, seats))


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


def ratings(
    db: Annotated[str, typer.Option(help="Match store: SQLite path or database URL.")] = "runs/arena.sqlite",
    game: Annotated[str | None, typer.Option(help="Only this game.")] = None,
    role: Annotated[str | None, typer.Option(help="Only this role; `*` for the game overall.")] = None,
    rebuild: Annotated[bool, typer.Option(help="Recompute from every finished match first.")] = False,
) -> None:
    """Print ratings per game and role (OpenSkill), with match counts and uncertainty."""
    from maro.arena.store.matches import MatchStore
    from maro.arena.store.ratings import RatingBook, format_table

    store = MatchStore(db)
    book = RatingBook(store.engine)
    if rebuild:
        book.rebuild(store.list_matches(status="finished"))
    typer.echo(format_table(book.table(game, role)))


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

