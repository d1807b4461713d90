"""negotium.utility: the domain, enumeration and the party's utility function, exactly as the server computes them."""

from __future__ import annotations

import math

import pytest
from conftest import genius, imported, with_external

from negotium import Client, Domain, Issue, OutcomeError, UtilityFunction, ValueFunction, play
from negotium.utility import Rectangle, outcome_from_pb

# ------------------------------------------------------------------ without a server


def small() -> Domain:
    return Domain(
        "d",
        (
            Issue.discrete("colour", ["red", "green", "blue"]),
            Issue.integer("qty", 2, 4),
            Issue.discrete("term", ["short", "long"]),
        ),
    )


def test_enumeration_is_mixed_radix_with_the_last_issue_fastest():
    d = small()
    assert d.cardinality == 18
    outcomes = list(d.outcomes())
    assert outcomes[0] == {"colour": "red", "qty": 2, "term": "short"}
    assert outcomes[1] == {"colour": "red", "qty": 2, "term": "long"}
    assert outcomes[2] == {"colour": "red", "qty": 3, "term": "short"}
    assert outcomes[6] == {"colour": "green", "qty": 2, "term": "short"}
    assert [d.index_of(o) for o in outcomes] == list(range(18))
    assert len({tuple(o.values()) for o in outcomes}) == 18


def test_real_issues_are_not_enumerated():
    d = Domain("r", (Issue.real("price", 0.0, 1.0), Issue.integer("n", 0, 3)))
    assert d.cardinality is None and not d.enumerable
    with pytest.raises(ValueError, match="real"):
        list(d.outcomes())


def test_value_functions_follow_negotiums_definitions():
    colour, qty = small().issues[0], small().issues[1]
    table = ValueFunction("table", utilities=(0.1, 0.5))
    assert table(colour, "green") == 0.5
    assert table(colour, "blue") == 0.0, "past the table's end counts 0"
    assert table(qty, 3) == 0.5, "integer tables are indexed by x - min"
    # Linear on a discrete issue measures the value's index.
    lin = ValueFunction("linear", slope=0.4, offset=0.1, origin=0.0)
    assert lin(colour, "blue") == 0.1 + 0.4 * (2.0 - 0.0)
    assert lin(qty, 4) == 1.0, "clamped to [0, 1]"
    assert ValueFunction("linear", slope=-1.0, offset=0.0, origin=0.0)(qty, 3) == 0.0
    tri = ValueFunction("triangular", low=2.0, peak=3.0, high=4.0)
    assert (tri(qty, 2), tri(qty, 3), tri(qty, 4)) == (0.0, 1.0, 0.0)
    edge = ValueFunction("triangular", low=2.0, peak=2.0, high=4.0)
    assert edge(qty, 2) == 1.0, "x at low that is the peak counts 1"
    assert ValueFunction("constant", utility=0.3)(qty, 2) == 0.3


def test_linear_additive_sums_left_to_right_from_zero():
    d = Domain("s", tuple(Issue.discrete(n, ["x"]) for n in "abc"))
    u = UtilityFunction.linear_additive(d, [0.1, 0.2, 0.3], [ValueFunction("constant", utility=1.0)] * 3)
    # ((0.0 + 0.1) + 0.2) + 0.3, not 0.1 + (0.2 + 0.3) == 0.6: the order is part of the contract.
    assert u({"a": "x", "b": "x", "c": "x"}) == 0.6000000000000001
    assert u.utilities_of_all() == [0.6000000000000001]


def test_hyper_rectangles_aggregate_clamp_and_exclude():
    d = Domain("h", (Issue.integer("x", 0, 9), Issue.integer("y", 0, 9)))
    rects = [Rectangle(30.0, ((0, 0.0, 4.0),)), Rectangle(50.0, ((0, 3.0, 9.0), (1, 5.0, 9.0)))]
    o = {"x": 3, "y": 6}
    assert UtilityFunction.hyper_rectangles(d, rects, "sum", 100.0)(o) == 0.8
    assert UtilityFunction.hyper_rectangles(d, rects, "min", 100.0)(o) == 0.3
    assert UtilityFunction.hyper_rectangles(d, rects, "max", 40.0)(o) == 1.0, "capped at 1"
    assert UtilityFunction.hyper_rectangles(d, rects, "sum", 100.0)({"x": 9, "y": 0}) == 0.0
    assert UtilityFunction.hyper_rectangles(d, rects, "sum", 0.0)(o) == 0.0, "max_utility <= 0 counts 0"
    ex = [Rectangle(1.0, ((0, 0.0, 9.0),), ((1, 5.0, 6.0),))]
    assert UtilityFunction.hyper_rectangles(d, ex)({"x": 1, "y": 5}) == 0.0
    assert UtilityFunction.hyper_rectangles(d, ex)({"x": 1, "y": 7}) == 1.0


