from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListGamesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GameInfo(_message.Message):
    __slots__ = ("id", "description", "roles", "min_players", "max_players", "action_format")
    ID_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    MIN_PLAYERS_FIELD_NUMBER: _ClassVar[int]
    MAX_PLAYERS_FIELD_NUMBER: _ClassVar[int]
    ACTION_FORMAT_FIELD_NUMBER: _ClassVar[int]
    id: str
    description: str
    roles: _containers.RepeatedScalarFieldContainer[str]
    min_players: int
    max_players: int
    action_format: str
    def __init__(self, id: _Optional[str] = ..., description: _Optional[str] = ..., roles: _Optional[_Iterable[str]] = ..., min_players: _Optional[int] = ..., max_players: _Optional[int] = ..., action_format: _Optional[str] = ...) -> None: ...

class ListGamesResponse(_message.Message):
    __slots__ = ("games", "families")
    GAMES_FIELD_NUMBER: _ClassVar[int]
    FAMILIES_FIELD_NUMBER: _ClassVar[int]
    games: _containers.RepeatedCompositeFieldContainer[GameInfo]
    families: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, games: _Optional[_Iterable[_Union[GameInfo, _Mapping]]] = ..., families: _Optional[_Iterable[str]] = ...) -> None: ...

class SeatPlan(_message.Message):
    __slots__ = ("kind", "bot", "name", "model", "api_base")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[SeatPlan.Kind]
        REMOTE: _ClassVar[SeatPlan.Kind]
        BOT: _ClassVar[SeatPlan.Kind]
        OPEN: _ClassVar[SeatPlan.Kind]
        MODEL: _ClassVar[SeatPlan.Kind]
    KIND_UNSPECIFIED: SeatPlan.Kind
    REMOTE: SeatPlan.Kind
    BOT: SeatPlan.Kind
    OPEN: SeatPlan.Kind
    MODEL: SeatPlan.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    BOT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    API_BASE_FIELD_NUMBER: _ClassVar[int]
    kind: SeatPlan.Kind
    bot: str
    name: str
    model: str
    api_base: str
    def __init__(self, kind: _Optional[_Union[SeatPlan.Kind, str]] = ..., bot: _Optional[str] = ..., name: _Optional[str] = ..., model: _Optional[str] = ..., api_base: _Optional[str] = ...) -> None: ...

class CreateMatchRequest(_message.Message):
    __slots__ = ("game_id", "seed", "params_json", "seats")
    GAME_ID_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    PARAMS_JSON_FIELD_NUMBER: _ClassVar[int]
    SEATS_FIELD_NUMBER: _ClassVar[int]
    game_id: str
    seed: int
    params_json: str
    seats: _containers.RepeatedCompositeFieldContainer[SeatPlan]
    def __init__(self, game_id: _Optional[str] = ..., seed: _Optional[int] = ..., params_json: _Optional[str] = ..., seats: _Optional[_Iterable[_Union[SeatPlan, _Mapping]]] = ...) -> None: ...

class SeatToken(_message.Message):
    __slots__ = ("seat", "token")
    SEAT_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    seat: int
    token: str
    def __init__(self, seat: _Optional[int] = ..., token: _Optional[str] = ...) -> None: ...

class CreateMatchResponse(_message.Message):
    __slots__ = ("match_id", "tokens")
    MATCH_ID_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    match_id: str
    tokens: _containers.RepeatedCompositeFieldContainer[SeatToken]
    def __init__(self, match_id: _Optional[str] = ..., tokens: _Optional[_Iterable[_Union[SeatToken, _Mapping]]] = ...) -> None: ...

class Join(_message.Message):
    __slots__ = ("match_id", "seat_token", "player_name")
    MATCH_ID_FIELD_NUMBER: _ClassVar[int]
    SEAT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PLAYER_NAME_FIELD_NUMBER: _ClassVar[int]
    match_id: str
    seat_token: str
    player_name: str
    def __init__(self, match_id: _Optional[str] = ..., seat_token: _Optional[str] = ..., player_name: _Optional[str] = ...) -> None: ...

class TokenLogprob(_message.Message):
    __slots__ = ("token", "token_id", "logprob")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    LOGPROB_FIELD_NUMBER: _ClassVar[int]
    token: str
    token_id: int
    logprob: float
    def __init__(self, token: _Optional[str] = ..., token_id: _Optional[int] = ..., logprob: _Optional[float] = ...) -> None: ...

