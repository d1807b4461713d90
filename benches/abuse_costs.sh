#!/usr/bin/env bash
# What two abusive requests cost a `negotium serve`, by peak RSS and open
# descriptors (README "What abuse costs a server"):
#   1. one CreateSession of 2,000 binary issues, both parties external, left
#      to time out (its end-of-session analysis once sampled 6.4 GB);
#   2. 8,000 TCP connections that send nothing.
#
#   bash benches/abuse_costs.sh [BIN]        # default target/release/negotium
#
# Loopback only; every server it starts is stopped.
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-$HERE/target/release/negotium}
TMP=$(mktemp -d)
PIDS=()
trap 'kill "${PIDS[@]}" 2> /dev/null || true; rm -rf "$TMP"' EXIT
serve() { # port args... -> sets PID
  "$BIN" serve --listen "127.0.0.1:$1" "${@:2}" > "$TMP/serve.log" 2>&1 &
  PID=$!
  PIDS+=("$PID")
  for _ in $(seq 100); do grep -q '^listening on ' "$TMP/serve.log" 2> /dev/null && break; sleep 0.05; done
}
hwm() { awk '/VmHWM/ {printf "%.0f MiB", $2 / 1024}' "/proc/$1/status"; }

python3 - "$TMP/wide.toml" <<'PY'
import sys
n = 2000
t = 'name = "wide"\n[protocol]\nrounds = 10\n'
t += "".join(f'[[issues]]\nname = "i{i}"\ntype = "integer"\nmin = 0\nmax = 1\n' for i in range(n))
for p in "ab":
    t += f'[[parties]]\nname = "{p}"\nexternal = true\nweights = {{ ' + ", ".join(f"i{i} = {1 / n!r}" for i in range(n)) + " }\n"
    t += "".join(f"values.i{i} = {{ linear = [0.0, 1.0] }}\n" for i in range(n))
open(sys.argv[1], "w").write(t)
PY
for limits in "" "--max-issues 4096"; do
  # shellcheck disable=SC2086
  serve 7391 --join-timeout 1 $limits
  answer=$("$BIN" session create "$TMP/wide.toml" --server http://127.0.0.1:7391 2>&1 | head -1 || true)
  sleep 15
  echo "2,000-issue session ${limits:-(default limits)}: ${answer%% *}…; peak RSS $(hwm "$PID")"
  kill "$PID"; wait "$PID" 2> /dev/null || true
done

serve 7392
python3 - "$PID" <<'PY'
import os, socket, sys, time
pid = sys.argv[1]
def rss(): return int(next(l for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS")).split()[1]) // 1024
def fds(): return len(os.listdir(f"/proc/{pid}/fd"))
base, held = rss(), []
for _ in range(8000):
    try:
        held.append(socket.create_connection(("127.0.0.1", 7392), timeout=2))
    except OSError:
        pass
time.sleep(2)
print(f"8,000 idle connections: server RSS {base} -> {rss()} MiB, {fds()} descriptors open")
time.sleep(10)
print(f"  12 s later: {fds()} descriptors open, RSS {rss()} MiB")
PY
