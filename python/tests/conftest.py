"""Fixtures: a `negotium serve` on a free 127.0.0.1 port, scenarios from the ANAC domains.

Prerequisites and where they come from:

* the negotium binary: ``$NEGOTIUM_BIN``, by default ``../target/debug/negotium``
  relative to ``python/`` (build it with ``cargo build``);
* the ANAC Genius domains: ``../shared/data`` relative to the repository root
  (see shared/data/README.md);
* NegMAS and negmas-genius-agents for the adapter and fidelity tests
  (``pip install 'negotium[negmas]' negmas-genius-agents==0.3.0``).

A missing prerequisite skips the tests that need it, saying which and how
to provide it, except where the environment variable ``CI`` is set: there a
missing binary or package fails the run, so that a CI job cannot pass by
skipping everything. The ANAC domains are the machine's, not installed by
.ci/run: without them those tests skip, as the Rust tests do.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

PYTHON_DIR = Path(__file__).resolve().parents[1]
REPO = PYTHON_DIR.parent
DATA = REPO.parent / "shared" / "data"
GENIUS = DATA / "genius"
TESTS = Path(__file__).resolve().parent


def missing(what: str) -> None:
    """Skip (or, under CI, fail) because ``what`` is missing."""
    if os.environ.get("CI", "") not in ("", "0", "false"):
        pytest.fail(f"prerequisite missing (CI is set, so this fails instead of skipping): {what}")
    pytest.skip(what)


def negotium_bin() -> Path:
    p = Path(os.environ.get("NEGOTIUM_BIN", PYTHON_DIR / ".." / "target" / "debug" / "negotium")).resolve()
    if not (p.is_file() and os.access(p, os.X_OK)):
        missing(f"the negotium binary {p} is absent: run `cargo build` or set NEGOTIUM_BIN")
    return p


def genius(rel: str) -> Path:
    d = GENIUS / rel
    if not d.is_dir():
        # Skipped even under CI, as the Rust tests skip: the domains are
        # the machine's (../shared/data, never copied into the repository),
        # not something .ci/run installs.
        pytest.skip(f"ANAC domain {d} is absent: the tests read ../shared/data (see shared/data/README.md)")
    return d


def require_negmas() -> None:
    try:
        import negmas  # noqa: F401
        import negmas_genius_agents  # noqa: F401
    except ImportError as e:
        missing(f"{e}: pip install 'negotium[negmas]' negmas-genius-agents==0.3.0")


class Server:
    """A running `negotium serve`: its address and binary."""

    def __init__(self, proc: subprocess.Popen, address: str, binary: Path, log: Path) -> None:
        self.proc = proc
        self.address = address
        self.binary = binary
        self.log = log


def start_server(binary: Path, log: Path, *extra: str) -> Server:
    out = open(log, "w")
    proc = subprocess.Popen(
        [str(binary), "serve", "--listen", "127.0.0.1:0", *extra],
        stdout=subprocess.PIPE,
        stderr=out,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    line = ""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        m = re.search(r"listening on (\S+)", line)
        if m:
            return Server(proc, m.group(1), binary, log)
    proc.kill()
    raise RuntimeError(f"negotium serve did not say where it listens (last line {line!r}); see {log}")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    binary = negotium_bin()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    # Generous: on a loaded 2-core machine NegMAS agents can take many
    # seconds to set up; the host enforces the tests' own deadlines.
    s = start_server(binary, log, "--turn-timeout", "30", "--setup-timeout", "60")
    yield s
    s.proc.terminate()
    try:
        s.proc.wait(10)
    except subprocess.TimeoutExpired:
        s.proc.kill()


_imported: dict[Path, str] = {}


def imported(domain: Path) -> str:
    """The scenario TOML `negotium import` writes for an ANAC folder (cached)."""
    if domain not in _imported:
        r = subprocess.run([str(negotium_bin()), "import", str(domain)], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"negotium import {domain} failed: {r.stderr}")
        _imported[domain] = r.stdout
    return _imported[domain]


def party_names(toml: str) -> list[str]:
    return re.findall(r'^\[\[parties\]\]\nname = "([^"]*)"', toml, flags=re.M)


def with_external(toml: str, parties: list[str] | None = None, rounds: int | None = None) -> str:
    """``toml`` with ``parties`` (default: all) played by external agents and the deadline set to ``rounds``."""
    names = party_names(toml) if parties is None else parties
    for n in names:
        head = f'[[parties]]\nname = "{n}"\n'
        if head not in toml:
            raise ValueError(f"no party {n!r} in the scenario")
        toml = toml.replace(head, head + "external = true\n", 1)
    if rounds is not None:
        toml, k = re.subn(r"(\[protocol\]\n)(?:rounds = \d+\n)?", rf"\g<1>rounds = {rounds}\n", toml, count=1)
        assert k == 1
    return toml


def agents_env() -> dict[str, str]:
    """Environment for a host subprocess: tests/ on the path (test agents live there)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")]).strip(os.pathsep)
    env.setdefault("PYTHONHASHSEED", "0")
    return env


def host_command() -> list[str]:
    return [sys.executable, "-m", "negotium.host"]
