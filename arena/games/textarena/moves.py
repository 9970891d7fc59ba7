"""Candidate moves for TextArena's environments whose messages do not list their moves.

Board and card games ask for coordinates or positions (`[col 3]`, `[a2a3]`, `[play 2]`, `[0 3]`)
and TextArena 0.7.4 has no common legal-moves API, so each family here spells the moves that its
rules allow in its own action format, read from the environment's public game state (board size,
the board, the seat's own hand). They are candidates only: the adapter keeps those the
environment accepts on a trial copy, so a generator may offer a superset and never decides
legality itself. Where a family's move space is large (allocations, proposals), it offers a
sample drawn from the turn's own generator, so the candidates are the same on every replay; the
adapter tries them in an order drawn from that generator too and offers at most MAX_LEGAL.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from typing import Any

MAX_GENERATED = 400
"""The most generated candidates tried in one turn."""

Generator = Callable[[Any, int, random.Random], Iterable[str]]
GENERATORS: dict[str, Generator] = {}


def family(env: Any) -> str:
    """The folder of the environment's module in TextArena (`ConnectFour`, `Tak`, ...)."""
    parts = type(env).__module__.split(".")
    return parts[2] if len(parts) > 3 and parts[:2] == ["textarena", "envs"] else ""


def candidates(env: Any, seat: int, rng: random.Random) -> list[str]:
    """The family's candidate moves for `seat` now, at most MAX_GENERATED; [] for other families."""
    generate = GENERATORS.get(family(env))
    if generate is None:
        return []
    out: list[str] = []
    try:
        for move in generate(env, seat, rng):
            if move not in out:
                out.append(move)
                if len(out) >= MAX_GENERATED:
                    break
    except (AttributeError, IndexError, KeyError, TypeError, ValueError):
        return out  # a variant whose state is laid out otherwise: its messages' actions still count
    return out


def moves(name: str) -> Callable[[Generator], Generator]:
    def register(generate: Generator) -> Generator:
        GENERATORS[name] = generate
        return generate
    return register


def _board(env: Any) -> list:
    return env.state.game_state["board"]


def _files(n: int) -> str:
    return "abcdefghijklmnopqrstuvwxyz"[:n]


# --- boards with pieces that move ---------------------------------------------------------------
@moves("Breakthrough")
def breakthrough(env, seat, rng):
    # '[a2a3]': file letter, rank from 1; board row r is rank r + 1. White (seat 0) moves up.
    n, board, files = env.board_size, _board(env), _files(env.board_size)
    step = 1 if seat == 0 else -1
    for r in range(n):
        for c in range(n):
            if board[r][c] and 0 <= r + step < n:
                for dc in (-1, 0, 1):
                    if 0 <= c + dc < n:
                        yield f"[{files[c]}{r + 1}{files[c + dc]}{r + step + 1}]"


def _rank_down(r: int, n: int) -> int:
    """The rank of board row r where row 0 is the top rank (n)."""
    return n - r


@moves("Alquerque")
def alquerque(env, seat, rng):
    # '[a2 a3]' from -> to, a step or a jump of two; board row 0 is rank 5.
    n, board, files = env.BOARD_N, _board(env), _files(env.BOARD_N)
    piece = "R" if seat == 0 else "B"
    for r in range(n):
        for c in range(n):
            if board[r][c] == piece:
                for dr in (-2, -1, 0, 1, 2):
                    for dc in (-2, -1, 0, 1, 2):
                        tr, tc = r + dr, c + dc
                        if (dr or dc) and 0 <= tr < n and 0 <= tc < n and not board[tr][tc]:
                            yield f"[{files[c]}{_rank_down(r, n)} {files[tc]}{_rank_down(tr, n)}]"


@moves("LinesOfAction")
def lines_of_action(env, seat, rng):
    # '[b1b3]': a move along a line by as many squares as pieces on it; row 0 is rank 8.
    board = _board(env)
    n, files, side = len(board), _files(len(board)), "O" if seat == 0 else "X"
    for r in range(n):
        for c in range(n):
            if board[r][c] != side:
                continue
            for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
                line = sum(1 for k in range(-n, n + 1)
                           if 0 <= r + k * dr < n and 0 <= c + k * dc < n and board[r + k * dr][c + k * dc])
                for sign in (1, -1):
                    tr, tc = r + sign * line * dr, c + sign * line * dc
                    if 0 <= tr < n and 0 <= tc < n and board[tr][tc] != side:
                        yield f"[{files[c]}{_rank_down(r, n)}{files[tc]}{_rank_down(tr, n)}]"


@moves("Santorini")
def santorini(env, seat, rng):
    # The environment keeps its own list of the mover's moves, spelled as bracketed actions.
    listed = env.state.game_state.get("valid_moves") or ""
    return [m.strip() for m in str(listed).split(",") if m.strip().startswith("[")]


