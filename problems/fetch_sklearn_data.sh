#!/bin/sh
# Makes the small data sets that Debian's python3-sklearn package ships available to ratelab without
# installing Python packages: downloads the .deb with apt-get, unpacks it with dpkg -x into a temporary
# directory and copies sklearn/datasets/data/{breast_cancer.csv, digits.csv.gz, diabetes_data_raw.csv.gz,
# diabetes_target.csv.gz} into DEST, decompressed (checked against python3-sklearn 1.2.1+dfsg-1, Debian 12).
# Usage: problems/fetch_sklearn_data.sh DEST
set -eu
if [ $# -ne 1 ]; then
  echo "usage: $0 DEST" >&2
  exit 2
fi
dest=$1
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
apt-get download python3-sklearn >/dev/null
dpkg -x python3-sklearn_*.deb root
data=$(find root -type d -path '*sklearn/datasets/data' | head -n 1)
if [ -z "$data" ]; then
  echo "$0: no sklearn/datasets/data in $(ls python3-sklearn_*.deb)" >&2
  exit 1
fi
for name in breast_cancer.csv digits.csv diabetes_data_raw.csv diabetes_target.csv; do
  if [ -f "$data/$name" ]; then
    cp "$data/$name" "$dest/$name"
  elif [ -f "$data/$name.gz" ]; then
    gzip -dc "$data/$name.gz" >"$dest/$name"
  else
    echo "$0: $name(.gz) not found in the package" >&2
    exit 1
  fi
done
echo "breast_cancer.csv digits.csv diabetes_data_raw.csv diabetes_target.csv -> $dest"
