#include "tools/plot.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <limits>
#include <map>
#include <ostream>
#include <set>
#include <sstream>

#include "core/run.hpp"
#include "experiments/claims.hpp"
#include "results/trace_query.hpp"

extern char** environ;

namespace ratelab::tools {

using results::TraceData;
using results::check_trace_data;
using results::find_parameter;
using results::metric_column;
using results::parameter_keys;
using results::replicate_matrix;
using results::select_configurations;
using results::status_counts;
using results::StatusCounts;

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
const std::vector<std::string> kChannels{"color", "dash", "row", "col"};
}  // namespace

ParamTable<PlotOptions> PlotOptions::params() {
  return ParamTable<PlotOptions>{
      param(&PlotOptions::output, "output", unconstrained(), "figure file: .png, .svg, .pdf or .tex (LaTeX + .pdf)"),
      param(&PlotOptions::data, "data", unconstrained(), "also write the plotted numbers to this TSV file"),
      param(&PlotOptions::script, "script", unconstrained(), "also keep the gnuplot script (data inline) in this file"),
      param(&PlotOptions::band, "band", in_closed(0, 1), "two quantiles drawn as a band; empty: none"),
      param(&PlotOptions::deltas, "deltas", in_open(0, 1), "high-probability curves: (1 - delta) quantiles"),
      param(&PlotOptions::theory, "theory", unconstrained(), "overlay a line fitted to each curve (theory_model)"),
      param(&PlotOptions::theory_p, "theory_p", unconstrained(), "theory exponent p"),
      param(&PlotOptions::theory_k, "theory_k", unconstrained(), "theory log power k"),
      param(&PlotOptions::theory_at, "theory_at", nonnegative(), "t where c is anchored to each curve; 0: last"),
      param(&PlotOptions::theory_c, "theory_c", nonnegative(), "theory constant c (one line per panel); 0: fitted"),
      param(&PlotOptions::theory_model, "theory_model", one_of({"power", "slope", "contraction"}),
            "shape of the fitted overlay: power (c t^-p log(t)^k with the given p, anchored), slope (c t^s, s and c "
            "fitted to each curve by least squares of log center on log t over [fit_from, fit_to], as summary's "
            "slope) or contraction (C rho^t, least squares of log center on t over [fit_from, fit_to], as summary "
            "--fit contraction); slope and contraction name each curve's fitted rate in the legend"),
      param(&PlotOptions::fit_from, "fit_from", nonnegative(), "slope or contraction fit window start t; 0: T/10"),
      param(&PlotOptions::fit_to, "fit_to", nonnegative(), "slope or contraction fit window end t; 0: T"),
      param(&PlotOptions::theory_formula, "theory_formula", unconstrained(),
            "theory curve per configuration: a claims-language formula of its parameters and t"),
      param(&PlotOptions::theory_label, "theory_label", unconstrained(), "legend text of theory_formula"),
      param(&PlotOptions::color, "color", unconstrained(), "dimension shown by color: a parameter key or view"),
      param(&PlotOptions::dash, "dash", unconstrained(), "dimension shown by dash type: a parameter key or view"),
      param(&PlotOptions::row, "row", unconstrained(), "one row of panels per value of this parameter (or view)"),
      param(&PlotOptions::col, "col", unconstrained(), "one column of panels per value of this parameter (or view)"),
      param(&PlotOptions::share_y, "share_y", unconstrained(), "panels share one y range (false: each its own)"),
      param(&PlotOptions::x, "x", one_of({"step", "gradient_evaluations", "elapsed_seconds", "horizon"}),
            "x axis: step, gradient_evaluations (oracle samples) or elapsed_seconds; a recorded budget puts each "
            "curve at the median over its finished runs; horizon: the final value against T, one curve per series "
            "of configurations that differ only in experiment.steps (a horizon sweep)"),
      param(&PlotOptions::xscale, "xscale", one_of({"auto", "log", "linear"}),
            "x axis; auto: linear when the checkpoints are evenly spaced, else log"),
      param(&PlotOptions::yscale, "yscale", one_of({"log", "linear"}), "y axis"),
      param(&PlotOptions::size, "size", unconstrained(), "figure size W,H in in or cm (6in,4in); empty: derived"),
      param(&PlotOptions::font_size, "font_size", in_closed(4, 40), "font size in points (LaTeX: the document's)"),
      param(&PlotOptions::title, "title", unconstrained(), "figure title; empty: experiment and metric"),
      param(&PlotOptions::gnuplot, "gnuplot", unconstrained(), "gnuplot program")}
      .with(&PlotOptions::curves, CurveOptions::params());
}

namespace {

std::string extension_of(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char ch) { return char(std::tolower(ch)); });
  return ext;
}

// "6in,4in", "16cm,9cm", "6,4" (inches) -> inches; nullopt: malformed.
std::optional<std::pair<double, double>> parse_size(const std::string& text) {
  const auto comma = text.find(',');
  if (comma == std::string::npos) return std::nullopt;
  auto one = [](std::string part) -> std::optional<double> {
    part.erase(std::remove_if(part.begin(), part.end(), [](unsigned char ch) { return std::isspace(ch); }), part.end());
    double scale = 1.0;
    if (part.size() > 2 && part.substr(part.size() - 2) == "in") part.resize(part.size() - 2);
    else if (part.size() > 2 && part.substr(part.size() - 2) == "cm") part.resize(part.size() - 2), scale = 1 / 2.54;
    const auto v = parse_number(part);
    if (!v || !(*v > 0) || !std::isfinite(*v)) return std::nullopt;
    return *v * scale;
  };
  const auto w = one(text.substr(0, comma)), h = one(text.substr(comma + 1));
  if (!w || !h) return std::nullopt;
  return std::pair{*w, *h};
}

void check_plot_options(const PlotOptions& options) {
  std::vector<std::string> problems;
  if (!options.output.empty()) {
    const std::string ext = extension_of(options.output);
    if (ext != ".png" && ext != ".svg" && ext != ".pdf" && ext != ".tex")
      problems.push_back("output = '" + options.output + "' has extension '" + ext +
                         "'; the terminal is chosen by extension: .png, .svg, .pdf or .tex (LaTeX text + .pdf)");
  }
  if (!options.script.empty() && options.output.empty())
    problems.push_back("script = '" + options.script + "' draws into a figure: give output too (e.g. output=fig.pdf)");
  // What params() cannot declare: each entry's range (band, deltas) and theory_c >= 0 are its constraints.
  if (!options.band.empty() && options.band.size() != 2)
    problems.push_back("band needs two quantiles (low,high) or none; got " + std::to_string(options.band.size()));
  if (options.band.size() == 2 && !(options.band[0] < options.band[1]))
    problems.push_back("band = " + exact(options.band[0]) + "," + exact(options.band[1]) +
                       " violates 0 <= low < high <= 1");
  if (options.theory && !(std::isfinite(options.theory_p) && std::isfinite(options.theory_k)))
    problems.push_back("theory_p and theory_k must be finite");
  if (!options.size.empty() && !parse_size(options.size))
    problems.push_back("size = '" + options.size + "' is not W,H with positive numbers in in or cm (e.g. 6in,4in or 16cm,9cm)");
  for (const auto& path : {options.output, options.data, options.script}) {
    if (path.empty()) continue;
    const auto dir = std::filesystem::path(path).parent_path();
    if (!dir.empty() && !std::filesystem::is_directory(dir))
      problems.push_back("the directory of '" + path + "' does not exist: create " + dir.string() + " first");
  }
  for (const std::string* channel : {&options.color, &options.dash, &options.row, &options.col})
    for (const std::string* other : {&options.color, &options.dash, &options.row, &options.col})
      if (channel < other && !channel->empty() && *channel == *other)
        problems.push_back("'" + *channel + "' is given to two encodings (color, dash, row, col): give each one dimension");
  if (!problems.empty()) throw ConfigError(problems);
}