class Behavior(_message.Message):
    __slots__ = ("messages_json", "completion", "logprobs", "model")
    MESSAGES_JSON_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_FIELD_NUMBER: _ClassVar[int]
    LOGPROBS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    messages_json: str
    completion: str
    logprobs: _containers.RepeatedCompositeFieldContainer[TokenLogprob]
    model: str
    def __init__(self, messages_json: _Optional[str] = ..., completion: _Optional[str] = ..., logprobs: _Optional[_Iterable[_Union[TokenLogprob, _Mapping]]] = ..., model: _Optional[str] = ...) -> None: ...

class Action(_message.Message):
    __slots__ = ("turn", "text", "behavior")
    TURN_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    BEHAVIOR_FIELD_NUMBER: _ClassVar[int]
    turn: int
    text: str
    behavior: Behavior
    def __init__(self, turn: _Optional[int] = ..., text: _Optional[str] = ..., behavior: _Optional[_Union[Behavior, _Mapping]] = ...) -> None: ...

class PlayRequest(_message.Message):
    __slots__ = ("join", "action")
    JOIN_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    join: Join
    action: Action
    def __init__(self, join: _Optional[_Union[Join, _Mapping]] = ..., action: _Optional[_Union[Action, _Mapping]] = ...) -> None: ...

class Observation(_message.Message):
    __slots__ = ("turn", "role", "view_json", "events")
    TURN_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    VIEW_JSON_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    turn: int
    role: str
    view_json: str
    events: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, turn: _Optional[int] = ..., role: _Optional[str] = ..., view_json: _Optional[str] = ..., events: _Optional[_Iterable[str]] = ...) -> None: ...

class TurnPrompt(_message.Message):
    __slots__ = ("turn", "attempt", "attempts_left", "observation", "legal_actions", "action_format", "deadline_unix_ms")
    TURN_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_LEFT_FIELD_NUMBER: _ClassVar[int]
    OBSERVATION_FIELD_NUMBER: _ClassVar[int]
    LEGAL_ACTIONS_FIELD_NUMBER: _ClassVar[int]
    ACTION_FORMAT_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    turn: int
    attempt: int
    attempts_left: int
    observation: Observation
    legal_actions: _containers.RepeatedScalarFieldContainer[str]
    action_format: str
    deadline_unix_ms: int
    def __init__(self, turn: _Optional[int] = ..., attempt: _Optional[int] = ..., attempts_left: _Optional[int] = ..., observation: _Optional[_Union[Observation, _Mapping]] = ..., legal_actions: _Optional[_Iterable[str]] = ..., action_format: _Optional[str] = ..., deadline_unix_ms: _Optional[int] = ...) -> None: ...

class Joined(_message.Message):
    __slots__ = ("match_id", "seat", "role", "game_id", "num_players")
    MATCH_ID_FIELD_NUMBER: _ClassVar[int]
    SEAT_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    GAME_ID_FIELD_NUMBER: _ClassVar[int]
    NUM_PLAYERS_FIELD_NUMBER: _ClassVar[int]
    match_id: str
    seat: int
    role: str
    game_id: str
    num_players: int
    def __init__(self, match_id: _Optional[str] = ..., seat: _Optional[int] = ..., role: _Optional[str] = ..., game_id: _Optional[str] = ..., num_players: _Optional[int] = ...) -> None: ...

class Accepted(_message.Message):
    __slots__ = ("turn",)
    TURN_FIELD_NUMBER: _ClassVar[int]
    turn: int
    def __init__(self, turn: _Optional[int] = ...) -> None: ...

class Rejection(_message.Message):
    __slots__ = ("turn", "reason", "attempts_left")
    TURN_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_LEFT_FIELD_NUMBER: _ClassVar[int]
    turn: int
    reason: str
    attempts_left: int
    def __init__(self, turn: _Optional[int] = ..., reason: _Optional[str] = ..., attempts_left: _Optional[int] = ...) -> None: ...

class MatchEnd(_message.Message):
    __slots__ = ("outcomes", "reason", "roles", "observation")
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    OBSERVATION_FIELD_NUMBER: _ClassVar[int]
    outcomes: _containers.RepeatedScalarFieldContainer[float]
    reason: str
    roles: _containers.RepeatedScalarFieldContainer[str]
    observation: Observation
    def __init__(self, outcomes: _Optional[_Iterable[float]] = ..., reason: _Optional[str] = ..., roles: _Optional[_Iterable[str]] = ..., observation: _Optional[_Union[Observation, _Mapping]] = ...) -> None: ...

