# ratelab.run, open, verify, components, describe against the command line on the same experiments.
import os

import numpy as np
import pytest

import ratelab
from conftest import trace_arrays

SMALL = {"experiment.steps": 2000, "experiment.replicates": 8}

# quickstart as a dict (experiments/presets/quickstart.ini without its comments and claims).
QUICKSTART = {
    "experiment": {"name": "quickstart", "steps": 20000, "replicates": 64, "seed": 1, "checkpoints": 40,
                   "views": ["last", "uniform", "suffix"]},
    "problem": {"name": "quadratic", "d": 50, "mu": 0.1, "L": 1, "noise": "gaussian", "noise_scale": 0.5},
    "optimizer": {"name": "sgd"},
    "schedule": {"name": "inv_mu_t", "c": 1, "t0": 10},
}


def test_run_on_a_dict_equals_the_cli_file(cli, tmp_path):
    cli_file, py_file = tmp_path / "cli.h5", tmp_path / "py.h5"
    done = cli("run", "quickstart", "-o", str(cli_file), "--quiet", "--threads", "2",
               *[f"--set={k}={v}" for k, v in SMALL.items()])
    assert done.returncode == 0, done.stderr
    ds = ratelab.run(QUICKSTART, set=SMALL, output=py_file, threads=1, progress=False)
    a, b = trace_arrays(cli_file), trace_arrays(py_file)
    assert sorted(a) == sorted(b) and "subopt" in a and "status" in a
    for name in a:
        assert a[name] == b[name], name
    # The Dataset holds the same numbers as the file.
    assert np.array_equal(ds.subopt.values, ratelab.open(cli_file).subopt.values)
    assert ds.subopt.dims == ("configuration", "view", "replicate", "step")
    assert list(ds.view.values) == ["last", "uniform", "suffix"]
    assert ds.sizes["replicate"] == 8 and int(ds.step.values[-1]) == 2000


def test_output_none_leaves_no_file_and_returns_data_in_memory(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", None)
    ds = ratelab.run("quickstart", set=SMALL, threads=1, progress=False)
    assert os.listdir(tmp_path) == []
    assert ds.subopt.shape == (1, 3, 8, 40) and np.isfinite(ds.subopt.values).all()


def test_existing_output_is_not_overwritten(tmp_path):
    out = tmp_path / "x.h5"
    out.write_bytes(b"keep me")
    with pytest.raises(ratelab.ConfigError) as error:
        ratelab.run("quickstart", set=SMALL, output=out, progress=False)
    assert "overwrite" in str(error.value)
    assert out.read_bytes() == b"keep me"


BAD = """[experiment]
steps = -5
replicates = 4

[problem]
name = quadratic
mu = 2
L = 1

[optimizer]
name = heavy_ball
beta = 1.5

[schedule]
name = constan
"""


def test_errors_raise_every_violation_with_the_cli_text(cli, tmp_path):
    bad = tmp_path / "bad.ini"
    bad.write_text(BAD)
    done = cli("run", str(bad), "-o", str(tmp_path / "bad.h5"))
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert lines[0] == "ratelab run: error:"
    cli_problems = [line[2:] for line in lines[1:]]
    assert len(cli_problems) >= 3
    with pytest.raises(ratelab.ConfigError) as error:
        ratelab.run(str(bad), output=tmp_path / "bad.h5")
    assert error.value.problems == cli_problems
    assert str(error.value) == "\n".join(cli_problems)
    assert isinstance(error.value, ValueError)
    assert not (tmp_path / "bad.h5").exists()
    # The same experiment as a dict: the same messages, located in the dict's text (ratelab.experiment_text).
    as_dict = {"experiment": {"steps": -5, "replicates": 4}, "problem": {"name": "quadratic", "mu": 2, "L": 1},
               "optimizer": {"name": "heavy_ball", "beta": 1.5}, "schedule": {"name": "constan"}}
    with pytest.raises(ratelab.ConfigError) as from_dict:
        ratelab.run(as_dict)
    strip = lambda p: p.split(": ", 1)[1] if p.startswith(("<", "/")) else p
    assert sorted(map(strip, from_dict.value.problems)) == sorted(map(strip, cli_problems))


def test_unknown_preset_and_set_errors_match_the_cli(cli, tmp_path):
    done = cli("run", "quickstrat", "-o", str(tmp_path / "x.h5"))
    with pytest.raises(ratelab.ConfigError) as error:
        ratelab.run("quickstrat")
    assert done.returncode == 2 and error.value.problems == [l[2:] for l in done.stderr.splitlines()[1:]]
    assert "quickstart" in str(error.value)
    done = cli("run", "quickstart", "--set", "optimizer.bach=2", "-o", str(tmp_path / "x.h5"))
    with pytest.raises(ratelab.ConfigError) as error:
        ratelab.run("quickstart", set={"optimizer.bach": 2})
    assert done.returncode == 2 and error.value.problems == [l[2:] for l in done.stderr.splitlines()[1:]]


def test_open_reads_the_cli_file(cli, tmp_path):
    path = tmp_path / "sweep.h5"
    done = cli("run", "quickstart", "-o", str(path), "--quiet", "--set=experiment.steps=500",
               "--set=experiment.replicates=4", "--set=schedule.c=0.5,1")
    assert done.returncode == 0, done.stderr
    ds = ratelab.open(path)
    assert ds.sizes["configuration"] == 2
    assert list(ds.label.values) == ["sgd c=0.5", "sgd c=1"]
    assert list(ds["schedule.c"].values) == [0.5, 1.0]
    assert (ds.status.values == 0).all()
    assert np.isfinite(ds.subopt.sel(view="last").values).all()


def test_verify_gives_the_cli_verdicts(cli):
    done = cli("verify", "quickstart", "--quick", "--threads", "2")
    claims = ratelab.verify("quickstart", quick=True, threads=2)
    assert [c["text"] for c in claims] == done.stdout.splitlines()[:-1]
    assert len(claims) == 5 and all(c["passed"] for c in claims)
    assert {c["name"] for c in claims} == {"last_rate", "suffix_rate", "last_mean", "averages_help", "all_ok"}


def test_verify_on_a_trace_file(cli, tmp_path):
    path = tmp_path / "q.h5"
    assert cli("run", "quickstart", "-o", str(path), "--quiet", "--set=experiment.steps=5000",
               "--set=experiment.replicates=32").returncode == 0
    done = cli("verify", str(path))
    claims = ratelab.verify(path)
    assert [c["text"] for c in claims] == done.stdout.splitlines()[:-1]


def test_components_and_describe_are_the_registry(cli):
    listed = ratelab.components()
    names = {c["name"] for c in listed["optimizers"]}
    assert {"sgd", "heavy_ball", "adam"} <= names
    assert "quadratic" in {c["name"] for c in listed["problems"]}
    assert "inv_mu_t" in {c["name"] for c in listed["schedules"]}
    assert "quickstart" in {p["name"] for p in listed["presets"]}
    hb = ratelab.describe("heavy_ball")
    beta = next(p for p in hb["params"] if p["name"] == "beta")
    assert beta == {"name": "beta", "type": "real", "default": 0.9, "constraint": "0 <= beta < 1", "choices": [],
                    "doc": "momentum coefficient", "applies": "tuning = manual"}
    text = cli("describe", "heavy_ball").stdout
    for p in hb["params"]:
        assert p["doc"] in text and p["name"] in text
    assert ratelab.describe("experiment")["kind"] == "experiment"
    with pytest.raises(ratelab.ConfigError) as error:
        ratelab.describe("heavy_bal")
    assert "heavy_ball" in str(error.value)
