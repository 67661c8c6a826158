"""ratelab from Python: run convergence studies, read their trace files as xarray Datasets, check claims,
and prototype optimizers in Python beside ratelab's built-in ones on the same common random numbers.

    import ratelab
    ds = ratelab.run("quickstart", set={"experiment.replicates": 16})
    ds.subopt.sel(view="last").median("replicate")

The work is done by the same library calls as the ``ratelab`` command line (experiments/run_to_file.hpp):
the same validation (errors raise ``ratelab.ConfigError`` with the CLI's text, one violation per element of
``.problems``), the same sweep (run without holding the GIL; Ctrl-C stops it as SIGINT stops ``ratelab
run``: every finished run is in the file and ``resume=True`` completes it) and the same file.
"""

import inspect
import math
import os
import sys
import tempfile
import threading

from . import _ratelab
from ._ratelab import ConfigError, Oracle, ProblemInfo, Random

__all__ = ["run", "open", "verify", "components", "describe", "Optimizer", "register_optimizer",
           "unregister_optimizer", "experiment_text", "ConfigError", "Interrupted", "RunErrors", "Oracle",
           "ProblemInfo", "Random"]

# An installed package (<prefix>/lib/pythonX.Y/site-packages/ratelab) finds the presets installed beside it
# (<prefix>/share/ratelab/presets), as the installed executable does.
_installed_presets = os.path.join(os.path.dirname(__file__), *[os.pardir] * 4, "share", "ratelab", "presets")
if os.path.isdir(_installed_presets):
    os.environ["RATELAB_PRESET_PATH"] = os.pathsep.join(
        p for p in (os.environ.get("RATELAB_PRESET_PATH"), os.path.normpath(_installed_presets)) if p)


class Interrupted(KeyboardInterrupt):
    """The sweep was stopped by SIGINT (Ctrl-C, a notebook's interrupt) or SIGTERM. The file at ``.path``
    holds every finished run; ``ratelab.run(..., output=path, resume=True)`` runs the rest."""

    def __init__(self, message, path, summary):
        super().__init__(message)
        self.path = path
        self.summary = summary


class RunErrors(RuntimeError):
    """Raised by ``run(..., errors="raise")`` when some runs ended with status ``error``."""


def _format_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):
        return ", ".join(_format_value(v) for v in value)
    return str(value)


def experiment_text(experiment):
    """The experiment file a dict stands for: one section per key (``"optimizer:hb"`` for labelled
    sections), ``key = value`` lines; lists become comma-separated axes, booleans true/false."""
    lines = []
    for section, entries in experiment.items():
        if not isinstance(entries, dict):
            raise TypeError(f"experiment section '{section}' must be a dict of key: value, "
                            f"got {type(entries).__name__}")
        lines.append(f"[{section}]")
        for key, value in entries.items():
            lines.append(f"{key} = {_format_value(value)}")
        lines.append("")
    return "\n".join(lines)


def _sets(set):
    if set is None:
        return []
    if isinstance(set, dict):
        return [f"{k}={_format_value(v)}" for k, v in set.items()]
    return [str(s) for s in set]


def _source(experiment):
    """(INI text, name or path) of an experiment given as a dict, a file path or a preset name."""
    if isinstance(experiment, dict):
        return experiment_text(experiment), ""
    return "", os.fspath(experiment)


def _on_main_thread():
    return threading.current_thread() is threading.main_thread()


def _command_line(function, experiment, set):
    shown = "<dict>" if isinstance(experiment, dict) else os.fspath(experiment)
    return f"python: ratelab.{function}({shown!r}, set={_sets(set)!r})"