// t^(-p) log(t)^k, the shape of the theory line; NaN where it is not positive (log 1 = 0 with k != 0).
double theory_shape(double t, double p, double k) {
  if (k != 0.0 && !(t > 1.0)) return kNaN;
  const double v = std::pow(t, -p) * (k != 0.0 ? std::pow(std::log(t), k) : 1.0);
  return std::isfinite(v) && v > 0 ? v : kNaN;
}

std::string power_law_text(double p, double k) {
  std::string text = "t^-" + short_real(p);
  if (k != 0) text += " log(t)" + (k == 1 ? std::string() : "^" + short_real(k));
  return text;
}

// A step of a fit window as the legend shows it: whole steps in full ("10000", not "1e+04"), else 4 digits.
std::string step_text(double t) {
  return t == std::floor(t) && std::abs(t) < 1e15 ? std::to_string(std::int64_t(t)) : short_real(t);
}

bool is_component_key(const std::string& key) { return key == "problem" || key == "optimizer" || key == "schedule"; }

// Numbers as a reader wants them: %.3g, or as many digits as keep the given values apart (up to 17).
std::map<double, std::string> short_numbers(const std::vector<double>& values) {
  for (int digits = 3; digits <= 17; ++digits) {
    std::map<double, std::string> out;
    std::set<std::string> texts;
    for (double v : values) {
      char buf[40];
      // Whole numbers as they are (T = 1024, not 1.02e+03): rounding them names a value that was not run.
      if (v == std::round(v) && std::abs(v) < 1e15) std::snprintf(buf, sizeof buf, "%.0f", v);
      else std::snprintf(buf, sizeof buf, "%.*g", digits, v);
      out[v] = buf;
      texts.insert(buf);
    }
    if (texts.size() == out.size()) return out;
  }
  std::map<double, std::string> out;
  for (double v : values) out[v] = exact(v);
  return out;
}

// A dimension of the curves: one or several keys ("view" or parameter keys) and, per curve, its value.
struct Dimension {
  std::vector<std::string> keys;
  std::vector<std::size_t> index;       // per curve: the index of its value
  std::vector<std::string> values;      // shown text per value index (in drawing order)
  std::vector<std::string> pair_texts;  // "c=0.316": the value with its key(s), for curve keys and titles
  std::string name;
};

struct CurveRef {
  std::size_t configuration, view;
};

}  // namespace

