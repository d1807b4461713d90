#!/usr/bin/env python3
"""A negotium agent in Python: the built-in `time-dependent` strategy over gRPC.

    python examples/python/agent.py --server 127.0.0.1:7000 \
        --session ID --party NAME --token TOKEN [--e 0.25]

It joins one party of a session hosted by `negotium serve`, plays it with
negotium's time-dependent strategy (e = 0.25 is `boulware`, 1 `linear`, 4
`conceder`) and prints the session's result record (the JSON line that
`negotium run --out` writes) on stdout. Exit status 0 once the session has
finished, 1 on any error (message on stderr).

The strategy is a faithful copy of the Rust one (src/core/strategy/boa.rs,
bidding.rs, inverse.rs, utility.rs), float operation for float operation, so
that a session played by this agent gives exactly the result of an all-local
`negotium run` in which the party plays `time-dependent` with the same e:

* every outcome of the domain is enumerated in mixed radix (last issue
  fastest) and its linear-additive utility computed issue by issue,
  u = ((0 + w0*f0) + w1*f1) + ...;
* low = max(reservation, min u), high = max u;
* target(t) = clamp(low + (high - low) * (1 - t**(1/e)) - 1e-4, low, high);
* a standing offer worth at least the reservation value and the target is
  accepted; otherwise the agent offers the rational outcome (u >= reservation)
  with the lowest utility >= target, unless the rational outcome with the
  highest utility in [target - 1e-6, target) is strictly nearer the target;
  with nothing >= target, the best outcome; with no rational outcome at all,
  it ends the negotiation.

Ties in utility are broken like negotium's outcome index breaks them: the
lowest enumeration index for "lowest utility >= target" and for "best", the
highest enumeration index for the candidate just below the target.

Only what negotium enumerates exactly is supported: discrete and integer
issues, at most 2^22 outcomes, linear-additive utility functions. Larger
spaces, real issues and hyper-rectangle utilities (which negotium samples or
evaluates differently) are refused with a message.

Stubs are generated from proto/ at start (grpcio-tools) into a temporary
directory; see requirements.txt.
"""

from __future__ import annotations

import argparse
import bisect
import math
import os
import queue
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NoReturn

# negotium's constants (src/core/domain.rs, bidding.rs, boa.rs).
ENUMERATION_LIMIT = 1 << 22
TARGET_TOLERANCE = 1e-4
BELOW_TOLERANCE = 1e-6

DEFAULT_PROTO = Path(__file__).resolve().parents[2] / "proto"
PROTO_FILE = "negotium/v1/negotiation.proto"


class AgentError(Exception):
    """Anything that stops the agent; reported on stderr, exit status 1."""


def fail(message: str) -> NoReturn:
    print(f"agent.py: error: {message}", file=sys.stderr)
    sys.exit(1)


def load_stubs(proto_dir: Path, out_dir: str):
    """Generates the Python stubs of the public API into out_dir and imports them."""
    if not (proto_dir / PROTO_FILE).is_file():
        raise AgentError(f"{proto_dir / PROTO_FILE} not found (use --proto DIR)")
    try:
        import grpc  # noqa: F401
        import grpc_tools  # noqa: F401
    except ImportError as e:
        raise AgentError(f"{e}; install the requirements: pip install -r examples/python/requirements.txt")
    cmd = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{proto_dir}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        str(proto_dir / PROTO_FILE),
    ]
    r = subprocess.run(cmd, check=False, capture_output=True, text=True)
    if r.returncode != 0:
        raise AgentError(f"generating the stubs failed: {r.stderr.strip()}")
    sys.path.insert(0, out_dir)
    from negotium.v1 import negotiation_pb2, negotiation_pb2_grpc

    return negotiation_pb2, negotiation_pb2_grpc


# ------------------------------------------------------------------ preferences


def clamp(x: float, lo: float, hi: float) -> float:
    """Rust's f64::clamp: NaN stays NaN."""
    if x < lo:
        return lo
    if x > hi:
        return hi
    return x