class PlayResponse(_message.Message):
    __slots__ = ("joined", "observation", "turn", "accepted", "rejection", "end")
    JOINED_FIELD_NUMBER: _ClassVar[int]
    OBSERVATION_FIELD_NUMBER: _ClassVar[int]
    TURN_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    REJECTION_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    joined: Joined
    observation: Observation
    turn: TurnPrompt
    accepted: Accepted
    rejection: Rejection
    end: MatchEnd
    def __init__(self, joined: _Optional[_Union[Joined, _Mapping]] = ..., observation: _Optional[_Union[Observation, _Mapping]] = ..., turn: _Optional[_Union[TurnPrompt, _Mapping]] = ..., accepted: _Optional[_Union[Accepted, _Mapping]] = ..., rejection: _Optional[_Union[Rejection, _Mapping]] = ..., end: _Optional[_Union[MatchEnd, _Mapping]] = ...) -> None: ...

class GetMatchRequest(_message.Message):
    __slots__ = ("match_id",)
    MATCH_ID_FIELD_NUMBER: _ClassVar[int]
    match_id: str
    def __init__(self, match_id: _Optional[str] = ...) -> None: ...

class SeatRecord(_message.Message):
    __slots__ = ("seat", "role", "kind", "name", "player")
    SEAT_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PLAYER_FIELD_NUMBER: _ClassVar[int]
    seat: int
    role: str
    kind: str
    name: str
    player: str
    def __init__(self, seat: _Optional[int] = ..., role: _Optional[str] = ..., kind: _Optional[str] = ..., name: _Optional[str] = ..., player: _Optional[str] = ...) -> None: ...

class EventRecord(_message.Message):
    __slots__ = ("seq", "kind", "seat", "text", "private_to")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SEAT_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    PRIVATE_TO_FIELD_NUMBER: _ClassVar[int]
    seq: int
    kind: str
    seat: int
    text: str
    private_to: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, seq: _Optional[int] = ..., kind: _Optional[str] = ..., seat: _Optional[int] = ..., text: _Optional[str] = ..., private_to: _Optional[_Iterable[int]] = ...) -> None: ...

class MatchRecord(_message.Message):
    __slots__ = ("match_id", "game_id", "seed", "status", "seats", "events", "outcomes", "end_reason", "params_json")
    MATCH_ID_FIELD_NUMBER: _ClassVar[int]
    GAME_ID_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SEATS_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    END_REASON_FIELD_NUMBER: _ClassVar[int]
    PARAMS_JSON_FIELD_NUMBER: _ClassVar[int]
    match_id: str
    game_id: str
    seed: int
    status: str
    seats: _containers.RepeatedCompositeFieldContainer[SeatRecord]
    events: _containers.RepeatedCompositeFieldContainer[EventRecord]
    outcomes: _containers.RepeatedScalarFieldContainer[float]
    end_reason: str
    params_json: str
    def __init__(self, match_id: _Optional[str] = ..., game_id: _Optional[str] = ..., seed: _Optional[int] = ..., status: _Optional[str] = ..., seats: _Optional[_Iterable[_Union[SeatRecord, _Mapping]]] = ..., events: _Optional[_Iterable[_Union[EventRecord, _Mapping]]] = ..., outcomes: _Optional[_Iterable[float]] = ..., end_reason: _Optional[str] = ..., params_json: _Optional[str] = ...) -> None: ...

