#!/usr/bin/env bash
# Build the course image (docker/Dockerfile) and prove it.
#   docker/image-test.sh build   both targets: $IMAGE:student (also $IMAGE:latest) and $IMAGE:grader   (make image)
#   docker/image-test.sh test    build, then: no solutions in the student image, non-root, welcome, doctor, the
#                                statement started into a mounted workspace, and check of a demo workspace inside it, and a class (fork bomb and memory bomb
#                                included) graded with --sandbox container in the grader image, the hostile
#                                corpus in containers, and the Gradescope path in the grader image   (make image-test)
# Environment (all optional):
#   IMAGE=localhost/labkit            image name; the tags are :student, :latest and :grader
#   BASE_IMAGE=...                    the Debian bookworm base; by default localhost/debian-base:bookworm,
#                                     bootstrapped here with debootstrap when missing (no registry is needed)
#   FETCH_DATA=1                      0: do not try to fetch Fashion-MNIST during the build
#   TORCH_INDEX_URL=                  a torch wheel index for older drivers/GPUs (docs/docker.md); empty: PyPI's
#   LABKIT_CONTAINERS=/var/tmp/labkit-containers   podman's --root/--runroot (as root) and a containers.conf
#   ENGINE=podman|docker              default: podman when installed, else docker
#   LOCAL_PIP=auto|0                  auto: mount the host's pip configuration and the local indexes it names
# Facts behind the flags (measured on the CI machines): crun refuses their cgroup layout (runc works), podman's
# default ulimits cannot be set there (explicit --ulimit values can), a storage.conf in the environment made every
# `run --rm` wait 20 s (so --root/--runroot go on the command line).
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=${1:-test}
IMAGE=${IMAGE:-localhost/labkit}
DEFAULT_BASE=localhost/debian-base:bookworm
BASE_IMAGE=${BASE_IMAGE:-$DEFAULT_BASE}
FETCH_DATA=${FETCH_DATA:-1}
STATE=${LABKIT_CONTAINERS:-/var/tmp/labkit-containers}
LOCAL_PIP=${LOCAL_PIP:-auto}
T0=$(date +%s)

say() { printf '== %s\n' "$*"; }
die() { printf 'image-test: FAIL: %s\n' "$*" >&2; exit 1; }
elapsed() { echo $(( $(date +%s) - $1 )); }

# ---------- the engine and its flags ----------
ENGINE=${ENGINE:-$(command -v podman >/dev/null && echo podman || echo docker)}
command -v "$ENGINE" >/dev/null || die "neither podman nor docker is installed"
E=("$ENGINE")          # global options
RUNF=()                # `run` options
BUILDF=()              # `build` options
if [ "$ENGINE" = podman ]; then
  mkdir -p "$STATE"
  if [ "$(id -u)" = 0 ]; then E+=(--root "$STATE/storage" --runroot "$STATE/run"); fi
  if command -v runc >/dev/null; then E+=(--runtime runc); fi
  # For the containers labkit itself starts (--sandbox container), which pass no --ulimit:
  printf '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n' > "$STATE/containers.conf"
  export CONTAINERS_CONF="$STATE/containers.conf"
  RUNF+=(--ulimit nofile=20000:20000 --ulimit nproc=32768:32768)
  BUILDF+=(--ulimit nofile=20000:20000 --ulimit nproc=32768:32768 --layers)
fi
ENGINE_ARGS="${E[*]:1}"   # what labkit's --sandbox container needs: LABKIT_PODMAN_ARGS
run() { "${E[@]}" run --rm "${RUNF[@]}" "$@"; }

# ---------- the base image ----------
debian_mirror() {  # the mirror apt already uses here
  local uri
  uri=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -n1)
  [ -n "$uri" ] || uri=$(grep -hsE '^deb +(\[[^]]*\] +)?https?://' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
                         2>/dev/null | grep -v security | sed -E 's/^deb +(\[[^]]*\] +)?//' | awk '{print $1}' | head -n1)
  echo "${uri:-http://deb.debian.org/debian}"
}