def test_discount_reservation_best_and_worst():
    d = small()
    u = UtilityFunction.linear_additive(
        d,
        [0.5, 0.3, 0.2],
        [ValueFunction("table", utilities=(1.0, 0.5, 1.0)), ValueFunction("linear", slope=0.5, offset=0.0, origin=2.0), ValueFunction("table", utilities=(0.0, 1.0))],
        reservation_value=0.4,
        discount=0.5,
    )
    assert u.discounted(0.8, 0.5) == 0.8 * 0.5**0.5
    assert UtilityFunction.linear_additive(d, [1, 0, 0], [ValueFunction("constant", utility=1.0)] * 3).discounted(0.8, 0.5) == 0.8
    # Ties: red and blue are worth the same; the lowest enumeration index wins.
    assert u.best() == {"colour": "red", "qty": 4, "term": "long"}
    assert u.worst() == {"colour": "green", "qty": 2, "term": "short"}
    ranked = u.ranked()
    assert ranked[0][1] == u.best() and ranked[-1][1] == u.worst()
    assert all(a[0] >= b[0] for a, b in zip(ranked, ranked[1:]))
    assert all(x >= 0.4 for x, _ in u.ranked(rational_only=True))
    assert u.utilities_of_all() == [u(o) for o in d.outcomes()]


def test_outcomes_are_checked_and_coerced():
    d = small()
    assert d.coerce({"colour": "red", "qty": 3.0, "term": "long"})["qty"] == 3
    for bad, why in [
        ({"colour": "pink", "qty": 3, "term": "long"}, "no value 'pink'"),
        ({"colour": "red", "qty": 7, "term": "long"}, "outside"),
        ({"colour": "red", "qty": 3}, "no value for issue `term`"),
        ({"colour": "red", "qty": 3, "term": "long", "x": 1}, "no issue named 'x'"),
        ({"colour": "red", "qty": "3", "term": "long"}, "takes an int"),
        (("red", 3, "long"), "dict"),
    ]:
        with pytest.raises(OutcomeError, match=why):
            d.coerce(bad)
    assert d.check({"colour": "red", "qty": 3, "term": "long"}) is None


def test_wire_forms_round_trip():
    from negotium._pb import pb

    d = small()
    o = {"colour": "blue", "qty": 4, "term": "short"}
    wire = d.outcome_to_pb(o)
    assert outcome_from_pb(wire) == o
    pd = pb.Domain(
        name="d",
        issues=[
            pb.Issue(name="colour", discrete=pb.DiscreteIssue(values=["red", "green", "blue"])),
            pb.Issue(name="qty", integer=pb.IntegerIssue(min=2, max=4)),
            pb.Issue(name="price", real=pb.RealIssue(min=0.5, max=2.5)),
        ],
    )
    back = Domain.from_pb(pd)
    assert [i.kind for i in back.issues] == ["discrete", "integer", "real"]
    assert outcome_from_pb(back.outcome_to_pb({"colour": "red", "qty": 2, "price": 1.25})) == {"colour": "red", "qty": 2, "price": 1.25}


# ------------------------------------------------------------------ against the server