class Issue:
    """A discrete or integer issue; values are indexed 0..cardinality."""

    def __init__(self, pb_issue):
        self.name = pb_issue.name
        kind = pb_issue.WhichOneof("kind")
        if kind == "discrete":
            self.discrete = True
            self.values = list(pb_issue.discrete.values)
            self.min = 0
            self.cardinality = len(self.values)
        elif kind == "integer":
            self.discrete = False
            self.min = pb_issue.integer.min
            self.cardinality = max(0, pb_issue.integer.max - pb_issue.integer.min + 1)
        elif kind == "real":
            raise AgentError(f"issue `{self.name}` is real: this agent only plays enumerable domains")
        else:
            raise AgentError(f"issue `{self.name}` has no kind")

    def number(self, k: int) -> int:
        """The k-th value as negotium's Value::as_f64 sees it (before the float conversion)."""
        return k if self.discrete else self.min + k

    def index_of(self, pb_value) -> int:
        kind = pb_value.WhichOneof("kind")
        if self.discrete and kind == "discrete":
            try:
                return self.values.index(pb_value.discrete)
            except ValueError:
                pass
        elif not self.discrete and kind == "integer":
            k = pb_value.integer - self.min
            if 0 <= k < self.cardinality:
                return k
        raise AgentError(f"value {pb_value} is not in issue `{self.name}`")

    def to_pb(self, pb, k: int):
        if self.discrete:
            return pb.Value(discrete=self.values[k])
        return pb.Value(integer=self.min + k)


def value_function(pb_vf, issue: Issue):
    """f(k) for the k-th value of `issue` (src/core/utility.rs, ValueFunction::eval)."""
    kind = pb_vf.WhichOneof("kind")
    if kind == "table":
        utilities = list(pb_vf.table.utilities)
        # Discrete issues by value index, integer issues by x - min: both are k.
        return lambda k: utilities[k] if 0 <= k < len(utilities) else 0.0
    if kind == "linear":
        slope, offset, origin = pb_vf.linear.slope, pb_vf.linear.offset, pb_vf.linear.origin
        return lambda k: clamp(offset + slope * (float(issue.number(k)) - origin), 0.0, 1.0)
    if kind == "triangular":
        low, peak, high = pb_vf.triangular.low, pb_vf.triangular.peak, pb_vf.triangular.high

        def tri(k: int) -> float:
            x = float(issue.number(k))
            if x <= low or x >= high:
                return 1.0 if x == peak else 0.0
            if x <= peak:
                return (x - low) / (peak - low)
            return (high - x) / (high - peak)

        return tri
    if kind == "constant":
        c = pb_vf.constant
        return lambda k: c
    raise AgentError(f"the value function of issue `{issue.name}` has no kind")


class Preferences:
    """A linear-additive utility function with its reservation value."""

    def __init__(self, issues: list[Issue], pb_profile):
        if pb_profile.WhichOneof("utility") != "linear_additive":
            raise AgentError("this agent only plays linear-additive utility functions")
        la = pb_profile.linear_additive
        self.issues = issues
        self.weights = list(la.weights)
        # zip truncates like Rust's iterator zip.
        self.functions = [value_function(f, i) for f, i in zip(la.values, issues)]
        self.reservation = pb_profile.reservation_value
        # w_i * f_i(k) for every value of every issue (the tables of utilities_of_all).
        self.tables = [
            [w * f(k) for k in range(issue.cardinality)]
            for issue, w, f in zip(self.issues, self.weights, self.functions)
        ]

    def utility(self, ks: list[int]) -> float:
        """UtilityFunction::eval: sum of w_i * f_i(v_i), left to right."""
        u = 0.0
        for table, k in zip(self.tables, ks):
            u = u + table[k]
        return u

    def utilities_of_all(self) -> list[float]:
        """UtilityFunction::utilities_of_all: expanded issue by issue, in enumeration order.

        Starts from 0.0 and adds one w_i * f_i per issue, so every outcome
        gets the same float operations as `utility`, and as Rust's eval and
        expansion (whose sums may start at -0.0: the same numbers up to the
        sign of a zero).
        """
        utils = [0.0]
        for table in self.tables:
            utils = [u + t for u in utils for t in table]
        return utils


