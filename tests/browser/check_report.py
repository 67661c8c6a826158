#!/usr/bin/env python3
"""The report page in a real browser (issue 24): Debian's headless chromium opens a report of a small sweep.

Checks, through the DOM chromium dumps after the page's script ran:
  - the script logged no error (body data-js-errors = 0, written by window.onerror) and finished (data-ready);
  - one curve per configuration in the figure (data-curves), and what the controls draw when the page works
    them itself (page.html#selftest: hide one curve, show it again, another view, a linear scale, a hover);
  - the claims table: as many rows as claims, verdicts as `ratelab verify FILE.h5` prints them, failed first;
  - the summary table's values (data-value) equal `ratelab summary FILE --csv`, cell for cell;
and that a screenshot is produced and not blank (decoded here: distinct colours and non-white pixels).

Usage: check_report.py RATELAB SCRATCH_DIR [SCREENSHOT_COPY]. Exits 77 (ctest SKIP_RETURN_CODE) when no
chromium is installed, saying so; scripts/setup.sh installs it, so CI runs the test.
"""
import csv
import re
import html.parser
import io
import os
import shutil
import struct
import subprocess
import sys
import zlib

SKIP = 77


def fail(message):
    print("FAIL: " + message)
    sys.exit(1)


def run(args, expect=(0,)):
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
    if p.returncode not in expect:
        fail("%s exited %d:\n%s" % (" ".join(args), p.returncode, p.stdout))
    return p.stdout


class Dom(html.parser.HTMLParser):
    """Elements with their attributes, and the cells (attributes, text) of every table by id."""

    def __init__(self):
        super().__init__()
        self.elements, self.tables, self.table, self.cell, self.row = [], {}, None, None, None
        self.svg_texts, self.svg_text = [], None  # the text of every SVG <text> (tick labels, axis titles)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.elements.append((tag, a))
        if tag == "table":
            self.table = self.tables.setdefault(a["id"], []) if a.get("id") else None
            self.row = None
        elif tag == "tr" and self.table is not None:
            self.row = {"class": a.get("class", ""), "cells": []}
            self.table.append(self.row)
        elif tag in ("td", "th") and self.row is not None:
            self.cell = [a, ""]
            self.row["cells"].append(self.cell)
        elif tag == "text":
            self.svg_text = [a, ""]
            self.svg_texts.append(self.svg_text)

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.cell = None
        elif tag == "text":
            self.svg_text = None
        elif tag == "table":
            self.table, self.row = None, None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell[1] += data
        if self.svg_text is not None:
            self.svg_text[1] += data


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def chromium_args(browser, profile):
    # --no-sandbox: CI runs as root in a container; --user-data-dir: a fresh profile, no state between runs.
    return [browser, "--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=" + profile,
            "--virtual-time-budget=10000"]


def png_pixels(path):
    """Width, height and the RGB(A) rows of an 8-bit PNG (what chromium writes), unfiltered."""
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        fail(path + " is not a PNG")
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            if depth != 8 or colour not in (2, 6):
                fail("unexpected PNG format: depth %d colour type %d" % (depth, colour))
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw, stride, rows, previous = zlib.decompress(idat), width * channels, [], bytearray(width * channels)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, corner = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 255
        rows.append(line)
        previous = line
    return width, height, channels, rows


EXPERIMENT = """[experiment]
name = browser_sweep
description = a small sweep for the browser test: <two> optimizers & three step sizes
steps = 20000
replicates = 8
checkpoints = 15
views = last, suffix

[problem]
name = quadratic
d = 4
mu = 0.5
L = 1
noise_scale = 0.5

[optimizer:sgd]
name = sgd

[optimizer:clip]
name = clipped_sgd

[schedule]
name = inv_sqrt
c = 0.05, 0.1, 0.2

[claims]
all_ok = status error=0 diverged=0
impossible = value expect=[0, 1e-300]
# By t = 20000 the noise floor, proportional to the step size, dominates: the smaller constant ends lower.
smaller_step_lower_late = compare a=schedule.c=0.05 b=schedule.c=0.2 where=optimizer=sgd expect=a<b
"""