namespace {

// plot_data of `data` (the whole file or its outline); configuration c's runs are runs_of(c), asked for in
// increasing c.
PlotData plot_data_of(const PlotOptions& options, const TraceData& data, const RunSource& runs_of) {
  check_plot_options(options);
  const std::size_t m = metric_column(data, options.curves.metric);
  const auto views = selected_views(data, options.curves.views);
  const auto configs = select_configurations(data, options.curves.where);
  const stats::Statistic center = center_statistic(options.curves.center);
  const auto& layout = data.layout;
  const results::Budget budget = results::parse_budget(options.x);
  const bool budget_axis = budget != results::Budget::step;
  if (budget_axis && (options.theory || !options.theory_formula.empty()))
    throw ConfigError({std::string(options.theory ? "theory (a power law c t^-p)" : "theory_formula = '" +
                                                        options.theory_formula + "'") +
                           " is a function of t and cannot be drawn against x = " + options.x,
                       "theory curves are functions of t: draw them with --x step (the default), or leave them out "
                       "(--theory=false, --theory-formula=; a preset's stored [plot] section may set them)"});

  PlotData plot;
  plot.metric = layout.metrics[m];
  plot.title = !options.title.empty() ? options.title : layout.experiment_name + ": " + plot.metric;
  // The axis holds the metric and its formula ("subopt: F(x) - F*"), not the whole description.
  plot.y_label = metric_description(data, m);
  if (const auto comma = plot.y_label.find(", "); comma != std::string::npos) {
    const auto unit = plot.y_label.rfind(" [");
    plot.y_label = plot.y_label.substr(0, comma) + (unit != std::string::npos && unit > comma ? plot.y_label.substr(unit) : "");
  }
  plot.y_log = options.yscale == "log";
  // x: linear when the checkpoints are evenly spaced (linear convergence is best seen that way), else log.
  std::vector<long> positive;
  for (long t : layout.checkpoints)
    if (t > 0) positive.push_back(t);
  bool even = positive.size() >= 3;
  for (std::size_t j = 2; even && j < positive.size(); ++j)
    even = std::abs((positive[j] - positive[j - 1]) - (positive[1] - positive[0])) <= 1;
  plot.x_log = options.xscale == "log" || (options.xscale == "auto" && !even);
  plot.x_label = budget_axis ? results::budget_label(budget) : "t (iterations)";
  std::vector<std::size_t> columns;  // the checkpoints drawn: a log axis has no t = 0
  for (std::size_t k = 0; k < layout.checkpoints.size(); ++k)
    if (!plot.x_log || layout.checkpoints[k] > 0) {
      columns.push_back(k);
      plot.t.push_back(layout.checkpoints[k]);
    }
  if (plot.t.empty()) throw ConfigError("the file has no checkpoint with t > 0: nothing to plot on a log x axis");

  // ---- the curves and their dimensions ----
  std::vector<CurveRef> refs;
  for (std::size_t c : configs)
    for (std::size_t v : views) refs.push_back({c, v});
  auto raw_value = [&](const CurveRef& ref, const std::string& key) -> std::string {
    if (key == "view") return layout.views[ref.view];
    const ParamValue* p = find_parameter(layout.configurations[ref.configuration], key);
    return p ? format_value(*p) : std::string();
  };
  std::vector<std::string> keys{"view"};
  for (const auto& key : parameter_keys(data))
    if (key != "stream_salt") keys.push_back(key);
  // Per key: the ordered distinct values (numeric keys sorted, others in file order) and each curve's rank.
  struct KeyValues {
    std::vector<std::string> values;
    std::vector<std::size_t> rank;  // per curve
    bool numeric = true;
  };
  std::map<std::string, KeyValues> per_key;
  for (const auto& key : keys) {
    KeyValues kv;
    for (const auto& ref : refs) {
      const std::string text = raw_value(ref, key);
      if (std::find(kv.values.begin(), kv.values.end(), text) == kv.values.end()) kv.values.push_back(text);
      // Unset (a component without this parameter) does not make a numeric key text: it sorts first.
      kv.numeric = kv.numeric && key != "view" && (text.empty() || parse_number(text).has_value());
    }
    if (kv.numeric)
      std::stable_sort(kv.values.begin(), kv.values.end(), [](const std::string& a, const std::string& b) {
        return !b.empty() && (a.empty() || *parse_number(a) < *parse_number(b));
      });
    for (const auto& ref : refs)
      kv.rank.push_back(std::size_t(std::find(kv.values.begin(), kv.values.end(), raw_value(ref, key)) - kv.values.begin()));
    per_key[key] = std::move(kv);
  }
  auto varies = [&](const std::string& key) { return per_key.at(key).values.size() > 1; };
  // Short names: "c" for schedule.c unless another varying key ends the same way.
  auto short_key = [&](const std::string& key) {
    const auto dot = key.find('.');
    if (dot == std::string::npos) return key;
    const std::string tail = key.substr(dot + 1);
    for (const auto& other : keys)
      if (other != key && varies(other) && other.size() > tail.size() && other.substr(other.find('.') + 1) == tail)
        return key;
    return tail;
  };
  std::map<std::string, std::map<double, std::string>> numbers;  // per numeric key: value -> short text
  for (const auto& key : keys) {
    if (!per_key.at(key).numeric) continue;
    std::vector<double> values;
    for (const auto& text : per_key.at(key).values)
      if (!text.empty()) values.push_back(*parse_number(text));
    numbers[key] = short_numbers(values);
  }
  auto shown = [&](const std::string& key, const std::string& raw) {
    if (raw.empty()) return std::string("none");  // a parameter these configurations do not have
    if (per_key.at(key).numeric) return numbers.at(key).at(*parse_number(raw));
    return raw;
  };
  // A dimension shows one or several keys: the first orders the values; a component's name comes first in
  // the text and its parameters follow as key=value ("heavy_ball beta=0.444 tuning=manual").
  auto make_dimension = [&](const std::vector<std::string>& dim_keys) {
    Dimension d;
    d.keys = dim_keys;
    std::vector<std::vector<std::size_t>> tuples;
    for (std::size_t i = 0; i < refs.size(); ++i) {
      std::vector<std::size_t> tuple;
      for (const auto& key : dim_keys) tuple.push_back(per_key.at(key).rank[i]);
      tuples.push_back(tuple);
    }
    std::vector<std::vector<std::size_t>> distinct = tuples;
    std::sort(distinct.begin(), distinct.end());
    distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
    for (const auto& tuple : tuples)
      d.index.push_back(std::size_t(std::lower_bound(distinct.begin(), distinct.end(), tuple) - distinct.begin()));
    // Order: the first component, its own parameters, the other components, the rest ("heavy_ball
    // tuning=polyak" reads better than "heavy_ball constant" when both tell the configurations apart).
    // Within each of these tiers a key set for every value comes before one that some values do not have
    // (heavy_tailed's `noise` before `noise_nu`, which Gaussian noise has not: its panel is titled
    // "noise=gaussian", not "noise_nu=none").
    std::vector<std::size_t> order;
    auto is_named = [](const std::string& key) { return is_component_key(key) || key == "view"; };
    auto unset_somewhere = [&](std::size_t j) {
      return std::any_of(distinct.begin(), distinct.end(),
                         [&](const auto& tuple) { return per_key.at(dim_keys[j]).values[tuple[j]].empty(); });
    };
    auto add_tier = [&](auto belongs) {
      const auto from = order.size();
      for (std::size_t j = 0; j < dim_keys.size(); ++j)
        if (belongs(j) && std::find(order.begin(), order.end(), j) == order.end()) order.push_back(j);
      std::stable_partition(order.begin() + std::ptrdiff_t(from), order.end(),
                            [&](std::size_t j) { return !unset_somewhere(j); });
    };
    for (std::size_t j = 0; j < dim_keys.size(); ++j)
      if (is_named(dim_keys[j])) {
        order.push_back(j);
        break;
      }
    const std::string own = order.empty() ? std::string() : dim_keys[order.front()] + ".";
    add_tier([&](std::size_t j) { return !own.empty() && dim_keys[j].rfind(own, 0) == 0; });
    add_tier([&](std::size_t j) { return is_named(dim_keys[j]); });
    add_tier([](std::size_t) { return true; });
    // Shown: only the keys needed to tell the values apart, in that order (heavy_ball's beta, fixed by the
    // optimizer, is not repeated; heavy_ball's tuning is, when two heavy_ball configurations differ by it).
    std::vector<std::size_t> shown_keys;
    std::size_t told_apart = 0;
    for (std::size_t j : order) {
      if (told_apart == distinct.size()) break;
      std::vector<std::size_t> with = shown_keys;
      with.push_back(j);
      std::set<std::vector<std::size_t>> projected;
      for (const auto& tuple : distinct) {
        std::vector<std::size_t> p;
        for (std::size_t k : with) p.push_back(tuple[k]);
        projected.insert(p);
      }
      if (projected.size() > told_apart) shown_keys = with, told_apart = projected.size();
    }
    d.name = short_key(dim_keys[shown_keys.front()]);
    for (const auto& tuple : distinct) {
      std::vector<std::string> bare, pairs;
      for (std::size_t j : shown_keys) {
        const std::string& key = dim_keys[j];
        const std::string raw = per_key.at(key).values[tuple[j]];
        if (raw.empty() && shown_keys.size() > 1) continue;  // a parameter this component does not have
        const std::string text = shown(key, raw);
        const bool plain = key == "view" || is_component_key(key);
        bare.push_back(plain || shown_keys.size() == 1 ? text : short_key(key) + "=" + text);
        // A panel of configurations without the parameter: "no block_rule" (sgd beside block heavy-ball).
        pairs.push_back(plain ? text : raw.empty() ? "no " + short_key(key) : short_key(key) + "=" + text);
      }
      d.values.push_back(bare.empty() ? std::string("none") : join(bare, " "));
      d.pair_texts.push_back(pairs.empty() ? std::string("none") : join(pairs, " "));
    }
    return d;
  };

  // Dimensions: a varying key whose value is fixed by another's (heavy_ball's beta by the optimizer, the
  // optimizer by heavy_ball's tuning when sgd is the third choice) is not a dimension of its own: it joins
  // the key that fixes it, so the legend never offers combinations that do not exist.
  std::vector<std::string> varying;
  for (const auto& key : keys)
    if (varies(key)) varying.push_back(key);
  auto determines = [&](const std::string& k, const std::string& j) {  // k's value fixes j's
    std::map<std::size_t, std::size_t> value_of;
    for (std::size_t i = 0; i < refs.size(); ++i)
      if (value_of.emplace(per_key.at(k).rank[i], per_key.at(j).rank[i]).first->second != per_key.at(j).rank[i])
        return false;
    return true;
  };
  std::stable_partition(varying.begin(), varying.end(), [](const std::string& k) { return is_component_key(k); });
  std::vector<std::vector<std::string>> groups;  // each: its root first, then the keys it fixes
  for (std::size_t a = 0; a < varying.size(); ++a) {
    bool root = true;
    for (std::size_t b = 0; b < varying.size() && root; ++b)
      if (a != b && determines(varying[b], varying[a]) && (!determines(varying[a], varying[b]) || b < a)) root = false;
    if (root) groups.push_back({varying[a]});
  }
  for (const auto& key : varying) {
    bool placed = false;
    for (auto& group : groups)
      if (group.front() == key) placed = true;
    for (auto& group : groups)
      if (!placed && determines(group.front(), key)) group.push_back(key), placed = true;
  }

  // The user's encodings take the group of the key they name (a key that does not vary is a group alone).
  std::map<std::string, std::vector<std::string>> assigned;  // channel -> keys
  std::vector<bool> used(groups.size(), false);
  const std::map<std::string, const std::string*> requested{
      {"color", &options.color}, {"dash", &options.dash}, {"row", &options.row}, {"col", &options.col}};
  for (const auto& channel : kChannels) {
    const std::string& key = *requested.at(channel);
    if (key.empty()) continue;
    if (std::find(keys.begin(), keys.end(), key) == keys.end())
      throw ConfigError(unknown_key_message(channel + " (a parameter key or view)", key, keys));
    std::vector<std::string> group{key};
    for (std::size_t g = 0; g < groups.size(); ++g) {
      if (std::find(groups[g].begin(), groups[g].end(), key) == groups[g].end()) continue;
      if (used[g])
        throw ConfigError(channel + " = " + key + " varies together with another encoding's key (" +
                          join(groups[g], ", ") + "): they are one dimension; give it one encoding");
      used[g] = true;
      group = groups[g];
      break;
    }
    assigned[channel] = group;
  }
  auto free_groups = [&] {
    std::vector<std::size_t> out;
    for (std::size_t g = 0; g < groups.size(); ++g)
      if (!used[g]) out.push_back(g);
    return out;
  };
  auto take = [&](const std::string& channel, std::size_t g) {
    used[g] = true;
    assigned[channel] = groups[g];
  };
  auto values_of = [&](std::size_t g) { return make_dimension(groups[g]).values.size(); };
  // Derived: views share a panel by dash type; the optimizer (else the largest dimension) takes color; the
  // smaller ones make columns then rows (up to 4 values each); whatever is left joins color.
  // (Views alone: color, which reads better than dash types.)
  for (std::size_t g : free_groups())
    if (groups[g].front() == "view" && !assigned.count("dash") && (free_groups().size() > 1 || assigned.count("color")))
      take("dash", g);
  if (!assigned.count("color")) {
    auto candidates = free_groups();
    if (!candidates.empty()) {
      std::size_t best = candidates.front();
      bool optimizer = false;
      for (std::size_t g : candidates) {
        const bool has = std::find(groups[g].begin(), groups[g].end(), "optimizer") != groups[g].end();
        if (has && !optimizer) best = g, optimizer = true;
        else if (!optimizer && values_of(g) > values_of(best)) best = g;
      }
      take("color", best);
    }
  }
  {
    auto rest = free_groups();
    std::stable_sort(rest.begin(), rest.end(), [&](std::size_t a, std::size_t b) { return values_of(a) < values_of(b); });
    for (std::size_t g : rest) {
      const std::size_t n = values_of(g);
      if (!assigned.count("col") && n <= 4) take("col", g);
      else if (!assigned.count("row") && n <= 4) take("row", g);
      else if (!assigned.count("dash") && n <= 6) take("dash", g);
      else {
        auto& color = assigned["color"];
        color.insert(color.end(), groups[g].begin(), groups[g].end());
        used[g] = true;
      }
    }
  }
  std::map<std::string, Dimension> dims;
  for (const auto& channel : kChannels)
    if (assigned.count(channel)) {
      dims.emplace(channel, make_dimension(assigned.at(channel)));
      const Dimension& d = dims.at(channel);
      plot.encodings.push_back({channel, d.name, d.keys, d.values});
    }
  auto index_in = [&](const std::string& channel, std::size_t curve) -> std::size_t {
    return dims.count(channel) ? dims.at(channel).index[curve] : 0;
  };
  plot.rows = dims.count("row") ? long(dims.at("row").values.size()) : 1;
  plot.columns = dims.count("col") ? long(dims.at("col").values.size()) : 1;

  // ---- the numbers ----
  auto make_series = [&](const stats::ReplicateMatrix& runs, stats::Statistic statistic, SeriesRole role,
                         std::string name) {
    const stats::ReplicateCurve curve = stats::replicate_curve(runs, statistic);
    PlotSeries series{role, std::move(name), {}, {}};
    for (std::size_t k : columns) {
      series.value.push_back(curve.value[k]);
      series.used.push_back(curve.used[k]);
    }
    return series;
  };
  std::size_t anchor = plot.t.size() - 1;
  if (options.theory_at > 0)
    for (std::size_t j = 0; j < plot.t.size(); ++j)
      if (plot.t[j] > 0 && std::abs(std::log(double(plot.t[j]) / options.theory_at)) <
                               std::abs(std::log(double(plot.t[anchor]) / options.theory_at)))
        anchor = j;
  // Overlays fitted over a window, each curve's rate named in the legend: a contraction C rho^t, or a power
  // law c t^s with s fitted (theory_model = slope; power keeps the given p and anchors c).
  const bool contraction = options.theory && options.theory_model == "contraction";
  const bool slope_fit = options.theory && options.theory_model == "slope";
  const bool window_fit = contraction || slope_fit;
  if (window_fit && options.theory_c > 0)
    throw ConfigError("theory_c = " + exact(options.theory_c) + " is a power law's given constant; theory_model = " +
                      options.theory_model + (contraction ? " fits C and rho" : " fits c and s") +
                      " to each curve: leave theory_c at 0");
  std::optional<stats::FitWindow> legend_window;  // the window fits' window, while every curve has the same
  bool windows_differ = false;                      // (horizons swept: each configuration's [T/10, T])
  const bool fitted = options.theory && options.theory_c == 0 && !window_fit;
  if (fitted && !std::isfinite(theory_shape(double(plot.t[anchor]), options.theory_p, options.theory_k)))
    throw ConfigError("theory_at = " + exact(double(plot.t[anchor])) +
                      " cannot anchor c t^(-p) log(t)^k: log(t)^k vanishes there; choose theory_at > 1");

  std::optional<claims::Formula> formula;
  if (!options.theory_formula.empty()) formula = claims::Formula::parse(options.theory_formula, "theory_formula");
  std::set<std::pair<std::size_t, std::size_t>> with_theory;  // (panel, configuration): one theory curve each
  std::map<std::pair<std::size_t, std::size_t>, std::size_t> panel_of;  // (row, col) -> index in plot.panels
  for (std::size_t i = 0; i < refs.size(); ++i) {
    const auto [c, v] = refs[i];
    const auto key = std::pair{index_in("row", i), index_in("col", i)};
    if (!panel_of.count(key)) {
      panel_of[key] = plot.panels.size();
      PlotPanel panel;
      panel.row = key.first;
      panel.column = key.second;
      std::vector<std::string> title;
      if (dims.count("row")) title.push_back(dims.at("row").pair_texts[key.first]);
      if (dims.count("col")) title.push_back(dims.at("col").pair_texts[key.second]);
      panel.title = join(title, ", ");
      plot.panels.push_back(std::move(panel));
    }
    PlotPanel& panel = plot.panels[panel_of.at(key)];
    const auto& config = layout.configurations[c];
    const auto [runs_data, index] = runs_of(c);
    const StatusCounts counts = status_counts(runs_data, index);
    PlotCurve curve{c, layout.views[v], config.label, "", layout.replicates, counts.diverged, counts.error,
                    index_in("color", i), index_in("dash", i), {}, 0};
    std::vector<std::string> key_parts;
    for (const auto& channel : {"color", "dash"})
      if (dims.count(channel)) key_parts.push_back(dims.at(channel).pair_texts[index_in(channel, i)]);
    curve.key = join(key_parts, ", ");
    const stats::ReplicateMatrix runs =
        replicate_matrix(runs_data, metric_column(runs_data, options.curves.metric), index, v);
    if (budget_axis) {
      // The median over the finished runs: a run that stopped early (diverged, interrupted) tells what its
      // checkpoints cost while it ran, but would pull the median towards a shorter run at each checkpoint.
      stats::ReplicateMatrix spent = results::budget_matrix(runs_data, index, budget);
      for (Eigen::Index r = 0; r < spent.rows(); ++r)
        if (runs_data.status[results::run_index(runs_data, index, std::size_t(r))] != RunStatus::ok)
          spent.row(r).setConstant(kNaN);
      const stats::ReplicateCurve median = stats::replicate_curve(spent, stats::Statistic::median());
      for (std::size_t k : columns) curve.x.push_back(median.used[k] > 0 ? median.value[k] : kNaN);
      if (std::none_of(curve.x.begin(), curve.x.end(), [](double x) { return std::isfinite(x); }))
        plot.warnings.push_back("plot: '" + config.label + "' has no finished run with " + options.x +
                                " recorded: it has no position on this x axis and is not drawn");
    }
    curve.series.push_back(make_series(runs, center, SeriesRole::center, options.curves.center));
    if (options.band.size() == 2) {
      curve.series.push_back(make_series(runs, stats::Statistic::quantile(options.band[0]), SeriesRole::band_low,
                                         "band_q" + exact(options.band[0])));
      curve.series.push_back(make_series(runs, stats::Statistic::quantile(options.band[1]), SeriesRole::band_high,
                                         "band_q" + exact(options.band[1])));
    }
    for (double delta : options.deltas)
      curve.series.push_back(make_series(runs, stats::Statistic::quantile(1.0 - delta), SeriesRole::high_probability,
                                         "q" + exact(1.0 - delta)));
    if (fitted) {
      const double value = curve.series.front().value[anchor];
      if (std::isfinite(value) && value > 0) {
        curve.fitted_c = value / theory_shape(double(plot.t[anchor]), options.theory_p, options.theory_k);
        PlotSeries line{SeriesRole::theory, "fitted", {}, {}};
        for (long t : plot.t)
          line.value.push_back(curve.fitted_c * theory_shape(double(t), options.theory_p, options.theory_k));
        curve.series.push_back(std::move(line));
      } else {
        plot.warnings.push_back("plot: no power law fitted to '" + config.label + "' (view " + curve.view + "): its " +
                                options.curves.center + " at t = " + std::to_string(plot.t[anchor]) + " is " +
                                exact(value) + "; choose another theory_at");
      }
    }
    if (window_fit) {
      // The line summary reports: log(center) on t (contraction) or on log t (slope) over the window, all
      // checkpoints.
      const stats::FitWindow window = fit_window(data, options.fit_from, options.fit_to, c);
      if (!legend_window) legend_window = window;
      windows_differ = windows_differ || legend_window->t_min != window.t_min || legend_window->t_max != window.t_max;
      const stats::ReplicateCurve whole = stats::replicate_curve(runs, center);
      const stats::LineFit line_fit = contraction ? stats::fit_log_linear(layout.checkpoints, whole.value, window)
                                                  : stats::fit_loglog(layout.checkpoints, whole.value, window);
      if (line_fit.points >= 2 && std::isfinite(line_fit.slope)) {
        if (contraction) curve.fitted_rho = std::exp(line_fit.slope);
        else curve.fitted_slope = line_fit.slope;
        PlotSeries line{SeriesRole::theory, "fitted", {}, {}};
        for (long t : plot.t)
          line.value.push_back(double(t) >= window.t_min && double(t) <= window.t_max
                                   ? std::exp(line_fit.intercept + line_fit.slope * (contraction ? double(t) : std::log(double(t))))
                                   : kNaN);
        curve.series.push_back(std::move(line));
      } else {
        plot.warnings.push_back("plot: no " + options.theory_model + " fitted to '" + config.label + "' (view " + curve.view + "): " +
                                std::to_string(line_fit.points) + " checkpoint(s) with a positive " +
                                options.curves.center + " in t = [" + exact(window.t_min) + ", " +
                                exact(window.t_max) + "]; widen fit_from, fit_to");
      }
    }
    if (formula && with_theory.insert({panel_of.at(key), c}).second) {  // the same for every view: drawn once
      PlotSeries line{SeriesRole::theory, "theory", {}, {}};
      for (long t : plot.t) line.value.push_back(claims::evaluate(*formula, data, c, double(t)));
      curve.series.push_back(std::move(line));
    }
    panel.curves.push_back(std::move(curve));
  }
  if (options.theory && options.theory_c > 0)
    for (auto& panel : plot.panels) {
      PlotSeries line{SeriesRole::theory, "theory", {}, {}};
      for (long t : plot.t) line.value.push_back(options.theory_c * theory_shape(double(t), options.theory_p, options.theory_k));
      panel.theory.push_back(std::move(line));
    }

  // ---- y range, and what a log axis cannot show ----
  double lo = std::numeric_limits<double>::infinity(), hi = -lo, lowest_positive = lo;
  bool finite = false;
  for (const auto& panel : plot.panels)
    for (const auto& curve : panel.curves)
      for (const auto& series : curve.series)
        for (double v : series.value) {
          if (!std::isfinite(v)) continue;
          finite = true;
          lo = std::min(lo, v);
          hi = std::max(hi, v);
          if (v > 0) lowest_positive = std::min(lowest_positive, v);
        }
  if (!finite) throw ConfigError("metric " + plot.metric + " has no finite value in the selected curves: nothing to draw");
  if (plot.y_log && !std::isfinite(lowest_positive))
    throw ConfigError("metric " + plot.metric + " has no positive value in the selected curves: nothing to draw on a "
                      "log y axis; use yscale = linear");
  if (plot.y_log && lo <= 0) {
    plot.floor = lowest_positive / 4;
    for (auto& panel : plot.panels)
      for (const auto& curve : panel.curves) {
        long center_hits = 0, other_hits = 0;
        for (const auto& series : curve.series)
          for (double v : series.value)
            if (std::isfinite(v) && v <= 0) (series.role == SeriesRole::center ? center_hits : other_hits)++;
        if (center_hits + other_hits == 0) continue;
        panel.clipped = true;
        std::string what = center_hits ? "its " + options.curves.center + " is <= 0 at " + std::to_string(center_hits) +
                                             " of " + std::to_string(plot.t.size()) + " checkpoints"
                                       : std::string();
        if (other_hits)
          what += std::string(center_hits ? ", and " : "") + std::to_string(other_hits) + " band or quantile values are <= 0";
        plot.warnings.push_back("plot: " + plot.metric + " of '" + curve.label + "' (view " + curve.view + "): " + what +
                                "; a log y axis cannot show them: drawn at the floor " + short_real(plot.floor) +
                                " (marked) in the figure; yscale = linear draws them as they are");
      }
  }
  if (options.share_y) {
    plot.y_min = plot.y_log ? (plot.floor > 0 ? plot.floor : lo) : lo;
    plot.y_max = hi;
  }

  // ---- the legend: each encoded value once, then what the lines and band are ----
  using Kind = LegendEntry::Kind;
  const std::string center_name = options.curves.center;
  if (layout.replicates == 1) {
    plot.caption = "one run per configuration";
  } else if (options.band.size() == 2) {
    auto percent = [](double q) { return short_real(100 * q); };
    plot.caption = center_name + ", band " + percent(options.band[0]) + "-" + percent(options.band[1]) + "% over " +
                   std::to_string(layout.replicates) + " runs";
  } else {
    plot.caption = center_name + " over " + std::to_string(layout.replicates) + " runs";
  }
  plot.legend.push_back({Kind::heading, plot.caption, 0});
  for (const auto& channel : {"color", "dash"}) {
    if (!dims.count(channel)) continue;
    const Dimension& d = dims.at(channel);
    plot.legend.push_back({Kind::heading, d.name + ":", 0});
    for (std::size_t i = 0; i < d.values.size(); ++i)
      plot.legend.push_back({std::string(channel) == "color" ? Kind::color : Kind::dash, d.values[i], i});
  }
  for (double delta : options.deltas)
    plot.legend.push_back({Kind::high_probability, "q" + exact(1.0 - delta) + " curve (" + short_real(100 * (1 - delta)) +
                                                       "% of runs below)", 0});
  if (fitted)
    plot.legend.push_back({Kind::fitted, "fitted c " + power_law_text(options.theory_p, options.theory_k) + " (each curve)", 0});
  if (window_fit) {
    const std::string shape = contraction ? "C rho^t" : "c t^s";
    plot.legend.push_back({Kind::fitted, windows_differ || !legend_window
                                             ? "fitted " + shape + ", t in each curve's [T/10, T] window"
                                             : "fitted " + shape + ", t in [" + step_text(legend_window->t_min) + ", " +
                                                   step_text(legend_window->t_max) + "] (each curve)", 0});
    // Each curve's rate, named by what the legend already calls it: the number the figure is drawn for.
    const std::string rate = contraction ? "rho" : "s";
    std::vector<std::string> rates;
    for (const auto& panel : plot.panels)
      for (const auto& curve : panel.curves)
        if (contraction ? curve.fitted_rho > 0 : std::isfinite(curve.fitted_slope)) {
          std::string who = curve.key;
          if (!panel.title.empty()) who = panel.title + (who.empty() ? "" : ", " + who);
          // Six digits for rho: a slow contraction's rho is 0.99..., where four would print 0.9999 for all of
          // them; three for an exponent, as summary prints slopes to compare with a theorem's -1/2 or -1.
          char value[32];
          if (contraction) std::snprintf(value, sizeof value, "%.6g", curve.fitted_rho);
          else std::snprintf(value, sizeof value, "%.3g", curve.fitted_slope);
          rates.push_back(who.empty() ? rate + " = " + std::string(value) : "  " + who + ": " + value);
        }
    constexpr std::size_t kMostNamed = 8;  // beyond this the legend would outgrow the figure: --data has them
    const bool unnamed = rates.size() == 1 && rates.front().starts_with(rate + " =");
    if (!unnamed && rates.size() <= kMostNamed)
      plot.legend.push_back({Kind::note, contraction ? "fitted rho per step:" : "fitted exponent s:", 0});
    if (rates.size() <= kMostNamed)
      for (const auto& text : rates) plot.legend.push_back({Kind::note, text, 0});
    else
      plot.legend.push_back({Kind::note, std::to_string(rates.size()) + " fitted " + rate + ": see --data", 0});
  }
  if (formula) plot.legend.push_back({Kind::theory, options.theory_label, 0});
  if (options.theory && options.theory_c > 0)
    plot.legend.push_back({Kind::theory, "theory " + short_real(options.theory_c) + " " +
                                             power_law_text(options.theory_p, options.theory_k), 0});
  if (plot.floor > 0) plot.legend.push_back({Kind::floor, "value <= 0 (at the floor)", 0});
  std::set<std::size_t> noted;
  for (const auto& panel : plot.panels)
    for (const auto& curve : panel.curves) {
      if ((curve.diverged == 0 && curve.errors == 0) || !noted.insert(curve.configuration).second) continue;
      std::vector<std::string> notes;
      if (curve.diverged > 0)
        notes.push_back(std::to_string(curve.diverged) + "/" + std::to_string(curve.replicates) + " diverged");
      if (curve.errors > 0) notes.push_back(std::to_string(curve.errors) + "/" + std::to_string(curve.replicates) + " failed");
      plot.legend.push_back({Kind::note, curve.label + " (" + join(notes, ", ") + ")", 0});
    }
  // A curve with exactly the values of one drawn after it in its panel is hidden under it: say so, or the
  // reader counts one curve less than the legend lists (heavy_ball_lessard: Polyak's tuning and the same
  // constants given by hand draw one line).
  std::set<std::string> said;
  for (const auto& panel : plot.panels)
    for (std::size_t i = 0; i < panel.curves.size(); ++i)
      for (std::size_t j = panel.curves.size(); j-- > i + 1;) {
        const auto equal = [](const std::vector<double>& a, const std::vector<double>& b) {
          return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                            [](double u, double v) { return u == v || (std::isnan(u) && std::isnan(v)); });
        };
        const bool same = equal(panel.curves[i].series.front().value, panel.curves[j].series.front().value) &&
                          equal(panel.curves[i].x, panel.curves[j].x);
        if (!same) continue;
        // Two lines, each about as wide as the entries above, so the legend does not widen the figure.
        const std::string text = panel.curves[i].key + ": hidden under";
        if (said.insert(text).second) {
          plot.legend.push_back({Kind::note, text, 0});
          plot.legend.push_back({Kind::note, "  " + panel.curves[j].key + " (same values)", 0});
        }
        break;
      }
  return plot;
}

}  // namespace

