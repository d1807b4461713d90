"""``negotium-agents``: one process hosting many seats of many sessions, each agent behind a hard deadline.

    negotium-agents play  --server ADDR --session ID --party P --token T --agent module:Class [--params JSON] [--deadline S]
    negotium-agents serve --server ADDR [--workers N]      # JSON lines on stdin/stdout, for negotium's CLI
    negotium-agents check module:Class [--params JSON]     # exit 0, or 2 with what to pip install

An agent is a :class:`negotium.Agent` subclass or any NegMAS negotiator
class (played through :class:`negotium.negmas_adapter.NegMASAgent`), named
``module:Class`` or ``module.Class``.

Design: isolation without losing speed
--------------------------------------

Agents are untrusted code in the sense that matters here: ANAC ports hang,
raise, return outcomes from another domain or call ``os._exit``. A hung or
dead agent must cost its own party a recorded violation, and nothing else.

* **The host process** holds the one ``Negotiate`` stream (asyncio,
  ``grpc.aio``), routes every server message by (session, party) to its
  seat, and enforces each seat's deadline. It runs no agent code.
* **Workers** (``--workers N``, one per core by default) are *zygotes*:
  Python processes that imported NegMAS and, on first use, each agent module
  (after a throw-away probe child imported it under ``--import-timeout``, so
  that a module that hangs or exits on import cannot take the worker down).
  They run no agent code either.
* **One child process per seat**, ``fork()``\\ ed from a zygote: a
  copy-on-write copy with everything already imported (``gc.freeze()`` keeps
  the shared pages shared). The host creates a socket pair per seat and passes
  one end to the zygote (``SCM_RIGHTS``), so frames go host <-> child
  directly; the zygote only forks and reaps.

Every message that needs an answer starts a timer in the host: the seat's
``deadline`` (capped just below the server's ``answer_within_seconds``, so
the host, which knows why, cuts the agent off before the server's turn
timeout would). A child that overruns is killed with SIGKILL, which always
works (a thread cannot be killed; a hung C extension ignores exceptions).
The host then sends ``Leave`` with the reason: ``agent HardHeaded did not
answer within 1 s``. An exception becomes ``agent X raised ValueError: ...``
(sent by the child, which then exits), an outcome outside the domain
``agent X offered an outcome outside the domain: ...``, a child that dies
``the agent's process exited (status 3)`` or ``was killed by signal ...``.
Only that seat's child is involved: other seats, in the same worker or not,
never notice, and workers are never killed.

Trade-off. The alternative, seats multiplexed inside long-lived worker
processes, saves the fork per seat (about 7 ms with NegMAS loaded, on
this 2-core machine, and about 11 MB of private memory per NegMAS seat
while it plays: the rest stays shared with the zygote) but cannot enforce a
deadline without killing the worker and every other seat in it, which is
exactly what must not happen. Per call, both designs pay the same one round
trip between processes over a local socket (0.13 ms here, with protobuf
parsing and the agent call; see ``bench/host_speed.py``), which is small
next to the gRPC round trip to the server and a NegMAS negotiator's own
work per turn. So: a process per seat, forked from a warm zygote. Seats at
once are bounded by memory (and the server's seats per stream), not by
``--workers``, which sets how many zygotes fork in parallel.

Lifetimes: workers die with the host (``PR_SET_PDEATHSIG``) and seat
processes with their worker, so that no agent outlives a host that crashed
or was killed; since a worker runs no agent code, it dies only with the
host. A seat process also exits when its socket to the host closes.

Hash seeds: workers run with ``PYTHONHASHSEED=0`` unless it is set, so that
an agent that iterates a set of outcomes does so in the same order in every
run (negotium's ``party_seed`` then reproduces its run exactly).

Machine interface (``serve``)
------------------------------

Input, one JSON object per line: ``{"session": ID, "party": P, "token": T,
"agent": "module:Class", "params": {...}, "deadline": S}`` (``params`` and
``deadline`` optional). End of input means no more seats: the host exits
(status 0) once every seat has ended. Output, one JSON object per line:

* ``{"event": "ready", "workers": N}`` once the workers are up;
* ``{"event": "seated", "session", "party", "party_index", "parties", "agent"}``
  once the server accepted the join;
* ``{"event": "ended", "session", "party", "ended_by", "agreement",
  "utilities", "rounds", "violation": {"party", "reason"} | null, "left":
  reason | null}`` when the session is over for that seat (``left`` is why
  the host cut this seat's agent off, if it did);
* ``{"event": "error", "session"?, "party"?, "code", "message"}`` for a line
  that is not a seat, a refused join, an agent that cannot be made, a lost
  stream.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import logging
import os
import signal
import socket
import sys
from dataclasses import dataclass, field
from typing import Any, Callable

from negotium._loading import AgentSpecError, agent_factory
from negotium._pb import pb
from negotium._zygote import HEADER, MAX_FRAME, describe_status
from negotium.agent import JOIN_REFUSALS, Router, cut, join_message
from negotium.types import Result, Seat

log = logging.getLogger("negotium.host")

MAKE_TIMEOUT_S = 30.0
"""How long an agent's constructor may take in its seat process."""

