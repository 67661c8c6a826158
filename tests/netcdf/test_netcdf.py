#!/usr/bin/env python3
"""A ratelab trace file as netCDF tools see it (issue 19): xarray with the h5netcdf and netcdf4 engines,
ncdump, and `ratelab export` read with pandas, all against the file's own values.

usage: test_netcdf.py RATELAB_CLI SOURCE_DIR
Exits 77 (ctest's skip code) with a message naming the missing packages when Debian's python3-xarray,
python3-h5netcdf, python3-netcdf4, python3-pandas or netcdf-bin (ncdump) are absent; prints
'N passed, M failed' and exits 1 when a check fails.
"""
import math
import os
import shutil
import subprocess
import sys
import tempfile
import traceback

MISSING = []
for module, package in (("numpy", "python3-numpy"), ("xarray", "python3-xarray"), ("h5netcdf", "python3-h5netcdf"),
                        ("netCDF4", "python3-netcdf4"), ("pandas", "python3-pandas"), ("h5py", "python3-h5py")):
    try:
        __import__(module)
    except ImportError:
        MISSING.append(package)
if shutil.which("ncdump") is None:
    MISSING.append("netcdf-bin (ncdump)")
if MISSING:
    print(f"python_netcdf skipped: {', '.join(MISSING)} not installed (scripts/setup.sh installs them)")
    sys.exit(77)

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import xarray as xr  # noqa: E402

CLI, SOURCE_DIR = sys.argv[1], sys.argv[2]
FIXTURE = os.path.join(SOURCE_DIR, "tests", "fixtures", "schema1_sweep.h5")

# 4 configurations (sgd and heavy_ball, whose parameters differ; eta = 30 diverges), 2 views, 3 replicates,
# 5 checkpoints, a boolean parameter set to true, run statistics.
EXPERIMENT = """[experiment]
name = netcdf_sweep
steps = 200
replicates = 3
seed = 7
checkpoints = 5
views = last, uniform
metrics = value, subopt

[problem]
name = quadratic
d = 4
random_minimizer = true
noise = gaussian
noise_scale = 0.3

[optimizer:sgd]
name = sgd

[optimizer:hb]
name = heavy_ball
beta = 0.5

[schedule]
name = constant
eta = 0.1, 30
"""
C, V, R, K = 4, 2, 3, 5

passed, failed = 0, 0


def check(name, function):
    global passed, failed
    try:
        function()
        passed += 1
        print(f"ok   {name}")
    except Exception:  # noqa: BLE001 - every failure is reported with its traceback
        failed += 1
        print(f"FAIL {name}\n{traceback.format_exc()}")


def cli(*args):
    done = subprocess.run([CLI, *args], capture_output=True, text=True)
    assert done.returncode == 0, f"ratelab {' '.join(args)} exited {done.returncode}: {done.stderr}"
    return done