namespace {
// x = horizon: the figure of results::final_values_against_horizon, a trace whose steps are the horizons.
PlotData horizon_plot_data(PlotOptions options, const TraceData& data) {
  const TraceData finals = results::final_values_against_horizon(data, options.curves.metric);
  check_trace_data(finals);
  options.x = "step";
  PlotData plot = plot_data_of(options, finals, [&](std::size_t c) { return RunsOf{finals, c}; });
  plot.x_label = "horizon T (each run's steps)";
  if (options.title.empty()) plot.title += " at t = T";
  return plot;
}
}  // namespace

PlotData plot_data(const PlotOptions& options, const TraceData& data) {
  check_trace_data(data);
  if (options.x == "horizon") return horizon_plot_data(options, data);
  return plot_data_of(options, data, [&](std::size_t c) { return RunsOf{data, c}; });
}

PlotData plot_data(const PlotOptions& options, const results::TraceReader& reader, std::size_t window_bytes) {
  const TraceData& outline = reader.outline();
  metric_column(outline, options.curves.metric);  // an unknown metric is named before anything is read
  // The final values are one column of each configuration: the metric's run data whole.
  if (options.x == "horizon") return horizon_plot_data(options, read_metrics(reader, {options.curves.metric}));
  // One metric's run data, a window of configurations at a time (the curves go configuration by configuration).
  WindowedRuns windows(reader, window_bytes, {options.curves.metric});
  return plot_data_of(options, outline, std::ref(windows));
}

