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
    assert "subopt" in a and "status" in a
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
    assert (ds.status.values[bad] == 2).all()  # 2: error (status codes: results/SCHEMA.md)
    assert (ds.status.values[good] == 0).all()
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
    assert (ds.status.values == 2).all()
    assert "dim = 50" in str(ds.message.values[0][0])


class RecordsDraws(PlainSgd):
    """plain SGD that records the first draws of its random stream at every step"""
    record = {}
    last_rng = None

    def __init__(self, per_step=1):
        super().__init__()
        self.per_step = per_step

    def start(self, x0, rng):
        super().start(x0)
        self.rng = RecordsDraws.last_rng = rng
        self.draws = RecordsDraws.record.setdefault(self.per_step, [])

    def step(self, t, eta, oracle):
        draws = self.rng.normal(size=self.per_step)
        self.draws.append((t, draws[0], self.rng.below(1000), self.rng.uniform()))
        super().step(t, eta, oracle)


def test_the_random_stream_is_the_runs_and_sought_to_each_step():
    RecordsDraws.record.clear()
    ratelab.register_optimizer("py_draws", RecordsDraws)
    try:
        for per_step in (1, 3):
            ratelab.run("quickstart", set={"experiment.steps": 50, "experiment.replicates": 1,
                                           "optimizer.name": "py_draws", "optimizer.per_step": per_step},
                        threads=1, progress=False)
    finally:
        ratelab.unregister_optimizer("py_draws")
    one, three = RecordsDraws.record[1], RecordsDraws.record[3]
    assert [d[0] for d in one] == list(range(1, 51))
    # The first draw of step t does not depend on how many draws earlier steps made.
    assert [d[1] for d in one] == [d[1] for d in three]
    # Normals have a sub-stream of their own (stream layout 2): the raw draws after them in the step do
    # not depend on how many normals came first.
    assert [d[2:] for d in one] == [d[2:] for d in three]
    assert len({d[1] for d in one}) == 50 and all(0 <= d[2] < 1000 and 0 < d[3] < 1 for d in one)
    # Past its run the stream refuses to draw (a kept reference does not read freed memory).
    with pytest.raises(RuntimeError, match="only valid while its run lasts"):
        RecordsDraws.last_rng.normal()
