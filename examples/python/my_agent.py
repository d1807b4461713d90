"""A negotium agent in two methods, for README's "Bring your agent".

It asks for a utility that falls from its best to its reservation value as
the deadline nears (slowly at first), offers the outcome nearest that
aspiration, and accepts any offer worth at least what it would ask next.

    PYTHONPATH=examples/python negotium run scenarios/series-a.toml \
        --strategy 'investor={ python = "my_agent:Steady" }'
"""

from negotium import Agent


class Steady(Agent):
    def on_start(self, session):
        self.ufun = session.ufun
        # (utility, outcome) of every outcome worth more than walking away, best first.
        self.ranked = self.ufun.ranked(rational_only=True)
        self.high = self.ranked[0][0] if self.ranked else 1.0

    def aspiration(self, t):
        low = self.ufun.reservation_value
        return low + (self.high - low) * (1.0 - t**3)

    def propose(self, state):
        if not self.ranked:
            return None  # nothing beats walking away: end the negotiation
        want = self.aspiration(state.time)
        # The least demanding outcome still worth the aspiration (ranked is best first).
        fitting = [o for u, o in self.ranked if u >= want]
        return fitting[-1] if fitting else self.ranked[0][1]

    def respond(self, state, offer):
        return self.ufun(offer) >= self.aspiration(state.time)