CUT_FINISH_WAIT_S = 30.0
"""After cutting an agent off, how long to wait for the session's Finished before reporting the seat ended."""


def answer_window(deadline: float | None, answer_within: float) -> float:
    """The host's limit for one answer: the seat's deadline, kept under the server's window."""
    limits = []
    if deadline is not None and deadline > 0:
        limits.append(deadline)
    if answer_within > 0:
        limits.append(max(answer_within - max(0.05, 0.05 * answer_within), answer_within * 0.5))
    return min(limits) if limits else 10.0


# ------------------------------------------------------------------ requests


@dataclass
class SeatRequest:
    """One seat to host: which party of which session, its token, the agent and its deadline per call."""

    session: str
    party: str
    token: str
    agent: str
    params: dict[str, Any] = field(default_factory=dict)
    deadline: float | None = None

    @classmethod
    def parse(cls, obj: Any) -> SeatRequest:
        if not isinstance(obj, dict):
            raise ValueError("a seat is a JSON object")
        missing = [k for k in ("session", "party", "token", "agent") if not isinstance(obj.get(k), str) or not obj[k]]
        if missing:
            raise ValueError(f"a seat needs {', '.join(missing)} (non-empty strings)")
        params = obj.get("params") or {}
        if not isinstance(params, dict):
            raise ValueError("`params` must be a JSON object")
        deadline = obj.get("deadline")
        if deadline is not None and (isinstance(deadline, bool) or not isinstance(deadline, (int, float)) or not deadline > 0):
            raise ValueError("`deadline` must be a positive number of seconds")
        unknown = sorted(set(obj) - {"session", "party", "token", "agent", "params", "deadline"})
        if unknown:
            raise ValueError(f"unknown field(s) {', '.join(unknown)}")
        return cls(obj["session"], obj["party"], obj["token"], obj["agent"], params, float(deadline) if deadline else None)

    @property
    def seat(self) -> Seat:
        return Seat(self.session, self.party, self.token)


class SpawnFailed(Exception):
    pass


# ------------------------------------------------------------------ workers (zygotes)


