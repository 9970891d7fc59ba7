"""The werewolf-v1 bot: the seer leads with what it saw, the village follows, the pack hunts claimers."""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from maro.agents.bots import Bot, register_bot
from maro.arena.games.werewolf.text import choices, format_action

_SUSPECT = re.compile(r"suspect seat (\d+)", re.IGNORECASE)
_CLAIM = re.compile(r"I am the seer: seat (\d+) is a werewolf", re.IGNORECASE)
_CLEAR = re.compile(r"I am the seer: seat (\d+) is not a werewolf", re.IGNORECASE)
_PROPOSAL = re.compile(r"attack seat (\d+)", re.IGNORECASE)


def _accused(view: Mapping[str, Any]) -> Counter:
    """How often each living seat was suspected in today's speeches."""
    today = [s["text"] for s in view["speeches"] if s["day"] == view["day"]]
    seats = [int(m) for t in today for m in _SUSPECT.findall(t) + _CLAIM.findall(t)]
    return Counter(s for s in seats if s in view["alive"])


def _claims(view: Mapping[str, Any]) -> dict[int, int]:
    """Living seer claimers and the living seat each one last named as a werewolf."""
    claims = {}
    for speech in view["speeches"]:
        for named in _CLAIM.findall(speech["text"]):
            if speech["seat"] in view["alive"] and int(named) in view["alive"]:
                claims[speech["seat"]] = int(named)
    return claims


def _pick(preferred: Sequence[int], allowed: Sequence[int | None], rng: random.Random) -> int:
    """The first preferred seat that is allowed, else a random allowed seat."""
    seats = [s for s in allowed if s is not None]
    for seat in preferred:
        if seat in seats:
            return seat
    return rng.choice(seats)


def _wolves(view: Mapping[str, Any]) -> set[int]:
    return {int(s) for s, r in view["known_roles"].items() if r == "werewolf"}


def _pack_target(view: Mapping[str, Any], allowed: Sequence[int], rng: random.Random) -> int:
    """Tonight's proposal in the pack chat; else a seer claimer, else whoever accused a werewolf."""
    wolves = _wolves(view)
    proposals = [int(m) for c in view["pack_chat"] if c["night"] == view["day"] for m in _PROPOSAL.findall(c["text"])]
    accusers = [s["seat"] for s in reversed(view["speeches"])
                if any(int(m) in wolves for m in _SUSPECT.findall(s["text"]) + _CLAIM.findall(s["text"]))]
    return _pick(proposals[:1] + list(_claims(view)) + accusers, allowed, rng)


def _village_suspect(view: Mapping[str, Any], rng: random.Random, exclude: set[int]) -> int:
    """A seat the seer named, else the most suspected seat today, else a random one."""
    me, wolves = view["seat"], _wolves(view) - {view["seat"]}
    found = [s for s in wolves if s in view["alive"]] if view["role"] == "seer" else []
    named = list(_claims(view).values())
    popular = [s for s, _ in _accused(view).most_common()]
    allowed = [s for s in view["alive"] if s != me and s not in exclude]
    return _pick(found + named + popular, allowed or [s for s in view["alive"] if s != me], rng)


def _wolf_suspect(view: Mapping[str, Any], rng: random.Random) -> int:
    """Counter a seer claimer who named a werewolf, else join the crowd against a non-wolf."""
    wolves = _wolves(view)
    counter = [c for c, named in _claims(view).items() if named in wolves and c not in wolves]
    popular = [s for s, _ in _accused(view).most_common() if s not in wolves]
    return _pick(counter + popular, [s for s in view["alive"] if s not in wolves], rng)


def _cleared(view: Mapping[str, Any]) -> set[int]:
    """Seats the seer saw as innocent: its own visions, or what a seer claimer announced."""
    if view["role"] == "seer":
        return {v["seat"] for v in view["seer_visions"] if not v["werewolf"]}
    return {int(m) for s in view["speeches"] for m in _CLEAR.findall(s["text"]) if s["seat"] != view["seat"]}


def _speak(view: Mapping[str, Any], rng: random.Random) -> str:
    if view["role"] == "werewolf":
        return format_action("say", f"I am with the village. I suspect seat {_wolf_suspect(view, rng)}.")
    if view["role"] == "seer":
        found = [s for s in _wolves(view) if s in view["alive"]]
        if found:
            return format_action("say", f"I am the seer: seat {found[0]} is a werewolf. I suspect seat {found[0]}.")
        claimed = any(s["seat"] == view["seat"] and "I am the seer" in s["text"] for s in view["speeches"])
        cleared = sorted(s for s in _cleared(view) if s in view["alive"] and s != view["seat"])
        if claimed and cleared:
            suspect = _village_suspect(view, rng, _cleared(view))
            return format_action("say", f"I am the seer: seat {cleared[-1]} is not a werewolf. I suspect seat {suspect}.")
    suspect = _village_suspect(view, rng, _cleared(view))
    return format_action("say", f"I suspect seat {suspect}.")


def werewolf_policy(view: Mapping[str, Any], legal_actions: Sequence[str], rng: random.Random) -> str:
    """Night: the pack agrees on one victim in chat (a seer claimer or an accuser of a wolf first),
    the seer inspects seats it has not seen yet, the doctor guards a seer claimer or itself.
    Day: the seer names a werewolf it found; villagers echo the seer or the most suspected seat;
    werewolves accuse and vote against non-wolves, countering a seer who named one of them."""
    allowed = choices(view)
    role, phase = view["role"], view["phase"]
    if phase == "night_chat":
        return format_action("say", f"Let us attack seat {_pack_target(view, allowed_kill(view), rng)} tonight.")
    if phase == "day_talk":
        return _speak(view, rng)
    if phase == "day_vote":
        target = _wolf_suspect(view, rng) if role == "werewolf" else _village_suspect(view, rng, _cleared(view))
        return format_action("vote", target)
    (kind, seats), = allowed.items()
    if kind == "kill":
        return format_action(kind, _pack_target(view, seats, rng))
    if kind == "inspect":
        seen = {v["seat"] for v in view["seer_visions"]}
        fresh = [s for s in seats if s not in seen]
        return format_action(kind, rng.choice(fresh or list(seats)))
    return format_action(kind, _pick(list(_claims(view)) + [view["seat"]], seats, rng))


def allowed_kill(view: Mapping[str, Any]) -> list[int]:
    """Seats the pack may attack: the living non-wolves (asked during the chat, before the kill)."""
    return [s for s in view["alive"] if s not in _wolves(view)]


register_bot(Bot("werewolf-bot", "werewolf-v1", werewolf_policy))
