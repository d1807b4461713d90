# Sourced by the compare_*.sh scripts: the peer (NegMAS 0.16.0) in a venv of
# its own, installed from PyPI on first use. Sets PEER_PY.
#
# The peer's scripts send their errors to log files, so a failure would end
# a compare script (set -e) without a word: ensure_peer checks that the venv
# really imports NegMAS 0.16.0 (and rebuilds it when not), and run_peer
# prints the end of the newest log when a peer script fails.
PEER_VENV=${PEER_VENV:-/tmp/negmas-venv}
PEER_PY=$PEER_VENV/bin/python
PEER_VERSION=0.16.0

peer_ok() {
  [ -x "$PEER_PY" ] && "$PEER_PY" -c "import negmas, sys; sys.exit(negmas.__version__ != '$PEER_VERSION')" 2>/dev/null
}

ensure_peer() {
  peer_ok && return 0
  if [ -e "$PEER_VENV" ]; then
    local why
    why=$("$PEER_PY" -c 'import negmas; print("NegMAS", negmas.__version__)' 2>&1 | tail -n 1) || true
    echo "peer: $PEER_VENV does not give NegMAS $PEER_VERSION (${why:-no python}); rebuilding it" >&2
    if [ ! -f "$PEER_VENV/pyvenv.cfg" ]; then
      echo "peer: $PEER_VENV is not a venv; remove it or set PEER_VENV" >&2
      return 1
    fi
    rm -rf "$PEER_VENV"
  fi
  echo "peer: installing NegMAS $PEER_VERSION into $PEER_VENV (PyPI)" >&2
  python3 -m venv "$PEER_VENV" || { echo "peer: cannot create the venv $PEER_VENV (python3 -m venv)" >&2; return 1; }
  "$PEER_VENV/bin/pip" install -q "negmas==$PEER_VERSION" negmas-genius-agents==0.3.0 \
    || { echo "peer: pip could not install NegMAS $PEER_VERSION into $PEER_VENV" >&2; return 1; }
  peer_ok || { echo "peer: NegMAS $PEER_VERSION installed but does not import:" >&2; "$PEER_PY" -c 'import negmas' >&2; return 1; }
}

# run_peer LOGDIR COMMAND...: runs a peer script; when it fails, says so and
# prints the end of the newest log in LOGDIR (where the peer's errors go).
run_peer() {
  local dir=$1; shift
  local rc=0
  "$@" || rc=$?
  if [ "$rc" != 0 ]; then
    echo "peer: '$*' failed (exit $rc)" >&2
    local log
    log=$(ls -t "$dir"/*.log 2>/dev/null | head -n 1) || true
    if [ -n "$log" ]; then
      echo "peer: the end of $log:" >&2
      tail -n 20 "$log" >&2
    fi
    return "$rc"
  fi
}