def main():
    work = tempfile.mkdtemp(prefix="ratelab-netcdf-")
    try:
        ini, path = os.path.join(work, "sweep.ini"), os.path.join(work, "sweep.h5")
        with open(ini, "w") as f:
            f.write(EXPERIMENT)
        cli("run", ini, "-o", path, "--quiet", "--threads", "1")
        with h5py.File(path, "r") as f:
            raw = {name: f[name][()] for name in ("subopt", "value", "status", "f_star", "schedule.eta")}

        for engine in ("h5netcdf", "netcdf4"):
            def opens(engine=engine):
                ds = xr.open_dataset(path, engine=engine)
                assert dict(ds.sizes) == {"configuration": C, "view": V, "replicate": R, "step": K}, dict(ds.sizes)
                assert ds.subopt.dims == ("configuration", "view", "replicate", "step")
                assert ds.status.dims == ("configuration", "replicate")
                assert list(ds.view.values) == ["last", "uniform"]
                assert list(ds.replicate.values) == [0, 1, 2]
                assert list(ds.step.values) == [0, 1, 6, 34, 200]
                assert len(set(ds.configuration.values)) == C
                # Parameters that vary are coordinates along configuration, with their values.
                for name in ("label", "optimizer", "schedule.eta", "optimizer.beta", "problem.random_minimizer"):
                    assert name in ds.coords and ds.coords[name].dims == ("configuration",), name
                assert list(ds["schedule.eta"].values) == [0.1, 30.0, 0.1, 30.0]
                assert list(ds["optimizer"].values) == ["sgd", "sgd", "heavy_ball", "heavy_ball"]
                assert list(ds["label"].values) == ["sgd eta=0.1", "sgd eta=30", "heavy_ball eta=0.1", "heavy_ball eta=30"]
                beta = ds["optimizer.beta"].values
                assert np.isnan(beta[0]) and np.isnan(beta[1]) and list(beta[2:]) == [0.5, 0.5], beta
                assert ds["stream_salt"].dtype == np.uint64
                # Booleans: int8 0/1 with CF flags, for a parameter and a root attribute.
                flag = ds["problem.random_minimizer"]
                assert flag.dtype == np.int8 and list(flag.values) == [1, 1, 1, 1], flag.values
                assert list(flag.attrs["flag_values"]) == [0, 1] and flag.attrs["flag_meanings"] == "false true"
                assert int(ds.attrs["experiment.common_random_numbers"]) == 1
                assert int(ds.attrs["experiment.skip_invalid"]) == 0
                assert int(ds.attrs["schema_version"]) == 2 and ds.attrs["Conventions"] == "CF-1.8"
                # Status codes and their CF meanings; eta = 30 diverges.
                assert ds.status.attrs["flag_meanings"] == "ok diverged error interrupted missing nonfinite"
                assert list(ds.status.attrs["flag_values"]) == [0, 1, 2, 3, 4, 5]
                assert (ds.status.values == np.array([[0] * 3, [1] * 3, [0] * 3, [1] * 3])).all(), ds.status.values
                # F*: the quadratic's minimum value, in closed form.
                assert list(ds.f_star.values) == [0.0] * C
                assert list(ds.f_star_source.values) == ["closed form"] * C
                np.testing.assert_array_equal(ds.subopt.values, raw["subopt"])
                np.testing.assert_array_equal((ds.value - ds.f_star).values, raw["value"] - raw["f_star"][:, None, None, None])
                assert "stats.noise_mean_sq_norm" in ds.data_vars
                # The one-liner.
                median = ds.subopt.sel(view="last").groupby("optimizer").median(...)
                assert sorted(median.optimizer.values) == ["heavy_ball", "sgd"]
                ds.close()
            check(f"xr.open_dataset(engine={engine!r}): dimensions, coordinates, label, status, F*, booleans", opens)

        def ncdump():
            done = subprocess.run(["ncdump", "-h", path], capture_output=True, text=True)
            assert done.returncode == 0, done.stderr
            for declaration in ("double subopt(configuration, view, replicate, step)", "byte status(configuration, replicate)",
                                "double schedule.eta(configuration)", "string label(configuration)",
                                "double f_star(configuration)", "byte problem.random_minimizer(configuration)",
                                "uint64 stream_salt(configuration)", ":git_dirty = "):
                assert declaration in done.stdout, f"ncdump -h does not list {declaration!r}"
        check("ncdump -h exits 0 and lists the variables", ncdump)

        def export_all():
            out = os.path.join(work, "all.csv")
            cli("export", path, "-o", out)
            table = pd.read_csv(out, float_precision="round_trip", keep_default_na=False, na_values=["nan"])
            assert len(table) == C * V * R * K, len(table)
            ds = xr.open_dataset(path, engine="h5netcdf")
            for row in table.itertuples(index=False):
                c = list(ds.configuration.values).index(row.configuration)
                v = list(ds.view.values).index(row.view)
                k = list(ds.step.values).index(row.step)
                for metric in ("subopt", "value"):
                    want = float(ds[metric].values[c, v, row.replicate, k])
                    got = float(getattr(row, metric))
                    assert (math.isnan(want) and math.isnan(got)) or got == want, (metric, row)
                assert row.status == ["ok", "diverged"][int(ds.status.values[c, row.replicate])]
                assert row.label == ds.label.values[c]
            assert table["schedule.eta"].tolist() == [0.1] * 30 + [30.0] * 30 + [0.1] * 30 + [30.0] * 30
            assert {"f_star", "stop_step", "wall_seconds", "stats.noise_mean_sq_norm", "problem.random_minimizer"} <= set(table.columns)
            ds.close()
        check("export: one row per (configuration, view, replicate, step), values equal to the file's", export_all)

        def export_cut():
            out = os.path.join(work, "cut.csv")
            cli("export", path, "-o", out, "--where", "optimizer=sgd", "--views", "last", "--metrics", "subopt")
            table = pd.read_csv(out, float_precision="round_trip")
            assert len(table) == 2 * 1 * R * K, len(table)
            assert set(table.view) == {"last"} and set(table.optimizer) == {"sgd"}
            assert "subopt" in table.columns and "value" not in table.columns
        check("export --where/--views/--metrics cut the table", export_cut)

        def export_schema1():
            out = os.path.join(work, "old.csv")
            cli("export", FIXTURE, path, "-o", out)
            table = pd.read_csv(out, float_precision="round_trip")
            assert len(table) == 2 * C * V * R * K, len(table)
            old = table[table.file == FIXTURE]
            with h5py.File(FIXTURE, "r") as f:
                subopt = f["traces/subopt"][()]
                ids = [s.decode() for s in f["configuration"][()]]
            for row in old.itertuples(index=False):
                want = subopt[ids.index(row.configuration), ["last", "uniform"].index(row.view), row.replicate,
                              [0, 1, 6, 34, 200].index(row.step)]
                assert (math.isnan(want) and math.isnan(row.subopt)) or row.subopt == want, row
        check("export reads a schema-1 file beside a schema-2 one (a file column first)", export_schema1)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