void write_plot_tsv(const PlotData& plot, std::ostream& out) {
  out << "panel\trow\tcol\tview\tconfiguration\tlabel\tcolor\tdash\tseries\tt\tvalue\treplicates_used\tx\n";
  auto value_of = [&](const std::string& channel, std::size_t index) {
    for (const auto& e : plot.encodings)
      if (e.channel == channel) return e.values[index];
    return std::string();
  };
  for (std::size_t p = 0; p < plot.panels.size(); ++p) {
    const PlotPanel& panel = plot.panels[p];
    const std::string where = std::to_string(p) + '\t' + value_of("row", panel.row) + '\t' + value_of("col", panel.column);
    auto rows = [&](const std::string& head, const PlotSeries& series, const std::vector<double>& curve_x) {
      for (std::size_t j = 0; j < plot.t.size(); ++j) {
        const double x = !curve_x.empty() ? curve_x[j] : !plot.x.empty() ? plot.x[j] : double(plot.t[j]);
        out << where << '\t' << head << '\t' << series.name << '\t' << plot.t[j] << '\t' << exact(series.value[j]) << '\t'
            << (series.used.empty() ? std::string() : std::to_string(series.used[j])) << '\t' << exact(x) << '\n';
      }
    };
    for (const auto& curve : panel.curves)
      for (const auto& series : curve.series)
        rows(curve.view + '\t' + std::to_string(curve.configuration) + '\t' + curve.label + '\t' +
                 value_of("color", curve.color) + '\t' + value_of("dash", curve.dash),
             series, curve.x);
    for (const auto& series : panel.theory) rows("\t\ttheory\t\t", series, {});
  }
}

