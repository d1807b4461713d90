"""Domains, outcomes and a party's own utility function, as negotium computes them.

An agent is told its domain and its own preferences (``SessionSettings``:
``Domain`` and ``Profile``). This module rebuilds both in Python so that an
agent evaluates outcomes with *exactly* the floats the server uses for the
result's utilities, not merely close ones: every formula below follows
negotium's Rust code (``src/core/utility.rs``, ``src/core/domain.rs``)
operation for operation.

* A linear-additive utility is ``sum(w_i * f_i(v_i))`` added left to right,
  in issue order, starting from 0.0.
* Value functions: ``table`` (discrete issues by value index, integer issues
  by ``x - min``, 0.0 past the table's end), ``linear``
  (``clamp(offset + slope * (x - origin), 0, 1)``, where ``x`` is the value
  index for discrete issues), ``triangular`` (0 at ``low`` and ``high``, 1 at
  ``peak``) and ``constant``.
* Hyper-rectangles (ANAC 2014): the utilities of the rectangles an outcome
  lies in (every ``includes`` range holds its value, no ``excludes`` range
  does; ranges are closed) aggregated by ``sum``, ``min`` or ``max``, divided
  by ``max_utility`` and clamped to [0, 1].
* Discounting: ``u * discount ** t`` at relative time ``t``, no discount
  where ``discount >= 1``.

Outcomes are dicts ``{issue name: value}``: ``str`` for discrete issues,
``int`` for integer issues, ``float`` for real ones. Enumeration follows
negotium's mixed radix (the last issue varies fastest), so outcome indexes
agree with the server's.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:  # pragma: no cover
    from negotium.v1 import negotiation_pb2 as _pbm

Value = Union[str, int, float]
"""One issue's value: ``str`` (discrete), ``int`` (integer) or ``float`` (real)."""

Outcome = dict[str, Value]
"""One value per issue, by issue name."""

DISCRETE = "discrete"
INTEGER = "integer"
REAL = "real"

ENUMERATION_LIMIT = 1 << 22
"""Largest space :meth:`UtilityFunction.best` and friends enumerate (negotium's limit)."""


class OutcomeError(ValueError):
    """An outcome that does not belong to the domain (says which issue and why)."""


def _clamp(x: float, lo: float, hi: float) -> float:
    """Rust's ``f64::clamp``: NaN stays NaN."""
    if x < lo:
        return lo
    if x > hi:
        return hi
    return x


# ------------------------------------------------------------------ domain


