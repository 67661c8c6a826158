#!/usr/bin/env python3
"""Checks a ratelab trace file with h5py, as an outside user would read it.

usage: check_h5py.py FILE EXPECTED_JSON

EXPECTED_JSON maps
  "attrs"          -> {name: value} expected among the root attributes,
  "attrs:<path>"   -> {name: value} expected among the attributes of the object at <path>,
  "<dataset path>" -> [[index, value], ...] elements expected in that dataset ([] indexes a scalar).
Values compare exactly (NaN equals NaN; strings compare as UTF-8 text; bools only equal bools).
Independently of EXPECTED_JSON, every variable of the root group (schema 2) must have its dimensions
labelled and attached to the matching dimension-scale datasets. Exits 1 listing every mismatch.
"""
import json
import math
import sys

import h5py
import numpy as np

TRACE_DIMS = ["configuration", "view", "replicate", "step"]
RUN_DIMS = ["configuration", "replicate"]
EXTRA_DIMS = ["configuration", "replicate", "step"]
CONFIGURATION_DIMS = ["configuration"]


def plain(x):
    """numpy/h5py values -> plain Python values comparable with JSON."""
    if isinstance(x, bytes):
        return x.decode("utf-8")
    if isinstance(x, np.ndarray):
        return [plain(e) for e in x.tolist()]
    if isinstance(x, (list, tuple)):
        return [plain(e) for e in x]
    if isinstance(x, np.generic):
        return plain(x.item())
    return x


def same(got, want):
    if isinstance(want, bool) or isinstance(got, bool):
        return isinstance(want, bool) and isinstance(got, bool) and got == want
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(same(g, w) for g, w in zip(got, want))
    if isinstance(want, float) and math.isnan(want):
        return isinstance(got, float) and math.isnan(got)
    if isinstance(want, (int, float)) and isinstance(got, (int, float)):
        return got == want
    return type(got) is type(want) and got == want


def expected_dimensions(name, obj):
    """The dimensions a schema-2 variable must have, from its rank (None: not a variable along them)."""
    if name in ("configuration", "view", "replicate", "step", "experiment"):
        return None
    return {4: TRACE_DIMS, 3: EXTRA_DIMS, 2: RUN_DIMS, 1: CONFIGURATION_DIMS}.get(obj.ndim)


def check_dimension_scales(f, errors):
    metrics = []

    def visit(name, obj):
        if not isinstance(obj, h5py.Dataset):
            return
        expected = expected_dimensions(name, obj)
        if expected is None:
            return
        for i, dim_name in enumerate(expected):
            dim = obj.dims[i]
            if dim.label != dim_name:
                errors.append(f"{name}: dimension {i} is labelled {dim.label!r}, expected {dim_name!r}")
            if list(dim.keys()) != [dim_name]:
                errors.append(f"{name}: dimension {i} has scales {list(dim.keys())}, expected [{dim_name!r}]")
                continue
            scale = dim[0]
            if scale.name != "/" + dim_name or scale.shape != (obj.shape[i],):
                errors.append(f"{name}: dimension {i} is attached to {scale.name} {scale.shape}, "
                              f"expected /{dim_name} ({obj.shape[i]},)")
        if obj.ndim == 4:
            metrics.append(name)
            if not math.isnan(obj.fillvalue):
                errors.append(f"{name}: fill value {obj.fillvalue}, expected NaN")

    f.visititems(visit)
    if not metrics:
        errors.append("no metric variables [configuration, view, replicate, step] in the root group")
    if "status" in f and f["status"].fillvalue != 4:
        errors.append(f"status: fill value {f['status'].fillvalue}, expected 4 (missing)")


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    path, expected_path = sys.argv[1], sys.argv[2]
    with open(expected_path, encoding="utf-8") as handle:
        expected = json.load(handle)
    errors = []
    checked = 0
    with h5py.File(path, "r") as f:
        if plain(f.attrs.get("format")) != "ratelab-trace":
            errors.append(f"root attribute format = {f.attrs.get('format')!r}, expected 'ratelab-trace'")
        if plain(f.attrs.get("schema_version")) != 2:
            errors.append(f"root attribute schema_version = {f.attrs.get('schema_version')!r}, expected 2")
        check_dimension_scales(f, errors)
        for key, entries in expected.items():
            if key == "attrs" or key.startswith("attrs:"):
                target = key[len("attrs:"):] if key != "attrs" else "/"
                if target not in f:
                    errors.append(f"{target}: missing")
                    continue
                attrs = f[target].attrs
                for name, want in entries.items():
                    checked += 1
                    if name not in attrs:
                        errors.append(f"{target}: attribute {name!r} is missing")
                    elif not same(plain(attrs[name]), want):
                        errors.append(f"{target}: attribute {name} = {plain(attrs[name])!r}, expected {want!r}")
                continue
            if key not in f:
                errors.append(f"{key}: dataset is missing")
                continue
            data = f[key][()]
            for index, want in entries:
                checked += 1
                got = plain(data[tuple(index)] if index else data)
                if not same(got, want):
                    errors.append(f"{key}{index}: {got!r}, expected {want!r}")
    if errors:
        print(f"{path}: {len(errors)} mismatch(es):", file=sys.stderr)
        for line in errors:
            print("  " + line, file=sys.stderr)
        return 1
    print(f"{path}: {checked} expected values and all dimension scales match")
    return 0


if __name__ == "__main__":
    sys.exit(main())