ensure_base() {
  if "${E[@]}" image exists "$BASE_IMAGE" 2>/dev/null || "${E[@]}" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    return
  fi
  if [ "$BASE_IMAGE" != "$DEFAULT_BASE" ]; then
    if "${E[@]}" pull "$BASE_IMAGE"; then return; fi
    die "base image $BASE_IMAGE is neither here nor pullable"
  fi
  command -v debootstrap >/dev/null || die "$BASE_IMAGE is missing and debootstrap is not installed (apt-get install debootstrap)"
  [ "$(id -u)" = 0 ] || die "bootstrapping $BASE_IMAGE needs root (debootstrap)"
  local t dir mirror
  t=$(date +%s); mirror=$(debian_mirror); dir=$(mktemp -d "$STATE/rootfs.XXXXXX")
  say "bootstrapping $BASE_IMAGE from $mirror (debootstrap --variant=minbase bookworm)"
  debootstrap --variant=minbase bookworm "$dir" "$mirror" > "$STATE/debootstrap.log" 2>&1 \
    || { tail -n 20 "$STATE/debootstrap.log"; rm -rf "$dir"; die "debootstrap failed"; }
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
  tar -C "$dir" -c . | "${E[@]}" import - "$BASE_IMAGE" >/dev/null
  rm -rf "$dir"
  say "base image bootstrapped in $(elapsed "$t") s"
}

# ---------- pip's local indexes (the ~3.6 GB of torch/CUDA wheels), mounted read-only into the build ----------
local_pip_volumes() {
  [ "$LOCAL_PIP" != 0 ] && [ "$ENGINE" = podman ] || return 0   # docker build has no --volume
  local py f key value path seen=" "
  py=$(command -v python3 || true); [ -n "$py" ] || return 0
  for f in /etc/pip.conf /etc/xdg/pip/pip.conf "$HOME/.config/pip/pip.conf" "$HOME/.pip/pip.conf"; do
    if [ -f "$f" ]; then
      local inside=$f
      case $f in "$HOME"/*) inside=/root/${f#"$HOME"/} ;; esac   # the build runs as root
      BUILDF+=(--volume "$f:$inside:ro")
    fi
  done
  # The paths the configuration names: find-links, index-url, extra-index-url, constraint (not cert: a secret).
  while IFS='=' read -r key value; do
    case $key in *find-links|*index-url|*extra-index-url|*constraint) ;; *) continue ;; esac
    value=${value//\'/}
    for path in $value; do
      path=${path#file://}
      case $path in /*) ;; *) continue ;; esac
      [ -e "$path" ] || continue
      case $path in */simple|*/simple/) path=$(dirname "${path%/}") ;; esac   # its pages link to ../files
      case $seen in *" $path "*) continue ;; esac
      seen="$seen$path "
      BUILDF+=(--volume "$path:$path:ro")
    done
  done < <("$py" -m pip config list 2>/dev/null | grep -v '^:env:')
}

build() {
  ensure_base
  local_pip_volumes
  local ca=/etc/ssl/certs/ca-certificates.crt secret=()
  [ -s "$ca" ] && secret=(--secret "id=ca,src=$ca")
  local common=(-f docker/Dockerfile --build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg "FETCH_DATA=$FETCH_DATA"
                --build-arg "TORCH_INDEX_URL=${TORCH_INDEX_URL:-}"
                "${secret[@]}" "${BUILDF[@]}")
  local t
  t=$(date +%s)
  say "building $IMAGE:grader (base $BASE_IMAGE; ${#BUILDF[@]} build flags, local pip indexes mounted where found)"
  "${E[@]}" build "${common[@]}" --target grader -t "$IMAGE:grader" . 2>&1 | tee "$STATE/build-grader.log" | grep -E '^(STEP|COMMIT|labkit |Fashion|FETCH)' || true
  [ "${PIPESTATUS[0]}" = 0 ] || { tail -n 30 "$STATE/build-grader.log"; die "the grader build failed"; }
  say "grader built in $(elapsed "$t") s"
  t=$(date +%s)
  "${E[@]}" build "${common[@]}" --target student -t "$IMAGE:student" -t "$IMAGE:latest" . > "$STATE/build-student.log" 2>&1 \
    || { tail -n 30 "$STATE/build-student.log"; die "the student build failed"; }
  say "student built in $(elapsed "$t") s (shares the build stage's layers)"
  # Each rebuild leaves the previous images untagged (6 GB each): remove them, or a few CI runs fill the disk.
  "${E[@]}" image prune -f > /dev/null 2>&1 || true
  "${E[@]}" image ls --filter "reference=$IMAGE" --format '{{.Repository}}:{{.Tag}}  {{.Size}}' 2>/dev/null \
    || "${E[@]}" image ls "$IMAGE"
}

