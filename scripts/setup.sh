#!/usr/bin/env bash
# Installs ratelab's build dependencies from Debian's packages (a no-op when they are present), then
# configures and builds the release preset into build/release.
#   bash scripts/setup.sh            # install + configure + build
#   RATELAB_PRESET=asan bash scripts/setup.sh     # the sanitizer build (ASan + UBSan) into build/asan
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(g++ cmake ninja-build git pkg-config libeigen3-dev libtbb-dev libhdf5-dev libboost-program-options-dev
          catch2 librandom123-dev libfftw3-dev gnuplot-nox libgnuplot-iostream-dev python3-h5py python3-numpy
          libopenmpi-dev openmpi-bin
          # the Python module (python/) and its tests (tests/python/)
          pybind11-dev python3-pybind11 python3-dev python3-pytest python3-xarray python3-h5netcdf
          # the netCDF check of trace files and of `ratelab export` (tests/netcdf/)
          python3-netcdf4 python3-pandas netcdf-bin
          # the report page opened in a real browser (tests/browser/)
          chromium)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The small data sets Debian's python3-sklearn ships (digits, breast_cancer, diabetes), unpacked from the .deb
# without installing Python packages; named data sets are looked up in data/ (see `ratelab describe experiment`).
if [ ! -f data/digits.csv ]; then
  bash problems/fetch_sklearn_data.sh data || echo "setup: could not fetch the sklearn data sets (presets on digits will say how)"
fi

preset=${RATELAB_PRESET:-release}
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset"