class ListMatchesRequest(_message.Message):
    __slots__ = ("game_id", "status", "since_unix_ms", "until_unix_ms", "limit")
    GAME_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SINCE_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    UNTIL_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    game_id: str
    status: str
    since_unix_ms: int
    until_unix_ms: int
    limit: int
    def __init__(self, game_id: _Optional[str] = ..., status: _Optional[str] = ..., since_unix_ms: _Optional[int] = ..., until_unix_ms: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class MatchSummary(_message.Message):
    __slots__ = ("match_id", "game_id", "seed", "status", "created_unix_ms", "finished_unix_ms", "outcomes", "end_reason", "seats", "open_seats")
    MATCH_ID_FIELD_NUMBER: _ClassVar[int]
    GAME_ID_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CREATED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    FINISHED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    END_REASON_FIELD_NUMBER: _ClassVar[int]
    SEATS_FIELD_NUMBER: _ClassVar[int]
    OPEN_SEATS_FIELD_NUMBER: _ClassVar[int]
    match_id: str
    game_id: str
    seed: int
    status: str
    created_unix_ms: int
    finished_unix_ms: int
    outcomes: _containers.RepeatedScalarFieldContainer[float]
    end_reason: str
    seats: _containers.RepeatedCompositeFieldContainer[SeatRecord]
    open_seats: int
    def __init__(self, match_id: _Optional[str] = ..., game_id: _Optional[str] = ..., seed: _Optional[int] = ..., status: _Optional[str] = ..., created_unix_ms: _Optional[int] = ..., finished_unix_ms: _Optional[int] = ..., outcomes: _Optional[_Iterable[float]] = ..., end_reason: _Optional[str] = ..., seats: _Optional[_Iterable[_Union[SeatRecord, _Mapping]]] = ..., open_seats: _Optional[int] = ...) -> None: ...

class ListMatchesResponse(_message.Message):
    __slots__ = ("matches",)
    MATCHES_FIELD_NUMBER: _ClassVar[int]
    matches: _containers.RepeatedCompositeFieldContainer[MatchSummary]
    def __init__(self, matches: _Optional[_Iterable[_Union[MatchSummary, _Mapping]]] = ...) -> None: ...

class FindSeatRequest(_message.Message):
    __slots__ = ("game_id", "player_name", "wait")
    GAME_ID_FIELD_NUMBER: _ClassVar[int]
    PLAYER_NAME_FIELD_NUMBER: _ClassVar[int]
    WAIT_FIELD_NUMBER: _ClassVar[int]
    game_id: str
    player_name: str
    wait: bool
    def __init__(self, game_id: _Optional[str] = ..., player_name: _Optional[str] = ..., wait: _Optional[bool] = ...) -> None: ...

class SeatAssignment(_message.Message):
    __slots__ = ("match_id", "seat", "seat_token", "address")
    MATCH_ID_FIELD_NUMBER: _ClassVar[int]
    SEAT_FIELD_NUMBER: _ClassVar[int]
    SEAT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    match_id: str
    seat: int
    seat_token: str
    address: str
    def __init__(self, match_id: _Optional[str] = ..., seat: _Optional[int] = ..., seat_token: _Optional[str] = ..., address: _Optional[str] = ...) -> None: ...

class SpectateRequest(_message.Message):
    __slots__ = ("match_id",)
    MATCH_ID_FIELD_NUMBER: _ClassVar[int]
    match_id: str
    def __init__(self, match_id: _Optional[str] = ...) -> None: ...

class SpectatorEvent(_message.Message):
    __slots__ = ("event", "end")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    event: EventRecord
    end: MatchEnd
    def __init__(self, event: _Optional[_Union[EventRecord, _Mapping]] = ..., end: _Optional[_Union[MatchEnd, _Mapping]] = ...) -> None: ...

class GetRatingsRequest(_message.Message):
    __slots__ = ("game_id", "role")
    GAME_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    game_id: str
    role: str
    def __init__(self, game_id: _Optional[str] = ..., role: _Optional[str] = ...) -> None: ...

class RatingEntry(_message.Message):
    __slots__ = ("game_id", "role", "player", "mu", "sigma", "ordinal", "matches")
    GAME_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    PLAYER_FIELD_NUMBER: _ClassVar[int]
    MU_FIELD_NUMBER: _ClassVar[int]
    SIGMA_FIELD_NUMBER: _ClassVar[int]
    ORDINAL_FIELD_NUMBER: _ClassVar[int]
    MATCHES_FIELD_NUMBER: _ClassVar[int]
    game_id: str
    role: str
    player: str
    mu: float
    sigma: float
    ordinal: float
    matches: int
    def __init__(self, game_id: _Optional[str] = ..., role: _Optional[str] = ..., player: _Optional[str] = ..., mu: _Optional[float] = ..., sigma: _Optional[float] = ..., ordinal: _Optional[float] = ..., matches: _Optional[int] = ...) -> None: ...

class GetRatingsResponse(_message.Message):
    __slots__ = ("ratings",)
    RATINGS_FIELD_NUMBER: _ClassVar[int]
    ratings: _containers.RepeatedCompositeFieldContainer[RatingEntry]
    def __init__(self, ratings: _Optional[_Iterable[_Union[RatingEntry, _Mapping]]] = ...) -> None: ...