def run(experiment, set=None, output=None, threads=0, progress=True, overwrite=False, resume=False,
        plugins=(), errors="keep"):
    """Runs an experiment and returns its trace file as an ``xarray.Dataset`` (``ratelab.open``).

    experiment: an experiment file, a preset name, or a dict with the same sections
        ({"experiment": {...}, "problem": {...}, "optimizer": {...}, "schedule": {...}}).
    set: overrides, {"optimizer.batch": 4} or ["optimizer.batch=4"] (an axis sweeps: "logspace(0.1, 1, 3)").
    output: the HDF5 file to write; None: a temporary file, read into memory and removed.
    threads: worker threads (0: all cores). progress: the progress line on stderr.
    overwrite, resume: as ``--overwrite`` / ``--resume`` of ``ratelab run``.
    errors: "keep" returns the Dataset when some runs ended with status ``error`` (they are data: see
        ``status``), "raise" raises RunErrors.
    Raises ConfigError (every violation, the CLI's text) before anything runs or is written, and
    Interrupted when SIGINT/SIGTERM stopped the sweep (the file keeps every finished run).
    """
    text, name = _source(experiment)
    temporary = output is None
    if temporary:
        directory = tempfile.mkdtemp(prefix="ratelab-")
        path = os.path.join(directory, "run.h5")
    else:
        path = os.fspath(output)
        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(parent, exist_ok=True)
    try:
        summary = _ratelab.run_experiment(text, name, _sets(set), path, bool(overwrite), bool(resume), int(threads),
                                          bool(progress), list(plugins), _command_line("run", experiment, set),
                                          _on_main_thread())
        if summary["cancelled"] and summary["signal"]:
            raise Interrupted(f"interrupted: {path} holds every finished run (the others are marked interrupted "
                              f"or missing); continue with ratelab.run(..., output={path!r}, resume=True)",
                              path, summary)
        if errors == "raise" and summary["error"]:
            raise RunErrors(f"{summary['error']} runs ended with status error (their messages: "
                            f"ds.message.where(ds.status == 'error')); the file is {path}")
        dataset = open(path)
        if temporary:
            dataset.load()
            dataset.close()
        dataset.attrs["ratelab_summary"] = str({k: summary[k] for k in ("ok", "diverged", "error", "interrupted",
                                                                         "not_started")})
        return dataset
    finally:
        if temporary:
            for leftover in (path, path + ".journal"):
                if os.path.exists(leftover):
                    os.remove(leftover)
            os.rmdir(directory)


def open(path):
    """A trace file as one ``xarray.Dataset``: every metric a variable over (configuration, view,
    replicate, step), the run status and statistics as variables, ``label`` and the parameters that vary
    between configurations as coordinates along ``configuration``."""
    import xarray as xr

    path = os.fspath(path)
    dataset = xr.open_dataset(path, engine="h5netcdf")
    if int(dataset.attrs.get("schema_version", 0)) >= 2:
        return dataset  # a netCDF-4 file: this one line is all it takes (README, "From Python")
    return _open_schema1(path, dataset)


def _open_schema1(path, root):
    """Files of schema version 1 (metrics under /traces, configuration parameters as group attributes):
    the same Dataset assembled from the groups."""
    import h5py
    import numpy as np
    import xarray as xr

    traces = xr.open_dataset(path, engine="h5netcdf", group="traces")
    dataset = traces.assign_coords({name: root[name].values for name in root.dims})
    dataset.attrs.update(root.attrs)
    root.close()
    with h5py.File(path, "r") as f:
        runs = f["runs"]
        for name in ("status", "stop_step", "wall_seconds", "eval_seconds", "message"):
            if name in runs:
                values = runs[name][()]
                if values.dtype.kind in "SO":
                    values = np.vectorize(lambda v: v.decode() if isinstance(v, bytes) else v,
                                          otypes=[object])(values)
                dataset[name] = (("configuration", "replicate"), values)
        # status as schema 2 writes it: int8 codes with CF flags
        dataset["status"].attrs.update(flag_values=np.arange(6, dtype=np.int8),
                                       flag_meanings="ok diverged error interrupted missing nonfinite")
        if "stats" in runs:
            for name, data in runs["stats"].items():
                dataset["stats." + name] = (("configuration", "replicate"), data[()])
        records = [dict(f["configurations"][c].attrs) for c in sorted(f["configurations"])]
    decoded = [{k: (v.decode() if isinstance(v, bytes) else v) for k, v in r.items()} for r in records]
    dataset = dataset.assign_coords(label=("configuration", [r.get("label", "") for r in decoded]))
    keys = [k for k in decoded[0] if k not in ("id", "label")]
    for key in keys:
        values = [r.get(key) for r in decoded]
        if any(v != values[0] for v in values[1:]):
            dataset = dataset.assign_coords({key: ("configuration", values)})
    return dataset