class Worker:
    """One zygote process and its control socket."""

    def __init__(self, index: int, import_timeout: float, preload: list[str]) -> None:
        self.index = index
        self.import_timeout = import_timeout
        self.preload = preload
        self.proc: asyncio.subprocess.Process | None = None
        self.sock: socket.socket | None = None
        self.ready: asyncio.Future[dict] | None = None
        self.pending: dict[int, asyncio.Future[int]] = {}
        self.exits: dict[int, int] = {}
        self.exit_waiters: dict[int, list[asyncio.Future[int]]] = collections.defaultdict(list)
        self.next_id = 0
        self.seats = 0
        self.alive = False

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = dict(os.environ)
        env.setdefault("PYTHONHASHSEED", "0")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "negotium._zygote",
            str(theirs.fileno()),
            str(self.import_timeout),
            *self.preload,
            pass_fds=(theirs.fileno(),),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=sys.stderr.fileno(),  # agents that print must not corrupt `serve`'s stdout
            env=env,
        )
        theirs.close()
        mine.setblocking(False)
        self.sock = mine
        self.ready = loop.create_future()
        loop.add_reader(mine.fileno(), self._readable)
        self.alive = True
        await asyncio.wait_for(self.ready, timeout=self.import_timeout * (1 + len(self.preload)) + 30)

    def _readable(self) -> None:
        assert self.sock is not None
        while True:
            try:
                data = self.sock.recv(1 << 16)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._lost()
                return
            msg = json.loads(data)
            op = msg.get("op")
            if op == "ready" and self.ready and not self.ready.done():
                self.ready.set_result(msg)
            elif op == "spawned":
                fut = self.pending.pop(msg["seat"], None)
                if fut and not fut.done():
                    fut.set_result(msg["pid"])
            elif op == "failed":
                fut = self.pending.pop(msg["seat"], None)
                if fut and not fut.done():
                    fut.set_exception(SpawnFailed(msg["error"]))
            elif op == "exited":
                pid, status = msg["pid"], msg["status"]
                self.exits[pid] = status
                for w in self.exit_waiters.pop(pid, []):
                    if not w.done():
                        w.set_result(status)

    def _lost(self) -> None:
        if not self.alive:
            return
        self.alive = False
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(self.sock.fileno())  # type: ignore[union-attr]
        for fut in self.pending.values():
            if not fut.done():
                fut.set_exception(SpawnFailed(f"worker {self.index} died"))
        self.pending.clear()
        if self.ready and not self.ready.done():
            self.ready.set_exception(SpawnFailed(f"worker {self.index} did not start"))
        for ws in self.exit_waiters.values():
            for w in ws:
                if not w.done():
                    w.set_result(None)  # type: ignore[arg-type]
        self.exit_waiters.clear()

    async def spawn(self, req: SeatRequest) -> tuple[int, socket.socket]:
        """Forks a seat child for ``req``; returns its pid and the host's end of its socket."""
        if not self.alive or self.sock is None:
            raise SpawnFailed(f"worker {self.index} is not running")
        loop = asyncio.get_running_loop()
        self.next_id += 1
        sid = self.next_id
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        fut: asyncio.Future[int] = loop.create_future()
        self.pending[sid] = fut
        body = json.dumps(
            {"op": "spawn", "seat": sid, "agent": req.agent, "params": req.params, "session": req.session, "party": req.party}
        ).encode()
        try:
            while True:
                try:
                    socket.send_fds(self.sock, [body], [theirs.fileno()])
                    break
                except BlockingIOError:
                    await asyncio.sleep(0.001)
        finally:
            theirs.close()
        try:
            pid = await asyncio.wait_for(fut, timeout=self.import_timeout + MAKE_TIMEOUT_S)
        except BaseException:
            self.pending.pop(sid, None)
            mine.close()
            raise
        return pid, mine

    async def exit_status(self, pid: int, timeout: float = 1.0) -> int | None:
        if pid in self.exits:
            return self.exits.pop(pid)
        if not self.alive:
            return None
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.exit_waiters[pid].append(fut)
        try:
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            return None

    async def stop(self) -> None:
        self.alive = False
        if self.sock is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self.sock.fileno())
            self.sock.close()
        if self.proc is not None and self.proc.returncode is None:
            try:
                await asyncio.wait_for(self.proc.wait(), 2.0)
            except asyncio.TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                await self.proc.wait()


