#include "tools/report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <ostream>
#include <sstream>
#include <unistd.h>

#include "experiments/claims.hpp"
#include "experiments/experiment.hpp"
#include "results/trace_query.hpp"
#include "tools/analysis_commands.hpp"
#include "tools/fixed_target_commands.hpp"
#include "tools/plot.hpp"

namespace ratelab::tools {

namespace {

// The page's script: draws every figure from its embedded JSON and makes the tables sortable. Kept in one
// place with the CSS so the page is one string; see report.hpp for the DOM attributes it writes.
const char* kStyle = R"CSS(
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222;
       margin: 0 auto; max-width: 1100px; padding: 1em 1.5em 3em; }
h1 { font-size: 1.6em; margin: .3em 0; } h2 { font-size: 1.25em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
h3 { font-size: 1.05em; }
table { border-collapse: collapse; margin: .5em 0; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 2px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th[aria-sort=ascending]::after { content: " \25B2"; }
table.sortable th[aria-sort=descending]::after { content: " \25BC"; }
tr.fail td:first-child { color: #b00020; font-weight: bold; } tr.pass td:first-child { color: #1b7f3b; font-weight: bold; }
pre { background: #f7f7f7; border: 1px solid #e4e4e4; padding: .6em; overflow-x: auto; font-size: 12px; }
.scroll { max-height: 32em; overflow: auto; }
.controls label { margin-right: 1.2em; } .controls select { margin-left: .3em; }
.figure { margin: 1em 0 2em; } .figure svg { display: block; background: #fff; }
.legend { list-style: none; padding: 0; margin: .3em 0; columns: 2; font-size: 12.5px; }
.legend li { cursor: pointer; padding: 1px 4px; break-inside: avoid; } .legend li.off { opacity: .35; }
.legend li:hover { background: #f0f0f0; } .figure .legend svg { display: inline; vertical-align: middle; }
.tooltip { position: absolute; pointer-events: none; background: rgba(255,255,255,.95); border: 1px solid #999;
           padding: 4px 7px; font-size: 12px; white-space: nowrap; display: none; }
.note { color: #666; font-size: 12.5px; } #js-errors { color: #b00020; white-space: pre-wrap; }
)CSS";

const char* kScript = R"JS(
(function () {
  'use strict';
  var errors = [];
  function noteError(text) {
    errors.push(String(text));
    document.body.setAttribute('data-js-errors', String(errors.length));
    var box = document.getElementById('js-errors');
    if (box) { box.hidden = false; box.textContent = 'script errors:\n' + errors.join('\n'); }
  }
  window.onerror = function (message, source, line, column) { noteError(message + ' (line ' + line + ':' + column + ')'); };
  document.body.setAttribute('data-js-errors', '0');

  var SVG = 'http://www.w3.org/2000/svg';
  // Okabe-Ito colours (distinguishable with colour-vision deficiencies), then dash patterns for more curves.
  var COLOURS = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000'];
  var DASHES = ['', '6 3', '2 3', '8 3 2 3', '12 4', '1 3', '8 3 2 3 2 3'];
  // A curve's colour is plot's color encoding; its dash, plot's dash encoding and panel (figure_json).
  function style(c) { return { colour: COLOURS[c[4] % COLOURS.length], dash: DASHES[(c[5] + Math.floor(c[4] / COLOURS.length)) % DASHES.length] }; }
  function svg(name, attrs, parent) {
    var e = document.createElementNS(SVG, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function html(name, attrs, parent, text) {
    var e = document.createElement(name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }
  function fmt(v) {
    if (v === null || v === undefined || !isFinite(v)) return 'n/a';
    // Four significant digits without trailing zeros; exponent form outside [1e-3, 1e4), written without
    // '+': 10000 -> '1e4' (was '1.000e+4' on a log axis), 0.00008499 -> '8.499e-5', 0.25 -> '0.25'.
    var a = Math.abs(v), text = a !== 0 && (a < 1e-3 || a >= 1e4) ? Number(v).toExponential(3) : Number(v).toPrecision(4);
    var parts = text.split('e'), m = parts[0];
    if (m.indexOf('.') >= 0) m = m.replace(/0+$/, '').replace(/\.$/, '');
    return parts.length > 1 ? m + 'e' + parts[1].replace('+', '') : m;
  }
  function finite(v) { return v !== null && v !== undefined && isFinite(v); }

  function ticks(lo, hi, log) {
    var out = [];
    if (log) {
      var a = Math.floor(Math.log10(lo) + 1e-9), b = Math.ceil(Math.log10(hi) - 1e-9);
      var step = Math.max(1, Math.ceil((b - a) / 8));
      for (var e = a; e <= b; e += step) out.push(Math.pow(10, e));
      if (b - a <= 1) {  // less than a decade: 2 and 5 as well
        var more = [];
        out.forEach(function (d) { more.push(d, 2 * d, 5 * d); });
        out = more;
      }
      return out.filter(function (v) { return v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9); });
    }
    var raw = (hi - lo) / 5, mag = Math.pow(10, Math.floor(Math.log10(raw))), unit = raw / mag;
    var stepL = (unit < 1.5 ? 1 : unit < 3.5 ? 2 : unit < 7.5 ? 5 : 10) * mag;
    for (var v = Math.ceil(lo / stepL) * stepL; v <= hi + 1e-9 * stepL; v += stepL) out.push(Math.abs(v) < 1e-12 * stepL ? 0 : v);
    return out;
  }

  function Figure(root, data) {
    this.root = root;
    this.data = data;
    this.hidden = {};
    var metrics = data.metrics.map(function (m) { return m.name; });
    this.state = { view: data.views[0], metric: metrics.indexOf('subopt') >= 0 ? 'subopt' : metrics[0],
                   x: 'steps', xscale: 'log', yscale: 'log' };
    var self = this, controls = html('div', { 'class': 'controls' }, root);
    function select(key, title, options) {
      var label = html('label', {}, controls, title);
      var s = html('select', { 'data-control': key }, label);
      options.forEach(function (o) {
        var opt = html('option', { value: o[0] }, s, o[1]);
        if (o[0] === self.state[key]) opt.selected = true;
      });
      s.addEventListener('change', function () { self.state[key] = s.value; self.draw(); });
    }
    select('metric', 'metric', data.metrics.map(function (m) { return [m.name, m.name]; }));
    select('view', 'view', data.views.map(function (v) { return [v, v]; }));
    select('x', 'x axis', [['steps', 'steps t']]);
    select('xscale', 'x scale', [['log', 'log'], ['linear', 'linear']]);
    select('yscale', 'y scale', [['log', 'log'], ['linear', 'linear']]);
    this.caption = html('div', { 'class': 'note' }, root);
    this.box = html('div', { style: 'position: relative' }, root);
    this.tip = html('div', { 'class': 'tooltip' }, this.box);
    this.legend = html('ul', { 'class': 'legend' }, root);
    this.draw();
  }

  Figure.prototype.draw = function () {
    var self = this, d = this.data, st = this.state;
    var curves = (d.series[st.metric] || {})[st.view] || [];
    var xs = d.t, W = 960, H = 440, L = 78, R = 16, T = 14, B = 46;
    var xlog = st.xscale === 'log', ylog = st.yscale === 'log';
    var ok = function (v, log) { return finite(v) && (!log || v > 0); };
    var xlo = Infinity, xhi = -Infinity, ylo = Infinity, yhi = -Infinity;
    xs.forEach(function (x) { if (ok(x, xlog)) { xlo = Math.min(xlo, x); xhi = Math.max(xhi, x); } });
    curves.forEach(function (c) {
      if (self.hidden[c[0]]) return;
      [c[1], c[2], c[3]].forEach(function (values) {
        if (!values) return;
        values.forEach(function (v) { if (ok(v, ylog)) { ylo = Math.min(ylo, v); yhi = Math.max(yhi, v); } });
      });
    });
    while (this.box.lastChild !== this.tip) this.box.removeChild(this.box.lastChild);
    var metric = d.metrics.filter(function (m) { return m.name === st.metric; })[0];
    this.caption.textContent = (metric ? metric.label : st.metric) + '; ' + d.center + ' over replicates, band ' +
        d.band + ' (view ' + st.view + ')';
    var drawn = 0;
    var plot = svg('svg', { width: W, height: H, viewBox: '0 0 ' + W + ' ' + H, role: 'img' }, null);
    this.box.appendChild(plot);
    if (!(ylo <= yhi) || !(xlo <= xhi)) {
      svg('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', fill: '#666' }, plot).textContent =
          'no ' + (ylog ? 'positive ' : 'finite ') + 'values of ' + st.metric + ' in view ' + st.view + ' to draw';
    } else {
      if (ylo === yhi) { ylo = ylog ? ylo / 2 : ylo - 1; yhi = ylog ? yhi * 2 : yhi + 1; }
      if (xlo === xhi) { xlo = xlog ? xlo / 2 : xlo - 1; xhi = xlog ? xhi * 2 : xhi + 1; }
      var f = function (v, log) { return log ? Math.log10(v) : v; };
      var px = function (x) { return L + (f(x, xlog) - f(xlo, xlog)) / (f(xhi, xlog) - f(xlo, xlog)) * (W - L - R); };
      var py = function (y) { return H - B - (f(y, ylog) - f(ylo, ylog)) / (f(yhi, ylog) - f(ylo, ylog)) * (H - T - B); };
      var axes = svg('g', { 'font-size': 11, fill: '#333' }, plot);
      ticks(xlo, xhi, xlog).forEach(function (x) {
        svg('line', { x1: px(x), x2: px(x), y1: T, y2: H - B, stroke: '#eee' }, axes);
        svg('text', { x: px(x), y: H - B + 15, 'text-anchor': 'middle', 'class': 'tick' }, axes).textContent = fmt(x);
      });
      ticks(ylo, yhi, ylog).forEach(function (y) {
        svg('line', { x1: L, x2: W - R, y1: py(y), y2: py(y), stroke: '#eee' }, axes);
        svg('text', { x: L - 5, y: py(y) + 4, 'text-anchor': 'end', 'class': 'tick' }, axes).textContent = fmt(y);
      });
      svg('rect', { x: L, y: T, width: W - L - R, height: H - T - B, fill: 'none', stroke: '#999' }, axes);
      svg('text', { x: L + (W - L - R) / 2, y: H - 8, 'text-anchor': 'middle', 'font-size': 12 }, axes).textContent = 'step t';
      svg('text', { x: 14, y: T + (H - T - B) / 2, 'text-anchor': 'middle', 'font-size': 12,
                    transform: 'rotate(-90 14 ' + (T + (H - T - B) / 2) + ')' }, axes).textContent =
          d.center + ' ' + st.metric + ' (' + st.view + ')';
      var layer = svg('g', {}, plot);
      curves.forEach(function (c, i) {
        if (self.hidden[c[0]]) return;
        var s = style(c), centre = c[1], lo = c[2], hi = c[3];
        if (lo && hi) {  // the band: one polygon per stretch of checkpoints where both ends are drawable
          var k = 0;
          while (k < xs.length) {
            var run = [];
            while (k < xs.length && ok(xs[k], xlog) && ok(lo[k], ylog) && ok(hi[k], ylog)) run.push(k++);
            if (run.length > 1) {
              var pts = run.map(function (j) { return px(xs[j]) + ',' + py(hi[j]); })
                  .concat(run.slice().reverse().map(function (j) { return px(xs[j]) + ',' + py(lo[j]); }));
              svg('polygon', { points: pts.join(' '), fill: s.colour, 'fill-opacity': 0.13, stroke: 'none' }, layer);
            }
            if (!run.length) k++;
          }
        }
        var path = '', pen = false;
        xs.forEach(function (x, j) {
          if (ok(x, xlog) && ok(centre[j], ylog)) { path += (pen ? 'L' : 'M') + px(x).toFixed(1) + ' ' + py(centre[j]).toFixed(1); pen = true; }
          else pen = false;
        });
        if (path) {
          svg('path', { d: path, fill: 'none', stroke: s.colour, 'stroke-width': 1.8, 'stroke-dasharray': s.dash,
                        'class': 'curve', 'data-configuration': c[0] }, layer);
          drawn++;
        }
      });
      var marker = svg('circle', { r: 4, fill: 'none', stroke: '#000', visibility: 'hidden' }, plot);
      var overlay = svg('rect', { x: L, y: T, width: W - L - R, height: H - T - B, fill: 'transparent' }, plot);
      overlay.addEventListener('mousemove', function (ev) {
        var box = plot.getBoundingClientRect(), mx = ev.clientX - box.left, my = ev.clientY - box.top;
        var best = null;
        xs.forEach(function (x, j) {
          if (!ok(x, xlog)) return;
          curves.forEach(function (c, i) {
            if (self.hidden[c[0]] || !ok(c[1][j], ylog)) return;
            var dist = Math.pow(px(x) - mx, 2) + Math.pow(py(c[1][j]) - my, 2);
            if (!best || dist < best.dist) best = { dist: dist, j: j, c: c, i: i };
          });
        });
        if (!best) return;
        var c = best.c, j = best.j;
        marker.setAttribute('cx', px(xs[j])); marker.setAttribute('cy', py(c[1][j]));
        marker.setAttribute('visibility', 'visible');
        self.tip.textContent = '';
        html('b', {}, self.tip, d.labels[c[0]]);
        html('div', {}, self.tip, 't = ' + xs[j]);
        html('div', {}, self.tip, d.center + ' = ' + fmt(c[1][j]));
        if (c[2] && c[3]) html('div', {}, self.tip, 'band ' + d.band + ': [' + fmt(c[2][j]) + ', ' + fmt(c[3][j]) + ']');
        self.tip.style.display = 'block';
        self.tip.style.left = Math.min(px(xs[j]) + 12, W - 220) + 'px';
        self.tip.style.top = Math.max(py(c[1][j]) - 60, 0) + 'px';
      });
      overlay.addEventListener('mouseleave', function () { self.tip.style.display = 'none'; marker.setAttribute('visibility', 'hidden'); });
    }
    this.root.setAttribute('data-curves', String(drawn));
    this.root.setAttribute('data-metric', st.metric);
    this.root.setAttribute('data-view', st.view);
    this.legend.textContent = '';
    curves.forEach(function (c, i) {
      var s = style(c), item = html('li', { 'data-configuration': c[0] }, self.legend);
      if (self.hidden[c[0]]) item.className = 'off';
      var swatch = svg('svg', { width: 28, height: 10 }, item);
      svg('line', { x1: 1, x2: 27, y1: 5, y2: 5, stroke: s.colour, 'stroke-width': 2, 'stroke-dasharray': s.dash }, swatch);
      item.appendChild(document.createTextNode(' ' + d.labels[c[0]]));
      item.title = 'click to hide or show';
      item.addEventListener('click', function () { self.hidden[c[0]] = !self.hidden[c[0]]; self.draw(); });
    });
  };

  function sortable(table) {
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (th, column) {
      th.addEventListener('click', function () {
        var ascending = th.getAttribute('aria-sort') !== 'ascending';
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute('aria-sort'); });
        th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
        var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
        var key = function (row) {
          var cell = row.cells[column], t = cell.getAttribute('data-value') || cell.textContent, v = Number(t);
          return t !== '' && !isNaN(v) ? v : t;
        };
        rows.sort(function (a, b) {
          var x = key(a), y = key(b), r;
          if (typeof x === 'number' && typeof y === 'number') r = x - y;
          else if (typeof x === 'number') r = -1;
          else if (typeof y === 'number') r = 1;
          else r = x < y ? -1 : x > y ? 1 : 0;
          return ascending ? r : -r;
        });
        rows.forEach(function (row) { body.appendChild(row); });
      });
    });
  }

  // Opened as page.html#selftest (the browser test), the page works its own controls as a reader would
  // and records what each step drew: hiding the first curve, the last view, a linear scale, hovering a point.
  function selftest(root, figure) {
    var results = [], first = figure.legend.querySelector('li');
    first.click();
    results.push('hide-one=' + root.getAttribute('data-curves'));
    first.click();
    results.push('show-again=' + root.getAttribute('data-curves'));
    var change = function (key, value) {
      var s = root.querySelector('select[data-control=' + key + ']');
      s.value = value;
      s.dispatchEvent(new Event('change'));
    };
    change('view', figure.data.views[figure.data.views.length - 1]);
    results.push('view=' + root.getAttribute('data-view') + ':' + root.getAttribute('data-curves'));
    change('yscale', 'linear');
    results.push('linear=' + root.getAttribute('data-curves'));
    var curve = root.querySelector('path.curve'), overlay = root.querySelector('svg rect[fill=transparent]');
    if (curve && overlay) {
      var end = curve.getPointAtLength(curve.getTotalLength()), box = overlay.ownerSVGElement.getBoundingClientRect();
      overlay.dispatchEvent(new MouseEvent('mousemove', { clientX: box.left + end.x, clientY: box.top + end.y, bubbles: true }));
      root.setAttribute('data-tooltip', figure.tip.textContent);
    }
    root.setAttribute('data-selftest', results.join(' '));
  }

  Array.prototype.forEach.call(document.querySelectorAll('div.figure[data-source]'), function (root) {
    try {
      var figure = new Figure(root, JSON.parse(document.getElementById(root.getAttribute('data-source')).textContent));
      root.setAttribute('data-curves-initial', root.getAttribute('data-curves'));
      if (location.hash === '#selftest') selftest(root, figure);
    } catch (e) { noteError(e && e.stack ? e.stack : e); }
  });
  Array.prototype.forEach.call(document.querySelectorAll('table.sortable'), sortable);
  if (location.hash === '#selftest') {  // sort the summary by its last column, descending: click twice
    Array.prototype.forEach.call(document.querySelectorAll('table.sortable'), function (table) {
      var heads = table.tHead.rows[0].cells, last = heads[heads.length - 1];
      last.click(); last.click();
      table.setAttribute('data-sorted', last.getAttribute('aria-sort'));
    });
  }
  document.body.setAttribute('data-ready', '1');
})();
)JS";

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[32];
  // 6 significant digits: far below what a figure can show, and it keeps large studies' pages small.
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::string json_numbers(const std::vector<double>& values) {
  std::string out = "[";
  for (std::size_t i = 0; i < values.size(); ++i) out += (i ? "," : "") + json_number(values[i]);
  return out + "]";
}

// Splits `summary --csv` output (fields quoted when they hold , " or a newline) into rows of fields.
std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false, any = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') field += '"', ++i;
      else if (c == '"') quoted = false;
      else field += c;
    } else if (c == '"') {
      quoted = any = true;
    } else if (c == ',') {
      row.push_back(field), field.clear();
    } else if (c == '\n') {
      row.push_back(field), field.clear();
      rows.push_back(row), row.clear();
      any = false;
    } else {
      field += c, any = true;
    }
  }
  if (any || !field.empty() || !row.empty()) row.push_back(field), rows.push_back(row);
  return rows;
}

const ParamValue* root_attribute(const results::TraceData& data, const std::string& key) {
  for (const auto& [k, v] : data.layout.root)
    if (k == key) return &v;
  return nullptr;
}
std::string root_text(const results::TraceData& data, const std::string& key) {
  const ParamValue* v = root_attribute(data, key);
  return v ? format_value(*v) : "";
}

bool numeric(const std::string& text) { return parse_number(text).has_value() || text == "nan" || text == "inf" || text == "-inf"; }

// A row of cells; with `short_numbers`, a number shows 4 significant digits and keeps its exact text in
// data-value (what sorting uses, and what the tests compare with the command-line output).
void table_row(std::ostream& out, const std::vector<std::string>& cells, const char* cell = "td",
               const std::string& row_class = "", bool short_numbers = false) {
  out << "<tr" << (row_class.empty() ? "" : " class=\"" + row_class + "\"") << ">";
  for (const auto& c : cells) {
    const bool number = std::string(cell) == "td" && numeric(c);
    out << "<" << cell << (number ? " class=\"num\"" : "");
    if (number && short_numbers) {
      const auto value = parse_number(c);
      out << " data-value=\"" << html_escape(c) << "\">" << html_escape(value ? short_real(*value) : c);
    } else {
      out << ">" << html_escape(c);
    }
    out << "</" << cell << ">";
  }
  out << "</tr>\n";
}

void key_value_table(std::ostream& out, const std::vector<std::pair<std::string, std::string>>& rows) {
  out << "<table>\n";
  for (const auto& [k, v] : rows)
    out << "<tr><th>" << html_escape(k) << "</th><td>" << html_escape(v) << "</td></tr>\n";
  out << "</table>\n";
}

void experiment_section(std::ostream& out, const ReportInput& input) {
  const auto& layout = input.data.layout;
  std::vector<std::string> ts;
  for (long t : layout.checkpoints) ts.push_back(std::to_string(t));
  std::vector<std::pair<std::string, std::string>> rows{
      {"name", layout.experiment_name},
      {"description", root_text(input.data, "experiment.description")},
      {"trace file", input.path},
      {"configurations", std::to_string(layout.configurations.size())},
      {"replicates", std::to_string(layout.replicates)},
      {"seeds", "master seed " + root_text(input.data, "experiment.seed") + "; replicate r of every configuration uses "
                "streams keyed by (master seed, r)" +
                (root_text(input.data, "experiment.common_random_numbers") == "false"
                     ? " and the configuration (common_random_numbers = false)"
                     : " (common random numbers: paired across configurations)")},
      {"steps T", layout.checkpoints.empty() ? "none" : ts.back()},
      {"checkpoints (" + std::to_string(ts.size()) + ")", join(ts, " ")},
      {"views", join(layout.views, ", ")},
      {"metrics", join(layout.metrics, ", ")}};
  key_value_table(out, rows);
  out << "<details><summary>the experiment file as run (resolved: <code>ratelab run</code> on it reproduces the "
         "file)</summary>\n<pre>"
      << html_escape(layout.experiment_text) << "</pre></details>\n";
}

// A table of the parameters whose values differ between configurations (every configuration's label too).
void varying_section(std::ostream& out, const results::TraceData& data) {
  const auto& configs = data.layout.configurations;
  std::vector<std::string> varying;
  for (const auto& key : results::parameter_keys(data)) {
    const std::string first = results::key_value(configs.front(), key);
    for (const auto& c : configs)
      if (results::key_value(c, key) != first) {
        varying.push_back(key);
        break;
      }
  }
  out << "<h3>What varies</h3>\n";
  if (varying.empty()) out << "<p>One setting of every parameter (" << configs.size() << " configuration).</p>\n";
  out << "<div class=\"scroll\"><table class=\"sortable\" id=\"configurations\">\n<thead>";
  std::vector<std::string> header{"#", "label"};
  header.insert(header.end(), varying.begin(), varying.end());
  header.insert(header.end(), {"ok", "diverged", "error", "other", "id"});
  table_row(out, header, "th");
  out << "</thead><tbody>\n";
  for (std::size_t c = 0; c < configs.size(); ++c) {
    std::vector<std::string> row{std::to_string(c), configs[c].label};
    for (const auto& key : varying) row.push_back(results::key_value(configs[c], key));
    const results::StatusCounts counts = results::status_counts(data, c);
    row.insert(row.end(), {std::to_string(counts.ok), std::to_string(counts.diverged), std::to_string(counts.error),
                           std::to_string(counts.nonfinite + counts.other), configs[c].id});
    table_row(out, row);
  }
  out << "</tbody></table></div>\n";
}

// The claims stored with the experiment, evaluated as `verify FILE.h5` does; failed first.
void claims_section(std::ostream& out, const ReportInput& input, long seed) {
  out << "<h3>Claims</h3>\n";
  std::vector<claims::Verdict> verdicts;
  try {
    const auto list = claims::claims_for_stored_runs(parse_ini(input.data.layout.experiment_text, input.path),
                                                     input.path, {}, false);
    if (list.empty()) {
      out << "<p class=\"note\">The experiment states no claims.</p>\n";
      return;
    }
    if (input.reader) verdicts = claims::evaluate_claims(list, read_metrics(*input.reader, claims::claim_metrics(list)), seed);
    else verdicts = claims::evaluate_claims(list, input.data, seed);
  } catch (const ConfigError& e) {
    // The page still shows the rest; the reason is shown where the verdicts would be.
    out << "<p class=\"claims-error\">The claims could not be evaluated on this file:</p><pre>";
    for (const auto& p : e.problems()) out << html_escape(p) << "\n";
    out << "</pre>\n";
    return;
  }
  std::stable_partition(verdicts.begin(), verdicts.end(), [](const claims::Verdict& v) { return !v.pass; });
  const auto failed = std::count_if(verdicts.begin(), verdicts.end(), [](const auto& v) { return !v.pass; });
  out << "<p>" << (failed ? "FAILED: " : "OK: ") << verdicts.size() - std::size_t(failed) << "/" << verdicts.size()
      << " claims hold (bootstrap seed " << seed << ", as <code>ratelab verify FILE.h5 --seed " << seed
      << "</code>).</p>\n<table id=\"claims\">\n<thead>";
  table_row(out, {"verdict", "claim", "what", "measured", "bound"}, "th");
  out << "</thead><tbody>\n";
  for (const auto& v : verdicts)
    table_row(out, {v.pass ? "PASS" : "FAIL", v.name, v.what, v.measured, v.bound}, "td", v.pass ? "pass" : "fail");
  out << "</tbody></table>\n";
}

// "band_q0.1" -> "q0.1": plot's series name without its role.
std::string trim_band(const std::string& name) { return name.rfind("band_", 0) == 0 ? name.substr(5) : name; }

// The aggregate series of every metric and view, as plot draws them (center and band), in one JSON object.
std::string figure_json(const ReportInput& input) {
  const results::TraceData& data = input.data;
  PlotOptions plot;  // plot's defaults: median, band q0.1..q0.9, every view and configuration
  std::ostringstream json;
  std::vector<long> t;
  plot.xscale = "log";  // the page switches scales itself; log keeps t = 0 out, as the series' t
  std::string center = plot.curves.center, band_low, band_high;
  std::string metrics, series;
  for (std::size_t m = 0; m < data.layout.metrics.size(); ++m) {
    plot.curves.metric = data.layout.metrics[m];
    PlotData figure;
    try {
      figure = input.reader ? plot_data(plot, *input.reader) : plot_data(plot, data);
    } catch (const ConfigError&) {
      continue;  // a metric plot cannot draw (no finite values): the selector leaves it out
    }
    t = figure.t;
    metrics += std::string(metrics.empty() ? "" : ",") + "{\"name\":" + json_string(plot.curves.metric) +
               ",\"label\":" + json_string(metric_description(data, m)) + "}";
    series += std::string(series.empty() ? "" : ",") + json_string(plot.curves.metric) + ":{";
    // plot_data's curves of every panel, grouped by view (the page's view selector), in drawing order.
    // The page draws one panel, so what plot shows by panel (rows and columns) is told apart by dash type:
    // dash index = plot's dash index + (its dash values) x (the curve's panel), each curve its own style.
    std::size_t dash_values = 1;
    for (const auto& encoding : figure.encodings)
      if (encoding.channel == "dash") dash_values = encoding.values.size();
    for (std::size_t v = 0; v < data.layout.views.size(); ++v) {
      series += std::string(v ? "," : "") + json_string(data.layout.views[v]) + ":[";
      bool first = true;
      for (const PlotPanel& panel : figure.panels)
        for (const PlotCurve& curve : panel.curves) {
          if (curve.view != data.layout.views[v]) continue;
          std::string centre = "null", low = "null", high = "null";
          for (const auto& s : curve.series) {
            if (s.role == SeriesRole::center) centre = json_numbers(s.value);
            if (s.role == SeriesRole::band_low) low = json_numbers(s.value), band_low = s.name;
            if (s.role == SeriesRole::band_high) high = json_numbers(s.value), band_high = s.name;
          }
          const std::size_t dash =
              curve.dash + dash_values * (std::size_t(panel.row) * std::size_t(figure.columns) + panel.column);
          // [configuration, center, band low, band high, color index, dash index]
          series += std::string(first ? "" : ",") + "[" + std::to_string(curve.configuration) + "," + centre + "," +
                    low + "," + high + "," + std::to_string(curve.color) + "," + std::to_string(dash) + "]";
          first = false;
        }
      series += "]";
    }
    series += "}";
  }
  std::vector<std::string> views, labels, ts;
  for (const auto& v : data.layout.views) views.push_back(json_string(v));
  for (const auto& c : data.layout.configurations) labels.push_back(json_string(c.label));
  for (long step : t) ts.push_back(std::to_string(step));
  json << "{\"t\":[" << join(ts, ",") << "],\"views\":[" << join(views, ",") << "],\"metrics\":[" << metrics
       << "],\"labels\":[" << join(labels, ",") << "],\"center\":" << json_string(center)
       << ",\"band\":"
       << json_string(band_low.empty() ? "none" : trim_band(band_low) + "\u2013" + trim_band(band_high)) << ",\"series\":{" << series << "}}";
  return json.str();
}

// The runtime ECDF of each configuration (ratelab ecdf FILE --csv, its defaults: the metric of the summary,
// view last, 31 targets from 0.1 to 1e-8), as a sortable table: which configuration reaches how many
// (run, target) pairs by T, and the area under its ECDF as one score.
void ecdf_section(std::ostream& out, const ReportInput& input, const std::string& metric) {
  EcdfOptions ecdf_options;
  ecdf_options.metric = metric;
  ecdf_options.view = input.data.layout.views.front();
  ecdf_options.csv = true;
  std::ostringstream csv;
  out << "<h3>Fixed target: runtime ECDF</h3>\n";
  try {
    if (input.reader) ecdf(ecdf_options, {read_metrics(*input.reader, {metric})}, {input.path}, csv);
    else ecdf(ecdf_options, {input.data}, {input.path}, csv);
  } catch (const ConfigError& e) {
    out << "<p class=\"note\">No runtime ECDF: " << html_escape(e.what()) << "</p>\n";
    return;
  }
  const auto rows = parse_csv(csv.str());
  // The rule `ecdf` chose (--hits auto), from its table's hits column.
  const auto& header = rows.empty() ? std::vector<std::string>{} : rows.front();
  const auto hits_column = std::find(header.begin(), header.end(), "hits") - header.begin();
  const bool recorded = rows.size() > 1 && std::size_t(hits_column) < rows[1].size() &&
                        rows[1][std::size_t(hits_column)] == results::hit_source_name(results::HitSource::recorded);
  out << "<p class=\"note\">As <code>ratelab ecdf FILE --csv --metric " << html_escape(metric) << " --view "
      << html_escape(ecdf_options.view) << "</code>: for " << ecdf_options.count << " targets log-spaced from "
      << ecdf_options.from << " to " << ecdf_options.to << ", the fraction of (run, target) pairs whose metric "
      << "reached the target by T ("
      << (recorded ? "hits recorded in the run loop: a target counts as reached at the first step the run loop "
                     "evaluated with the metric below it"
                   : "a target counts as reached at the first stored checkpoint at or below it")
      << "; a failed run never reaches it) and the area under the ECDF over log t (1: all at once). "
      << "<code>ratelab ecdf FILE -o ecdf.png</code> draws the curves.</p>\n"
      << "<div class=\"scroll\"><table class=\"sortable\" id=\"ecdf\">\n<thead>";
  if (!rows.empty()) table_row(out, rows.front(), "th");
  out << "</thead><tbody>\n";
  for (std::size_t r = 1; r < rows.size(); ++r) table_row(out, rows[r], "td", "", true);
  out << "</tbody></table></div>\n";
}

void summary_section(std::ostream& out, const ReportInput& input, const ReportOptions& options) {
  SummaryOptions summary_options;
  const auto& metrics = input.data.layout.metrics;
  summary_options.curves.metric = !options.metric.empty() ? options.metric
                                  : std::find(metrics.begin(), metrics.end(), "subopt") != metrics.end() ? "subopt"
                                  : metrics.empty() ? "subopt" : metrics.front();
  summary_options.seed = options.seed;
  summary_options.csv = true;  // exact numbers: the page shows what `summary --csv` prints
  std::ostringstream csv;
  if (input.reader) summary(summary_options, *input.reader, csv);
  else summary(summary_options, input.data, csv);
  const auto rows = parse_csv(csv.str());
  out << "<h3>Summary</h3>\n<p class=\"note\">As <code>ratelab summary FILE --csv --metric " << html_escape(summary_options.curves.metric)
      << " --seed " << options.seed
      << "</code>: final values at t = T (a diverged or failed run counts as +inf, the runs each number rests on "
         "are counted), the log-log slope of the median over [T/10, T] with its "
         "95% percentile bootstrap interval, and the runs by status; 4 significant digits shown (the exact values: "
         "<code>summary --csv</code>). Click a column to sort.</p>\n"
      << "<div class=\"scroll\"><table class=\"sortable\" id=\"summary\" data-metric=\"" << html_escape(summary_options.curves.metric)
      << "\">\n<thead>";
  if (!rows.empty()) table_row(out, rows.front(), "th");
  out << "</thead><tbody>\n";
  for (std::size_t r = 1; r < rows.size(); ++r) table_row(out, rows[r], "td", "", true);
  out << "</tbody></table></div>\n";
  ecdf_section(out, input, summary_options.curves.metric);
}

void provenance_section(std::ostream& out, const ReportInput& input) {
  std::vector<std::pair<std::string, std::string>> rows{{"schema_version", std::to_string(input.data.schema_version)}};
  for (const auto& [key, value] : input.data.layout.root)
    if (key.rfind("experiment.", 0) != 0) rows.emplace_back(key, format_value(value));
  out << "<h3>Provenance</h3>\n";
  key_value_table(out, rows);
}

}  // namespace

