#!/usr/bin/env bash
# The out-of-tree plugin workflow end to end (ctest: plugin_example):
#   install ratelab into a temporary prefix; build examples/plugin/ and the broken plugins of
#   tests/plugin_fixtures/ against it with find_package(ratelab); then, with the installed `ratelab`:
#   list/describe show the plugin's optimizers and origin; a small sweep with a plugin optimizer and a
#   plugin optimizer that throws finishes (exit 3: the throwing runs have status error, the others ok) and
#   its file records the plugins' name, version, path and hash; check-plugin passes the example; every
#   failure mode (missing file, not a plugin, wrong ABI major, struct too small, key collision) exits 2
#   with its message.
# usage: plugin_example.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1
build=$2
work=$(mktemp -d "${TMPDIR:-/tmp}/ratelab_plugin_example.XXXXXX")
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
prefix=$work/prefix
fail() { echo "FAIL: $*" >&2; exit 1; }
expect_in() {  # expect_in TEXT PATTERN WHAT
  grep -qF -- "$2" <<<"$1" || { printf '%s\n' "$1" >&2; fail "$3: expected '$2'"; }
}

cmake --install "$build" --prefix "$prefix" >/dev/null
ratelab=$prefix/bin/ratelab
test -x "$ratelab" || fail "no installed ratelab executable"
test -f "$prefix/share/ratelab/presets/quickstart.ini" || fail "presets not installed"
test -f "$prefix/include/ratelab/core/plugin_sdk.hpp" || fail "SDK header not installed"

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S "$src/examples/plugin" -B "$work/example" "${generator[@]}" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake -S "$src/tests/plugin_fixtures" -B "$work/fixtures" "${generator[@]}" -DCMAKE_PREFIX_PATH="$prefix" \
      -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/example" -j 2 >/dev/null
cmake --build "$work/fixtures" -j 2 >/dev/null
example=$work/example/libexample_optimizers.so
test -f "$example" || fail "the example plugin was not built"

# list and describe
out=$("$ratelab" list optimizers --plugin "$example")
expect_in "$out" "adagrad" "list"
expect_in "$out" "[plugin example-optimizers 1.0.0 ($example, fnv1a64 " "list shows the origin"
expect_in "$out" "sgd " "list still shows built-ins"
out=$(RATELAB_PLUGIN_PATH=$work/example "$ratelab" describe adagrad)
expect_in "$out" "optimizer adagrad (plugin example-optimizers 1.0.0" "describe through RATELAB_PLUGIN_PATH"
expect_in "$out" "[eps > 0]" "describe shows the constraint"

# a sweep: adagrad from the example plugin beside a plugin optimizer that throws
cat >"$work/study.ini" <<'INI'
[experiment]
name = plugin_study
steps = 300
replicates = 3
checkpoints = 8
[problem]
name = quadratic
d = 10
noise_scale = 0.1
[optimizer:ada]
name = adagrad
eps = 1e-6
[optimizer:bad]
name = throwing_sgd
[schedule]
name = constant
eta = 0.1
INI
set +e
"$ratelab" run "$work/study.ini" -o "$work/study.h5" --plugin "$example" --plugin "$work/fixtures/libhostile.so" \
           --threads 2 --quiet 2>"$work/run.err"