namespace {

// A gnuplot single-quoted string: only the quote itself needs escaping, by doubling.
std::string gp_string(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

// Text LaTeX sets as it reads (cairolatex hands every string to the document).
std::string latex_text(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '_': case '%': case '&': case '#': case '$': case '{': case '}': out += std::string("\\") + c; break;
      case '^': out += "\\^{}"; break;
      case '~': out += "\\~{}"; break;
      case '\\': out += "\\textbackslash{}"; break;
      case '<': out += "$<$"; break;
      case '>': out += "$>$"; break;
      default: out += c;
    }
  }
  return out;
}

std::string gp_number(double v) { return std::isfinite(v) ? exact(v) : "NaN"; }

// Okabe & Ito's palette (yellow aside: unreadable on white), distinguishable under the common color-vision
// deficiencies, then Tol's muted colors; black is the theory's.
const std::vector<std::string> kColors{"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9",
                                       "#882255", "#44AA99", "#999933", "#332288", "#AA4499", "#661100"};
const std::vector<std::string> kDashes{"1", "(7,4)", "(1.5,3)", "(8,3,1.5,3)", "(12,4,1.5,4,1.5,4)", "(3,3)"};

std::string color_of(std::size_t i) { return "lc rgb '" + kColors[i % kColors.size()] + "'"; }
std::string dash_of(std::size_t i) { return "dt " + kDashes[i % kDashes.size()]; }

std::string find_program(const std::string& program) {
  if (program.find('/') != std::string::npos) return access(program.c_str(), X_OK) == 0 ? program : "";
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + program;
    if (access(candidate.c_str(), X_OK) == 0 && !std::filesystem::is_directory(candidate)) return candidate;
  }
  return "";
}

// Runs `program script`, its stdout and stderr into `log`; returns the exit status (-1: did not start).
int run_program(const std::string& program, const std::string& script, const std::string& log) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  std::vector<char*> argv{const_cast<char*>(program.c_str()), const_cast<char*>(script.c_str()), nullptr};
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) return -1;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}


}  // namespace