std::string html_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string json_string(const std::string& text) {
  std::string out = "\"";
  for (std::size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    char buf[8];
    if (c == '"') out += "\\\"";
    else if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20 || c == '<' || c == '>' || c == '&') {  // < > &: nothing can close or open a tag in <script>
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else if (c == 0xE2 && i + 2 < text.size() && static_cast<unsigned char>(text[i + 1]) == 0x80 &&
               (static_cast<unsigned char>(text[i + 2]) == 0xA8 || static_cast<unsigned char>(text[i + 2]) == 0xA9)) {
      out += static_cast<unsigned char>(text[i + 2]) == 0xA8 ? "\\u2028" : "\\u2029";  // line separators
      i += 2;
    } else {
      out += char(c);
    }
  }
  return out + "\"";
}

ParamTable<ReportOptions> ReportOptions::params() {
  return {text_list(&ReportOptions::files, "files", "trace files (.h5); each gets its own section of the page"),
          param(&ReportOptions::output, "output", unconstrained(), "the HTML page to write"),
          param(&ReportOptions::metric, "metric", unconstrained(),
                "metric of the summary table; empty: subopt if the file has it (the figures switch between every metric)"),
          param(&ReportOptions::seed, "seed", nonnegative(), "bootstrap seed of the summary intervals and the claims")};
}