# ------------------------------------------------------------------ one hosted seat


class HostedSeat:
    """A seat: its child process, the answers it owes and their deadlines."""

    def __init__(self, host: Host, req: SeatRequest) -> None:
        self.host = host
        self.req = req
        self.seat = req.seat
        self.agent_name = req.agent.replace(":", ".").rsplit(".", 1)[-1]
        self.worker: Worker | None = None
        self.pid: int | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.buffered: list[bytes] = []
        self.expect: collections.deque[tuple[bytes, float]] = collections.deque()
        self.timer: asyncio.TimerHandle | None = None
        self.state = "starting"  # starting | live | cut | finishing | done
        self.left: str | None = None
        self.result: Result | None = None
        self.violation_notice: str | None = None
        self.setup_seconds = 0.0
        self.turn_timeout = 0.0
        self.parties: tuple[str, ...] = ()
        self.ended_emitted = False
        self.finished_fallback: asyncio.TimerHandle | None = None
        self.finished = False
        self.tasks: list[asyncio.Task] = []

    # ---------------------------------------------------------- start

    async def start(self, worker: Worker) -> None:
        self.worker = worker
        worker.seats += 1
        try:
            pid, sock = await worker.spawn(self.req)
        except (SpawnFailed, asyncio.TimeoutError, OSError) as e:
            why = str(e) or f"starting the agent took longer than {worker.import_timeout + MAKE_TIMEOUT_S:g} s"
            self.host.emit_error("agent", f"agent {self.req.agent}: {why}", self.seat)
            self.cut_off(f"agent {self.req.agent} could not start: {why}", kill=False)
            return
        self.pid = pid
        reader, writer = await asyncio.open_unix_connection(sock=sock, limit=MAX_FRAME)
        self.writer = writer
        if self.state in ("cut", "done"):
            self.kill()
            return
        # The agent must be made before anything buffered meanwhile is answered.
        self.expect.appendleft((b"r", MAKE_TIMEOUT_S))
        self._arm()
        for frame in self.buffered:
            writer.write(frame)
        self.buffered.clear()
        self.tasks.append(asyncio.get_running_loop().create_task(self._read_child(reader)))

    # ---------------------------------------------------------- server -> child

    def deliver(self, msg: Any) -> None:
        """A server message for this seat."""
        kind = msg.WhichOneof("kind")
        if kind == "finished":
            self.result = Result.from_pb(msg.finished.result)
            self.host.emit_ended(self)
            if self.state in ("live", "starting") and self.writer is not None:
                # Let the agent see the result (on_end), under the same deadline as a turn;
                # whatever it still owed (a turn the session no longer needs) is forgotten.
                self.state = "finishing"
                self.expect.clear()
                self._send(msg, b"d", self.req.deadline or max(self.turn_timeout, 1.0))
            else:
                self.kill()
                self.finish()
            return
        if kind == "error":
            e = msg.error
            if e.code in JOIN_REFUSALS and not self.parties:
                self.host.emit_error(e.code, e.message, self.seat)
                self.kill()
                self.finish()
            elif e.code == "violation":
                self.violation_notice = e.message
            else:
                log.info("session %s, party %s: server error [%s] %s", e.session_id, e.party, e.code, e.message)
            return
        if self.state in ("cut", "done", "finishing"):
            return
        if kind == "settings":
            s = msg.settings
            self.parties = tuple(s.parties)
            self.setup_seconds = s.setup_seconds
            self.turn_timeout = s.turn_timeout_seconds
            self.host.emit(
                event="seated",
                session=self.seat.session_id,
                party=self.seat.party,
                party_index=s.party_index,
                parties=list(s.parties),
                agent=self.req.agent,
            )
            base = self.req.deadline if self.req.deadline else max(self.turn_timeout, 1.0)
            self._send(msg, b"s", base + self.setup_seconds)
        elif kind == "your_turn":
            self._send(msg, b"a", answer_window(self.req.deadline, msg.your_turn.answer_within_seconds))
        else:
            self._send(msg, None, 0.0)

    def _send(self, msg: Any, expect: bytes | None, seconds: float) -> None:
        payload = msg.SerializeToString()
        frame = HEADER.pack(len(payload), ord("m")) + payload
        if self.writer is None:
            self.buffered.append(frame)
        else:
            self.writer.write(frame)
        if expect is not None:
            self._expect(expect, seconds)

    # ---------------------------------------------------------- deadlines

    def _expect(self, kind: bytes, seconds: float) -> None:
        self.expect.append((kind, seconds))
        if len(self.expect) == 1:
            self._arm()

    def _arm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.expect and self.writer is not None:
            kind, seconds = self.expect[0]
            self.timer = asyncio.get_running_loop().call_later(seconds, self._overrun, kind, seconds)

    def _fulfil(self, kind: bytes) -> None:
        if self.expect and self.expect[0][0] == kind:
            self.expect.popleft()
            self._arm()

    def _overrun(self, kind: bytes, seconds: float) -> None:
        self.timer = None
        if self.state == "finishing":  # on_end overran: the session is over, just stop the process
            self.kill()
            self.finish()
            return
        what = {b"r": "was not made", b"s": "did not finish on_start", b"a": "did not answer"}.get(kind, "did not answer")
        self.cut_off(f"agent {self.agent_name} {what} within {seconds:g} s")

    # ---------------------------------------------------------- child -> host

    async def _read_child(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                head = await reader.readexactly(HEADER.size)
                n, kind = HEADER.unpack(head)
                payload = await reader.readexactly(n) if n else b""
                self._frame(bytes([kind]), payload)
                if self.state == "done":
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        await self._child_gone()

    def _frame(self, kind: bytes, payload: bytes) -> None:
        if kind == b"r":
            self.agent_name = payload.decode(errors="replace") or self.agent_name
            if self.state == "starting":
                self.state = "live"
            self._fulfil(b"r")
        elif kind == b"s":
            self._fulfil(b"s")
        elif kind == b"a":
            if self.state != "live":
                return
            self._fulfil(b"a")
            self.host.send(pb.AgentMessage.FromString(payload))
        elif kind == b"l":
            self.cut_off(payload.decode(errors="replace"), kill=True)
        elif kind == b"d":
            self._fulfil(b"d")
            self.finish()

    async def _child_gone(self) -> None:
        if self.state in ("cut", "done") or self.finished:
            return
        # The process is gone: its deadline no longer applies. Its exit status comes
        # from the zygote, which may be busy importing a module for another seat.
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        status = await self.worker.exit_status(self.pid, timeout=5.0) if (self.worker and self.pid) else None
        if self.state == "finishing":
            self.finish()
            return
        if self.state in ("cut", "done"):
            return
        self.cut_off(f"the agent's process {describe_status(status)}", kill=False)

    # ---------------------------------------------------------- endings

    def kill(self) -> None:
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self.pid, signal.SIGKILL)

    def cut_off(self, reason: str, kill: bool = True) -> None:
        """Ends this seat's agent for ``reason``: kill its process, tell the server why (Leave)."""
        if self.state in ("cut", "done", "finishing"):
            return
        self.state = "cut"
        self.left = cut(reason)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.expect.clear()
        if kill:
            self.kill()
        log.warning("session %s, party %s: %s", self.seat.session_id, self.seat.party, self.left)
        self.host.send(
            pb.AgentMessage(leave=pb.Leave(session_id=self.seat.session_id, party=self.seat.party, reason=self.left))
        )
        if self.result is not None:
            self.finish()
        else:
            self.finished_fallback = asyncio.get_running_loop().call_later(CUT_FINISH_WAIT_S, self._no_finish)

    def _no_finish(self) -> None:
        self.host.emit_ended(self)
        self.finish()

    def finish(self) -> None:
        """Forgets the seat (once): nothing more will come for it."""
        if self.finished:
            return
        self.finished = True
        self.state = "done"
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.finished_fallback is not None:
            self.finished_fallback.cancel()
            self.finished_fallback = None
        if self.writer is not None:
            with contextlib.suppress(Exception):
                self.writer.close()
        if self.worker is not None:
            self.worker.seats -= 1
            self.worker = None
        self.host.seat_done(self)


