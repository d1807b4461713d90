"""Agents the tests play: honest ones, and ones that misbehave in each way a host must survive.

They live in a module of their own so that a host process can load them by
name (``agents:Greedy``); tests put this folder on the host's PYTHONPATH.
"""

from __future__ import annotations

import os
import random
import time
from typing import Any

from negotium import Agent, Outcome, Response, Session, State


class Greedy(Agent):
    """Offers its best outcome; accepts anything worth at least ``threshold`` (deterministic)."""

    def __init__(self, threshold: float = 0.7) -> None:
        self.threshold = threshold

    def on_start(self, session: Session) -> None:
        self.best = session.ufun.best()

    def propose(self, state: State) -> Outcome | None:
        return self.best

    def respond(self, state: State, offer: Outcome) -> Response | bool:
        return self.session.ufun(offer) >= self.threshold


class RandomOffers(Agent):
    """Offers random outcomes (seeded by the party's seed) and accepts at round ``accept_at`` (or never).

    For the bit-equality tests: a session of these gives hundreds of
    evaluations of arbitrary outcomes to compare with the server's.
    """

    def __init__(self, accept_at: int | None = None, rectangles: bool = False) -> None:
        self.accept_at = accept_at
        self.rectangles = rectangles

    def on_start(self, session: Session) -> None:
        self.rng = random.Random(session.seed)

    def _value(self, issue: Any, lo: float | None = None, hi: float | None = None) -> Any:
        if issue.kind == "discrete":
            n = len(issue.values)
            a = 0 if lo is None else max(0, int(-(-lo // 1)))
            b = n - 1 if hi is None else min(n - 1, int(hi // 1))
            return issue.values[self.rng.randint(a, b) if a <= b else self.rng.randrange(n)]
        if issue.kind == "integer":
            a = int(issue.min) if lo is None else max(int(issue.min), int(-(-lo // 1)))
            b = int(issue.max) if hi is None else min(int(issue.max), int(hi // 1))
            return self.rng.randint(a, b) if a <= b else self.rng.randint(int(issue.min), int(issue.max))
        a = issue.min if lo is None else max(issue.min, lo)
        b = issue.max if hi is None else min(issue.max, hi)
        return self.rng.uniform(a, b) if a <= b else self.rng.uniform(issue.min, issue.max)

    def propose(self, state: State) -> Outcome | None:
        d = self.session.domain
        o = {i.name: self._value(i) for i in d.issues}
        uf = self.session.ufun
        if self.rectangles and uf.rectangles and self.rng.random() < 0.7:
            # Inside a random rectangle, so that utilities are not all 0 in 10^10 outcomes.
            r = self.rng.choice(uf.rectangles)
            for k, lo, hi in r.includes:
                o[d.issues[k].name] = self._value(d.issues[k], lo, hi)
        return o

    def respond(self, state: State, offer: Outcome) -> Response | bool:
        return self.accept_at is not None and state.round >= self.accept_at


class Recorder(Greedy):
    """Greedy, and remembers everything it was told (for protocol tests)."""

    def on_start(self, session: Session) -> None:
        super().on_start(session)
        self.started = session
        self.states: list[State] = []
        self.actions: list[tuple[str, str]] = []
        self.result: Any = None

    def propose(self, state: State) -> Outcome | None:
        self.states.append(state)
        return super().propose(state)

    def respond(self, state: State, offer: Outcome) -> Response | bool:
        self.states.append(state)
        return super().respond(state, offer)

    def on_action(self, party: str, action: Any, state: State) -> None:
        self.actions.append((party, action.kind))

    def on_end(self, result: Any) -> None:
        self.result = result


class Sleeper(Greedy):
    """Hangs on its first turn (a deadlock, an endless search)."""

    def propose(self, state: State) -> Outcome | None:
        time.sleep(3600)
        return None

    def respond(self, state: State, offer: Outcome) -> Response | bool:
        time.sleep(3600)
        return False


class Raiser(Greedy):
    """Raises on every call."""

    def propose(self, state: State) -> Outcome | None:
        raise ValueError("no bid today")

    def respond(self, state: State, offer: Outcome) -> Response | bool:
        raise ValueError("no answer today")


class Outsider(Greedy):
    """Offers an outcome that is not in the domain."""

    def propose(self, state: State) -> Outcome | None:
        first = self.session.domain.issues[0]
        return {**self.best, first.name: "no-such-value" if first.kind == "discrete" else 10**9}

    def respond(self, state: State, offer: Outcome) -> Response | bool:
        return False


class Exiter(Greedy):
    """Kills its own process (``os._exit``), as a crashing native extension would."""

    def propose(self, state: State) -> Outcome | None:
        os._exit(3)

    def respond(self, state: State, offer: Outcome) -> Response | bool:
        os._exit(3)


class SlowStart(Greedy):
    """Takes ``seconds`` in on_start (within the setup allowance it should be fine)."""

    def __init__(self, seconds: float = 1.5) -> None:
        super().__init__()
        self.seconds = seconds

    def on_start(self, session: Session) -> None:
        time.sleep(self.seconds)
        super().on_start(session)


class AsyncGreedy(Greedy):
    """Greedy with ``async def`` methods (for the asyncio runner)."""

    async def propose(self, state: State) -> Outcome | None:  # type: ignore[override]
        return self.best

    def act(self, state: State) -> Any:  # the base act is sync: await both halves here
        async def turn() -> Any:
            from negotium import Action

            if state.standing_offer is not None and self.session.ufun(state.standing_offer) >= self.threshold:
                return Action.accept()
            return Action.make_offer(await self.propose(state))

        return turn()


def make_greedy(threshold: float = 0.7) -> Agent:
    """A factory function (hosts accept factories as well as classes)."""
    return Greedy(threshold)