std::string report_html(const std::vector<ReportInput>& inputs, const ReportOptions& options) {
  if (inputs.empty()) throw ConfigError("no trace file given: ratelab report FILE.h5 [FILE.h5 ...] -o study.html");
  std::ostringstream out;
  std::vector<std::string> names;
  for (const auto& input : inputs) names.push_back(input.data.layout.experiment_name);
  out << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      << "<title>ratelab report: " << html_escape(join(names, ", ")) << "</title>\n<style>" << kStyle
      << "</style>\n</head>\n<body>\n"
      << "<div id=\"js-errors\" hidden></div>\n"
      << "<noscript><p>The figures are drawn by the page's script; the tables below need none.</p></noscript>\n";
  for (std::size_t f = 0; f < inputs.size(); ++f) {
    const ReportInput& input = inputs[f];
    if (!input.reader) results::check_trace_data(input.data);  // a reader checks each part it reads
    const std::string id = "file-" + std::to_string(f);
    out << "<section id=\"" << id << "\">\n<h1>" << html_escape(input.data.layout.experiment_name) << "</h1>\n";
    const std::string description = root_text(input.data, "experiment.description");
    if (!description.empty()) out << "<p class=\"description\">" << html_escape(description) << "</p>\n";
    out << "<h2>Experiment</h2>\n";
    experiment_section(out, input);
    varying_section(out, input.data);
    out << "<h2>Results</h2>\n";
    claims_section(out, input, options.seed);
    out << "<h3>Convergence</h3>\n<p class=\"note\">Hover a curve for its values; click a legend entry to hide or "
           "show it.</p>\n<div class=\"figure\" data-source=\"data-"
        << f << "\"></div>\n<script type=\"application/json\" id=\"data-" << f << "\">" << figure_json(input)
        << "</script>\n";
    summary_section(out, input, options);
    provenance_section(out, input);
    out << "</section>\n";
  }
  out << "<p class=\"note\">Written by ratelab report.</p>\n<script>" << kScript << "</script>\n</body>\n</html>\n";
  return out.str();
}

