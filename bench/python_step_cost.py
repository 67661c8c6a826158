"""Per-step cost of an optimizer written in Python (ratelab.Optimizer) against the built-in sgd it
reproduces bit for bit, on the quickstart problem (d = 50), one run of T steps on one thread, views=last.

    PYTHONPATH=build/release/python python3 bench/python_step_cost.py [--steps 200000] [--reps 3]

Prints the median whole-run seconds of each and (python - built-in) / T, the overhead per step: the GIL
taken once per step segment, a Python call per step, the oracle's numpy view and one numpy update. Take
the figure on a quiet machine; on a shared one it is noise beyond its order of magnitude. Instruction
counts do not depend on the load: run one job under callgrind for two lengths and difference the run
loop's inclusive count (TBB's idle workers spin, so the process total is noise):

    PYTHONPATH=build/release/python valgrind --tool=callgrind --callgrind-out-file=cg.py.4000 \
        python3 bench/python_step_cost.py --only py_sgd --steps 4000
    callgrind_annotate --inclusive=yes cg.py.4000 | grep 'ratelab::run_lockstep'

(2026-12-04: py_sgd 55.7 M at T = 2000, 111.0 M at T = 4000, so 27,700 per step; sgd 32.8 M at
T = 4000, 8,200 per step with the checkpoints.)
"""
import argparse
import statistics
import time

import numpy as np

import ratelab


class PlainSgd(ratelab.Optimizer):
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


def seconds(optimizer, steps):
    begin = time.perf_counter()
    ratelab.run("quickstart", set={"optimizer.name": optimizer, "experiment.steps": steps,
                                   "experiment.replicates": 1, "experiment.views": "last"},
                threads=1, progress=False)
    return time.perf_counter() - begin


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--only", choices=["sgd", "py_sgd"], help="one run of this optimizer, no timing (callgrind)")
    args = parser.parse_args()
    ratelab.register_optimizer("py_sgd", PlainSgd)
    if args.only:
        seconds(args.only, args.steps)
        return
    seconds("py_sgd", 1000)  # warm-up: imports, first allocations
    builtin = statistics.median(seconds("sgd", args.steps) for _ in range(args.reps))
    python = statistics.median(seconds("py_sgd", args.steps) for _ in range(args.reps))
    print(f"T = {args.steps}, d = 50, 1 run, 1 thread, median of {args.reps}: sgd {builtin:.3f} s, "
          f"python sgd {python:.3f} s, overhead {(python - builtin) / args.steps * 1e6:.2f} us/step "
          f"({python / builtin:.1f}x)")


if __name__ == "__main__":
    main()
