# Ctrl-C: SIGINT to a Python process running a long sweep stops it as it stops `ratelab run`: a valid file
# with every finished run, the rest marked, and resume=True completes it to the uninterrupted result.
import os
import signal
import subprocess
import sys
import time

import numpy as np

import ratelab
from conftest import trace_arrays

# Long enough that the SIGINT lands during the runs: with the fast paths (issue 16) 200000 steps finished within
# the 1 s wait below and the signal hit the conversion afterwards.
LONG = {"experiment.steps": 2000000, "experiment.replicates": 8, "experiment.checkpoints": 20}

CHILD = """
import sys, ratelab
print("running", flush=True)
try:
    ratelab.run("quickstart", set={set!r}, output=sys.argv[1], threads=1, progress=False)
except ratelab.Interrupted as interrupted:
    print("interrupted", interrupted.summary["ok"], flush=True)
    sys.exit(4)
print("finished", flush=True)
"""


def test_sigint_stops_the_sweep_and_the_file_resumes(tmp_path):
    path = tmp_path / "long.h5"
    child = subprocess.Popen([sys.executable, "-c", CHILD.format(set=LONG), str(path)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    assert child.stdout.readline().strip() == "running"
    journal = str(path) + ".journal"
    deadline = time.time() + 120
    while not (os.path.exists(journal) and os.path.getsize(journal) > 0) and time.time() < deadline:
        time.sleep(0.05)  # the sweep started (the journal exists once runs are being written)
    time.sleep(1.0)
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=120)
    assert child.returncode == 4, (out, err)
    assert out.startswith("interrupted"), out
    with ratelab.open(path) as interrupted:
        status = interrupted.status.values.ravel()
    assert (status != 0).any(), "the sweep finished before the signal: make LONG longer"
    assert (status == 0).sum() == int(out.split()[1])  # every run the sweep finished is in the file
    ds = ratelab.run("quickstart", set=LONG, output=path, resume=True, threads=2, progress=False)
    assert (ds.status.values == 0).all()
    reference = tmp_path / "reference.h5"
    ratelab.run("quickstart", set=LONG, output=reference, threads=2, progress=False)
    a, b = trace_arrays(reference), trace_arrays(path)
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name] == b[name], name