int report(const ReportOptions& options, std::ostream& log) {
  if (options.output.empty())
    throw ConfigError("no output given: ratelab report FILE.h5 -o study.html (the page to write)");
  // Each file's outline; its run data are read as each part of the page needs them.
  std::vector<std::unique_ptr<results::TraceReader>> readers;
  std::vector<ReportInput> inputs;
  for (const auto& path : options.files) {
    readers.push_back(std::make_unique<results::TraceReader>(path));
    inputs.push_back({path, readers.back()->outline(), readers.back().get()});
  }
  const std::string page = report_html(inputs, options);
  // Temporary file in the same directory, then rename: a reader sees the old page or the whole new one.
  const std::filesystem::path target(options.output);
  if (std::filesystem::is_directory(target))
    throw ConfigError("output " + options.output + " is a directory: give the page's file name, e.g. -o " +
                      (target / "report.html").string());
  const std::filesystem::path temporary = target.string() + ".partial." + std::to_string(::getpid());
  {
    std::ofstream file(temporary, std::ios::binary);
    file << page;
    file.close();
    if (!file) {
      std::error_code ignored;
      std::filesystem::remove(temporary, ignored);
      throw ConfigError("cannot write " + options.output + " (through " + temporary.string() +
                        "): check that the directory exists and is writable and the disk has space");
    }
  }
  std::filesystem::rename(temporary, target);
  log << "wrote " << options.output << " (" << page.size() / 1024 << " KiB, " << inputs.size() << " trace file"
      << (inputs.size() == 1 ? "" : "s") << ")\n";
  return 0;
}

}  // namespace ratelab::tools