def main():
    if len(sys.argv) < 3:
        fail("usage: check_report.py RATELAB SCRATCH_DIR [SCREENSHOT_COPY]")
    ratelab, scratch = sys.argv[1], sys.argv[2]
    browser = find_chromium()
    if not browser:
        print("SKIPPED: no chromium on PATH (looked for chromium, chromium-browser, google-chrome); "
              "install Debian's package: apt-get install chromium (scripts/setup.sh does)")
        sys.exit(SKIP)
    os.makedirs(scratch, exist_ok=True)
    ini, h5, page = (os.path.join(scratch, n) for n in ("browser_sweep.ini", "browser_sweep.h5", "browser_sweep.html"))
    open(ini, "w").write(EXPERIMENT)
    run([ratelab, "run", ini, "-o", h5, "--overwrite", "--quiet", "--threads", "2"])
    run([ratelab, "report", h5, "-o", page])
    summary_csv = list(csv.reader(io.StringIO(run([ratelab, "summary", h5, "--csv"]))))
    ecdf_csv = list(csv.reader(io.StringIO(run([ratelab, "ecdf", h5, "--csv"]))))
    verify = run([ratelab, "verify", h5], expect=(5,))
    configurations = 6  # 2 optimizers x 3 step sizes

    profile = os.path.join(scratch, "chromium-profile")
    dom_text = run(chromium_args(browser, profile) + ["--dump-dom", "file://" + os.path.abspath(page) + "#selftest"])
    dom = Dom()
    dom.feed(dom_text)
    body = next(a for t, a in dom.elements if t == "body")
    errors = next((a for t, a in dom.elements if a.get("id") == "js-errors"), None)
    if body.get("data-js-errors") != "0":
        fail("the page's script logged errors: body data-js-errors=%r\n%s" % (body.get("data-js-errors"), dom_text[:3000]))
    if body.get("data-ready") != "1":
        fail("the page's script did not finish (no data-ready on <body>)")
    if errors is None or "hidden" not in errors:
        fail("the error box is shown")

    figures = [a for t, a in dom.elements if t == "div" and a.get("data-source")]
    if len(figures) != 1:
        fail("expected 1 figure, found %d" % len(figures))
    figure = figures[0]
    expected_selftest = "hide-one=%d show-again=%d view=suffix:%d linear=%d" % (
        configurations - 1, configurations, configurations, configurations)
    checks = [("data-curves-initial", str(configurations)), ("data-selftest", expected_selftest)]
    for key, want in checks:
        if figure.get(key) != want:
            fail("figure %s = %r, expected %r" % (key, figure.get(key), want))
    tooltip = figure.get("data-tooltip", "")
    if "t = 20000" not in tooltip or "median = " not in tooltip or "band q0.1" not in tooltip:
        fail("hovering the end of a curve shows %r, expected its label, t = 20000, the median and the band" % tooltip)

    # One panel shows every curve, so curves plot would put in different panels (here schedule.c makes
    # columns) must still look different: every drawn curve has its own (colour, dash) pair.
    styles = [(a.get("stroke"), a.get("stroke-dasharray", "")) for t, a in dom.elements
              if t == "path" and a.get("class") == "curve"]
    if len(set(styles)) != len(styles):
        fail("curves share a colour and dash type, so they cannot be told apart: %r" % styles)

    # Tick labels: four significant digits at most, no trailing zeros, the exponent without '+' ('1e4', not
    # '1.000e+4'); the selftest left the figure on view suffix with a linear y axis, whose ticks reach 0.
    ticks = [text for a, text in dom.svg_texts if a.get("class") == "tick"]
    print("tick labels:", ticks)
    bad = [t for t in ticks if not re.fullmatch(r"-?(0|[1-9]\d*)(\.\d*[1-9])?(e-?[1-9]\d*)?", t)]
    if not ticks or bad:
        fail("tick labels %r are not plain numbers without trailing zeros (all: %r)" % (bad, ticks))

    claims = dom.tables.get("claims")
    if not claims:
        fail("no claims table")
    rows = [[c[1] for c in r["cells"]] for r in claims[1:]]
    verdict_lines = [line for line in verify.splitlines() if line.startswith(("PASS ", "FAIL "))]
    if len(rows) != 3 or len(verdict_lines) != 3:
        fail("claims: %d rows on the page, %d verdicts from verify, expected 3:\n%s" % (len(rows), len(verdict_lines), verify))
    if [r[0] for r in rows] != ["FAIL", "PASS", "PASS"] or rows[0][1] != "impossible":
        fail("claims not failed first: %r" % [r[:2] for r in rows])
    for r in rows:
        line = next((l for l in verdict_lines if r[1] in l), None)
        if line is None or not line.startswith(r[0]) or r[3] not in line:
            fail("claim %s: page says %s %r, verify says %r" % (r[1], r[0], r[3], line))

    summary = dom.tables.get("summary")
    if not summary:
        fail("no summary table")
    shown = [[c[0].get("data-value", c[1]) for c in r["cells"]] for r in summary]
    if shown[0] != summary_csv[0]:
        fail("summary header %r != summary --csv %r" % (shown[0], summary_csv[0]))
    # The selftest sorted the page's table by its last column; compare as sets of rows.
    if sorted(shown[1:]) != sorted(summary_csv[1:]) or len(shown) != 1 + configurations * 2:
        fail("summary rows differ from summary --csv:\npage %r\ncsv  %r" % ([r for r in shown[1:] if r not in summary_csv], [r for r in summary_csv[1:] if r not in shown]))
    # The runtime ECDF table: `ratelab ecdf FILE --csv`, row for row (one row per configuration; the selftest
    # may have sorted it, so as a set of rows).
    ecdf = dom.tables.get("ecdf")
    if not ecdf:
        fail("no runtime ECDF table")
    ecdf_shown = [[c[0].get("data-value", c[1]) for c in r["cells"]] for r in ecdf]
    if ecdf_shown[0] != ecdf_csv[0] or sorted(ecdf_shown[1:]) != sorted(ecdf_csv[1:]) or len(ecdf_shown) != 1 + configurations:
        fail("ECDF rows differ from ecdf --csv:\npage %r\ncsv  %r" % (ecdf_shown, ecdf_csv))
    sorted_table = next(a for t, a in dom.elements if t == "table" and a.get("id") == "summary")
    if sorted_table.get("data-sorted") != "descending":
        fail("sorting the summary by a column did not take: %r" % sorted_table.get("data-sorted"))

    shot = os.path.join(scratch, "browser_sweep.png")
    if os.path.exists(shot):
        os.remove(shot)
    run(chromium_args(browser, profile) + ["--window-size=1200,1800", "--screenshot=" + shot, "file://" + os.path.abspath(page)])
    if not os.path.exists(shot):
        fail("chromium wrote no screenshot")
    width, height, channels, pixels = png_pixels(shot)
    colours, inked = set(), 0
    for line in pixels:
        for x in range(0, width * channels, channels):
            rgb = bytes(line[x:x + 3])
            colours.add(rgb)
            inked += rgb != b"\xff\xff\xff"
    if len(colours) < 50 or inked < 0.01 * width * height:
        fail("the screenshot looks blank: %d colours, %d non-white pixels of %d" % (len(colours), inked, width * height))
    if len(sys.argv) > 3:
        shutil.copy(shot, sys.argv[3])
    print("OK: %d curves, selftest %s, tooltip %r, %d claims (failed first), %d summary rows equal to summary --csv, "
          "screenshot %dx%d with %d colours" % (configurations, figure.get("data-selftest"), tooltip, len(rows),
                                                 len(shown) - 1, width, height, len(colours)))


if __name__ == "__main__":
    main()
