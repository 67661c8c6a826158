#!/usr/bin/env bash
# ratelab against plain hand-written loops, in one sitting.
#
# Default: the generic workloads W1-W5 of ../shared/bench/generic (its README defines them): ratelab's portable
# release build, each experiment file as it is (default settings), 1 thread, whole-process times, against the
# g++ -O3 peers; REPS alternating pairs (ratelab, peer) after one untimed warm-up of each; prints the medians,
# the ratio of the medians and the range of the per-pair ratios, and checks that the final mean suboptimality
# agrees with the peer's (within 4 combined standard errors; the comparison is invalid otherwise).
#
#   bash bench/compare.sh                          # W1-W5 and the 1-step fixed cost, REPS=5
#   REPS=1 ONLY=w2,w3hb bash bench/compare.sh      # fewer repeats, some rows: w1 w2 w3hb w3adam w4 w5 startup
#   RATELAB=/path/to/ratelab bash bench/compare.sh # another build of ratelab (default build/release)
#   SHARED=/work/shared/bench bash bench/compare.sh  # where ../shared/bench is not beside the checkout
#   PIN= bash bench/compare.sh                     # no pinning (default: every process on the last CPU)
#
# Every timed process, ratelab's and the peers', runs on one CPU (taskset -c $PIN; default the last one): on
# a shared host the CPUs of one guest can differ by 30% at the same moment (seen here: W4 1.15 s on CPU 1,
# 1.50 s on CPU 0), and unpinned pairs then compare placements, not programs.
#
# The canonical W1 jobs of ../shared/bench/WORKLOADS.md (bench/w1.cpp through the engine, the native build,
# against P4 and numpy), as before:
#   ONLY=d128 | d1024 | heavy | scaling | canonical  REPS=3 [PEERS=0] bash bench/compare.sh
#
# Needs ../shared/bench, g++, and Debian's python3-numpy for /usr/bin/python3 (the W2-W4 instances and f*).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
ONLY=${ONLY:-generic}
case "$ONLY" in d128 | d1024 | heavy | scaling | canonical) REPS=${REPS:-3} ;; *) REPS=${REPS:-5} ;; esac
[ "$ONLY" = canonical ] && ONLY=all
shared=${SHARED:-$root/../shared/bench}  # CI and /work/main see ../shared; another checkout: SHARED=
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

