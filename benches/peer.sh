# Sourced by the compare_*.sh scripts: the peer (NegMAS 0.16.0) in a venv of
# its own, installed from PyPI on first use. Sets PEER_PY.
PEER_VENV=${PEER_VENV:-/tmp/negmas-venv}
PEER_PY=$PEER_VENV/bin/python
ensure_peer() {
  if [ ! -x "$PEER_PY" ]; then
    python3 -m venv "$PEER_VENV"
    "$PEER_VENV/bin/pip" install -q negmas==0.16.0 negmas-genius-agents==0.3.0
  fi
}
