"""The web pages in a real browser (Debian's Chromium through Playwright) against a real arena on
loopback: a person plays Kuhn poker (with a reload mid-match) and werewolf against bots, a
spectator watches a live hidden-role match, the training page draws a run's curves; and forged
socket messages, wrong seats, oversized text and missing keys are refused and change nothing.
Screenshots of every page go to the test's folder (`MARO_WEB_SHOTS` names another)."""

import asyncio
import json
import os
import shutil
from pathlib import Path

import aiohttp
import pytest

from maro.agents.seats import ServerSeats
from maro.arena.auth import add_principal
from maro.arena.transport.grpc.server import ArenaConfig, ArenaServer

playwright = pytest.importorskip("playwright.async_api")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium (make test installs Debian's chromium)")
RUN = Path(__file__).parents[2] / "docs" / "results" / "experiment" / "kuhn_poker-v1-maro-s0"


@pytest.fixture
async def web(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    server = ArenaServer(ArenaConfig(port=0, web_port=0, db=str(tmp_path / "m.sqlite"), runs=runs),
                         seats=ServerSeats())
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def browser():
    async with playwright.async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        await chromium.close()


@pytest.fixture
def shots(tmp_path):
    folder = Path(os.environ.get("MARO_WEB_SHOTS", tmp_path / "shots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def start_match(page, web, game, players=None, choices=None, seed=None):
    await page.goto(f"{web.web_address}?game={game}")
    if seed is not None:
        await page.fill("input[name=seed]", str(seed))
    if players is not None:
        await page.fill("input[name=players]", str(players))
        await page.dispatch_event("input[name=players]", "change")
        await page.wait_for_selector(f"select[name=seat{players - 1}]")
    for seat, value in (choices or {}).items():
        await page.select_option(f"select[name=seat{seat}]", value)
    await page.click("#start")
    await page.wait_for_url("**/play/*")
    return page.url.rsplit("/", 1)[1]


async def play_to_the_end(page, on_turn=None, limit=60):
    """Click the first legal action each turn until the end shows; returns the page's text at
    every turn (what the person saw while the match was live)."""
    seen = []
    for turn in range(limit):
        await page.wait_for_selector("#end h2, #turn button.action", timeout=20_000)
        if await page.query_selector("#end h2"):
            return seen
        seen.append(await page.inner_text("main"))
        if on_turn is not None:
            await on_turn(turn)
        button = page.locator("#turn button.action").first
        turn_text = await page.inner_text("#turn h2")
        await button.focus()
        await page.keyboard.press("Enter")  # keyboard play
        await page.wait_for_function("t => !document.querySelector('#turn h2') || "
                                     "document.querySelector('#turn h2').innerText !== t", arg=turn_text)
    raise AssertionError("the match did not end")


def secrets_of_others(record, seat):
    return [e.text for e in record.events if e.private_to and seat not in e.private_to]


async def test_a_person_plays_kuhn_poker_in_the_browser_and_a_reload_resumes_the_seat(web, browser, shots):
    page = await browser.new_page(viewport={"width": 390, "height": 844})  # a phone's width
    match_id = await start_match(page, web, "kuhn_poker-v1")
    await page.wait_for_selector("#turn button.action")
    card = await page.inner_text("#facts")
    assert "your card" in card
    await page.screenshot(path=shots / "play-kuhn.png", full_page=True)

    async def reload_once(turn):
        if turn == 0:
            await page.reload()
            await page.wait_for_selector("#turn button.action")
            assert await page.inner_text("#facts") == card  # the same seat, the same private card
            assert "Hand 1 begins" in await page.inner_text("#history")

    seen = await play_to_the_end(page, reload_once)
    await page.screenshot(path=shots / "play-kuhn-end.png", full_page=True)
    await web.service.wait(match_id)
    record = web.store.get_match(match_id)
    assert record.status == "finished" and "The match is over" in await page.inner_text("#end")
    assert record.seats[0].role in await page.inner_text("#seat-header")
    for text in seen:
        assert not any(secret in text for secret in secrets_of_others(record, 0))
    assert [z for z in record.outcome] and f"{record.outcome[0]:+.2f}" in await page.inner_text("#end")
    await page.reload()  # after the end: the page links the replay
    await page.click("text=Replay it")
    assert "omniscient" in await page.inner_text("main")


async def test_adapted_games_are_played_from_the_same_pages(web, browser):
    page = await browser.new_page()
    await page.goto(web.web_address)
    await page.fill("input[name=game]", "textarena:TicTacToe-v0")
    await page.dispatch_event("input[name=game]", "change")
    await page.wait_for_selector("select[name=seat1] option[value='bot:textarena-random']", state="attached")
    await page.click("#start")
    await page.wait_for_url("**/play/*")
    await play_to_the_end(page)
    record = web.store.get_match(page.url.rsplit("/", 1)[1])
    assert record.game_id == "textarena:TicTacToe-v0"
    await page.goto(f"{web.web_address}?game=nosuch-v9")
    assert "unknown game" in (await page.inner_text("main")).lower()


async def test_werewolf_is_playable_and_the_page_shows_only_the_own_role(web, browser, shots):
    page = await browser.new_page()
    match_id = await start_match(page, web, "werewolf-v1", seed=3)  # seat 0 is the werewolf: it acts at night
    await page.wait_for_selector("#seat-header strong#role")
    role = await page.inner_text("#role")
    assert role == "werewolf"
    seen = await play_to_the_end(page, limit=80)
    await page.screenshot(path=shots / "play-werewolf-end.png", full_page=True)
    await web.service.wait(match_id)
    record = web.store.get_match(match_id)
    assert record.status == "finished" and record.seats[0].role == role
    for text in seen:
        assert not any(secret in text for secret in secrets_of_others(record, 0))
    assert len(seen) >= 2  # the night's kill and the day's speech at least
    known = next(line for line in seen[0].splitlines() if line.startswith("known roles"))
    assert known == f"known roles: 0={role}"  # at the first turn: the own role, nobody else's


async def test_two_people_in_two_browsers_play_one_match_through_the_lobby(web, browser, shots):
    alice_context, bob_context = await browser.new_context(), await browser.new_context()  # apart: own cookies
    alice, bob = await alice_context.new_page(), await bob_context.new_page()
    match_id = await start_match(alice, web, "kuhn_poker-v1", choices={1: "open"})
    await bob.goto(web.web_address)
    assert match_id[:8] in await bob.inner_text("main")  # the open seat is listed
    await bob.click("text=Take a seat")
    await bob.wait_for_url(f"**/play/{match_id}")
    await bob.wait_for_selector("#seat-header strong")
    assert "seat 1" in await bob.inner_text("#seat-header")
    seen = await asyncio.gather(play_to_the_end(alice), play_to_the_end(bob))
    await bob.screenshot(path=shots / "play-two-people.png", full_page=True)
    await web.service.wait(match_id)
    record = web.store.get_match(match_id)
    assert record.status == "finished" and sum(len(s) for s in seen) >= 2
    for seat, texts in enumerate(seen):
        for text in texts:
            assert not any(secret in text for secret in secrets_of_others(record, seat))
    await alice_context.close()
    await bob_context.close()


async def test_a_spectator_sees_only_public_events_of_a_live_hidden_role_match(web, browser, shots):
    player, spectator = await browser.new_page(), await browser.new_page()
    match_id = await start_match(player, web, "werewolf-v1", seed=3)  # seat 0 is the werewolf: the night waits for it
    await player.wait_for_selector("#turn button.action")
    await spectator.goto(f"{web.web_address}watch/{match_id}")
    await spectator.wait_for_selector("#history li")
    await spectator.screenshot(path=shots / "watch-werewolf.png", full_page=True)
    watched = await spectator.inner_text("#history")
    record = web.store.get_match(match_id)
    assert record.status == "running"
    assert [e.text for e in record.events if not e.private_to][0] in watched
    assert not any(e.text in watched for e in record.events if e.private_to)
    replay = await spectator.goto(f"{web.web_address}replay/{match_id}?seat=all")  # live: public only
    replayed = await spectator.inner_text("#history")
    assert replay.ok and not any(e.text in replayed for e in record.events if e.private_to)
    await play_to_the_end(player, limit=80)
    await web.service.wait(match_id)
    await spectator.goto(f"{web.web_address}replay/{match_id}?seat=all")
    await spectator.screenshot(path=shots / "replay-omniscient.png", full_page=True)
    final, replayed = web.store.get_match(match_id), await spectator.inner_text("#history")
    assert any(e.private_to for e in final.events) and all(e.text in replayed for e in final.events)


async def test_the_training_page_draws_a_runs_curves_and_links_its_adapters(web, browser, shots):
    run = web.config.runs / "kuhn-maro"
    run.mkdir()
    shutil.copy(RUN / "metrics.jsonl", run / "metrics.jsonl")
    (run / "adapters" / "v0020").mkdir(parents=True)
    page = await browser.new_page()
    await page.goto(f"{web.web_address}runs")
    await page.click("text=kuhn-maro")
    await page.wait_for_selector("#charts[data-drawn]")
    assert await page.locator("#charts canvas").count() >= 5
    assert "v0020" in await page.inner_text("main")
    await page.screenshot(path=shots / "training.png", full_page=True)
    series = json.loads(await (await page.request.get(f"{web.web_address}runs/kuhn-maro/metrics.json")).text())
    assert len(series["x"]) == 20 and "valid action rate" in series["charts"]


async def test_forged_socket_messages_and_wrong_seats_are_refused_and_change_nothing(web):
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:  # cookies of 127.0.0.1
        async with session.post(f"{web.web_address}matches", allow_redirects=False,
                                data={"game": "kuhn_poker-v1", "you": "0", "seat1": "bot:kuhn-bot"}) as r:
            assert r.status == 303
            match_id = r.headers["Location"].rsplit("/", 1)[1]
        ws = await session.ws_connect(f"{web.web_address}ws/play/{match_id}")

        async def until(pattern, socket=None):
            while True:
                message = await asyncio.wait_for((socket or ws).receive_str(), 10)
                if pattern in message:
                    return message

        await until("Your turn")
        before = web.store.get_match(match_id)
        for forged, reason in [("not json", "malformed"), ("[1, 2]", "malformed"), ('{"turn": 1}', "neither"),
                               ('{"turn": 99, "action": "[Bet]"}', "stale action"),
                               ('{"turn": 1, "text": "raise everything"}', "Not valid"),
                               (json.dumps({"turn": 1, "text": "x" * 5000}), "at most")]:
            await ws.send_str(forged)
            assert reason in await until(reason)
        assert web.store.get_match(match_id).events == before.events
        await ws.send_str("y" * 20_000)  # over the socket's bound: closed, the seat kept
        assert (await ws.receive()).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
        await ws.close()
        again = await session.ws_connect(f"{web.web_address}ws/play/{match_id}")
        assert "Your turn" in await until("Your turn", again)  # the pending turn comes back
        await again.close()
    async with aiohttp.ClientSession(cookies={f"maro_seat_{match_id}": "forged-token-0123456789"}) as session:
        ws = await session.ws_connect(f"{web.web_address}ws/play/{match_id}")
        assert "not valid for this match" in await asyncio.wait_for(ws.receive_str(), 10)
        await ws.close()
        async with session.get(f"{web.web_address}play/{'0' * 32}") as r:
            assert r.status == 404 and "unknown match" in await r.text()
        bad_bot = {"game": "kuhn_poker-v1", "seat1": "bot:nobody"}
        async with session.post(f"{web.web_address}matches", data=bad_bot) as r:
            assert r.status == 400 and "nobody" in await r.text()
        async with session.post(f"{web.web_address}matches", data={"game": "x" * 20_000}) as r:
            assert r.status == 413


async def test_with_a_key_file_pages_ask_for_a_key_and_keep_it(tmp_path):
    keys = tmp_path / "keys.toml"
    key = add_principal(keys, "alice", "player")
    server = ArenaServer(ArenaConfig(port=0, web_port=0, db=str(tmp_path / "m.sqlite"), keys=keys), seats=ServerSeats())
    await server.start()
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            async with session.get(f"{server.web_address}matches") as r:
                assert r.status == 401 and "Your key" in await r.text()
            async with session.post(f"{server.web_address}login", data={"key": "maro_wrong", "next": "/matches"}) as r:
                assert r.status == 401
            elsewhere = {"key": key, "next": "//elsewhere.example"}
            async with session.post(f"{server.web_address}login", data=elsewhere) as r:
                assert r.status == 200 and str(r.url).endswith("/")  # never redirected off this server
            async with session.get(f"{server.web_address}matches") as r:
                assert r.status == 200 and "Matches" in await r.text()
            async with session.get(f"{server.web_address}ratings?game=kuhn_poker-v1") as r:
                assert r.status == 200 and "No rated matches yet" in await r.text()
    finally:
        await server.stop()