SYNTHETIC = """
name = "synthetic"
seed = 11
[protocol]
rounds = 60

[[issues]]
name = "colour"
type = "discrete"
values = ["red", "green", "blue", "black"]

[[issues]]
name = "qty"
type = "integer"
min = 3
max = 12

[[issues]]
name = "price"
type = "real"
min = 0.5
max = 99.5

[[issues]]
name = "speed"
type = "real"
min = 0.0
max = 1.0

[[parties]]
name = "buyer"
external = true
reservation = 0.21
discount = 0.93
weights = { colour = 0.13, qty = 0.29, price = 0.41, speed = 0.17 }
values.colour = { red = 0.3, green = 1.0, blue = 0.7, black = 0.1 }
values.qty = { table = [0.0, 0.1, 0.25, 0.4, 0.55, 0.7, 0.8, 0.9, 0.95, 1.0] }
values.price = { triangular = [0.5, 17.25, 99.5] }
values.speed = { constant = 0.61 }

[[parties]]
name = "seller"
external = true
reservation = 0.35
discount = 0.81
weights = { colour = 0.27, qty = 0.19, price = 0.33, speed = 0.21 }
values.colour = { red = 1.0, green = 0.2, blue = 0.6, black = 0.45 }
values.qty = { linear = [1.0, 0.1] }
values.price = { linear = [0.0, 1.0] }
values.speed = { triangular = [0.0, 0.7, 1.0] }
"""


def _bit_equal_session(server, toml: str, accept_at: int | None, rectangles: bool = False) -> tuple[int, object]:
    """Plays a session of random offers; checks every utility the record holds against our evaluation."""
    from hosted_agents import RandomOffers

    c = Client(server.address)
    created = c.create_session(toml, seed=5, join_timeout=30)
    agents = {p: RandomOffers(accept_at, rectangles) for p in created.tokens}
    res = play([agents[p] for p in created.tokens], created.seats(), server.address)
    r = next(iter(res.values())).result
    assert r is not None, res
    rec = r.record
    sessions = sorted((a.session for a in agents.values()), key=lambda s: s.party_index)
    ufuns = [s.ufun for s in sessions]
    checked = 0
    for e in rec["trace"]:
        if e["action"] != "offer":
            continue
        ours = [u(e["outcome"]) for u in ufuns]
        assert ours == e["utilities"], (e, ours)  # float == float: bit-equal (no NaN here)
        checked += len(ours)
    t = rec["time"]
    if r.agreement is not None:
        raw = [u(r.agreement) for u in ufuns]
        assert raw == rec["undiscounted_utilities"]
        assert [u.discounted(x, t) for u, x in zip(ufuns, raw)] == list(r.utilities)
        checked += 2 * len(raw)
    else:
        assert rec["undiscounted_utilities"] == [u.reservation_value for u in ufuns]
    c.close()
    return checked, r


@pytest.mark.parametrize(
    "domain",
    ["y2010/ItexvsCypress", "y2012/CameraB", "y2012/AirportSiteSelectionA", "y2011/Grocery", "y2015/group9-vacation", "y2016/Grandma"],
)
def test_utilities_are_bit_equal_to_the_servers_on_anac_domains(server, domain):
    toml = with_external(imported(genius(domain)), rounds=40)
    checked, r = _bit_equal_session(server, toml, accept_at=25)
    assert r.ended_by == "agreement" and checked >= 100


def test_hyper_rectangle_utilities_are_bit_equal_to_the_servers(server):
    toml = with_external(imported(genius("y2014/10issuesDiscountedwithRV")), rounds=40)
    checked, r = _bit_equal_session(server, toml, accept_at=30, rectangles=True)
    assert r.ended_by == "agreement" and checked >= 100
    # Most random outcomes of 10^10 are worth 0; offers inside rectangles must not all be.
    assert any(u > 0 for e in r.record["trace"] if e["action"] == "offer" for u in e["utilities"])


def test_real_issues_and_every_value_function_kind_are_bit_equal(server):
    checked, r = _bit_equal_session(server, SYNTHETIC, accept_at=33)
    assert r.ended_by == "agreement" and checked >= 100
    assert isinstance(r.agreement["price"], float) and isinstance(r.agreement["qty"], int)
    assert r.record["time"] == (33 + 1) / (60 + 1)


def test_no_agreement_pays_the_reservation_value(server):
    checked, r = _bit_equal_session(server, SYNTHETIC, accept_at=None)
    assert r.ended_by == "deadline" and r.rounds == 60
    # The server discounts the reservation value at the session's last relative time.
    rec = r.record
    assert list(r.utilities) == [0.21 * 0.93 ** rec["time"], 0.35 * 0.81 ** rec["time"]]
    assert math.isclose(rec["time"], 60 / 61)