# ------------------------------------------------------------------ the host


class Host:
    """Hosts seats over one agent stream to ``server`` with ``workers`` zygotes."""

    def __init__(
        self,
        server: str,
        *,
        workers: int | None = None,
        import_timeout: float = 60.0,
        preload: list[str] | None = None,
        emit: Callable[[dict[str, Any]], None] | None = None,
        ca: str | None = None,
    ) -> None:
        self.server = server
        self.n_workers = max(1, workers or os.cpu_count() or 1)
        self.import_timeout = import_timeout
        self.preload = list(preload if preload is not None else ["negmas"])
        self._emit = emit or (lambda ev: None)
        self.ca = ca
        self.workers: list[Worker] = []
        self.router = Router()
        self.seats: set[HostedSeat] = set()
        self.call: Any = None
        self.channel: Any = None
        self.outq: asyncio.Queue[Any] | None = None
        self.stream_tasks: list[asyncio.Task] = []
        self.idle = asyncio.Event()
        self.idle.set()
        self.round_robin = 0

    # ---------------------------------------------------------- events

    def emit(self, **event: Any) -> None:
        self._emit(event)

    def emit_error(self, code: str, message: str, seat: Seat | None = None) -> None:
        ev: dict[str, Any] = {"event": "error"}
        if seat is not None:
            ev.update(session=seat.session_id, party=seat.party)
        ev.update(code=code, message=message)
        self._emit(ev)

    def emit_ended(self, s: HostedSeat) -> None:
        if s.ended_emitted:
            return
        s.ended_emitted = True
        r = s.result
        violation = None
        if r is not None and r.violation is not None:
            names = s.parties or tuple(r.parties)
            who = names[r.violation.party] if r.violation.party < len(names) else str(r.violation.party)
            violation = {"party": who, "reason": r.violation.reason}
        self.emit(
            event="ended",
            session=s.seat.session_id,
            party=s.seat.party,
            ended_by=r.ended_by if r else None,
            agreement=r.agreement if r else None,
            utilities=list(r.utilities) if r else None,
            rounds=r.rounds if r else None,
            violation=violation,
            left=s.left,
        )

    # ---------------------------------------------------------- workers

    async def start(self) -> None:
        self.workers = [Worker(i, self.import_timeout, self.preload) for i in range(self.n_workers)]
        await asyncio.gather(*(w.start() for w in self.workers))
        self.emit(event="ready", workers=len(self.workers))

    async def _worker(self) -> Worker:
        """The least loaded live worker (a dead one is restarted first)."""
        for i, w in enumerate(self.workers):
            if not w.alive:
                nw = Worker(w.index, self.import_timeout, self.preload)
                try:
                    await nw.start()
                except Exception as e:  # pragma: no cover - a broken Python installation
                    log.error("worker %d could not restart: %s", w.index, e)
                    continue
                self.workers[i] = nw
        live = [w for w in self.workers if w.alive]
        if not live:
            raise SpawnFailed("no worker is running")
        self.round_robin += 1
        return min(live, key=lambda w: (w.seats, (w.index - self.round_robin) % len(self.workers)))

    # ---------------------------------------------------------- the stream

    def _open_stream(self) -> None:
        # Imported here: the host process speaks gRPC, its forking workers never load it.
        from negotium.aio import aio_channel
        from negotium.v1 import negotiation_pb2_grpc as pb_grpc

        self.channel = aio_channel(self.server, self.ca)
        self.call = pb_grpc.NegotiationStub(self.channel).Negotiate()
        self.outq = asyncio.Queue()
        loop = asyncio.get_running_loop()
        self.stream_tasks = [loop.create_task(self._write_stream()), loop.create_task(self._read_stream())]

    def send(self, msg: Any) -> None:
        if self.outq is not None:
            self.outq.put_nowait(msg)

    async def _write_stream(self) -> None:
        assert self.outq is not None
        call = self.call
        try:
            while True:
                msg = await self.outq.get()
                await call.write(msg)
        except Exception as e:
            log.debug("agent stream write ended: %s", e)

    async def _read_stream(self) -> None:
        import grpc

        call = self.call
        why = "the server closed the agent stream"
        try:
            async for msg in call:
                for s in self.router.targets(msg):
                    s.deliver(msg)
        except grpc.RpcError as e:
            why = f"{e.code().name}: {e.details()}"
        except asyncio.CancelledError:
            return
        if call is self.call:
            self.call = None
            for t in self.stream_tasks:
                if t is not asyncio.current_task():
                    t.cancel()
            self.stream_tasks = []
            self.outq = None
        for s in list(self.seats):
            if not s.finished:
                self.emit_error("stream", f"the agent stream was lost: {why}", s.seat)
                s.kill()
                s.finish()

    # ---------------------------------------------------------- seats

    async def add(self, req: SeatRequest) -> HostedSeat:
        """Starts hosting ``req``: joins it on the stream and forks its agent's process."""
        key = (req.session, req.party)
        if key in self.router.by_key:
            self.emit_error("duplicate", "this host already plays that seat", req.seat)
            raise ValueError("duplicate seat")
        s = HostedSeat(self, req)
        self.seats.add(s)
        self.router.add(req.seat, s)
        self.idle.clear()
        if self.call is None:
            self._open_stream()
        self.send(join_message(req.seat))
        try:
            worker = await self._worker()
        except SpawnFailed as e:
            self.emit_error("agent", str(e), req.seat)
            s.cut_off(f"agent {req.agent} could not start: {e}", kill=False)
            return s
        await s.start(worker)
        return s

    def seat_done(self, s: HostedSeat) -> None:
        self.router.remove(s.seat)
        self.seats.discard(s)
        for t in s.tasks:
            if t is not asyncio.current_task() and not t.done():
                t.cancel()
        if not self.seats:
            self.idle.set()

    async def wait_idle(self) -> None:
        await self.idle.wait()

    async def close(self) -> None:
        for s in list(self.seats):
            s.kill()
        for t in self.stream_tasks:
            t.cancel()
        if self.call is not None:
            self.call.cancel()
            self.call = None
        if self.channel is not None:
            await self.channel.close()
        await asyncio.gather(*(w.stop() for w in self.workers), return_exceptions=True)


