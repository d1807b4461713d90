"""negotium.Agent and the runners (sync and asyncio): many seats over one stream, the protocol as agents see it."""

from __future__ import annotations

import asyncio

from conftest import genius, imported, with_external
from hosted_agents import AsyncGreedy, Greedy, Outsider, Raiser, Recorder

from negotium import Agent, Client, Response, Seat, play
from negotium.types import party_seed

ITEX = "y2010/ItexvsCypress"


def both_external(rounds: int = 30) -> str:
    return with_external(imported(genius(ITEX)), rounds=rounds)


def test_many_seats_of_many_sessions_share_one_stream(server):
    c = Client(server.address)
    created = [c.create_session(both_external(), seed=s, join_timeout=20) for s in range(4)]
    seats = [seat for cs in created for seat in cs.seats()]
    agents = [Recorder(0.6 + 0.05 * k) for k in range(len(seats))]
    res = play(agents, seats, server.address)
    assert set(res) == set(seats)
    for seat, agent in zip(seats, agents):
        r = res[seat]
        assert r.failure is None and r.error is None
        assert agent.started.session_id == seat.session_id and agent.started.party == seat.party
        assert r.result.session_id == seat.session_id and agent.result == r.result
        assert c.result(seat.session_id) == r.result
    # Both parties of a session saw the same session, from their own index.
    for cs in created:
        a, b = (agents[seats.index(s)] for s in cs.seats())
        assert {a.started.party_index, b.started.party_index} == {0, 1}
        assert a.started.parties == b.started.parties


def test_turns_carry_relative_time_wall_times_and_the_answer_window(server):
    c = Client(server.address)
    cs = c.create_session(both_external(rounds=25), seed=4, join_timeout=20)
    a, b = Recorder(0.95), Recorder(0.95)
    res = play([a, b], cs.seats(), server.address)
    r = res[cs.seats()[0]].result
    for agent in (a, b):
        s = agent.started
        assert s.deadline_rounds == 25 and s.deadline_seconds is None and s.protocol == "saop"
        assert s.turn_timeout_seconds == 30.0 and s.setup_seconds == 60.0, "as the server fixture sets them"
        assert s.seed == party_seed(r.seed, s.party_index), "party_seed as the proto defines it"
        for st in agent.states:
            assert st.time == (st.round + 1) / (25 + 1)
            assert st.remaining_seconds is None and st.answer_within_seconds > 0 and st.elapsed_seconds >= 0
        assert agent.states[0].answer_within_seconds > agent.states[-1].answer_within_seconds, "setup allowance on the first turn"
        elapsed = [st.elapsed_seconds for st in agent.states]
        assert elapsed == sorted(elapsed)
    opener = a if a.started.party_index == 0 else b
    assert opener.states[0].standing_offer is None and opener.states[0].round == 0
    other = b if opener is a else a
    assert other.states[0].standing_offer == opener.best and other.states[0].proposer == opener.started.party
    assert other.actions[0] == (opener.started.party, "offer")


def test_a_wall_time_deadline_shows_as_remaining_seconds(server):
    toml = both_external(rounds=20).replace("[protocol]\n", "[protocol]\nseconds = 30.0\n", 1)
    c = Client(server.address)
    cs = c.create_session(toml, join_timeout=20)
    a, b = Recorder(0.9), Recorder(0.9)
    play([a, b], cs.seats(), server.address)
    assert a.started.deadline_seconds == 30.0
    rem = [st.remaining_seconds for st in a.states]
    assert all(x is not None and 0 < x <= 30.0 for x in rem) and rem == sorted(rem, reverse=True)


class _BadAnswer(Greedy):
    def respond(self, state, offer):
        return "maybe"


def test_an_agent_that_fails_gives_up_only_its_own_seat(server):
    c = Client(server.address)
    one = with_external(imported(genius(ITEX)), parties=["ItexvsCypress_Itex"], rounds=20)
    sessions = [c.create_session(one, seed=k, join_timeout=20) for k in range(4)]
    seats = [s.seats()[0] for s in sessions] + [Seat(sessions[0].session_id, "ItexvsCypress_Cypress", "wrong")]
    agents = [Raiser(), Outsider(), _BadAnswer(), Greedy(0.7), Greedy()]
    res = play(agents, seats, server.address)
    raiser, outsider, bad, good, intruder = (res[s] for s in seats)
    assert raiser.failure == "agent Raiser raised ValueError: no answer today"
    assert raiser.result.violation.reason == "the agent left: agent Raiser raised ValueError: no answer today"
    assert outsider.failure.startswith("agent Outsider offered an outcome outside the domain: issue `Price` has no value")
    assert bad.failure.startswith("agent _BadAnswer raised TypeError: respond() returned 'maybe'")
    assert good.failure is None and good.result.ended_by == "agreement"
    assert intruder.error is not None and intruder.error.code in ("unauthenticated", "not-found") and intruder.result is None
    # The good seat's session is exactly what it is when played alone.
    alone = c.create_session(one, seed=3, join_timeout=20)
    again = play(Greedy(0.7), alone.seats(), server.address)[alone.seats()[0]].result
    assert again.record["trace"] == good.result.record["trace"] and again.utilities == good.result.utilities


def test_respond_may_return_a_bool_and_propose_none_ends_the_negotiation(server):
    class Quitter(Agent):
        def propose(self, state):
            return None

        def respond(self, state, offer):
            return False

    c = Client(server.address)
    cs = c.create_session(both_external(), join_timeout=20)
    res = play([Greedy(), Quitter()], cs.seats(), server.address)
    r = res[cs.seats()[0]].result
    assert r.ended_by == "end-negotiation" and r.record["ended_by_party"] == 1 and r.rounds == 1


def test_the_asyncio_runner_awaits_async_agents(server):
    from negotium.aio import play as aplay

    c = Client(server.address)
    cs = c.create_session(both_external(), seed=8, join_timeout=20)
    res = asyncio.run(aplay([AsyncGreedy(0.7), Greedy(0.7)], cs.seats(), server.address))
    r = res[cs.seats()[0]].result
    assert r.offers == 60 and r.ended_by == "deadline", "both offer their best outcome every round"
    # Same session, sync runner, plain agents: the same negotiation.
    cs2 = c.create_session(both_external(), seed=8, join_timeout=20)
    r2 = play([Greedy(0.7), Greedy(0.7)], cs2.seats(), server.address)[cs2.seats()[0]].result
    assert r2.record["trace"] == r.record["trace"]


def test_response_enum_and_end(server):
    class Ender(Greedy):
        def respond(self, state, offer):
            return Response.END

    c = Client(server.address)
    cs = c.create_session(both_external(), join_timeout=20)
    r = play([Greedy(), Ender()], cs.seats(), server.address)[cs.seats()[0]].result
    assert r.ended_by == "end-negotiation" and r.record["ended_by_party"] == 1
