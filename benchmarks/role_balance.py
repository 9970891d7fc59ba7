"""Win rate per role with the scripted bots in every seat: how uneven each game's roles are.

    python benchmarks/role_balance.py [--matches 500] [--game GAME_ID ...] [--players N]

Prints, per game and role: seats played, win rate (outcome above the game's win threshold)
with a 95% Wilson interval, and mean outcome.
"""

from __future__ import annotations

import argparse
import math
import random
import time
from collections import defaultdict

from maro.agents.bots import bot_names, get_bot
from maro.arena.engine import game_class, game_ids, make_game


def play(game, bot, seed: int):
    rng = random.Random(seed)
    state, _ = game.init(seed)
    while not state.finished:
        joint = {}
        for seat in sorted(game.acting(state)):
            obs = game.observe(state, seat)
            joint[seat] = bot.act(obs.view, obs.legal_actions, rng)
        state, _ = game.step(state, joint)
    return state


def wilson(wins: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return 0.0, 0.0
    p = wins / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def measure(game_id: str, matches: int, params: dict) -> list[tuple]:
    game = make_game(game_id, params)
    bot = get_bot(bot_names(game_id)[0])
    seats, wins, totals = defaultdict(int), defaultdict(int), defaultdict(float)
    for seed in range(matches):
        state = play(game, bot, seed)
        for seat, z in enumerate(state.outcome):
            role = game.role(state, seat)
            seats[role] += 1
            wins[role] += z > game.spec.win_threshold
            totals[role] += z
    return [(role, seats[role], wins[role] / seats[role], *wilson(wins[role], seats[role]), totals[role] / seats[role])
            for role in sorted(seats)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--matches", type=int, default=500)
    parser.add_argument("--game", action="append", help="game id (repeatable); default: all")
    parser.add_argument("--players", type=int, help="player count for games that take one")
    args = parser.parse_args()
    print(f"{'game':24} {'players':>7} {'role':14} {'seats':>6} {'win rate':>9} {'95% CI':>15} {'mean z':>7}")
    for gid in args.game or game_ids():
        params = {}
        if args.players and "players" in game_class(gid).params_model.model_fields:
            params["players"] = args.players
        started = time.time()
        n = make_game(gid, params).num_players()
        for role, count, rate, lo, hi, mean in measure(gid, args.matches, params):
            print(f"{gid:24} {n:>7} {role:14} {count:>6} {rate:>9.3f} {f'[{lo:.3f}, {hi:.3f}]':>15} {mean:>+7.3f}")
        print(f"{'':24} ({args.matches} matches in {time.time() - started:.1f}s)")


if __name__ == "__main__":
    main()