# ------------------------------------------------------------------ CLI


def _json_out(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def _params(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        p = json.loads(text)
    except json.JSONDecodeError as e:
        raise AgentSpecError(f"--params is not JSON: {e}") from None
    if not isinstance(p, dict):
        raise AgentSpecError("--params must be a JSON object, e.g. '{\"e\": 0.2}'")
    return p


async def _serve(args: argparse.Namespace) -> int:
    host = Host(args.server, workers=args.workers, import_timeout=args.import_timeout, preload=args.preload, emit=_json_out, ca=args.ca)
    await host.start()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    pending: set[asyncio.Task] = set()
    try:
        while True:
            try:
                line = await reader.readline()
            except ValueError:
                host.emit_error("malformed", "an input line longer than 1 MiB")
                continue
            if not line:
                break
            text = line.decode(errors="replace").strip()
            if not text:
                continue
            try:
                req = SeatRequest.parse(json.loads(text))
            except (ValueError, json.JSONDecodeError) as e:
                host.emit_error("malformed", f"{e}: {text[:200]}")
                continue
            t = loop.create_task(host.add(req))
            pending.add(t)
            t.add_done_callback(pending.discard)
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        await host.wait_idle()
    finally:
        await host.close()
    return 0


async def _play(args: argparse.Namespace) -> int:
    events: list[dict[str, Any]] = []

    def note(ev: dict[str, Any]) -> None:
        events.append(ev)
        if ev["event"] == "error":
            print(f"negotium-agents: {ev.get('code')}: {ev.get('message')}", file=sys.stderr)
        elif ev["event"] == "seated":
            print(f"seated as `{ev['party']}` (party {ev['party_index']} of {ev['parties']})", file=sys.stderr)

    host = Host(args.server, workers=1, import_timeout=args.import_timeout, preload=args.preload, emit=note, ca=args.ca)
    await host.start()
    try:
        req = SeatRequest(args.session, args.party, args.token, args.agent, _params(args.params), args.deadline)
        seat = await host.add(req)
        await host.wait_idle()
    finally:
        await host.close()
    if seat.result is not None:
        sys.stdout.write(seat.result.record_json.replace("\n", " ") + "\n")
        r = seat.result
        print(
            f"ended by {r.ended_by} after {r.rounds} rounds; utilities {list(r.utilities)}"
            + (f"; violation: {r.violation.reason}" if r.violation else ""),
            file=sys.stderr,
        )
    if seat.left:
        print(f"negotium-agents: the agent was cut off: {seat.left}", file=sys.stderr)
    return 0 if seat.result is not None and seat.left is None else 1


def _check(args: argparse.Namespace) -> int:
    try:
        make = agent_factory(args.agent, _params(args.params))
        agent = make()
    except AgentSpecError as e:
        print(f"negotium-agents: {e}", file=sys.stderr)
        return 2
    print(f"ok: {args.agent} makes {type(agent).__name__} ({agent.name})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="negotium-agents", description="Host negotiation agents (negotium.Agent or NegMAS negotiators) for a negotium server.")
    sub = ap.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--server", default="127.0.0.1:7000", help="the node: HOST:PORT or http(s)://HOST:PORT")
        p.add_argument("--ca", help="PEM file of the TLS authority (https:// servers)")
        p.add_argument("--import-timeout", type=float, default=60.0, help="seconds an agent module may take to import (default 60)")
        p.add_argument("--preload", action="append", default=None, help="module the workers import before forking (default: negmas); repeatable")

    p = sub.add_parser("play", help="play one seat")
    common(p)
    p.add_argument("--session", required=True)
    p.add_argument("--party", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--agent", required=True, help="module:Class (a negotium.Agent or a NegMAS negotiator)")
    p.add_argument("--params", help="the agent's constructor parameters, a JSON object")
    p.add_argument("--deadline", type=float, help="seconds the agent may take per call (default: the server's turn window)")

    s = sub.add_parser("serve", help="host seats read as JSON lines on stdin; events as JSON lines on stdout")
    common(s)
    s.add_argument("--workers", type=int, default=None, help="worker processes (default: one per core)")

    c = sub.add_parser("check", help="import and instantiate an agent: exit 0, or 2 saying what is missing")
    c.add_argument("agent", help="module:Class")
    c.add_argument("--params", help="constructor parameters, a JSON object")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=os.environ.get("NEGOTIUM_AGENTS_LOG", "WARNING"), format="negotium-agents: %(message)s", stream=sys.stderr)
    if args.command == "check":
        return _check(args)
    if getattr(args, "preload", None) is None:
        args.preload = ["negmas"] if _importable("negmas") else []
    try:
        if args.command == "play":
            return asyncio.run(_play(args))
        return asyncio.run(_serve(args))
    except AgentSpecError as e:
        print(f"negotium-agents: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


if __name__ == "__main__":
    sys.exit(main())
