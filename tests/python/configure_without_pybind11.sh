#!/usr/bin/env bash
# The Python module is optional: the project configures without pybind11 (as on a machine without
# pybind11-dev), says why the module is not built, and defines no Python target or test.
#   configure_without_pybind11.sh SOURCE_DIR SCRATCH_DIR
set -euo pipefail
source_dir=$1
scratch=$2
rm -rf "$scratch"
log=$(cmake -S "$source_dir" -B "$scratch" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_DISABLE_FIND_PACKAGE_pybind11=ON 2>&1) \
  || { echo "$log"; echo "FAIL: the project does not configure without pybind11"; exit 1; }
# (grep reads whole variables: `producer | grep -q` under pipefail fails when grep exits before the producer)
grep -q "Python module: pybind11 not found, not built" <<<"$log" \
  || { echo "$log"; echo "FAIL: no message saying the module is not built"; exit 1; }
targets=$(ninja -C "$scratch" -t targets all)
if grep -q "ratelab_python" <<<"$targets"; then
  echo "FAIL: a Python target is defined without pybind11"; exit 1
fi
tests=$(ctest --test-dir "$scratch" -N)
if grep -qw "python" <<<"$tests"; then
  echo "FAIL: the python test is defined without pybind11"; exit 1
fi
grep -q "tools/ratelab:" <<<"$targets" || { echo "FAIL: no ratelab target"; exit 1; }
grep -q "plugin_example" <<<"$tests" || { echo "FAIL: the C++ tests are missing"; exit 1; }
rm -rf "$scratch"
echo "configured without pybind11: C++ targets and tests only"