# ------------------------------------------------------------------ strategy


class TimeDependent:
    """negotium's `time-dependent` BOA strategy with AC_target acceptance."""

    def __init__(self, e: float, domain_pb, profile_pb):
        self.e = e
        self.issues = [Issue(i) for i in domain_pb.issues]
        n = 1
        for issue in self.issues:
            n *= issue.cardinality
        if n > ENUMERATION_LIMIT:
            raise AgentError(
                f"the domain has {n} outcomes; this agent enumerates at most {ENUMERATION_LIMIT} "
                "(negotium samples larger spaces)"
            )
        self.n = n
        self.prefs = Preferences(self.issues, profile_pb)
        all_utils = self.prefs.utilities_of_all() if n > 0 else []
        rv = self.prefs.reservation
        min_u = min(all_utils, default=math.inf)
        max_u = max(all_utils, default=-math.inf)
        self.low = max(rv, min_u)
        self.high = max_u
        # Rational outcomes sorted by (utility, enumeration index).
        rational = sorted((u, k) for k, u in enumerate(all_utils) if u >= rv)
        self.utils = [u for u, _ in rational]
        self.ids = [k for _, k in rational]

    # The outcome index (src/core/inverse.rs), as (id, utility) pairs.

    def best(self):
        """Highest utility; the lowest index among equals."""
        if not self.utils:
            return None
        p = bisect.bisect_left(self.utils, self.utils[-1])
        return self.ids[p], self.utils[p]

    def worst_at_or_above(self, target: float):
        """Lowest utility >= target; the lowest index among equals."""
        p = bisect.bisect_left(self.utils, target)
        if p == len(self.utils):
            return None
        return self.ids[p], self.utils[p]

    def nearest_at_or_above(self, target: float):
        found = self.worst_at_or_above(target)
        if found is None:
            return self.best()
        _, u = found
        lo = target - BELOW_TOLERANCE
        p = bisect.bisect_left(self.utils, target)  # first >= target: p - 1 is the highest below
        if p > 0 and self.utils[p - 1] >= lo:
            # The highest utility in [target - 1e-6, target); the highest index among equals.
            bu = self.utils[p - 1]
            if target - bu < u - target:
                return self.ids[p - 1], bu
        return found

    def bid(self, target: float):
        if math.isnan(target):
            return self.best()
        return self.nearest_at_or_above(target)

    def target(self, t: float) -> float:
        raw = self.low + (self.high - self.low) * (1.0 - t ** (1.0 / self.e))
        return clamp(raw - TARGET_TOLERANCE, self.low, max(self.high, self.low))

    def outcome(self, k: int) -> list[int]:
        """Value indexes of outcome k (mixed radix, last issue fastest)."""
        ks = [0] * len(self.issues)
        for i in range(len(self.issues) - 1, -1, -1):
            c = max(self.issues[i].cardinality, 1)
            ks[i] = k % c
            k //= c
        return ks

    def act(self, pb, turn):
        """The Action for a YourTurn message."""
        target = self.target(turn.time)
        if turn.HasField("standing_offer"):
            offer = turn.standing_offer
            if len(offer.values) != len(self.issues):
                raise AgentError(f"the standing offer names {len(offer.values)} issues")
            ks = []
            for issue in self.issues:
                if issue.name not in offer.values:
                    raise AgentError(f"the standing offer lacks issue `{issue.name}`")
                ks.append(issue.index_of(offer.values[issue.name]))
            u = self.prefs.utility(ks)
            if u >= self.prefs.reservation and u >= target:
                return pb.Action(accept=pb.Accept())
        bid = self.bid(target)
        if bid is None:
            # No outcome is worth the reservation value: walk away.
            return pb.Action(end_negotiation=pb.EndNegotiation())
        ks = self.outcome(bid[0])
        values = {issue.name: issue.to_pb(pb, k) for issue, k in zip(self.issues, ks)}
        return pb.Action(offer=pb.Outcome(values=values))