# ---------- the checks ----------
STUDENT=$IMAGE:student
GRADER=$IMAGE:grader

test_no_solutions() {
  say "the student image holds no solutions, tests or grader layout"
  run --entrypoint sh "$STUDENT" -c 'test ! -e /opt/labkit/src && test ! -e /autograder && test -z "$LABKIT_SOLUTIONS" \
    && test -z "$(find / -xdev \( -name "exercise[0-9]*.py" -o -path "*labkit*/solutions" -o -path "*/site-packages/labkit/*test*" \) 2>/dev/null)"' \
    || die "$STUDENT contains solutions/ or exercise*.py or tests"
  # a line only the reference solution has, searched for in every text file the image holds under /opt /home /usr/lib
  local marker
  marker=$(python3 - <<'EOF'
import pathlib
exercises = "\n".join(p.read_text() for p in pathlib.Path("exercises").rglob("*.py"))
lines = [line.strip() for line in pathlib.Path("solutions/exercise1.py").read_text().splitlines()]
print(max((line for line in lines if line and line not in exercises and "'" not in line), key=len))
EOF
)
  [ -n "$marker" ] || die "no marker line found in solutions/exercise1.py"
  if run --entrypoint grep "$STUDENT" -rqsF -- "$marker" /opt /home /usr/lib/python3 /work; then
    die "$STUDENT holds solution text: $marker"
  fi
  run --entrypoint sh "$GRADER" -c 'test -f /autograder/source/solutions/exercise1.py && test -x /autograder/run_autograder' \
    || die "$GRADER lacks the solutions or /autograder/run_autograder"
}

test_user() {
  say "both images run as a non-root user"
  local img uid
  for img in "$STUDENT" "$GRADER"; do
    uid=$(run --entrypoint id "$img" -u)
    [ "$uid" != 0 ] || die "$img runs as root"
  done
  [ "$("${E[@]}" image inspect --format '{{json .Config.Entrypoint}}' "$STUDENT")" = '["tini","--","labkit"]' ] \
    || die "the entrypoint is not tini -- labkit"
  run --entrypoint tini "$STUDENT" --version >/dev/null || die "tini is missing"
}

