"""negotium.negmas_adapter: the outcome space and utility functions NegMAS sees, and the lockstep mechanism."""

from __future__ import annotations

import pytest
from conftest import genius, imported, require_negmas, with_external

from negotium import Client, play

require_negmas()

import negmas  # noqa: E402
from negmas.sao import SAONegotiator  # noqa: E402

from negotium.negmas_adapter import NegMASAgent, from_negmas, make_outcome_space, make_ufun, to_negmas  # noqa: E402


def sessions_of(server, toml):
    from fidelity import settings_of

    return settings_of(server, toml)


@pytest.mark.parametrize("domain", ["y2010/ItexvsCypress", "y2012/CameraB", "y2016/Grandma"])
def test_negmas_utilities_are_bit_equal_to_negotiums_on_every_outcome(server, domain):
    for s in sessions_of(server, with_external(imported(genius(domain)))):
        os_ = make_outcome_space(s.domain)
        nu = make_ufun(s.ufun, os_)
        n = 0
        for o in s.domain.outcomes():
            assert nu(to_negmas(s.domain, o)) == s.ufun(o)
            n += 1
        assert n == s.domain.cardinality
        assert nu.reserved_value == s.ufun.reservation_value
        if s.ufun.discount < 1:
            assert isinstance(nu, negmas.preferences.discounted.ExpDiscountedUFun)
            assert nu.discount == s.ufun.discount and nu.factor == "relative_time"


def test_the_outcome_space_uses_strings_ints_and_floats(server):
    from test_utility import SYNTHETIC

    s = sessions_of(server, SYNTHETIC)[0]
    issues = make_outcome_space(s.domain).issues
    assert [type(i).__name__ for i in issues] == ["CategoricalIssue", "ContiguousIssue", "ContinuousIssue", "ContinuousIssue"]
    assert list(issues[0].all) == ["red", "green", "blue", "black"]
    assert (issues[1].min_value, issues[1].max_value) == (3, 12)
    o = {"colour": "blue", "qty": 7, "price": 12.5, "speed": 0.25}
    t = to_negmas(s.domain, o)
    assert t == ("blue", 7, 12.5, 0.25) and from_negmas(s.domain, t) == o
    nu = make_ufun(s.ufun, make_outcome_space(s.domain))
    assert nu(t) == s.ufun(o)


def test_hyper_rectangle_profiles_delegate_to_negotium(server):
    s = sessions_of(server, with_external(imported(genius("y2014/10issues"))))[0]
    nu = make_ufun(s.ufun)
    best_rect = max(s.ufun.rectangles, key=lambda r: r.utility)
    o = {i.name: i.value_at(0) for i in s.domain.issues}
    for k, lo, hi in best_rect.includes:
        issue = s.domain.issues[k]
        o[issue.name] = max(int(issue.min), min(int(issue.max), int(-(-lo // 1))))
    assert nu(to_negmas(s.domain, o)) == s.ufun(o)
    assert s.ufun(o) > 0


class _Inspector(SAONegotiator):
    """Records what NegMAS tells a negotiator: its NMI, states and callbacks."""

    log: list = []

    def on_negotiation_start(self, state):
        nmi = self.nmi
        _Inspector.log.append(("start", nmi.n_steps, nmi.n_negotiators, list(nmi.negotiator_ids), state.step))

    def on_partner_proposal(self, state, partner_id, offer):
        _Inspector.log.append(("partner", state.step, partner_id, offer))

    def on_negotiation_end(self, state):
        _Inspector.log.append(("end", state.step, state.agreement, state.broken, state.timedout))

    def propose(self, state, dest=None):
        _Inspector.log.append(("propose", state.step, state.relative_time))
        return self.ufun.best()

    def respond(self, state, source=None):
        from negmas.sao import ResponseType

        _Inspector.log.append(("respond", state.step, state.current_offer))
        return ResponseType.ACCEPT_OFFER if state.step >= 3 else ResponseType.REJECT_OFFER


def test_a_hosted_negotiator_sees_nmi_state_and_callbacks_as_in_saomechanism(server):
    from hosted_agents import Greedy

    toml = with_external(imported(genius("y2010/ItexvsCypress")), rounds=20)
    c = Client(server.address)
    created = c.create_session(toml, join_timeout=30)
    parties = list(created.tokens)
    _Inspector.log = []
    adapter = NegMASAgent(_Inspector)
    greedy = Greedy(threshold=1.1)  # never accepts
    res = play([greedy, adapter], created.seats(), server.address)
    r = res[created.seats()[1]].result
    assert r is not None and r.ended_by == "agreement" and r.rounds == 4
    log = _Inspector.log
    assert log[0][:3] == ("start", 20, 2) and log[0][4] == 0
    assert log[0][3][0] == parties[0], "the other party's proxy carries its party name"
    # The opponent opened: a partner proposal before the first respond, each step.
    kinds = [e[0] for e in log]
    assert kinds[1:3] == ["partner", "respond"]
    props = [e for e in log if e[0] == "propose"]
    assert [p[1] for p in props] == [0, 1, 2]
    assert [p[2] for p in props] == [(s + 1) / 21 for s in range(3)], "NegMAS relative time (step+1)/(n_steps+1)"
    assert log[-1][0] == "end" and log[-1][2] is not None
    # The agreement the mechanism reached is the session's.
    assert dict(zip([i.name for i in adapter.session.domain.issues], log[-1][2])) == r.agreement


class _Crashes(SAONegotiator):
    def propose(self, state, dest=None):
        raise RuntimeError("negotiator bug")


def test_a_negotiator_that_raises_gives_up_its_seat_with_the_reason(server):
    from hosted_agents import Greedy

    toml = with_external(imported(genius("y2010/ItexvsCypress")), rounds=20)
    c = Client(server.address)
    created = c.create_session(toml, join_timeout=30)
    res = play([NegMASAgent(_Crashes), Greedy()], created.seats(), server.address)
    seat = created.seats()[0]
    assert res[seat].failure == "agent _Crashes raised RuntimeError: negotiator bug"
    r = res[seat].result
    assert r.ended_by == "violation" and r.violation.reason == "the agent left: agent _Crashes raised RuntimeError: negotiator bug"


def test_negotiators_are_found_by_import_path_with_parameters():
    a = NegMASAgent("negmas.sao:AspirationNegotiator", {"max_aspiration": 0.9})
    assert a.name == "AspirationNegotiator"
    assert a.make_negotiator("p").name == "p"
    from negotium._loading import AgentSpecError, agent_factory

    with pytest.raises(AgentSpecError, match="unexpected keyword argument 'nonsense'"):
        agent_factory("negmas_genius_agents:HardHeaded", {"nonsense": 1})
    with pytest.raises(AgentSpecError, match="takes no parameter 'nonsense'; it takes threshold"):
        agent_factory("hosted_agents:Greedy", {"nonsense": 1})
