"""negotium.Client and negotium.aio.AsyncClient against a running server."""

from __future__ import annotations

import asyncio
import threading

import pytest
from conftest import genius, imported, negotium_bin, start_server, with_external
from hosted_agents import Greedy, Recorder

from negotium import ActionEvent, Client, NegotiumError, Result, play
from negotium.aio import AsyncClient

ITEX = "y2010/ItexvsCypress"


def one_external(rounds: int = 30) -> str:
    toml = imported(genius(ITEX))
    return with_external(toml, parties=["ItexvsCypress_Itex"], rounds=rounds)


def wait_result(c: Client, session_id: str, seconds: float = 20.0) -> Result:
    """The result once the session is over (a cancelled session is analysed before it is kept)."""
    import time

    end = time.monotonic() + seconds
    while True:
        try:
            return c.result(session_id)
        except NegotiumError:
            if time.monotonic() > end:
                raise
            time.sleep(0.05)


def test_create_returns_a_token_per_external_party_and_an_owner_token(server):
    with Client(f"http://{server.address}") as c:
        s = c.create_session(one_external(), seed=3, join_timeout=5)
        assert set(s.tokens) == {"ItexvsCypress_Itex"} and all(s.tokens.values()) and s.owner_token
        assert s.seats() == [("%s" % s.session_id, "ItexvsCypress_Itex", s.tokens["ItexvsCypress_Itex"])]
        c.cancel(s.session_id, owner_token=s.owner_token)


def test_list_sessions_reads_every_page(server):
    with Client(server.address) as c:
        made = {c.create_session(one_external(), join_timeout=5).session_id for _ in range(5)}
        listed = c.list_sessions(page_size=2)
        ids = [s.session_id for s in listed]
        assert made <= set(ids)
        assert ids == sorted(ids), "in id order"
        waiting = [s for s in listed if s.session_id in made]
        assert all(s.state == "waiting" and s.waiting_for == ("ItexvsCypress_Itex",) for s in waiting)
        for sid in made:
            c.cancel(sid)


def test_watch_streams_actions_then_the_result_which_get_result_returns(server):
    with Client(server.address) as c:
        s = c.create_session(one_external(rounds=20), seed=9, join_timeout=10)
        events: list = []
        watcher = threading.Thread(target=lambda: events.extend(c.watch(s.session_id)))
        watcher.start()
        play(Greedy(0.8), s.seats(), server.address)
        watcher.join(30)
        actions = [e for e in events if isinstance(e, ActionEvent)]
        assert isinstance(events[-1], Result) and len(actions) >= 2
        assert actions[0].party == 0 and actions[0].action.kind == "offer" and actions[0].round == 0
        r = c.result(s.session_id)
        assert r == events[-1]
        assert r.offers == sum(1 for a in actions if a.action.kind == "offer")
        assert r.parties == ["ItexvsCypress_Cypress", "ItexvsCypress_Itex"]


def test_error_statuses_reach_python_clients_with_code_and_reason(server):
    """A refused call is a NegotiumError with the server's gRPC code and message.

    Fails while the server sends handler errors as a header block without
    END_STREAM followed by an empty DATA frame (src/net/auth.rs wraps every
    response body in `Tracked`, whose is_end_stream() is always false):
    gRPC C-core clients (Python, C++, Ruby, ...) then read "Stream removed"
    with status UNKNOWN instead of the status (tonic clients tolerate it).
    """
    with Client(server.address) as c:
        with pytest.raises(NegotiumError) as e:
            c.result("0" * 32)
        assert (e.value.code, "no session" in e.value.message) == ("NOT_FOUND", True), e.value


def test_refused_calls_raise_negotium_errors(server):
    with Client(server.address) as c:
        with pytest.raises(NegotiumError):
            c.create_session("name = 'x'\n[[issues]]\n")
        s = c.create_session(one_external(), join_timeout=5)
        with pytest.raises(NegotiumError):
            c.result(s.session_id)  # still running
        with pytest.raises(NegotiumError):
            c.create_session(one_external(), strategies={"ItexvsCypress_Itex": "boulware"})  # an external party
        with pytest.raises(NegotiumError):
            c.create_session(one_external(), first_party="nobody")
        c.cancel(s.session_id)
        assert wait_result(c, s.session_id).ended_by == "aborted"


def test_cancel_needs_the_owner_token_or_the_admin_token(tmp_path):
    secured = start_server(negotium_bin(), tmp_path / "serve.log", "--admin-token", "sesame")
    try:
        with pytest.raises(NegotiumError) as e:
            Client(secured.address).create_session(one_external())
        assert e.value.code == "UNAUTHENTICATED"
        admin = Client(secured.address, admin_token="sesame")
        s = admin.create_session(one_external(), join_timeout=5)
        with pytest.raises(NegotiumError):
            Client(secured.address).cancel(s.session_id, owner_token="not-it")
        Client(secured.address).cancel(s.session_id, owner_token=s.owner_token)
        assert wait_result(admin, s.session_id).ended_by == "aborted"
    finally:
        secured.proc.kill()
        secured.proc.wait()


def test_first_party_reorders_the_parties_and_strategies_replace_local_ones(server):
    toml = one_external(rounds=40)
    with Client(server.address) as c:
        results = {}
        for first, strategy in [(None, "boulware"), ("ItexvsCypress_Itex", "boulware"), (None, "conceder")]:
            s = c.create_session(toml, seed=1, join_timeout=10, first_party=first, strategies={"ItexvsCypress_Cypress": strategy})
            agent = Recorder(0.75)
            play(agent, s.seats(), server.address)
            results[(first, strategy)] = (agent, c.result(s.session_id))
        (a0, r0), (a1, r1), (a2, r2) = results.values()
        assert a0.started.parties == ("ItexvsCypress_Cypress", "ItexvsCypress_Itex") and a0.started.party_index == 1
        assert a1.started.parties == ("ItexvsCypress_Itex", "ItexvsCypress_Cypress") and a1.started.party_index == 0
        assert a1.states[0].standing_offer is None, "the first party opens"
        assert r1.record["trace"][0]["party"] == 0
        assert r0.record["strategies"] != r2.record["strategies"]
        assert r0.record["trace"] != r2.record["trace"], "conceder concedes differently from boulware"


def test_the_asyncio_client_does_the_same(server):
    async def main():
        async with AsyncClient(server.address) as c:
            s = await c.create_session(one_external(rounds=20), seed=2, join_timeout=10)
            ids = [x.session_id for x in await c.list_sessions(page_size=3)]
            assert s.session_id in ids
            from negotium.aio import play as aplay

            watched = asyncio.ensure_future(_collect(c.watch(s.session_id)))
            await asyncio.sleep(0.05)
            res = await aplay(Greedy(0.8), s.seats(), server.address)
            events = await asyncio.wait_for(watched, 30)
            r = await c.result(s.session_id)
            assert isinstance(events[-1], Result) and events[-1] == r
            assert res[s.seats()[0]].result == r
            with pytest.raises(NegotiumError):
                await c.result("f" * 32)

    asyncio.run(main())


async def _collect(it):
    return [e async for e in it]