test_student_commands() {
  say "welcome (the default command), doctor, the statement in a mounted workspace, and check --all inside $STUDENT"
  local out ws t
  out=$(run --shm-size=2g "$STUDENT") || die "the default command (welcome) failed: $out"
  grep -q exercise1 <<<"$out" || die "welcome does not list the exercises: $out"
  run --shm-size=2g "$STUDENT" doctor || die "labkit doctor failed in $STUDENT"
  # /dev/shm is 64 MB without --shm-size: doctor must say so
  run "$STUDENT" doctor | grep -q "/dev/shm" || die "doctor does not warn about a 64 MB /dev/shm"
  ws=$(mktemp -d "$STATE/ws.XXXXXX")
  chmod 0777 "$ws"   # the image's user (uid 1000) writes there
  run -v "$ws:/work" "$STUDENT" init /work >/dev/null || die "labkit init /work failed"
  # the statement reaches the student where the host's editor can open it: the mounted workspace, not the image
  out=$(run -v "$ws:/work" "$STUDENT" start exercise1) || die "labkit start exercise1 failed: $out"
  grep -q "exercise1.md" <<<"$out" || die "start does not say where the statement is: $out"
  for pair in "exercise1.md:README.md" "exercise1.zh-CN.md:README.zh-CN.md"; do
    [ -f "$ws/${pair%%:*}" ] || die "the statement ${pair%%:*} is not in the mounted workspace"
    cmp -s "$ws/${pair%%:*}" "exercises/exercise1/${pair##*:}" \
      || die "$ws/${pair%%:*} is not exercise1's ${pair##*:}"
  done
  local shown zh
  shown=$(run -v "$ws:/work" "$STUDENT" show exercise1) || die "labkit show exercise1 failed: $shown"
  zh=$(run -e LABKIT_LANG=zh_CN -v "$ws:/work" "$STUDENT" show exercise1) || die "labkit show (zh_CN) failed: $zh"
  # $(...) drops trailing newlines, as `show` does: compare the texts without them
  [ "$shown" = "$(cat exercises/exercise1/README.md)" ] || die "labkit show exercise1 does not print the statement"
  [ "$zh" = "$(cat exercises/exercise1/README.zh-CN.md)" ] || die "labkit show exercise1 is not Chinese under LABKIT_LANG=zh_CN"
  say "the statement reached the mounted workspace (exercise1.md, exercise1.zh-CN.md) and labkit show prints it"
  cp solutions/exercise*.py "$ws/"   # from the host: the image has none
  chmod a+r "$ws"/*.py
  t=$(date +%s)
  run --shm-size=2g --network none -v "$ws:/work" "$STUDENT" check --all > "$STATE/check-all.log" 2>&1 \
    || { tail -n 40 "$STATE/check-all.log"; die "labkit check --all of the reference solutions failed in $STUDENT"; }
  tail -n 12 "$STATE/check-all.log"
  say "check --all inside the image: $(elapsed "$t") s"
  rm -rf "$ws"
}

test_grade_in_containers() {
  local labkit=.venv/bin/labkit
  [ -x "$labkit" ] || labkit=$(command -v labkit || true)
  if [ -z "$labkit" ] || ! "$labkit" grade --help 2>/dev/null | grep -q container; then
    echo "SKIP: grading with --sandbox container (this labkit's \`grade --help\` does not offer it yet)"
    return
  fi
  if [ "$ENGINE" != podman ]; then
    echo "SKIP: grading with --sandbox container needs podman (found $ENGINE)"
    return
  fi
  say "a class graded with --sandbox container in $STUDENT (a fork bomb, a memory bomb and a snoop included)"
  local class out t
  class=$(mktemp -d "$STATE/class.XXXXXX")
  mkdir -p "$class/sub/alice" "$class/sub/forkbomb" "$class/sub/membomb" "$class/sub/snoop"
  cp solutions/exercise1.py "$class/sub/alice/exercise1.py"
  { cat solutions/exercise1.py; cat <<'EOF'

import glob as _glob
import os as _os

_SEEN = [p for p in ("/autograder", "/opt/labkit/src") if _os.path.exists(p)]
_SEEN += _glob.glob("/opt/labkit/**/solutions/*.py", recursive=True)[:3]  # a wheel or a checkout inside
_SEEN += _glob.glob("/opt/labkit/**/exercises/*/checks.py", recursive=True)[:3]  # checks to replay
if _SEEN:  # a worker that can read the solutions: this submission would copy them; here it gives itself away
    def pick_device(prefer="cuda"):
        raise RuntimeError(f"the worker can read {_SEEN}")
EOF
  } > "$class/sub/snoop/exercise1.py"
  { cat solutions/exercise1.py; cat <<'EOF'

import os as _os
import time as _time

for _ in range(5000):  # bounded, so harmless without a sandbox; the container's --pids-limit stops it first
    try:
        if _os.fork() == 0:
            _time.sleep(60)
            _os._exit(0)
    except OSError:
        pass  # the kernel said no: keep trying, as a real bomb does
_time.sleep(60)  # and never finish importing: the import limit ends it, 0 points
EOF
  } > "$class/sub/forkbomb/exercise1.py"
  { cat solutions/exercise1.py; cat <<'EOF'

_blob = bytearray(b"x") * (12 << 30)  # 12 GB written, so it is really used: the container's --memory stops it
EOF
  } > "$class/sub/membomb/exercise1.py"
  t=$(date +%s)
  out=$(LABKIT_IMAGE="$STUDENT" LABKIT_PODMAN_ARGS="$ENGINE_ARGS" \
        "$labkit" grade "$class/sub" --exercise exercise1 --sandbox container --out "$class/out" -j 2 2>&1) \
    || true
  echo "$out" | tail -n 15
  say "graded 4 submissions in containers in $(elapsed "$t") s"
  python3 - "$class/out" <<'EOF' || die "the class was not graded as expected in containers (see above)"
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
res = {p.stem: json.loads(p.read_text()) for p in (out / "students").glob("*.json")}
assert set(res) == {"alice", "forkbomb", "membomb", "snoop"}, sorted(res)
def score(r): return r.get("score", r.get("report", {}).get("score"))
text = {k: json.dumps(v) for k, v in res.items()}
assert all('"container"' in t for t in text.values()), "the reports do not say sandbox container"
for name in ("alice", "snoop"):  # the snoop finds no solutions in the student image, so it keeps full marks
    full = res[name]
    assert score(full) and score(full) == full.get("max_score", score(full)), f"{name}: {score(full)}"
for bomb in ("forkbomb", "membomb"):
    assert not score(res[bomb]), f"{bomb} scored {score(res[bomb])}"
print("graded in containers:", {k: score(v) for k, v in res.items()})
EOF
  rm -rf "$class"
}

test_hostile_in_containers() {
  if [ "$ENGINE" != podman ] || [ ! -x .venv/bin/python ]; then
    echo "SKIP: the hostile corpus under --sandbox container needs podman and the CI venv (.venv)"
    return
  fi
  say "the hostile corpus (tests/hostile) graded with --sandbox container, workers in $STUDENT"
  local t
  t=$(date +%s)
  LABKIT_TEST_SANDBOX=container LABKIT_IMAGE="$STUDENT" LABKIT_PODMAN_ARGS="$ENGINE_ARGS" \
    .venv/bin/python -m pytest -q -p no:cacheprovider -k test_hostile_submission tests/sandbox/test_hostile.py \
    > "$STATE/hostile-container.log" 2>&1 \
    || { tail -n 60 "$STATE/hostile-container.log"; die "a hostile submission earned points in a container"; }
  tail -n 3 "$STATE/hostile-container.log"
  if grep -q " skipped" "$STATE/hostile-container.log"; then
    tail -n 20 "$STATE/hostile-container.log"
    die "some attacks were skipped: the container worker must run them all"
  fi
  say "hostile corpus in containers: $(elapsed "$t") s"
}

test_gradescope_path() {
  say "the Gradescope path in $GRADER, run as Gradescope runs it (root, no sandbox of its own): a submission hunts for the checks, the solutions and the results"
  local d
  d=$(mktemp -d "$STATE/gradescope.XXXXXX")
  mkdir -p "$d/submission" "$d/results"
  { cat solutions/exercise1.py; cat <<'EOF'

import glob as _glob

_SEEN = []
for _pattern in ("/autograder/source/**/checks.py", "/autograder/source/solutions/*.py", "/autograder/results/*",
                 "/opt/labkit/**/exercises/*/checks.py", "/autograder/**/.salt*"):
    for _path in _glob.glob(_pattern, recursive=True)[:5]:
        try:
            with open(_path, "rb") as _f:
                _f.read(1)
            _SEEN.append(_path)
        except OSError:
            pass
if _SEEN:  # a worker that can read the grader's files: a real submission would replay the checks from them
    def pick_device(prefer="cuda"):
        raise RuntimeError(f"the worker can read {_SEEN[:3]}")
EOF
  } > "$d/submission/exercise1.py"
  chmod -R a+rX "$d/submission"
  run --user 0 --shm-size=2g --network none -v "$d/submission:/autograder/submission:ro" \
      -v "$d/results:/autograder/results" --entrypoint /autograder/run_autograder "$GRADER" exercise1 \
      > "$STATE/gradescope.log" 2>&1 || { tail -n 40 "$STATE/gradescope.log"; die "run_autograder failed"; }
  python3 - "$d/results/results.json" <<'EOF' || { tail -n 40 "$STATE/gradescope.log"; die "the Gradescope path let a submission read the grader's files (see above)"; }
import json, sys
res = json.load(open(sys.argv[1]))
tests = res.get("tests", [])
text = json.dumps(res)
assert "the worker can read" not in text, [t.get("output", "")[:300] for t in tests if t.get("score") != t.get("max_score")]
got, most = sum(t.get("score", 0) for t in tests), sum(t.get("max_score", 0) for t in tests)
assert tests and got == most, f"{got}/{most}"
print(f"Gradescope path: {got}/{most}; the worker read none of the grader's files")
EOF
  rm -rf "$d"
}

case $MODE in
  build) build ;;
  test)
    build
    test_no_solutions
    test_user
    test_student_commands
    test_grade_in_containers
    test_hostile_in_containers
    test_gradescope_path
    say "image-test passed in $(elapsed "$T0") s"
    ;;
  *) die "usage: $0 build|test" ;;
esac
