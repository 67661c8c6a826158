# Optimizers written in Python: the life cycle, fairness (same common random numbers, same bits as the
# built-in), errors as data.
import numpy as np
import pytest

import ratelab
from conftest import trace_arrays
from test_run import QUICKSTART, SMALL


class PlainSgd(ratelab.Optimizer):
    """plain SGD, x <- x - eta g"""

    def __init__(self, batch=1):
        self.batch = batch

    def prepare(self, problem):
        self.x = np.zeros(problem.dim)

    def start(self, x0):
        self.x[:] = x0

    def step(self, t, eta, oracle):
        self.x -= eta * oracle.gradient(self.x, self.batch)

    def iterate(self):
        return self.x


class FailsAtStep(PlainSgd):
    """raises at step `at`"""

    def __init__(self, at=100):
        super().__init__()
        self.at = at

    def step(self, t, eta, oracle):
        if t == self.at:
            raise FloatingPointError(f"made up failure at t = {t}")
        super().step(t, eta, oracle)


@pytest.fixture(autouse=True)
def registered():
    ratelab.register_optimizer("py_sgd", PlainSgd)
    ratelab.register_optimizer("py_fails", FailsAtStep)
    yield
    ratelab.unregister_optimizer("py_sgd")
    ratelab.unregister_optimizer("py_fails")


def test_python_sgd_is_bit_identical_to_sgd_on_quickstart(cli, tmp_path):
    # The full quickstart size would take minutes through Python; its steps and checkpoints are kept on
    # 8 replicates (every view, every checkpoint, the same streams).
    size = {"experiment.replicates": 8}
    builtin, prototype = tmp_path / "sgd.h5", tmp_path / "py.h5"
    assert cli("run", "quickstart", "-o", str(builtin), "--quiet", "--set=experiment.replicates=8").returncode == 0
    ratelab.run("quickstart", set={**size, "optimizer.name": "py_sgd"}, output=prototype, threads=1, progress=False)
    a, b = trace_arrays(builtin), trace_arrays(prototype)
    assert "traces/subopt" in a
    for name in a:
        assert a[name] == b[name], name


def test_python_optimizer_beside_builtins_on_the_same_random_numbers(tmp_path):
    experiment = {k: v for k, v in QUICKSTART.items() if not k.startswith("optimizer")}
    experiment["optimizer:sgd"] = {"name": "sgd"}
    experiment["optimizer:py"] = {"name": "py_sgd"}
    experiment["optimizer:py4"] = {"name": "py_sgd", "batch": 4}
    experiment["optimizer:sgd4"] = {"name": "sgd", "batch": 4}
    ds = ratelab.run(experiment, set=SMALL, progress=False)
    by_label = {str(label): i for i, label in enumerate(ds.label.values)}
    assert set(by_label) == {"sgd batch=1", "py_sgd batch=1", "py_sgd batch=4", "sgd batch=4"}
    subopt = ds.subopt.values
    assert np.array_equal(subopt[by_label["sgd batch=1"]], subopt[by_label["py_sgd batch=1"]])
    assert np.array_equal(subopt[by_label["sgd batch=4"]], subopt[by_label["py_sgd batch=4"]])
    assert not np.array_equal(subopt[by_label["sgd batch=1"]], subopt[by_label["sgd batch=4"]])
    assert ratelab.describe("py_sgd")["origin"] == "python"
    assert ratelab.describe("py_sgd")["params"][0]["default"] == 1


def test_a_raising_optimizer_marks_its_runs_error_and_the_sweep_goes_on(tmp_path):
    experiment = {k: v for k, v in QUICKSTART.items() if not k.startswith("optimizer")}
    experiment["optimizer:sgd"] = {"name": "sgd"}
    experiment["optimizer:bad"] = {"name": "py_fails", "at": 100}
    ds = ratelab.run(experiment, set=SMALL, output=tmp_path / "mixed.h5", threads=2, progress=False)
    labels = [str(label) for label in ds.label.values]
    bad, good = labels.index("py_fails"), labels.index("sgd")
    assert (ds.status.values[bad] == "error").all()
    assert (ds.status.values[good] == "ok").all()
    message = str(ds.message.values[bad][0])
    assert "py_fails" in message and "made up failure at t = 100" in message and "FloatingPointError" in message
    assert np.isfinite(ds.subopt.values[good]).all()
    with pytest.raises(ratelab.RunErrors):
        ratelab.run(experiment, set=SMALL, progress=False, errors="raise")


def test_bad_optimizer_classes_are_refused():
    class NoDefault(PlainSgd):
        def __init__(self, lr):
            super().__init__()

    with pytest.raises(TypeError, match="lr"):
        ratelab.register_optimizer("py_nodefault", NoDefault)
    with pytest.raises(ValueError, match="built-in"):
        ratelab.register_optimizer("sgd", PlainSgd)


def test_python_optimizer_parameters_are_validated_like_any():
    with pytest.raises(ratelab.ConfigError) as error:
        ratelab.run("quickstart", set={"optimizer.name": "py_sgd", "optimizer.batch": "two"})
    assert "optimizer.batch" in str(error.value)


def test_a_gradient_of_the_wrong_size_is_an_error_run():
    class WrongSize(PlainSgd):
        def step(self, t, eta, oracle):
            oracle.gradient(self.x[:-1])

    ratelab.register_optimizer("py_wrong", WrongSize)
    try:
        ds = ratelab.run("quickstart", set={**SMALL, "optimizer.name": "py_wrong"}, progress=False)
    finally:
        ratelab.unregister_optimizer("py_wrong")
    assert (ds.status.values == "error").all()
    assert "dim = 50" in str(ds.message.values[0][0])