std::string gnuplot_script(const PlotData& plot, const PlotOptions& options) {
  std::ostringstream s;
  const std::string ext = extension_of(options.output);
  const bool latex = ext == ".tex";
  auto text = [&](const std::string& t) { return gp_string(latex ? latex_text(t) : t); };
  const std::string plain = latex ? "" : " noenhanced";

  // ---- layout, in inches: panels, and the legend in a column of its own on the right ----
  const double em = options.font_size / 72.0;  // one em in inches
  std::size_t legend_chars = 0;
  for (const auto& entry : plot.legend) legend_chars = std::max(legend_chars, entry.text.size());
  const double legend_w = 0.6 * em * double(legend_chars) + 4.5 * em;
  const double legend_h = 1.35 * em * double(plot.legend.size() + 1);
  const double left = 5.2 * em + 0.1, right = 0.15, bottom = 3.4 * em + 0.1;
  const double top = 2.6 * em + (plot.panels.size() > 1 || !plot.panels.front().title.empty() ? 1.8 * em : 0.0) + 0.05;
  const double gap_x = 4.4 * em + 0.1, gap_y = 3.6 * em + 0.1;
  const double cols = double(plot.columns), rows = double(plot.rows);
  double panel_w = 3.4, panel_h = 2.5, width = 0, height = 0;
  if (const auto size = parse_size(options.size)) {
    width = size->first;
    height = size->second;
    panel_w = (width - left - right - legend_w - (cols - 1) * gap_x) / cols;
    panel_h = (height - top - bottom - (rows - 1) * gap_y) / rows;
    if (panel_w < 0.8 || panel_h < 0.6)
      throw ConfigError("size = " + options.size + " leaves " + short_real(panel_w) + " x " + short_real(panel_h) +
                        " in per panel for " + std::to_string(plot.rows) + " x " + std::to_string(plot.columns) +
                        " panels and the legend: give a larger size or a smaller font_size");
  } else {
    width = left + cols * panel_w + (cols - 1) * gap_x + legend_w + right;
    height = std::max(top + rows * panel_h + (rows - 1) * gap_y + bottom, top + legend_h + bottom);
    panel_h = (height - top - bottom - (rows - 1) * gap_y) / rows;
  }

  const double dpi = ext == ".png" ? 150.0 : 96.0;
  // Cairo's pixel terminals set fonts in points at 96 pixels per inch, lines in pixels.
  const double font_px = dpi / 96.0, px = dpi / 72.0;
  char font[64];
  std::snprintf(font, sizeof font, "'Sans,%.3g'", options.font_size * (ext == ".png" || ext == ".svg" ? font_px : 1.0));
  if (ext == ".png")
    s << "set terminal pngcairo size " << long(width * dpi) << "," << long(height * dpi) << " enhanced font " << font
      << " linewidth " << short_real(px) << " rounded\n";
  else if (ext == ".svg")
    s << "set terminal svg size " << long(width * dpi) << "," << long(height * dpi) << " dynamic enhanced font " << font
      << " linewidth " << short_real(px) << " rounded background '#ffffff'\n";
  else if (ext == ".pdf")
    s << "set terminal pdfcairo size " << short_real(width) << "in," << short_real(height) << "in enhanced font " << font
      << " linewidth 1 rounded\n";
  else
    s << "set terminal cairolatex pdf input size " << short_real(width) << "in," << short_real(height)
      << "in linewidth 1 rounded\n";
  s << "set output " << gp_string(options.output) << "\n";

  auto x_text = [&](std::size_t j) { return plot.x.empty() ? std::to_string(plot.t[j]) : gp_number(plot.x[j]); };
  // Data first, as inline datablocks: one self-contained script (the `script` option keeps it).
  // Columns: t, each series (on a log y axis, values <= 0 at the floor), then the floor markers.
  const double floor = plot.floor;
  for (std::size_t p = 0; p < plot.panels.size(); ++p) {
    const PlotPanel& panel = plot.panels[p];
    for (std::size_t c = 0; c < panel.curves.size(); ++c) {
      s << "$p" << p << "c" << c << " << EOD\n";
      const auto& series = panel.curves[c].series;
      const auto& curve_x = panel.curves[c].x;
      for (std::size_t j = 0; j < plot.t.size(); ++j) {
        s << (curve_x.empty() ? x_text(j) : gp_number(curve_x[j]));
        for (const auto& one : series) {
          const double v = one.value[j];
          s << ' ' << gp_number(floor > 0 && v <= 0 ? floor : v);
        }
        const double v = series.front().value[j];
        s << ' ' << (floor > 0 && v <= 0 ? gp_number(floor) : "NaN") << '\n';
      }
      s << "EOD\n";
    }
    if (!panel.theory.empty()) {
      s << "$p" << p << "theory << EOD\n";
      for (std::size_t j = 0; j < plot.t.size(); ++j) s << x_text(j) << ' ' << gp_number(panel.theory[0].value[j]) << '\n';
      s << "EOD\n";
    }
  }

  const std::string log_format = latex ? "'$10^{%L}$'" : "'10^{%L}'";
  if (plot.x_log) s << "set logscale x\nset format x " << log_format << "\n";
  if (plot.y_log) s << "set logscale y\nset format y " << log_format << "\n";
  s << "set grid xtics ytics lc rgb '#e0e0e0' lw 0.5 dt 1\n"
       "set border lw 0.8\n"
       "set tics scale 0.6\n";
  if (plot.y_max > 0 || plot.y_min != 0 || plot.y_max != 0) {
    double lo = plot.y_min, hi = plot.y_max;
    if (plot.y_log) lo /= 1.6, hi *= 1.6;
    else {
      const double pad = 0.04 * (hi - lo > 0 ? hi - lo : std::max(1.0, std::abs(hi)));
      lo -= pad, hi += pad;
    }
    s << "set yrange [" << gp_number(lo) << ":" << gp_number(hi) << "]\n";
  }
  // The x range: the checkpoints, or with per-curve budgets (plot --x) every curve's drawable positions.
  double x_lo = std::numeric_limits<double>::infinity(), x_hi = -x_lo;
  for (const auto& panel : plot.panels)
    for (const auto& curve : panel.curves)
      for (double v : curve.x)
        if (std::isfinite(v) && (!plot.x_log || v > 0)) x_lo = std::min(x_lo, v), x_hi = std::max(x_hi, v);
  bool per_curve_x = false;
  for (const auto& panel : plot.panels)
    for (const auto& curve : panel.curves) per_curve_x = per_curve_x || !curve.x.empty();
  if (!per_curve_x) s << "set xrange [" << x_text(0) << ":" << x_text(plot.t.size() - 1) << "]\n";
  else if (x_lo < x_hi) s << "set xrange [" << gp_number(x_lo) << ":" << gp_number(x_hi) << "]\n";
  s << "set multiplot title " << text(plot.title) << plain << "\n";

  auto screen_x = [&](double inches) { return short_real(inches / width); };
  auto screen_y = [&](double inches) { return short_real(1.0 - inches / height); };  // from the top
  using Kind = LegendEntry::Kind;
  for (std::size_t p = 0; p < plot.panels.size(); ++p) {
    const PlotPanel& panel = plot.panels[p];
    const double x0 = left + double(panel.column) * (panel_w + gap_x);
    const double y0 = top + double(panel.row) * (panel_h + gap_y);
    s << "set lmargin at screen " << screen_x(x0) << "; set rmargin at screen " << screen_x(x0 + panel_w) << "\n"
      << "set tmargin at screen " << screen_y(y0) << "; set bmargin at screen " << screen_y(y0 + panel_h) << "\n";
    s << "set title " << text(panel.title) << plain << "\n";
    s << "set xlabel " << (panel.row + 1 == std::size_t(plot.rows) ? text(plot.x_label) : "''") << plain << "\n";
    s << "set ylabel " << (panel.column == 0 ? text(plot.y_label) : "''") << plain << "\n";
    s << "unset arrow\n";
    if (panel.clipped)
      s << "set arrow from graph 0, first " << gp_number(floor) << " to graph 1, first " << gp_number(floor)
        << " nohead lc rgb '#888888' lw 0.8 dt (2,3) back\n";
    std::vector<std::string> items;
    if (p == 0) {
      // The one legend of the figure, in its own column right of the panels: it never covers data.
      s << "set key at screen " << screen_x(left + cols * panel_w + (cols - 1) * gap_x + 0.15) << ", "
        << screen_y(top) << " left top Left reverse samplen 2.5 spacing 1.15 width 1 nobox noopaque\n";
      for (const auto& entry : plot.legend) {
        const std::string title = " title " + text(entry.text) + plain;
        switch (entry.kind) {
          case Kind::heading: case Kind::note:
            items.push_back("keyentry with lines lc rgb '#ffffff' lw 0" + title);
            break;
          case Kind::color: items.push_back("keyentry with lines lw 2 dt 1 " + color_of(entry.style) + title); break;
          case Kind::dash: items.push_back("keyentry with lines lw 2 " + dash_of(entry.style) + " lc rgb '#333333'" + title); break;
          case Kind::high_probability:
            items.push_back("keyentry with linespoints lw 1 pt 6 ps 0.5 lc rgb '#333333'" + title);
            break;
          case Kind::fitted: items.push_back("keyentry with lines lw 1 dt (1,2) lc rgb '#333333'" + title); break;
          case Kind::theory: items.push_back("keyentry with lines lw 1.5 dt (6,3) lc rgb '#000000'" + title); break;
          case Kind::floor: items.push_back("keyentry with points pt 11 ps 0.7 lc rgb '#333333'" + title); break;
        }
      }
    } else {
      s << "unset key\n";
    }
    for (std::size_t c = 0; c < panel.curves.size(); ++c) {
      const PlotCurve& curve = panel.curves[c];
      const std::string color = color_of(curve.color), dash = dash_of(curve.dash);
      const std::string block = "$p" + std::to_string(p) + "c" + std::to_string(c);
      std::size_t low = 0, high = 0;
      for (std::size_t i = 0; i < curve.series.size(); ++i) {
        if (curve.series[i].role == SeriesRole::band_low) low = i + 2;
        if (curve.series[i].role == SeriesRole::band_high) high = i + 2;
      }
      if (low && high)
        items.push_back(block + " using 1:" + std::to_string(low) + ":" + std::to_string(high) +
                        " with filledcurves fs transparent solid 0.15 noborder " + color + " notitle");
      items.push_back(block + " using 1:2 with " + (plot.steps ? "steps" : "lines") + " lw 2 " + dash + " " + color +
                      " notitle");
      for (std::size_t i = 0; i < curve.series.size(); ++i) {
        const std::string column = std::to_string(i + 2);
        if (curve.series[i].role == SeriesRole::high_probability)
          items.push_back(block + " using 1:" + column + " with linespoints lw 1 " + dash + " pt 6 ps 0.5 pi 3 " + color +
                          " notitle");
        if (curve.series[i].role == SeriesRole::theory && curve.series[i].name == "fitted")
          items.push_back(block + " using 1:" + column + " with lines lw 1 dt (1,2) " + color + " notitle");
        else if (curve.series[i].role == SeriesRole::theory)
          items.push_back(block + " using 1:" + column + " with lines lw 1.5 dt (6,3) " + color + " notitle");
      }
      if (floor > 0)
        items.push_back(block + " using 1:" + std::to_string(curve.series.size() + 2) + " with points pt 11 ps 0.7 " +
                        color + " notitle");
    }
    if (!panel.theory.empty())
      items.push_back("$p" + std::to_string(p) + "theory using 1:2 with lines lw 1.5 dt (6,3) lc rgb '#000000' notitle");
    s << "plot " << join(items, ", \\\n     ") << "\n";
  }
  s << "unset multiplot\n";
  s << "set output\n";
  return s.str();
}