# ------------------------------------------------------------------ the stream


def play(pb, pb_grpc, args) -> str:
    """Plays the seat; returns the result's record_json."""
    import grpc

    target = args.server
    for prefix in ("http://", "grpc://"):
        target = target.removeprefix(prefix)
    outbox: queue.Queue = queue.Queue()
    done = object()

    def requests():
        while True:
            msg = outbox.get()
            if msg is done:
                return
            yield msg

    outbox.put(pb.AgentMessage(join=pb.Join(session_id=args.session, party=args.party, token=args.token)))
    channel = grpc.insecure_channel(target, options=[("grpc.max_receive_message_length", 64 << 20)])
    call = pb_grpc.NegotiationStub(channel).Negotiate(requests())
    strategy = None
    try:
        for msg in call:
            kind = msg.WhichOneof("kind")
            if kind == "settings":
                s = msg.settings
                if s.session_id != args.session:
                    continue
                if s.protocol and s.protocol != "saop":
                    raise AgentError(f"unknown protocol `{s.protocol}`")
                strategy = TimeDependent(args.e, s.domain, s.profile)
                print(
                    f"joined session {s.session_id} as `{s.party}` (party {s.party_index} of "
                    f"{len(s.parties)}): {strategy.n} outcomes, {len(strategy.utils)} rational, "
                    f"utility range [{strategy.low:.4f}, {strategy.high:.4f}]",
                    file=sys.stderr,
                )
            elif kind == "your_turn":
                t = msg.your_turn
                if t.session_id != args.session:
                    continue
                if strategy is None:
                    raise AgentError("a turn before the settings")
                action = strategy.act(pb, t)
                outbox.put(pb.AgentMessage(act=pb.Act(session_id=t.session_id, turn=t.turn, action=action)))
            elif kind == "action_done":
                # The time-dependent strategy does not look at the other parties' actions.
                pass
            elif kind == "finished":
                if msg.finished.session_id == args.session:
                    return msg.finished.result.record_json
            elif kind == "error":
                e = msg.error
                # A refused join means this seat will never finish.
                if e.code in ("not-found", "unauthenticated", "already-joined", "finished"):
                    raise AgentError(f"the server refused the join ({e.code}): {e.message}")
                # Anything else (e.g. a violation) is reported; the session goes on to Finished.
                print(f"agent.py: server error [{e.code}] session {e.session_id}: {e.message}", file=sys.stderr)
        raise AgentError("the server closed the stream before the session finished")
    except grpc.RpcError as e:
        raise AgentError(f"{target}: {e.code().name}: {e.details()}")
    finally:
        outbox.put(done)
        call.cancel()
        channel.close()


def main() -> None:
    ap = argparse.ArgumentParser(description="A negotium agent playing the time-dependent strategy.")
    ap.add_argument("--server", required=True, help="node address, HOST:PORT")
    ap.add_argument("--session", required=True, help="session id (from `negotium session create`)")
    ap.add_argument("--party", required=True, help="the external party to play")
    ap.add_argument("--token", required=True, help="that party's token")
    ap.add_argument("--e", type=float, default=0.25, help="concession exponent: 0.25 boulware, 1 linear, 4 conceder")
    ap.add_argument("--proto", type=Path, default=DEFAULT_PROTO, help="the proto/ folder of negotium")
    args = ap.parse_args()
    if not (args.e > 0.0 and math.isfinite(args.e)):
        fail("--e must be a positive number (e < 1 Boulware, 1 linear, e > 1 conceder)")
    try:
        with tempfile.TemporaryDirectory(prefix="negotium-stubs-") as stubs:
            pb, pb_grpc = load_stubs(args.proto, stubs)
            record = play(pb, pb_grpc, args)
    except AgentError as e:
        fail(str(e))
    except KeyboardInterrupt:
        fail("interrupted")
    sys.stdout.write(record.replace("\n", " ") + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    main()