generic_rows=" w1 w2 w3hb w3adam w4 w5 startup "
if [ "$ONLY" = generic ] || [[ "$generic_rows" == *" ${ONLY%%,*} "* ]]; then
  [ "$ONLY" = generic ] && ONLY=${generic_rows// /,}
  ratelab=${RATELAB:-$root/build/release/tools/ratelab}
  [ -x "$ratelab" ] || { echo "no $ratelab: build it first (cmake --preset release && cmake --build build/release)" >&2; exit 2; }
  [ -d "$shared/generic" ] || { echo "no $shared/generic" >&2; exit 2; }
  cp -r "$shared" "$work/peers"
  g="$work/peers/generic"
  (
    cd "$g"
    /usr/bin/python3 gen_logistic.py >/dev/null
    /usr/bin/python3 gen_softmax_fstar.py "$root/data/digits.csv" >/dev/null
    for p in peer_logistic peer_softmax peer_quadratic; do g++ -O3 -o $p peers/$p.cpp; done
    # Adam's peer as ratelab is built: without errno, sqrt vectorizes (../shared/bench/generic/README.md)
    g++ -O3 -fno-math-errno -o peer_logistic_noerrno peers/peer_logistic.cpp
    g++ -O3 -fopenmp -o "$work/peers/p4_ref" "$work/peers/p4_ref.cpp"
  )

  # seconds CMD... : the whole process's wall time; its stderr kept in $work/last.err
  pin=()
  [ -n "${PIN-$(($(nproc) - 1))}" ] && command -v taskset >/dev/null && pin=(taskset -c "${PIN-$(($(nproc) - 1))}")
  seconds() {
    local t0 t1
    t0=$(date +%s.%N)
    "${pin[@]}" "$@" >/dev/null 2>"$work/last.err" || { echo "FAILED: $*" >&2; cat "$work/last.err" >&2; return 1; }
    t1=$(date +%s.%N)
    echo "$t1 - $t0" | bc -l
  }
  # ratelab's final mean suboptimality (last view, t = T) and its standard error, from the trace file
  ratelab_final() {
    "$ratelab" export "$1" -o "$work/final.csv" >/dev/null 2>&1
    /usr/bin/python3 - "$work/final.csv" <<'PY'
import csv, math, sys
rows = list(csv.DictReader(open(sys.argv[1])))
T = max(int(r["step"]) for r in rows)
v = [float(r["subopt"]) for r in rows if int(r["step"]) == T and r["view"] == "last"]
m = sum(v) / len(v)
se = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1) / len(v)) if len(v) > 1 else float("nan")
print(f"{m:.6g} {se:.3g}")
PY
  }
  peer_final() {  # the peer's JSON line on stderr: final_mean final_se
    /usr/bin/python3 -c 'import json,sys; j=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1]); print(j["final_mean"], j["final_se"])' "$work/last.err"
  }
  # row LABEL INI PEER_DIR PEER_CMD...: REPS alternating pairs; PEER_CMD empty for ratelab alone
  row() {
    local label=$1 ini=$2 pdir=$3
    shift 3
    local out="$work/r.h5" rl=() pl=() k
    local rcmd=("$ratelab" run "$g/ini/$ini" -o "$out" --threads 1 --overwrite --quiet)
    (cd "$g" && seconds "${rcmd[@]}" >/dev/null) || return 0
    [ $# -gt 0 ] && { (cd "$pdir" && seconds "$@" >/dev/null) || return 0; }
    for ((k = 0; k < REPS; k++)); do
      rl+=("$(cd "$g" && seconds "${rcmd[@]}")")
      [ $# -gt 0 ] && pl+=("$(cd "$pdir" && seconds "$@")")
    done
    local rf pf="" agree="-"
    rf=$(ratelab_final "$out")
    if [ $# -gt 0 ]; then
      pf=$(peer_final)
      agree=$(awk -v a="$rf" -v b="$pf" 'BEGIN { split(a, x, " "); split(b, y, " ");
        z = (x[1] - y[1]) / sqrt(x[2] * x[2] + y[2] * y[2]);
        printf "%s (%.1f se)", (z < 4 && z > -4) ? "agree" : "DISAGREE: comparison invalid", z }')
    fi
    /usr/bin/python3 - "$label" "${rl[*]}" "${pl[*]:-}" "$rf" "$pf" "$agree" <<'PY'
import statistics as st, sys
label, r, p, rf, pf, agree = sys.argv[1:]
r = [float(v) for v in r.split()]
p = [float(v) for v in p.split()] if p.strip() else []
rm = st.median(r)
if p:
    pm = st.median(p)
    ratios = sorted(a / b for a, b in zip(r, p))
    print(f"| {label} | {rm:.3f} | {pm:.3f} | {rm / pm:.2f} | {ratios[0]:.2f}-{ratios[-1]:.2f} | {rf} | {pf} | {agree} |")
else:
    print(f"| {label} | {rm:.3f} ({min(r):.3f}-{max(r):.3f}) | - | - | - | {rf} | - | - |")
PY
  }

  echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%Y-%m-%dT%H:%MZ); REPS=$REPS; pinned: ${pin[*]:-no}; $("$ratelab" --version 2>&1 | head -1)"
  echo "| workload | ratelab s | peer s | ratio (medians) | per-pair ratios | ratelab final mean, se | peer final mean, se | final means |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
  fstar_l="$g/data/logistic_4096x128.fstar.json"
  for w in ${ONLY//,/ }; do
    case $w in
      w1) row "W1 SGD least squares, CLI defaults, vs P4 -O3" w1_cli.ini "$work/peers" ./p4_ref --threads 1 ;;
      w2) row "W2 SGD logistic 4096x128" w2_logistic_sgd.ini "$g" ./peer_logistic --csv data/logistic_4096x128.csv --fstar "$fstar_l" --opt sgd --c 0.2 ;;
      w3hb) row "W3 heavy-ball logistic" w3_logistic_hb.ini "$g" ./peer_logistic --csv data/logistic_4096x128.csv --fstar "$fstar_l" --opt hb --c 0.02 ;;
      w3adam) row "W3 Adam logistic (peer -fno-math-errno)" w3_logistic_adam.ini "$g" ./peer_logistic_noerrno --csv data/logistic_4096x128.csv --fstar "$fstar_l" --opt adam --c 0.1 ;;
      w4) row "W4 SGD softmax digits" w4_softmax_digits.ini "$g" ./peer_softmax --csv "$root/data/digits.csv" --fstar data/softmax_digits.fstar.json ;;
      w5) row "W5 SGD quadratic d=10 + gaussian, ziggurat peer" w5_quadratic.ini "$g" ./peer_quadratic --normal zig
          row "W5, polar-method peer" w5_quadratic.ini "$g" ./peer_quadratic --normal polar ;;
      startup) row "fixed cost: 1 step, 1 run" startup.ini "" ;;
      *) echo "unknown workload $w (w1 w2 w3hb w3adam w4 w5 startup)" >&2; exit 2 ;;
    esac
  done
  exit 0
fi
PEERS=${PEERS:-1}
bench="$root/build/native/bench/ratelab_bench_w1"
[ -x "$bench" ] || { echo "build the native preset first: cmake --preset native && cmake --build --preset native" >&2; exit 2; }
if [ "$PEERS" = 1 ]; then
  [ -d "$shared" ] || { echo "no $shared: run with PEERS=0" >&2; exit 2; }
  cp -r "$shared" "$work/peers"
  g++ -O3 -march=native -fopenmp -o "$work/peers/p4_ref" "$work/peers/p4_ref.cpp"
fi