@moves("Tak")
def tak(env, seat, rng):
    # '[place () {(r,c): [F0]}]' on an empty square (flat, wall, capstone), or the top piece of
    # one of the seat's stacks moved one square: '[move (r,c) {(r2,c2): [F0]}]'.
    board = _board(env)
    n = len(board)
    for r in range(n):
        for c in range(n):
            if not board[r][c]:
                for stone in ("F", "W", "C"):
                    yield f"[place () {{({r},{c}): [{stone}{seat}]}}]"
    for r in range(n):
        for c in range(n):
            stack = board[r][c]
            if stack and str(stack[-1]).endswith(str(seat)):
                for dr, dc in ((0, 1), (1, 0), (0, -1), (-1, 0)):
                    if 0 <= r + dr < n and 0 <= c + dc < n:
                        yield f"[move ({r},{c}) {{({r + dr},{c + dc}): [{stack[-1]}]}}]"


# --- boards that take a placement ---------------------------------------------------------------
@moves("ConnectFour")
def connect_four(env, seat, rng):
    return [f"[col {c}]" for c in range(env.num_cols)]


@moves("Othello")
def othello(env, seat, rng):
    listed = env.state.game_state.get("valid_moves")
    cells = listed if listed else [(r, c) for r in range(env.N) for c in range(env.N)]
    return [f"[{r}, {c}]" for r, c in cells]


@moves("UltimateTicTacToe")
def ultimate_tic_tac_toe(env, seat, rng):
    # '[macro micro]': the forced mini-board first (the game frees the choice when it is full).
    forced = env.state.game_state.get("next_micro_board")
    boards = sorted(range(9), key=lambda macro: macro != forced)
    return [f"[{macro} {micro}]" for macro in boards for micro in range(9)]


@moves("QuantumTicTacToe")
def quantum_tic_tac_toe(env, seat, rng):
    return [f"[{a},{b}]" for a in range(9) for b in range(a + 1, 9)]


@moves("Battleship")
def battleship(env, seat, rng):
    # '[C4]': row letter, column number; squares already fired upon are refused by the game.
    n, tracking = env.grid_size, env.state.game_state["tracking_board"][seat]
    return [f"[{chr(65 + r)}{c}]" for r in range(n) for c in range(n) if tracking[r][c] == "~"]


# --- cards, piles and hands ---------------------------------------------------------------------
def _hand_positions(env, seat, rng):
    hand = env.state.game_state["players"][seat].get("hand") or []
    return [f"[play {i}]" for i in range(1, len(hand) + 1)]


moves("Briscola")(_hand_positions)
moves("GermanWhist")(_hand_positions)


@moves("Golf")
def golf(env, seat, rng):
    yield from ("[draw]", "[take]", "[discard]", "[knock]")
    for r in range(env.num_rows):
        for c in range(env.num_columns):
            yield f"[swap {r} {c}]"
            yield f"[peek {r} {c}]"


@moves("Nim")
def nim(env, seat, rng):
    piles = env.state.game_state["piles"]
    return [f"[{i} {q}]" for i, size in enumerate(piles) for q in range(1, size + 1)]


@moves("Chopsticks")
def chopsticks(env, seat, rng):
    yield from (f"[attack {m} {o}]" for m in (0, 1) for o in (0, 1))
    total = sum(env.state.game_state["hands"][seat])
    yield from (f"[split {left} {total - left}]" for left in range(total + 1))


@moves("Poker")
def poker(env, seat, rng):
    game = env.state.game_state
    chips, pot, blind = game["player_chips"].get(seat, 0), game.get("pot", 0), env.big_blind
    yield from ("[Check]", "[Call]", "[Fold]")
    for amount in sorted({blind, 2 * blind, pot // 2, pot, chips}):
        if 0 < amount <= chips:
            yield f"[Bet {amount}]"
            yield f"[Raise {amount}]"


# --- numbers, allocations and proposals ---------------------------------------------------------
@moves("IteratedTwoThirdsAverage")
def two_thirds_average(env, seat, rng):
    low, high = int(env.min_guess), int(env.max_guess)
    return [f"[{x}]" for x in range(low, high + 1, max(1, (high - low) // 20))]


@moves("ColonelBlotto")
def colonel_blotto(env, seat, rng):
    fields, units = env.field_names, env.num_total_units
    splits = []
    for _ in range(16):
        cuts = sorted(rng.randint(0, units) for _ in range(len(fields) - 1))
        splits.append([b - a for a, b in zip([0, *cuts], [*cuts, units], strict=True)])
    even = [units // len(fields) + (i < units % len(fields)) for i in range(len(fields))]
    return ["[" + " ".join(f"{f}{u}" for f, u in zip(fields, split, strict=True)) + "]" for split in [even, *splits]]


@moves("NewRecruit")
def new_recruit(env, seat, rng):
    yield from ("[Accept]", "[Reject]")
    issues = len(env.issues)
    for _ in range(8):
        yield "[Propose] " + " ".join(rng.choice("ABCDE") for _ in range(issues))


@moves("TwoDollar")
def two_dollar(env, seat, rng):
    yield from ("[Accept]", "[Reject]")
    for cents in range(0, 201, 25):
        yield f"[Propose] ${cents / 100:.2f}"
