"""A match's transcript from the store, as one seat saw it or as an omniscient spectator."""

from __future__ import annotations

from maro.arena.engine import game_class
from maro.arena.store.records import MatchRecord


def transcript(record: MatchRecord, seat: int | None = None) -> str:
    """The events `seat` could see (all of them when `seat` is None), then the end."""
    n = len(record.seats)
    if seat is not None and not 0 <= seat < n:
        raise ValueError(f"match {record.match_id} has seats 0..{n - 1}, not {seat}")
    spec = game_class(record.game_id).spec
    who = "omniscient spectator" if seat is None else f"seat {seat} ({record.seats[seat].role})"
    lines = [f"match {record.match_id}  {record.game_id}  seed {record.seed}  {record.status}  as {who}"]
    for s in record.seats:
        shown = seat is None or s.seat == seat or (record.status == "finished" and spec.reveal_roles_at_end)
        lines.append(f"  seat {s.seat}: {s.name} ({s.kind}){'  ' + s.role if shown else ''}")
    for e in record.events:
        if seat is not None and not e.visible_to(seat):  # omniscient (None) sees everything
            continue
        scope = "" if not e.private_to else f" [to {', '.join(map(str, e.private_to))}]"
        lines.append(f"{e.seq:4d}{scope} {e.text}")
    if record.outcome is not None:
        outcome = "  ".join(f"seat {i}: {z:+.3f}" for i, z in enumerate(record.outcome))
        lines.append(f"end: {record.end_reason}  |  {outcome}")
    return "\n".join(lines)