code=$?
set -e
[ "$code" -eq 3 ] || { cat "$work/run.err" >&2; fail "run: exit code $code, expected 3 (some runs ended with error)"; }
expect_in "$(cat "$work/run.err")" "6 runs (3 ok, 0 diverged, 3 error)" "run summary"
out=$("$ratelab" inspect --all "$work/study.h5")  # every parameter of every configuration
expect_in "$out" "optimizer = adagrad" "inspect: the plugin optimizer"
expect_in "$out" "optimizer.eps = 1e-06" "inspect: its parameter"
expect_in "$out" "runs: ok 3, diverged 0, error 0" "inspect: adagrad runs ok"
expect_in "$out" "runs: ok 0, diverged 0, error 3" "inspect: throwing runs error"
expect_in "$out" "throwing_sgd: failed on purpose at step 3" "inspect: the error message"
hash=""
if command -v python3 >/dev/null; then  # FNV-1a 64 of the library, computed independently of ratelab
  hash=$(python3 -c '
import sys
h = 0xcbf29ce484222325
for b in open(sys.argv[1], "rb").read():
    h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
print("%016x" % h)' "$example")
fi
expect_in "$out" "plugin example-optimizers 1.0.0 ($example, fnv1a64 ${hash:+$hash)}" "inspect: provenance with path and hash"
expect_in "$out" "plugin hostile 0.1 ($work/fixtures/libhostile.so, fnv1a64 " "inspect: provenance of the second plugin"

# the conformance suite on the example's components
out=$("$ratelab" check-plugin "$example") || { printf '%s\n' "$out" >&2; fail "check-plugin failed on the example"; }
expect_in "$out" "optimizer adagrad eps=1e-08;initial_accumulator=0;batch=1: conforms" "check-plugin adagrad"
expect_in "$out" "optimizer coordinate_sgd batch=1: conforms" "check-plugin coordinate_sgd"
# AddressSanitizer owns malloc, so in the debug preset's build the check can only say why it skipped; in
# every other build it must run.
if ldd "$ratelab" | grep -q libasan; then
  expect_in "$out" "skip  allocates nothing after prepare: allocation counting is unavailable in this build (sanitizer owns malloc)" "check-plugin allocation check skipped under ASan"
else
  expect_in "$out" "ok    allocates nothing after prepare: 0 heap allocations" "check-plugin allocation check ran"
fi
# ... and on a plugin that fails it (exit 3, the failing check named)
set +e
out=$("$ratelab" check-plugin "$work/fixtures/libhostile.so" 2>&1); code=$?
set -e
[ "$code" -eq 3 ] || { printf '%s\n' "$out" >&2; fail "check-plugin on the throwing plugin: exit $code, expected 3"; }
expect_in "$out" "FAIL  converges on a well-conditioned quadratic" "check-plugin names the failed check"

# failure modes: exit 2 with a clear message, nothing run
expect_failure() {  # expect_failure MESSAGE ARGS...
  local message=$1
  shift
  set +e
  local err
  err=$("$ratelab" "$@" 2>&1 >/dev/null)
  local code=$?
  set -e
  [ "$code" -eq 2 ] || { printf '%s\n' "$err" >&2; fail "ratelab $*: exit $code, expected 2"; }
  expect_in "$err" "$message" "ratelab $*"
}
expect_failure "plugin '$work/missing.so' not found" list --plugin "$work/missing.so"
expect_failure "'$work/fixtures/libno_entry.so' is not a ratelab plugin: it exports no ratelab_plugin_entry" \
               list --plugin "$work/fixtures/libno_entry.so"
expect_failure "was built for ratelab plugin ABI 2.0, but this ratelab speaks plugin ABI 1.0" \
               list --plugin "$work/fixtures/libwrong_abi.so"
expect_failure "declares a ratelab_plugin struct of 16 bytes, smaller than the 48 bytes of ABI 1.0" \
               list --plugin "$work/fixtures/libsmall_struct.so"
expect_failure "optimizer key 'sgd' is registered twice: by built-in and by plugin colliding 0.1 ($work/fixtures/libcolliding.so" \
               describe sgd --plugin "$work/fixtures/libcolliding.so"
cp "$example" "$work/copy.so"
expect_failure "optimizer key 'adagrad' is registered twice: by plugin example-optimizers 1.0.0 ($example" \
               list --plugin "$example" --plugin "$work/copy.so"
RATELAB_PLUGIN_PATH=$work/nodir expect_failure "RATELAB_PLUGIN_PATH names '$work/nodir', which is not a directory" list
echo "plugin_example: all checks passed"