# This machine's own floor for the SGD steps: R*T random rows at the rate micro/row_gather.cpp measures
# here (best of with and without prefetch), per thread count. RESULTS.md's bounds come from another machine.
local_bound() {  # local_bound D THREADS
  local ns
  ns=$(grep "threads=$2 d=$(printf '%4d' "$1")" "$work/gather_$2.txt" | grep -o '[0-9.]* ns/row' | sort -g | head -1 | cut -d' ' -f1)
  awk -v ns="$ns" -v threads="$2" 'BEGIN { printf "%.4f", 6.4e6 * ns * 1e-9 / threads }'
}
if [ -f "$shared/micro/row_gather.cpp" ]; then
  g++ -O3 -march=native -fopenmp -o "$work/row_gather" "$shared/micro/row_gather.cpp"
  "$work/row_gather" 1 > "$work/gather_1.txt"
  "$work/row_gather" 2 > "$work/gather_2.txt"
fi

# time_it LABEL BOUND LOCAL_BOUND CMD... : prints a table row: label, median, min-max, median / bound,
# median / local bound
time_it() {
  local label=$1 bound=$2 lbound=$3
  shift 3
  "$@" >/dev/null 2>&1 || { echo "$label FAILED: $*" >&2; return 0; }
  local times=()
  for ((k = 0; k < REPS; k++)); do
    local t0 t1
    t0=$(date +%s.%N)
    "$@" >/dev/null 2>&1
    t1=$(date +%s.%N)
    times+=("$(echo "$t1 - $t0" | bc -l)")
  done
  printf '%s\n' "${times[@]}" | sort -g | awk -v label="$label" -v bound="$bound" -v lbound="$lbound" '
    { v[NR] = $1 } END {
      m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      r = bound > 0 ? sprintf("%.2f", m / bound) : "-"
      lr = lbound > 0 ? sprintf("%.2f", m / lbound) : "-"
      printf "| %-34s | %8.3f | %8.3f-%-8.3f | %s | %s |\n", label, m, v[1], v[NR], r, lr }'
}

echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $(date -u +%Y-%m-%dT%H:%MZ); REPS=$REPS"
b1=0 b2=0 k1=0 k2=0
if [ -f "$work/gather_1.txt" ]; then
  b1=$(local_bound 128 1) b2=$(local_bound 128 2) k1=$(local_bound 1024 1) k2=$(local_bound 1024 2)
  printf 'local floor (R*T random rows at row_gather.cpp rate): d=128 %.3f / %.3f s, d=1024 %.3f / %.3f s (1 / 2 threads)\n' \
    "$b1" "$b2" "$k1" "$k2"
fi
echo "| job | median s | min-max s | x roofline bound (RESULTS.md) | x local floor |"
echo "| --- | --- | --- | --- | --- |"
if [ "$ONLY" = all ] || [ "$ONLY" = d128 ]; then
  time_it "ratelab W1 d=128, 1 thread" 0.201 "$b1" "$bench" --threads 1 -o "$work/r.h5"
  time_it "ratelab W1 d=128, 2 threads" 0.096 "$b2" "$bench" --threads 2 -o "$work/r.h5"
  if [ "$PEERS" = 1 ]; then
    (cd "$work/peers" && time_it "P4 C++ W1 d=128, 1 thread" 0.201 "$b1" ./p4_ref --threads 1)
    (cd "$work/peers" && time_it "P4 C++ W1 d=128, 2 threads" 0.096 "$b2" ./p4_ref --threads 2)
    (cd "$work/peers" && time_it "P2 numpy W1 d=128, 1 proc" 0.201 "$b1" env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 p2_numpy_vec.py --d 128)
  fi
fi
if [ "$ONLY" = all ] || [ "$ONLY" = d1024 ]; then
  time_it "ratelab W1-d1024, 1 thread" 1.75 "$k1" "$bench" --d 1024 --threads 1 -o "$work/r.h5"
  time_it "ratelab W1-d1024, 2 threads" 0.86 "$k2" "$bench" --d 1024 --threads 2 -o "$work/r.h5"
  if [ "$PEERS" = 1 ]; then
    (cd "$work/peers" && time_it "P4 C++ W1-d1024, 1 thread" 1.75 "$k1" ./p4_ref --d 1024 --threads 1)
    (cd "$work/peers" && time_it "P4 C++ W1-d1024, 2 threads" 0.86 "$k2" ./p4_ref --d 1024 --threads 2)
  fi
fi
if [ "$ONLY" = all ] || [ "$ONLY" = heavy ]; then
  time_it "ratelab W1-heavy, 2 threads" 1.07 0 "$bench" --heavy --threads 2 -o "$work/r.h5"
  [ "$PEERS" = 1 ] && (cd "$work/peers" && time_it "P4 C++ W1-heavy, 2 threads" 1.07 0 ./p4_ref --heavy --threads 2)
fi
if [ "$ONLY" = scaling ]; then
  for T in 10000 100000 1000000; do time_it "ratelab W1 d=128 T=$T R=64, 1 thread" 0 0 "$bench" --T $T -o "$work/r.h5"; done
  for R in 16 64 256; do time_it "ratelab W1 d=128 T=1e5 R=$R, 1 thread" 0 0 "$bench" --R $R -o "$work/r.h5"; done
fi
