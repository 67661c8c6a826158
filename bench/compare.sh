#!/usr/bin/env bash
# Runs ratelab's canonical workloads (bench/w1.cpp through the engine) and the peers of ../shared/bench in
# one sitting, REPS timed whole-process runs each after one untimed warm-up, and prints medians, min-max,
# and the ratios ratelab/peer and ratelab/roofline bound (bounds from ../shared/bench/RESULTS.md).
#
#   bash bench/compare.sh                     # W1 d=128 and W1-heavy, ratelab + P4 (C++) + P2 (numpy)
#   REPS=5 ONLY=d128 bash bench/compare.sh    # ONLY = d128 | d1024 | heavy | scaling
#   PEERS=0 bash bench/compare.sh             # ratelab only
#
# Needs the native build (cmake --preset native && cmake --build --preset native) and, for the numpy peer,
# Debian's python3-numpy for /usr/bin/python3.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
REPS=${REPS:-3}
ONLY=${ONLY:-all}
PEERS=${PEERS:-1}
bench="$root/build/native/bench/ratelab_bench_w1"
[ -x "$bench" ] || { echo "build the native preset first: cmake --preset native && cmake --build --preset native" >&2; exit 2; }
shared="$root/../shared/bench"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
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