int plot(const PlotOptions& options, const TraceData& data, std::ostream& out) {
  return plot(options, data, out, std::cerr);
}

namespace {
int plot_of(const PlotOptions& options, const std::function<PlotData()>& numbers, std::ostream& out, std::ostream& warnings) {
  if (options.output.empty() && options.data.empty())
    throw ConfigError("output is empty: give a figure file (.png, .svg, .pdf, .tex) and/or data (a .tsv file)");
  const PlotData plot = numbers();
  if (!options.output.empty()) {
    if (find_program(options.gnuplot).empty())
      throw ConfigError("gnuplot = '" + options.gnuplot +
                        "' was not found on PATH: `plot` draws through gnuplot; install it with "
                        "`apt-get install gnuplot-nox` (or write only the numbers with data=FILE.tsv)");
    gnuplot_script(plot, options);  // a size too small is an error before any file is written
  }
  for (const auto& warning : plot.warnings) warnings << warning << "\n";
  if (!options.data.empty()) {
    std::ofstream tsv(options.data);
    if (!tsv) throw ConfigError("data = '" + options.data + "' cannot be written");
    write_plot_tsv(plot, tsv);
    tsv.close();
    if (!tsv) throw ConfigError("data = '" + options.data + "': writing failed");
    out << "wrote " << options.data << "\n";
  }
  if (options.output.empty()) return 0;
  draw_plot(plot, options, out);
  return 0;
}
}  // namespace

int plot(const PlotOptions& options, const TraceData& data, std::ostream& out, std::ostream& warnings) {
  return plot_of(options, [&] { return plot_data(options, data); }, out, warnings);
}

int plot(const PlotOptions& options, const results::TraceReader& reader, std::ostream& out, std::ostream& warnings) {
  return plot_of(options, [&] { return plot_data(options, reader); }, out, warnings);
}

void draw_plot(const PlotData& plot, const PlotOptions& options, std::ostream& out) {
  const std::string program = find_program(options.gnuplot);
  if (program.empty())
    throw ConfigError("gnuplot = '" + options.gnuplot +
                      "' was not found on PATH: figures are drawn through gnuplot; install it with "
                      "`apt-get install gnuplot-nox` (or write only the numbers with --data)");
  const std::string script_text = gnuplot_script(plot, options);
  if (!options.script.empty()) {
    std::ofstream file(options.script);
    file << script_text;
    file.close();
    if (!file) throw ConfigError("script = '" + options.script + "' cannot be written");
    out << "wrote " << options.script << " (gnuplot " << options.script << " redraws " << options.output << ")\n";
  }

  std::string pattern = (std::filesystem::temp_directory_path() / "ratelab-plot-XXXXXX").string();
  if (!mkdtemp(pattern.data())) throw std::runtime_error("cannot create a temporary directory for gnuplot");
  const std::filesystem::path dir(pattern);
  const std::string script = (dir / "plot.gp").string(), log = (dir / "gnuplot.log").string();
  {
    std::ofstream file(script);
    file << script_text;
  }
  std::filesystem::remove(options.output);  // so a stale figure can never pass for a fresh one
  const int status = run_program(program, script, log);
  std::ifstream log_file(log);
  const std::string messages((std::istreambuf_iterator<char>(log_file)), std::istreambuf_iterator<char>());
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
  if (status != 0 || !std::filesystem::exists(options.output) || std::filesystem::file_size(options.output) == 0)
    throw std::runtime_error("gnuplot (" + program + ") failed with status " + std::to_string(status) +
                             " writing '" + options.output + "':\n" + messages);
  std::size_t curves = 0;
  for (const auto& panel : plot.panels) curves += panel.curves.size();
  out << "wrote " << options.output;
  if (extension_of(options.output) == ".tex")
    out << " and " << std::filesystem::path(options.output).replace_extension(".pdf").string();
  out << " (" << plot.panels.size() << " panel" << (plot.panels.size() > 1 ? "s" : "") << ", " << curves
      << " curves)\n";
}

}  // namespace ratelab::tools