@dataclass(frozen=True)
class Issue:
    """One issue of a domain.

    ``kind`` is ``"discrete"`` (``values`` lists the options), ``"integer"``
    (every int in ``[min, max]``) or ``"real"`` (every float in ``[min, max]``).
    ``unit``, ``display`` and ``labels`` are how the scenario shows values to
    people; they never change what is negotiated.
    """

    name: str
    kind: str
    values: tuple[str, ...] = ()
    min: float = 0
    max: float = 0
    unit: str = ""
    display: str = ""
    labels: Mapping[str, str] = field(default_factory=dict, hash=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in (DISCRETE, INTEGER, REAL):
            raise ValueError(f"issue `{self.name}`: unknown kind {self.kind!r}")
        # Value -> index, for table lookups in O(1).
        object.__setattr__(self, "_index", {v: k for k, v in enumerate(self.values)})

    @classmethod
    def discrete(cls, name: str, values: list[str] | tuple[str, ...]) -> Issue:
        return cls(name, DISCRETE, values=tuple(values))

    @classmethod
    def integer(cls, name: str, min: int, max: int) -> Issue:  # noqa: A002 - the field names
        return cls(name, INTEGER, min=int(min), max=int(max))

    @classmethod
    def real(cls, name: str, min: float, max: float) -> Issue:  # noqa: A002
        return cls(name, REAL, min=float(min), max=float(max))

    @property
    def cardinality(self) -> int | None:
        """Number of values; ``None`` for real issues (uncountable)."""
        if self.kind == DISCRETE:
            return len(self.values)
        if self.kind == INTEGER:
            return max(0, int(self.max) - int(self.min) + 1)
        return None

    def value_at(self, k: int) -> Value:
        """The ``k``-th value (discrete and integer issues)."""
        if self.kind == DISCRETE:
            return self.values[k]
        if self.kind == INTEGER:
            return int(self.min) + k
        raise ValueError(f"issue `{self.name}` is real: its values cannot be enumerated")

    def index_of(self, v: Value) -> int:
        """Index of a discrete value; ``x - min`` for integer issues."""
        if self.kind == DISCRETE:
            k = self._index.get(v)  # type: ignore[attr-defined]
            if k is None:
                raise OutcomeError(f"issue `{self.name}` has no value {v!r}")
            return k
        if self.kind == INTEGER:
            return int(v) - int(self.min)
        raise OutcomeError(f"issue `{self.name}` is real: its values have no index")

    def number(self, v: Value) -> float:
        """The value as negotium's ``Value::as_f64`` sees it: the index for discrete values."""
        if self.kind == DISCRETE:
            return float(self.index_of(v))
        return float(v)

    def check(self, v: object) -> str | None:
        """Why ``v`` is not a value of this issue, or ``None`` if it is."""
        if self.kind == DISCRETE:
            if not isinstance(v, str):
                return f"issue `{self.name}` takes one of {list(self.values)!r}, not {v!r}"
            if v not in self._index:  # type: ignore[attr-defined]
                return f"issue `{self.name}` has no value {v!r}"
            return None
        if self.kind == INTEGER:
            if isinstance(v, bool) or not isinstance(v, int):
                return f"issue `{self.name}` takes an int in [{self.min}, {self.max}], not {v!r}"
            if not (self.min <= v <= self.max):
                return f"issue `{self.name}`: {v} is outside [{self.min}, {self.max}]"
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return f"issue `{self.name}` takes a number in [{self.min}, {self.max}], not {v!r}"
        if not (self.min <= float(v) <= self.max):
            return f"issue `{self.name}`: {v} is outside [{self.min}, {self.max}]"
        return None

    def coerce(self, v: object) -> Value:
        """``v`` as this issue's Python type (e.g. a numpy integer as ``int``); raises OutcomeError."""
        x: Any = v
        if self.kind == INTEGER and not isinstance(x, (bool, str)):
            try:
                if float(x) == int(x):  # a numpy integer, or 3.0
                    v = int(x)
            except (TypeError, ValueError, OverflowError):
                pass
        elif self.kind == REAL and not isinstance(x, (bool, str)):
            try:
                v = float(x)
            except (TypeError, ValueError):
                pass
        elif self.kind == DISCRETE and not isinstance(v, str) and v is not None:
            v = str(v)
        why = self.check(v)
        if why is not None:
            raise OutcomeError(why)
        return v  # type: ignore[return-value]


@dataclass(frozen=True)
class Domain:
    """The issues under negotiation, in order; an outcome gives each one value."""

    name: str
    issues: tuple[Issue, ...]

    @property
    def issue_names(self) -> list[str]:
        return [i.name for i in self.issues]

    @property
    def cardinality(self) -> int | None:
        """Number of outcomes; ``None`` where an issue is real."""
        n = 1
        for issue in self.issues:
            c = issue.cardinality
            if c is None:
                return None
            n *= c
        return n

    @property
    def enumerable(self) -> bool:
        c = self.cardinality
        return c is not None and c <= ENUMERATION_LIMIT

    def outcome_at(self, k: int) -> Outcome:
        """The ``k``-th outcome in negotium's enumeration order (mixed radix, last issue fastest)."""
        values: list[Value] = [""] * len(self.issues)
        for i in range(len(self.issues) - 1, -1, -1):
            issue = self.issues[i]
            c = max(issue.cardinality or 1, 1)
            values[i] = issue.value_at(k % c)
            k //= c
        return {issue.name: v for issue, v in zip(self.issues, values)}

    def index_of(self, outcome: Mapping[str, Value]) -> int:
        """The enumeration index of an outcome (the inverse of :meth:`outcome_at`)."""
        k = 0
        for issue in self.issues:
            c = issue.cardinality
            if c is None:
                raise ValueError(f"issue `{issue.name}` is real: outcomes have no index")
            k = k * c + issue.index_of(outcome[issue.name])
        return k

    def outcomes(self) -> Iterator[Outcome]:
        """Every outcome in enumeration order; raises ValueError for real issues."""
        n = self.cardinality
        if n is None:
            raise ValueError(f"domain `{self.name}` has a real issue: its outcomes cannot be enumerated")
        for k in range(n):
            yield self.outcome_at(k)

    def check(self, outcome: object) -> str | None:
        """Why ``outcome`` is not an outcome of this domain, or ``None``."""
        if not isinstance(outcome, Mapping):
            return f"an outcome is a dict {{issue: value}}, not {type(outcome).__name__}"
        names = set(self.issue_names)
        extra = [k for k in outcome if k not in names]
        if extra:
            return f"no issue named {extra[0]!r} (issues: {self.issue_names})"
        for issue in self.issues:
            if issue.name not in outcome:
                return f"no value for issue `{issue.name}`"
            why = issue.check(outcome[issue.name])
            if why is not None:
                return why
        return None

    def coerce(self, outcome: object) -> Outcome:
        """``outcome`` with every value in its issue's Python type; raises OutcomeError if it is not in the domain."""
        if not isinstance(outcome, Mapping):
            raise OutcomeError(f"an outcome is a dict {{issue: value}}, not {type(outcome).__name__}")
        names = set(self.issue_names)
        for k in outcome:
            if k not in names:
                raise OutcomeError(f"no issue named {k!r} (issues: {self.issue_names})")
        out: Outcome = {}
        for issue in self.issues:
            if issue.name not in outcome:
                raise OutcomeError(f"no value for issue `{issue.name}`")
            out[issue.name] = issue.coerce(outcome[issue.name])
        return out

    # ---------------------------------------------------------- wire form

    @classmethod
    def from_pb(cls, d: _pbm.Domain) -> Domain:
        issues = []
        for i in d.issues:
            kind = i.WhichOneof("kind")
            disp = i.display
            extra = dict(unit=disp.unit, display=disp.display, labels=dict(disp.labels))
            if kind == DISCRETE:
                issues.append(Issue(i.name, DISCRETE, values=tuple(i.discrete.values), **extra))
            elif kind == INTEGER:
                issues.append(Issue(i.name, INTEGER, min=int(i.integer.min), max=int(i.integer.max), **extra))
            elif kind == REAL:
                issues.append(Issue(i.name, REAL, min=float(i.real.min), max=float(i.real.max), **extra))
            else:
                raise ValueError(f"issue `{i.name}` has no kind")
        return cls(d.name, tuple(issues))

    def outcome_to_pb(self, outcome: Mapping[str, Value]) -> _pbm.Outcome:
        """The wire form of an outcome, checked against the domain (raises OutcomeError)."""
        from negotium._pb import pb

        o = self.coerce(outcome)
        values = {}
        for issue in self.issues:
            v = o[issue.name]
            if issue.kind == DISCRETE:
                values[issue.name] = pb.Value(discrete=str(v))
            elif issue.kind == INTEGER:
                values[issue.name] = pb.Value(integer=int(v))
            else:
                values[issue.name] = pb.Value(real=float(v))
        return pb.Outcome(values=values)


def outcome_from_pb(o: _pbm.Outcome) -> Outcome:
    """An outcome from its wire form; each value's type comes from its ``Value`` kind."""
    out: Outcome = {}
    for name, v in o.values.items():
        kind = v.WhichOneof("kind")
        if kind == DISCRETE:
            out[name] = v.discrete
        elif kind == INTEGER:
            out[name] = int(v.integer)
        elif kind == REAL:
            out[name] = float(v.real)
    return out


def ordered(domain: Domain, outcome: Mapping[str, Value]) -> Outcome:
    """``outcome`` with its keys in the domain's issue order (for display and comparison)."""
    return {i.name: outcome[i.name] for i in domain.issues if i.name in outcome}


# ------------------------------------------------------------------ value functions


@dataclass(frozen=True)
class ValueFunction:
    """How one issue's value becomes a utility in [0, 1] (``ValueFunction::eval``).

    ``kind`` is ``table`` (``utilities``), ``linear`` (``slope``, ``offset``,
    ``origin``), ``triangular`` (``low``, ``peak``, ``high``) or ``constant``
    (``utility``).
    """

    kind: str
    utilities: tuple[float, ...] = ()
    slope: float = 0.0
    offset: float = 0.0
    origin: float = 0.0
    low: float = 0.0
    peak: float = 0.0
    high: float = 0.0
    utility: float = 0.0

    def __call__(self, issue: Issue, v: Value) -> float:
        kind = self.kind
        if kind == "table":
            if issue.kind == REAL:
                return 0.0  # negotium: a table does not apply to real values
            k = issue.index_of(v)
            if 0 <= k < len(self.utilities):
                return self.utilities[k]
            return 0.0
        if kind == "linear":
            return _clamp(self.offset + self.slope * (issue.number(v) - self.origin), 0.0, 1.0)
        if kind == "triangular":
            x = issue.number(v)
            low, peak, high = self.low, self.peak, self.high
            if x <= low or x >= high:
                return 1.0 if x == peak else 0.0
            if x <= peak:
                return (x - low) / (peak - low)
            return (high - x) / (high - peak)
        if kind == "constant":
            return self.utility
        raise ValueError(f"unknown value function kind {kind!r}")

    @classmethod
    def from_pb(cls, f: _pbm.ValueFunction) -> ValueFunction:
        kind = f.WhichOneof("kind")
        if kind == "table":
            return cls("table", utilities=tuple(f.table.utilities))
        if kind == "linear":
            return cls("linear", slope=f.linear.slope, offset=f.linear.offset, origin=f.linear.origin)
        if kind == "triangular":
            return cls("triangular", low=f.triangular.low, peak=f.triangular.peak, high=f.triangular.high)
        if kind == "constant":
            return cls("constant", utility=f.constant)
        raise ValueError("a value function without a kind")


@dataclass(frozen=True)
class Rectangle:
    """A box of outcome space paying ``utility`` to outcomes inside it.

    ``includes`` and ``excludes`` are ``(issue index, min, max)`` closed
    ranges over the value as a number (the index for discrete values).
    """

    utility: float
    includes: tuple[tuple[int, float, float], ...] = ()
    excludes: tuple[tuple[int, float, float], ...] = ()


# ------------------------------------------------------------------ utility function


class UtilityFunction:
    """A party's own preferences over a domain: utility, reservation value, discount.

    ``ufun(outcome)`` is the undiscounted utility; :meth:`discounted` applies
    the discount at a relative time, as the server does for results. Build
    one from the wire with :meth:`from_pb` (an agent gets it ready-made as
    ``Session.ufun``), or with :meth:`linear_additive` /
    :meth:`hyper_rectangles`.
    """

    def __init__(
        self,
        domain: Domain,
        *,
        weights: list[float] | tuple[float, ...] | None = None,
        values: list[ValueFunction] | tuple[ValueFunction, ...] | None = None,
        rectangles: list[Rectangle] | tuple[Rectangle, ...] | None = None,
        aggregation: str = "sum",
        max_utility: float = 1.0,
        reservation_value: float = 0.0,
        discount: float = 1.0,
    ) -> None:
        if (rectangles is None) == (weights is None and values is None):
            raise ValueError("a utility function is linear-additive (weights, values) or hyper-rectangles, not both")
        if aggregation not in ("sum", "min", "max"):
            raise ValueError(f"unknown aggregation {aggregation!r} (sum, min or max)")
        self.domain = domain
        self.kind = "hyper-rectangles" if rectangles is not None else "linear-additive"
        self.weights: tuple[float, ...] = tuple(weights or ())
        self.values: tuple[ValueFunction, ...] = tuple(values or ())
        self.rectangles: tuple[Rectangle, ...] = tuple(rectangles or ())
        self.aggregation = aggregation
        self.max_utility = float(max_utility)
        self.reservation_value = float(reservation_value)
        self.discount = float(discount)
        # zip truncates like Rust's iterator zip: weights, functions and
        # issues beyond the shortest of the three count for nothing.
        self._terms = list(zip(self.weights, self.values, self.domain.issues))
        self._tables: list[list[float]] | None = None

    # ---------------------------------------------------------- construction

    @classmethod
    def linear_additive(
        cls,
        domain: Domain,
        weights: list[float],
        values: list[ValueFunction],
        reservation_value: float = 0.0,
        discount: float = 1.0,
    ) -> UtilityFunction:
        return cls(domain, weights=weights, values=values, reservation_value=reservation_value, discount=discount)

    @classmethod
    def hyper_rectangles(
        cls,
        domain: Domain,
        rectangles: list[Rectangle],
        aggregation: str = "sum",
        max_utility: float = 1.0,
        reservation_value: float = 0.0,
        discount: float = 1.0,
    ) -> UtilityFunction:
        return cls(
            domain,
            rectangles=rectangles,
            aggregation=aggregation,
            max_utility=max_utility,
            reservation_value=reservation_value,
            discount=discount,
        )

    @classmethod
    def from_pb(cls, domain: Domain, p: _pbm.Profile) -> UtilityFunction:
        """The party's utility function from ``SessionSettings.profile``."""
        kind = p.WhichOneof("utility")
        rv, d = p.reservation_value, p.discount
        if kind == "linear_additive":
            la = p.linear_additive
            return cls(
                domain,
                weights=list(la.weights),
                values=[ValueFunction.from_pb(f) for f in la.values],
                reservation_value=rv,
                discount=d,
            )
        if kind == "hyper_rectangles":
            hr = p.hyper_rectangles
            rects = [
                Rectangle(
                    r.utility,
                    tuple((x.issue, x.min, x.max) for x in r.includes),
                    tuple((x.issue, x.min, x.max) for x in r.excludes),
                )
                for r in hr.rectangles
            ]
            return cls(
                domain,
                rectangles=rects,
                aggregation=hr.aggregation,
                max_utility=hr.max_utility,
                reservation_value=rv,
                discount=d,
            )
        raise ValueError("the profile has no utility function")

    # ---------------------------------------------------------- evaluation

    def __call__(self, outcome: Mapping[str, Value]) -> float:
        """Undiscounted utility of ``outcome`` (the server's ``UtilityFunction::eval``)."""
        if self.kind == "linear-additive":
            u = 0.0
            for w, f, issue in self._terms:
                u = u + w * f(issue, outcome[issue.name])
            return u
        hits = [r.utility for r in self.rectangles if self._inside(r, outcome)]
        if not hits:
            total = 0.0
        elif self.aggregation == "sum":
            total = 0.0
            for h in hits:
                total = total + h
        elif self.aggregation == "min":
            total = hits[0]
            for h in hits[1:]:
                total = h if h < total else total
        else:
            total = hits[0]
            for h in hits[1:]:
                total = h if h > total else total
        if self.max_utility > 0.0:
            return _clamp(total / self.max_utility, 0.0, 1.0)
        return 0.0

    def _inside(self, r: Rectangle, outcome: Mapping[str, Value]) -> bool:
        issues = self.domain.issues

        def holds(i: int, lo: float, hi: float) -> bool:
            if i >= len(issues):
                return False  # an issue beyond the outcome is a range it misses
            x = issues[i].number(outcome[issues[i].name])
            return lo <= x <= hi

        return all(holds(i, lo, hi) for i, lo, hi in r.includes) and not any(
            holds(i, lo, hi) for i, lo, hi in r.excludes
        )

    def discounted(self, u: float, t: float) -> float:
        """``u`` discounted at relative time ``t``: ``u * discount ** t`` (no discount where ``discount >= 1``)."""
        if self.discount >= 1.0:
            return u
        return u * self.discount**t

    def utility_at(self, outcome: Mapping[str, Value], t: float) -> float:
        """Discounted utility of an agreement on ``outcome`` at relative time ``t``."""
        return self.discounted(self(outcome), t)

    def is_rational(self, outcome: Mapping[str, Value]) -> bool:
        """Whether ``outcome`` is worth at least the reservation value (undiscounted)."""
        return self(outcome) >= self.reservation_value

    # ---------------------------------------------------------- enumeration

    def _require_enumerable(self) -> int:
        n = self.domain.cardinality
        if n is None:
            raise ValueError(f"domain `{self.domain.name}` has a real issue: its outcomes cannot be enumerated")
        if n > ENUMERATION_LIMIT:
            raise ValueError(f"domain `{self.domain.name}` has {n} outcomes, more than {ENUMERATION_LIMIT} to enumerate")
        return n

    def utilities_of_all(self) -> list[float]:
        """Utility of every outcome in enumeration order (``UtilityFunction::utilities_of_all``).

        Linear-additive functions expand issue by issue, one addition per
        outcome and issue, which gives the same floats as evaluating each
        outcome.
        """
        n = self._require_enumerable()
        if self.kind != "linear-additive":
            return [self(self.domain.outcome_at(k)) for k in range(n)]
        utils = [0.0]
        for w, f, issue in self._terms:
            table = [w * f(issue, issue.value_at(k)) for k in range(issue.cardinality or 0)]
            utils = [u + t for u in utils for t in table]
        if len(self._terms) < len(self.domain.issues):
            # Issues without a weight count for nothing but still multiply the space.
            rest = 1
            for issue in self.domain.issues[len(self._terms) :]:
                rest *= issue.cardinality or 0
            utils = [u for u in utils for _ in range(rest)]
        return utils

    def best(self) -> Outcome:
        """An outcome of the highest utility; the lowest enumeration index among equals."""
        utils = self.utilities_of_all()
        if not utils:
            raise ValueError("the domain has no outcomes")
        k = max(range(len(utils)), key=lambda i: (utils[i], -i))
        return self.domain.outcome_at(k)

    def worst(self) -> Outcome:
        """An outcome of the lowest utility; the lowest enumeration index among equals."""
        utils = self.utilities_of_all()
        if not utils:
            raise ValueError("the domain has no outcomes")
        k = min(range(len(utils)), key=lambda i: (utils[i], i))
        return self.domain.outcome_at(k)

    def minmax(self) -> tuple[float, float]:
        """The lowest and highest utility over the (enumerable) domain."""
        utils = self.utilities_of_all()
        return (min(utils), max(utils)) if utils else (math.nan, math.nan)

    def ranked(self, rational_only: bool = False) -> list[tuple[float, Outcome]]:
        """Every outcome with its utility, best first (ties: lower enumeration index first)."""
        utils = self.utilities_of_all()
        ks = sorted(range(len(utils)), key=lambda i: (-utils[i], i))
        return [
            (utils[k], self.domain.outcome_at(k))
            for k in ks
            if not rational_only or utils[k] >= self.reservation_value
        ]

    def __repr__(self) -> str:
        return (
            f"UtilityFunction({self.kind}, domain={self.domain.name!r}, "
            f"reservation_value={self.reservation_value}, discount={self.discount})"
        )