def verify(experiment_or_file, quick=False, set=None, threads=0, seed=1, output=None, plugins=()):
    """Checks the [claims] of an experiment (file, preset or dict) on a fresh run, or of a trace file (.h5)
    on its data. Returns the claims as a list of dicts: name, passed, what, measured, bound, margin, value,
    interval, text (the line ``ratelab verify`` prints)."""
    text, name = _source(experiment_or_file)
    trace_file = name if name.endswith(".h5") and os.path.isfile(name) else ""
    directory = None
    scratch = os.fspath(output) if output is not None else ""
    if not trace_file and output is None:
        directory = tempfile.mkdtemp(prefix="ratelab-verify-")
        scratch = os.path.join(directory, "run.h5")
    try:
        result = _ratelab.verify(text, "" if trace_file else name, trace_file, bool(quick), _sets(set), int(threads),
                                 int(seed), scratch, list(plugins), _command_line("verify", experiment_or_file, set),
                                 _on_main_thread())
        summary = result.get("run")
        if summary is not None and summary["cancelled"] and summary["signal"]:
            raise Interrupted("interrupted: no claim was checked", scratch, summary)
        return list(result["claims"])
    finally:
        if directory is not None:
            for leftover in (scratch, scratch + ".journal"):
                if os.path.exists(leftover):
                    os.remove(leftover)
            os.rmdir(directory)


def components(plugins=()):
    """Every optimizer, problem and schedule (name, summary, origin: built-in, a plugin, python) and every
    preset (name, path, summary), as {"optimizers": [...], "problems": [...], "schedules": [...],
    "presets": [...]}."""
    return _ratelab.components(list(plugins))


def describe(name, plugins=()):
    """The parameter table of a component ("experiment" for the [experiment] section): a dict with kind,
    name, summary, origin and params, a list of {name, type, default, constraint, choices, doc, applies}
    (applies: the condition under which the parameter does anything, or None). A name used by several kinds
    (a problem and a schedule) gives a list of them."""
    found = _ratelab.describe(name, list(plugins))
    return found[0] if len(found) == 1 else list(found)


class Optimizer:
    """Base class of optimizers written in Python, with the life cycle of a C++ ``ratelab::Optimizer``:

        prepare(problem)      once per run: problem.dim, problem.facts (L, mu, f_star, ...); allocate here
        start(x0)             x0: the initial point (a numpy array the optimizer may keep);
        start(x0, rng)        ... and the run's own random stream: rng.uniform(), rng.normal(),
                              rng.below(n) (size= gives arrays), sought to step t before each step(t, ...)
        step(t, eta, oracle)  t = 1, 2, ...; eta from the schedule; g = oracle.gradient(x, batch=1) is a
                              numpy array over the run's gradient buffer, overwritten by the next call
        iterate()             the current x_t (a numpy vector of problem.dim doubles)
        report()              optional: {name: float} run statistics

    The parameters are the keyword arguments of ``__init__`` with their defaults (bool, int, float or
    str); experiment files set them as for any optimizer (``[optimizer] name = KEY``, ``lr_scale = 0.5``).
    An exception in any method marks that run ``error`` (with the message) and the sweep goes on.
    """

    def prepare(self, problem):
        pass

    def start(self, x0):
        raise NotImplementedError

    def step(self, t, eta, oracle):
        raise NotImplementedError

    def iterate(self):
        raise NotImplementedError


def register_optimizer(name, cls, summary=None):
    """Makes ``cls`` (an ``Optimizer`` subclass) available under ``name`` to ``run``, ``verify``,
    ``components`` and ``describe`` in this process. Its runs take the GIL, one step segment at a time, so
    they run one at a time; built-in optimizers in the same sweep still use every thread."""
    for method in ("start", "step", "iterate"):
        if not callable(getattr(cls, method, None)):
            raise TypeError(f"optimizer class {cls.__name__} has no method {method}()")
    params = []
    for parameter in list(inspect.signature(cls.__init__).parameters.values())[1:]:
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if parameter.default is parameter.empty:
            raise TypeError(f"{cls.__name__}.__init__: parameter '{parameter.name}' needs a default (its type "
                            "and the value experiments get when they do not set it)")
        params.append((parameter.name, parameter.default, ""))
    start = [p for p in inspect.signature(cls.start).parameters.values()
             if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    start_takes_rng = len(start) >= 3  # self, x0, rng
    doc = summary or (inspect.getdoc(cls) or f"python optimizer {cls.__name__}").splitlines()[0]
    _ratelab.register_optimizer(name, cls, doc, params, start_takes_rng)
    return cls


def unregister_optimizer(name):
    """Removes a Python optimizer registered under ``name``; returns whether there was one."""
    return _ratelab.unregister_optimizer(name)
