"""A host worker: a pre-imported Python process that forks one child per seat.

Started by :mod:`negotium.host` as ``python -m negotium._zygote FD`` where
``FD`` is its end of a ``SOCK_SEQPACKET`` control socket. It never runs
agent code itself, so that nothing an agent does can take it (and every
other seat it forked) down:

* A spawn request names the agent (``module:Class``, parameters) and carries
  the seat's socket as an ``SCM_RIGHTS`` file descriptor. The first time a
  module is named, a throw-away *probe* child imports it under a time limit;
  only a module that imported cleanly is then imported here, once, and every
  later seat of it starts from a copy-on-write ``fork()`` of this process
  with the module (and NegMAS) already loaded.
* The seat child makes the agent, then answers the host's frames over the
  seat socket (see :func:`serve_seat`); the host enforces deadlines by
  killing that child, never this process.
* Children are reaped here; their exit statuses go back to the host
  (``{"op": "exited", "pid": ..., "status": ...}``: the exit code, or minus
  the signal number).

Frames on a seat socket are a 4-byte big-endian length, one type byte and a
payload. Host to child: ``m`` + ``ServerMessage`` bytes. Child to host:
``r`` (agent made; payload its name), ``s`` (``on_start`` returned), ``a`` +
``AgentMessage`` bytes (an answer), ``l`` + reason (the agent gave up its
seat), ``d`` (``on_end`` returned; the child exits).
"""

from __future__ import annotations

import gc
import json
import os
import select
import signal
import socket
import struct
import sys
import time
import traceback
from typing import Any

HEADER = struct.Struct(">IB")
MAX_FRAME = 256 << 20


# ------------------------------------------------------------------ frames (blocking, child side)


def send_frame(sock: socket.socket, kind: bytes, payload: bytes = b"") -> None:
    sock.sendall(HEADER.pack(len(payload), kind[0]) + payload)


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def recv_frame(sock: socket.socket) -> tuple[bytes, bytes] | None:
    head = _recv_exact(sock, HEADER.size)
    if head is None:
        return None
    n, kind = HEADER.unpack(head)
    if n > MAX_FRAME:
        raise ValueError(f"a frame of {n} bytes")
    payload = _recv_exact(sock, n) if n else b""
    if payload is None:
        return None
    return bytes([kind]), payload


# ------------------------------------------------------------------ process hygiene


def die_with_parent() -> None:
    """Linux: SIGKILL this process when its parent dies (no orphaned workers after a host crash)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except Exception:  # pragma: no cover - not Linux
        pass


def describe_status(status: int | None) -> str:
    """``exited (status 3)`` / ``was killed by signal 9 (SIGKILL)`` for an exit status from :func:`status_of`."""
    if status is None:
        return "exited"
    if status >= 0:
        return f"exited (status {status})"
    try:
        name = signal.Signals(-status).name
    except ValueError:
        name = "?"
    return f"was killed by signal {-status} ({name})"


def status_of(wait_status: int) -> int:
    if os.WIFSIGNALED(wait_status):
        return -os.WTERMSIG(wait_status)
    return os.WEXITSTATUS(wait_status)


# ------------------------------------------------------------------ the seat child


def serve_seat(sock: socket.socket, spec: str, params: dict[str, Any], session_id: str, party: str) -> None:
    """The life of one seat's process: make the agent, answer frames until the session ends."""
    from negotium._loading import agent_factory
    from negotium._pb import pb
    from negotium.agent import SeatDriver, cut
    from negotium.types import Seat

    try:
        agent = agent_factory(spec, params, probe=False)()
    except Exception as e:
        send_frame(sock, b"l", cut(f"agent {spec} could not be made: {type(e).__name__}: {e}").encode())
        return
    driver = SeatDriver(agent, Seat(session_id, party, ""))
    send_frame(sock, b"r", driver.agent_name().encode())
    while True:
        frame = recv_frame(sock)
        if frame is None:
            return  # the host is gone or cut this seat
        kind, payload = frame
        if kind != b"m":
            continue
        msg = pb.ServerMessage.FromString(payload)
        replies = driver.handle(msg)
        for reply in replies:
            if reply.WhichOneof("kind") == "leave":
                send_frame(sock, b"l", reply.leave.reason.encode())
                return
            send_frame(sock, b"a", reply.SerializeToString())
        which = msg.WhichOneof("kind")
        if which == "settings":
            send_frame(sock, b"s")
        elif driver.done:
            send_frame(sock, b"d")
            return


def child_main(sock: socket.socket, spec: str, params: dict[str, Any], session_id: str, party: str) -> None:
    """Entry point of a forked seat child; never returns."""
    code = 0
    try:
        die_with_parent()  # the zygote dies only with the host: then so does every seat
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the host decides when a seat ends
        signal.set_wakeup_fd(-1)
        gc.enable()
        serve_seat(sock, spec, params, session_id, party)
    except (BrokenPipeError, ConnectionError):
        pass  # the host cut this seat or is gone: nothing left to tell it
    except BaseException:  # a bug here, not in the agent: say so on stderr
        traceback.print_exc()
        code = 70
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


