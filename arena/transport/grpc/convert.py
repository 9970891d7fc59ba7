"""Conversions between domain messages and the maro.arena.v1 protobuf messages."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from maro.arena.engine import GameSpec
from maro.arena.errors import BadRequest
from maro.arena.match import messages as m
from maro.arena.match.inputs import MAX_ACTION_CHARS
from maro.arena.store.records import EventRecord, MatchRecord, TokenLogprob
from maro.arena.v1 import arena_pb2 as pb


REPLICA_ADDRESS = "maro-replica-address"
"""Trailing metadata of a Play or Spectate refused with FAILED_PRECONDITION because another arena
replica plays the match: the address that replica serves on (arena.proto, Replicas)."""


class MalformedMessage(BadRequest, ValueError):
    """A protobuf message that does not carry what its kind requires."""


def game_info(spec: GameSpec) -> pb.GameInfo:
    return pb.GameInfo(id=spec.id, description=spec.description, roles=list(spec.roles),
                       min_players=spec.min_players, max_players=spec.max_players, action_format=spec.action_format)


def observation_to_pb(obs: m.ObservationMsg) -> pb.Observation:
    return pb.Observation(turn=obs.turn, role=obs.role, view_json=json.dumps(obs.view), events=list(obs.events))


def observation_from_pb(obs: pb.Observation) -> m.ObservationMsg:
    return m.ObservationMsg(turn=obs.turn, role=obs.role, view=json.loads(obs.view_json or "{}"), events=tuple(obs.events))


def to_pb(message: m.ToPlayer) -> pb.PlayResponse:
    """A domain message for a player as the PlayResponse that carries it."""
    match message:
        case m.Joined():
            return pb.PlayResponse(joined=pb.Joined(match_id=message.match_id, seat=message.seat, role=message.role,
                                                    game_id=message.game_id, num_players=message.num_players))
        case m.ObservationMsg():
            return pb.PlayResponse(observation=observation_to_pb(message))
        case m.TurnPrompt():
            return pb.PlayResponse(turn=pb.TurnPrompt(
                turn=message.turn, attempt=message.attempt, attempts_left=message.attempts_left,
                observation=observation_to_pb(message.observation), legal_actions=list(message.legal_actions),
                action_format=message.action_format, deadline_unix_ms=message.deadline_unix_ms))
        case m.Accepted():
            return pb.PlayResponse(accepted=pb.Accepted(turn=message.turn))
        case m.Rejection():
            return pb.PlayResponse(rejection=pb.Rejection(turn=message.turn, reason=message.reason,
                                                          attempts_left=message.attempts_left))
        case m.MatchEnd():
            end = pb.MatchEnd(outcomes=list(message.outcomes), reason=message.reason, roles=list(message.roles))
            if message.observation is not None:
                end.observation.CopyFrom(observation_to_pb(message.observation))
            return pb.PlayResponse(end=end)
    raise TypeError(f"no protobuf form for {type(message).__name__}")


def from_pb(response: pb.PlayResponse) -> m.ToPlayer:
    """The client side: a PlayResponse as a domain message."""
    kind = response.WhichOneof("msg")
    if kind == "joined":
        j = response.joined
        return m.Joined(j.match_id, j.seat, j.role, j.game_id, j.num_players)
    if kind == "observation":
        return observation_from_pb(response.observation)
    if kind == "turn":
        t = response.turn
        return m.TurnPrompt(t.turn, t.attempt, t.attempts_left, observation_from_pb(t.observation),
                            tuple(t.legal_actions), t.action_format, t.deadline_unix_ms)
    if kind == "accepted":
        return m.Accepted(response.accepted.turn)
    if kind == "rejection":
        r = response.rejection
        return m.Rejection(r.turn, r.reason, r.attempts_left)
    if kind == "end":
        e = response.end
        obs = observation_from_pb(e.observation) if e.HasField("observation") else None
        return m.MatchEnd(tuple(e.outcomes), e.reason, tuple(e.roles), obs)
    raise MalformedMessage("PlayResponse carries no message")


def submission_from_pb(action: pb.Action) -> m.Submission:
    behavior = None
    if action.HasField("behavior"):
        b = action.behavior
        try:
            messages = json.loads(b.messages_json) if b.messages_json else []
        except ValueError as exc:  # JSONDecodeError, and integers beyond Python's digit limit
            raise MalformedMessage(f"behavior.messages_json is not JSON: {str(exc)[:120]}") from exc
        except RecursionError:
            raise MalformedMessage("behavior.messages_json nests too deep") from None
        if not isinstance(messages, list) or not all(isinstance(x, dict) for x in messages):
            raise MalformedMessage("behavior.messages_json must be a JSON array of message objects")
        logprobs = tuple(TokenLogprob(t.token, t.token_id, t.logprob) for t in b.logprobs)
        behavior = m.BehaviorReport(messages=messages, completion=b.completion, logprobs=logprobs, model=b.model)
    if len(action.text) > MAX_ACTION_CHARS:
        raise MalformedMessage(f"action text is {len(action.text)} characters; at most {MAX_ACTION_CHARS}")
    return m.Submission(turn=action.turn, text=action.text, behavior=behavior)


def submission_to_pb(sub: m.Submission) -> pb.PlayRequest:
    action = pb.Action(turn=sub.turn, text=sub.text)
    if sub.behavior is not None:
        b = sub.behavior
        action.behavior.CopyFrom(pb.Behavior(
            messages_json=json.dumps(b.messages), completion=b.completion, model=b.model,
            logprobs=[pb.TokenLogprob(token=t.token, token_id=t.token_id, logprob=t.logprob) for t in b.logprobs]))
    return pb.PlayRequest(action=action)


def event_to_pb(e: EventRecord) -> pb.EventRecord:
    return pb.EventRecord(seq=e.seq, kind=e.kind, seat=-1 if e.seat is None else e.seat, text=e.text,
                          private_to=list(e.private_to))


def _seats(record: MatchRecord) -> list[pb.SeatRecord]:
    return [pb.SeatRecord(seat=s.seat, role=s.role, kind=s.kind, name=s.name, player=s.principal) for s in record.seats]


def match_record_to_pb(record: MatchRecord) -> pb.MatchRecord:
    """The full record once a match is over; while it is live, only what every seat may see."""
    over = record.status in ("finished", "aborted")
    seats = _seats(record) if over else [pb.SeatRecord(seat=s.seat, kind=s.kind, name=s.name, player=s.principal)
                                         for s in record.seats]
    return pb.MatchRecord(
        match_id=record.match_id, game_id=record.game_id, seed=record.seed, status=record.status,
        seats=seats, events=[event_to_pb(e) for e in record.events if over or e.visible_to(None)],
        outcomes=list(record.outcome or ()), end_reason=record.end_reason, params_json=json.dumps(record.params),
    )


def _unix_ms(when: datetime | None) -> int:
    if when is None:
        return 0
    return int((when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp() * 1000)


def match_summary_to_pb(record: MatchRecord, open_seats: int) -> pb.MatchSummary:
    """A listed match; seats' roles only once the match is over (they may be hidden while live)."""
    over = record.status in ("finished", "aborted")
    seats = [pb.SeatRecord(seat=s.seat, role=s.role if over else "", kind=s.kind, name=s.name, player=s.principal)
             for s in record.seats]
    return pb.MatchSummary(
        match_id=record.match_id, game_id=record.game_id, seed=record.seed, status=record.status,
        created_unix_ms=_unix_ms(record.created_at), finished_unix_ms=_unix_ms(record.finished_at),
        outcomes=list(record.outcome or ()), end_reason=record.end_reason, seats=seats, open_seats=open_seats,
    )


def rating_to_pb(entry) -> pb.RatingEntry:
    return pb.RatingEntry(game_id=entry.game_id, role=entry.role, player=entry.player, mu=entry.mu,
                          sigma=entry.sigma, ordinal=entry.ordinal, matches=entry.matches)