# ------------------------------------------------------------------ the zygote


class Zygote:
    def __init__(self, ctl: socket.socket, import_timeout: float) -> None:
        self.ctl = ctl
        self.import_timeout = import_timeout
        self.imported: dict[str, str | None] = {}  # module -> None (ok) or why it failed
        self.children: set[int] = set()

    def send(self, **msg: Any) -> None:
        self.ctl.send(json.dumps(msg).encode())

    def probe(self, module: str, spec: str | None = None) -> str | None:
        """Imports ``module`` in a throw-away child under the time limit; why it failed, or None."""
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the probe
            os.close(r)
            code = 0
            try:
                from negotium._loading import AgentSpecError, import_module

                try:
                    import_module(module, spec)
                except AgentSpecError as e:
                    os.write(w, f"!{e}".encode()[:4000])
                    code = 2
            except BaseException as e:
                os.write(w, f"{type(e).__name__}: {e}".encode()[:4000])
                code = 2
            finally:
                os._exit(code)
        os.close(w)
        deadline = time.monotonic() + self.import_timeout
        message = b""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                os.close(r)
                return f"importing `{module}` took longer than {self.import_timeout:g} s"
            ready, _, _ = select.select([r], [], [], left)
            if ready:
                chunk = os.read(r, 4096)
                if not chunk:
                    break
                message += chunk
        os.close(r)
        _, st = os.waitpid(pid, 0)
        status = status_of(st)
        if status == 0:
            return None
        if message.startswith(b"!"):
            return message[1:].decode(errors="replace")  # already says what to do
        if message:
            return f"importing `{module}` failed: {message.decode(errors='replace')}"
        return f"importing `{module}` killed its process: it {describe_status(status)}"

    def ensure_imported(self, spec: str) -> str | None:
        from negotium._loading import AgentSpecError, load_class, split_spec

        try:
            module, _ = split_spec(spec)
        except AgentSpecError as e:
            return str(e)
        if module not in self.imported:
            why = self.probe(module, spec)
            if why is None:
                try:
                    load_class(spec)
                except AgentSpecError as e:
                    why = str(e)
                gc.freeze()  # what is imported now is shared with every child, never copied
            self.imported[module] = why
        why = self.imported[module]
        if why is not None:
            return why
        try:
            load_class(spec)
        except AgentSpecError as e:
            return str(e)
        return None

    def spawn(self, req: dict[str, Any], fd: int) -> None:
        seat = req["seat"]
        why = self.ensure_imported(req["agent"])
        if why is not None:
            os.close(fd)
            self.send(op="failed", seat=seat, error=why)
            return
        pid = os.fork()
        if pid == 0:
            self.ctl.close()
            sock = socket.socket(fileno=fd)
            child_main(sock, req["agent"], req.get("params") or {}, req.get("session", ""), req.get("party", ""))
        os.close(fd)
        self.children.add(pid)
        self.send(op="spawned", seat=seat, pid=pid)

    def reap(self) -> None:
        while self.children:
            try:
                pid, st = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                return
            if pid == 0:
                return
            self.children.discard(pid)
            self.send(op="exited", pid=pid, status=status_of(st))

    def run(self, preload: list[str]) -> None:
        for module in preload:
            why = self.probe(module)
            if why is None:
                __import__(module)
            self.imported[module] = why
        gc.freeze()
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        os.set_blocking(wake_r, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        self.send(op="ready", pid=os.getpid(), preloaded={m: self.imported[m] for m in preload})
        while True:
            try:
                ready, _, _ = select.select([self.ctl.fileno(), wake_r], [], [])
            except InterruptedError:  # pragma: no cover - PEP 475 retries
                continue
            if wake_r in ready:
                try:
                    while os.read(wake_r, 512):
                        pass
                except BlockingIOError:
                    pass
                self.reap()
            if self.ctl.fileno() in ready:
                try:
                    data, fds, _, _ = socket.recv_fds(self.ctl, 1 << 20, 4)
                except ConnectionResetError:
                    data, fds = b"", []
                if not data:
                    return  # the host closed the control socket: stop (children live on until their seats end)
                req = json.loads(data)
                if req.get("op") == "spawn" and fds:
                    for extra in fds[1:]:
                        os.close(extra)
                    self.spawn(req, fds[0])
                else:
                    for f in fds:
                        os.close(f)
            self.reap()


def main() -> None:
    fd = int(sys.argv[1])
    import_timeout = float(sys.argv[2]) if len(sys.argv) > 2 else 60.0
    preload = [m for m in sys.argv[3:] if m]
    die_with_parent()
    import logging

    logging.basicConfig(level=logging.WARNING, format="negotium-agents (worker %(process)d): %(message)s")
    ctl = socket.socket(fileno=fd)
    Zygote(ctl, import_timeout).run(preload)


if __name__ == "__main__":
    main()
