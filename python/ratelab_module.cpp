// The native half of the `ratelab` Python package (python/ratelab/__init__.py is the other): the library
// entry points the CLI uses (plan_experiment, run_experiment_to_file, claims), the registry's parameter
// tables as Python data, and optimizers written in Python behind the C++ Optimizer interface.
//
// The GIL: a sweep runs with it released (the TBB workers and the writer thread are C++), and every call
// into a Python optimizer takes it back, one acquisition per step segment. Signals: while a sweep runs on
// Python's main thread, SIGINT and SIGTERM set the sweep's cancel flag, as in `ratelab run`, and Python's
// own handlers are restored afterwards.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "experiments/claims.hpp"
#include "experiments/plugins.hpp"
#include "experiments/run_to_file.hpp"

namespace py = pybind11;
using namespace ratelab;

namespace {

// ---- optimizers written in Python ------------------------------------------------------------------

// What Python registered under a key: the class and the parameter table derived from its __init__.
struct PythonOptimizerClass {
  std::string key, summary;
  py::object cls;
  std::vector<ParamSpec> params;
  bool start_takes_rng = false;  // start(x0, rng) rather than start(x0)
};
// Registered classes, by key. Read when a registry is built (with the GIL held).
std::map<std::string, PythonOptimizerClass>& python_optimizers() {
  static auto* classes = new std::map<std::string, PythonOptimizerClass>();  // never destroyed: holds Python objects
  return *classes;
}

// The oracle as Python sees it during step(): gradient(x, batch) writes the stochastic gradient into a
// buffer of the run (allocated in prepare) and returns a numpy array over that buffer, valid until the
// next call. One such object per run, re-pointed at the run loop's oracle for each step segment.
class OracleView {
 public:
  // The buffer is a numpy array (Python owns its memory), so a gradient kept past the run stays valid.
  explicit OracleView(Eigen::Index dim) : g_array_(py::array_t<double>(dim)), g_(g_array_.mutable_data(), dim) {
    g_.setZero();
  }
  py::array gradient(const py::array_t<double, py::array::c_style | py::array::forcecast>& x, int batch) {
    if (!oracle_) throw std::runtime_error("the oracle is only valid inside step()");
    if (x.ndim() != 1 || x.shape(0) != g_.size())
      throw py::value_error("oracle.gradient: x must be a vector of dim = " + std::to_string(g_.size()) +
                            " doubles, got shape " + shape_text(x));
    if (batch < 1) throw py::value_error("oracle.gradient: batch = " + std::to_string(batch) + " violates batch >= 1");
    oracle_->sample_gradient(Eigen::Map<const Vec>(x.data(), g_.size()), g_, batch);
    samples_ += batch;
    return g_array_;
  }
  // The oracle samples drawn since the last call (the run's gradient evaluations are counted from these).
  double take_samples() { return std::exchange(samples_, 0.0); }
  Eigen::Index dim() const { return g_.size(); }
  void point_at(Oracle* oracle) { oracle_ = oracle; }

 private:
  static std::string shape_text(const py::array& a) {
    std::string s = "(";
    for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
    return s + (a.ndim() == 1 ? ",)" : ")");
  }
  Oracle* oracle_ = nullptr;
  double samples_ = 0.0;
  py::array_t<double> g_array_;
  Eigen::Map<Vec> g_;  // over g_array_
};

// The run's optimizer stream (RunStreams::optimizer) as Python sees it in start(x0, rng): positioned at
// step t before each step(t, ...), as for a C++ optimizer, so a draw depends only on (seed, replicate, t,
// its order within the step). Valid while the run lasts.
class RandomView {
 public:
  py::object uniform(std::optional<py::ssize_t> size) {
    return draws(size, [](RandomStream& s) { return s.uniform(); });
  }
  py::object normal(std::optional<py::ssize_t> size) {
    return draws(size, [](RandomStream& s) { return s.normal(); });
  }
  std::uint64_t below(std::uint64_t n) {
    if (n == 0) throw py::value_error("rng.below(n) needs n >= 1");
    return stream().below(n);
  }
  void point_at(RandomStream* stream) { stream_ = stream; }

 private:
  RandomStream& stream() {
    if (!stream_) throw std::runtime_error("the random stream is only valid while its run lasts");
    return *stream_;
  }
  template <class Draw>
  py::object draws(std::optional<py::ssize_t> size, Draw draw) {
    RandomStream& s = stream();
    if (!size) return py::float_(draw(s));
    if (*size < 0) throw py::value_error("size must be >= 0");
    py::array_t<double> out(*size);
    double* data = out.mutable_data();
    for (py::ssize_t i = 0; i < *size; ++i) data[i] = draw(s);  // the same draws as one call at a time
    return out;
  }
  RandomStream* stream_ = nullptr;
};

// What prepare(problem) receives: the dimension and the facts the problem knows.
struct ProblemView {
  Eigen::Index dim = 0;
  py::dict facts;
};

py::dict facts_dict(const ProblemFacts& f) {
  py::dict d;
  auto put = [&](const char* key, const std::optional<double>& v) { d[key] = v ? py::object(py::float_(*v)) : py::none(); };
  put("f_star", f.f_star);
  put("L", f.L);
  put("mu", f.mu);
  put("G", f.G);
  put("sigma2", f.sigma2);
  put("D", f.D);
  d["domain"] = domain_name(f.domain);
  return d;
}

// A Python exception crossing into the run loop: its text, raised again as a C++ exception (the run loop
// marks the run `error` with this message). Called with the GIL held, so the Python error is released here.
[[noreturn]] void rethrow_python(const std::string& key, const char* method, py::error_already_set& e) {
  std::string message = "python optimizer '" + key + "' " + method + ": " + e.what();
  if (e.matches(PyExc_ValueError) && std::string(method) == "prepare") throw ConfigError(message);
  throw std::runtime_error(message);
}

class PythonOptimizer final : public Optimizer {
 public:
  PythonOptimizer(std::string key, py::object instance, bool start_takes_rng)
      : key_(std::move(key)), instance_(std::move(instance)), start_takes_rng_(start_takes_rng) {
    step_ = instance_.attr("step");
    iterate_ = instance_.attr("iterate");
  }
  ~PythonOptimizer() override {
    py::gil_scoped_acquire gil;
    if (rng_) rng_->point_at(nullptr);  // a reference Python kept to it now raises instead of reading freed memory
    step_ = py::object();
    rng_view_ = py::object();
    iterate_ = py::object();
    oracle_view_ = py::object();
    instance_ = py::object();
  }
  void prepare(const Problem& problem) override {
    py::gil_scoped_acquire gil;
    try {
      x_.resize(problem.dim());
      oracle_view_ = py::cast(OracleView(problem.dim()));
      oracle_ = oracle_view_.cast<OracleView*>();
      if (py::hasattr(instance_, "prepare")) instance_.attr("prepare")(ProblemView{problem.dim(), facts_dict(problem.facts())});
    } catch (py::error_already_set& e) {
      rethrow_python(key_, "prepare", e);
    }
  }
  void start(ConstVecRef x0, RunStreams& streams) override {
    py::gil_scoped_acquire gil;
    try {
      py::array_t<double> x0_copy(x0.size(), x0.data());  // a copy the optimizer may keep
      if (!start_takes_rng_) {
        instance_.attr("start")(x0_copy);
        return;
      }
      if (!rng_) {
        rng_view_ = py::cast(RandomView());
        rng_ = rng_view_.cast<RandomView*>();
      }
      rng_->point_at(&streams.optimizer);
      instance_.attr("start")(x0_copy, rng_view_);
    } catch (py::error_already_set& e) {
      rethrow_python(key_, "start", e);
    }
  }
  void step(long t, double eta, Oracle& oracle) override {
    py::gil_scoped_acquire gil;
    call_step(t, eta, oracle);
  }
  // One GIL acquisition per segment; the streams are sought to every t as in Optimizer::steps.
  void steps(long t_first, long t_last, const Schedule& schedule, RunStreams& streams, Oracle& oracle) override {
    py::gil_scoped_acquire gil;
    for (long t = t_first; t <= t_last; ++t) {
      streams.seek(std::uint64_t(t));
      call_step(t, schedule(t), oracle);
    }
  }
  ConstVecRef iterate() const override {
    py::gil_scoped_acquire gil;
    try {
      auto x = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(iterate_());
      if (!x || x.ndim() != 1 || x.shape(0) != x_.size())
        throw std::runtime_error("python optimizer '" + key_ + "' iterate(): expected a vector of dim = " +
                                 std::to_string(x_.size()) + " doubles");
      x_ = Eigen::Map<const Vec>(x.data(), x_.size());
    } catch (py::error_already_set& e) {
      rethrow_python(key_, "iterate", e);
    }
    return x_;
  }
  void report(RunStats& stats) const override {
    py::gil_scoped_acquire gil;
    if (!py::hasattr(instance_, "report")) return;
    try {
      for (auto item : py::dict(instance_.attr("report")()))
        stats.emplace_back(py::str(item.first), item.second.cast<double>());
    } catch (py::error_already_set& e) {
      rethrow_python(key_, "report", e);
    }
  }

 private:
  void call_step(long t, double eta, Oracle& oracle) {
    oracle_->point_at(&oracle);
    try {
      step_(t, eta, oracle_view_);
    } catch (py::error_already_set& e) {
      oracle_->point_at(nullptr);
      rethrow_python(key_, "step", e);
    }
    oracle_->point_at(nullptr);
    if (const double samples = oracle_->take_samples(); samples > 0) count_gradient_evaluations(samples);
  }

  std::string key_;
  py::object instance_, step_, iterate_, oracle_view_, rng_view_;
  bool start_takes_rng_;
  OracleView* oracle_ = nullptr;  // owned by oracle_view_
  RandomView* rng_ = nullptr;     // owned by rng_view_
  mutable Vec x_;                 // the last iterate() Python returned
};

ParamValue param_value(const py::handle& value, ParamType type) {
  switch (type) {
    case ParamType::boolean: return value.cast<bool>();
    case ParamType::integer: return value.cast<std::int64_t>();
    case ParamType::real: return value.cast<double>();
    default: return value.cast<std::string>();
  }
}
py::object python_value(const ParamValue& value) {
  return std::visit([](const auto& v) -> py::object { return py::cast(v); }, value);
}

// Registers a Python class: params is a list of (key, default, doc); the type follows the default (bool,
// int, float, str).
void register_optimizer(const std::string& key, py::object cls, const std::string& summary, const py::list& params,
                        bool start_takes_rng) {
  PythonOptimizerClass entry{key, summary, cls, {}, start_takes_rng};
  for (auto item : params) {
    auto t = item.cast<py::tuple>();
    py::handle d = t[1];
    ParamType type = py::isinstance<py::bool_>(d)    ? ParamType::boolean
                     : py::isinstance<py::int_>(d)   ? ParamType::integer
                     : py::isinstance<py::float_>(d) ? ParamType::real
                     : py::isinstance<py::str>(d)    ? ParamType::choice
                                                     : throw py::type_error("optimizer '" + key + "': parameter '" +
                                                                            t[0].cast<std::string>() +
                                                                            "' needs a default of type bool, int, float or str");
    entry.params.push_back({t[0].cast<std::string>(), type, param_value(d, type), unconstrained(), t[2].cast<std::string>()});
  }
  Registry probe = builtin_registry();  // a key taken by a built-in is refused now, not at the first run
  if (probe.contains(ComponentKind::optimizer, key))
    throw py::value_error("optimizer '" + key + "' is a built-in optimizer: choose another name");
  python_optimizers()[key] = std::move(entry);
}

// The built-in components, the plugins (RATELAB_PLUGIN_PATH and `plugins`) and the Python optimizers.
Registry make_registry(const std::vector<std::string>& plugins) {
  Registry registry = builtin_registry();
  load_plugins(registry, plugins);
  for (const auto& [key, entry] : python_optimizers()) {
    const PythonOptimizerClass* e = &entry;
    registry.add_optimizer({ComponentKind::optimizer, key, entry.summary, entry.params, "python"},
                           [e](const ParamSet& values) -> std::unique_ptr<Optimizer> {
                             py::gil_scoped_acquire gil;
                             py::dict kwargs;
                             for (const auto& [k, v] : values.entries()) kwargs[py::str(k)] = python_value(v);
                             try {
                               return std::make_unique<PythonOptimizer>(e->key, e->cls(**kwargs), e->start_takes_rng);
                             } catch (py::error_already_set& err) {
                               rethrow_python(e->key, "__init__", err);
                             }
                           });
  }
  return registry;
}

// ---- signals ------------------------------------------------------------------------------------------

std::atomic<bool> g_cancel{false};
std::atomic<int> g_signal{0};
extern "C" void on_signal(int sig) {
  g_cancel.store(true);
  g_signal.store(sig);
  std::signal(sig, SIG_DFL);  // a second signal ends the process at once, as on the command line
}
// SIGINT and SIGTERM cancel the sweep while it runs; the previous handlers (Python's) come back after.
class SignalsCancelSweep {
 public:
  explicit SignalsCancelSweep(bool install) : installed_(install) {
    g_cancel.store(false);
    g_signal.store(0);
    if (!installed_) return;
    struct sigaction action{};
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, &previous_int_);
    sigaction(SIGTERM, &action, &previous_term_);
  }
  ~SignalsCancelSweep() {
    if (!installed_) return;
    sigaction(SIGINT, &previous_int_, nullptr);
    sigaction(SIGTERM, &previous_term_, nullptr);
  }

 private:
  bool installed_;
  struct sigaction previous_int_{}, previous_term_{};
};

// ---- entry points -------------------------------------------------------------------------------------

// The experiment document: INI text given by Python (a dict), or a file / preset name.
IniDocument experiment_document(const std::string& text, const std::string& name_or_path) {
  if (!text.empty() || name_or_path.empty()) return parse_ini(text, "<experiment dict>");
  return read_ini_file(find_experiment(name_or_path));
}

py::dict summary_dict(const SweepSummary& s, const std::string& output, const ExperimentPlan& plan) {
  py::dict d;
  d["output"] = output;
  d["ok"] = s.ok;
  d["diverged"] = s.diverged;
  d["error"] = s.error;
  d["interrupted"] = s.interrupted;
  d["not_started"] = s.not_started;
  d["seconds"] = s.seconds;
  d["cancelled"] = s.cancelled;
  d["signal"] = g_signal.load();
  d["skipped"] = s.skipped;  // refused at set-up (the prepared plan keeps them, not the input)
  return d;
}

py::dict run_experiment(const std::string& text, const std::string& name_or_path, const std::vector<std::string>& sets,
                        const std::string& output, bool overwrite, bool resume, int threads, bool progress,
                        const std::vector<std::string>& plugins, const std::string& command_line, bool handle_signals) {
  if (threads < 0) throw ConfigError("threads = " + std::to_string(threads) + " violates threads >= 0");
  if (overwrite && resume) throw ConfigError("overwrite and resume exclude each other: choose one");
  Registry registry = make_registry(plugins);
  const ExperimentPlan plan = claims::load_experiment(registry, experiment_document(text, name_or_path), sets).plan;
  RunToFileOptions options;
  options.output_path = output;
  options.overwrite = overwrite;
  options.resume = resume;
  options.command_line = command_line;
  options.sweep.threads = threads;
  options.sweep.cancel = &g_cancel;
  options.sweep.progress = progress ? SweepOptions::Progress::automatic : SweepOptions::Progress::quiet;
  SweepSummary summary;
  {
    SignalsCancelSweep signals(handle_signals);
    py::gil_scoped_release no_gil;
    summary = run_experiment_to_file(registry, plan, options);
  }
  return summary_dict(summary, output, plan);
}

py::dict verdict_dict(const claims::Verdict& v) {
  py::dict d;
  d["name"] = v.name;
  d["passed"] = v.pass;
  d["what"] = v.what;
  d["measured"] = v.measured;
  d["bound"] = v.bound;
  d["margin"] = v.margin;
  d["value"] = v.value;
  d["interval"] = py::make_tuple(v.interval.lo, v.interval.hi);
  d["text"] = claims::format_verdict(v);
  return d;
}

// `ratelab verify`: the claims of an experiment checked on a fresh run into `scratch_output`, or on a trace
// file (its stored experiment text).
py::dict verify(const std::string& text, const std::string& name_or_path, const std::string& trace_file, bool quick,
                std::vector<std::string> sets, int threads, long seed, const std::string& scratch_output,
                const std::vector<std::string>& plugins, const std::string& command_line, bool handle_signals) {
  // As `ratelab verify`: overrides applied before anything is read; on a stored file only claims.NAME=...
  std::optional<results::TraceData> data;
  std::optional<claims::LoadedExperiment> loaded;
  std::vector<claims::Claim> claim_list;
  std::string source;
  Registry registry = make_registry(plugins);
  if (!trace_file.empty()) {
    data = results::read_trace_file(trace_file);
    source = trace_file;
    claim_list = claims::claims_for_stored_runs(parse_ini(data->layout.experiment_text, trace_file), trace_file, sets, quick);
  } else {
    loaded = claims::load_experiment(registry, experiment_document(text, name_or_path), sets, quick);
    source = loaded->document.source;
    claim_list = loaded->claims;
  }
  if (claim_list.empty()) throw ConfigError(source + " has no [claims] section: nothing to verify");
  py::dict out;
  if (!data) {
    const ExperimentPlan& plan = loaded->plan;
    claims::check_claims(claim_list, claims::layout_of(plan), false);  // before the run
    RunToFileOptions options;
    options.output_path = scratch_output;
    options.overwrite = true;
    options.command_line = command_line;
    options.sweep.threads = threads;
    options.sweep.cancel = &g_cancel;
    options.sweep.progress = SweepOptions::Progress::quiet;
    SweepSummary summary;
    {
      SignalsCancelSweep signals(handle_signals);
      py::gil_scoped_release no_gil;
      summary = run_experiment_to_file(registry, plan, options);
    }
    out["run"] = summary_dict(summary, scratch_output, plan);
    if (summary.cancelled) {
      out["claims"] = py::list();
      return out;
    }
    data = results::read_trace_file(scratch_output);
  }
  py::list verdicts;
  for (const auto& v : claims::evaluate_claims(claim_list, *data, seed)) verdicts.append(verdict_dict(v));
  out["claims"] = verdicts;
  return out;
}

py::dict component_dict(const ComponentInfo& c, bool with_params) {
  py::dict d;
  d["kind"] = kind_name(c.kind);
  d["name"] = c.key;
  d["summary"] = c.summary;
  d["origin"] = c.origin;
  if (with_params) {
    py::list params;
    for (const auto& p : c.params) {
      py::dict q;
      q["name"] = p.key;
      q["type"] = type_name(p);
      q["default"] = python_value(p.default_value);
      q["constraint"] = p.constraint.describe(p.key);
      q["choices"] = p.constraint.choices;
      q["doc"] = p.doc;
      q["applies"] = p.applies ? py::object(py::str(p.applies->describe())) : py::object(py::none());
      params.append(q);
    }
    d["params"] = params;
  }
  return d;
}

py::dict components(const std::vector<std::string>& plugins) {
  Registry registry = make_registry(plugins);
  py::dict out;
  for (auto [kind, plural] : {std::pair{ComponentKind::optimizer, "optimizers"}, std::pair{ComponentKind::problem, "problems"},
                              std::pair{ComponentKind::schedule, "schedules"}}) {
    py::list list;
    for (const ComponentInfo* c : registry.components(kind)) list.append(component_dict(*c, false));
    out[plural] = list;
  }
  py::list presets;
  for (const auto& p : list_presets()) {
    py::dict d;
    d["name"] = p.name;
    d["path"] = p.path;
    d["summary"] = p.description;
    presets.append(d);
  }
  out["presets"] = presets;
  return out;
}

py::list describe(const std::string& name, const std::vector<std::string>& plugins) {
  Registry registry = make_registry(plugins);
  py::list out;
  if (name == "experiment") {
    out.append(component_dict({ComponentKind::schedule, "experiment", "the [experiment] section of an experiment file",
                               ExperimentOptions::params().specs(), "built-in"},
                              true));
    out[0]["kind"] = "experiment";
    return out;
  }
  std::vector<std::string> all{"experiment"};
  for (auto kind : {ComponentKind::optimizer, ComponentKind::problem, ComponentKind::schedule}) {
    if (registry.contains(kind, name)) out.append(component_dict(registry.info(kind, name), true));
    for (const auto& k : registry.keys(kind)) all.push_back(k);
  }
  if (out.empty()) throw ConfigError(unknown_key_message("component", name, all));
  return out;
}

}  // namespace

PYBIND11_MODULE(_ratelab, m) {
  m.doc() = "ratelab's native library (use the `ratelab` package)";
  static py::exception<ConfigError> config_error(m, "ConfigError", PyExc_ValueError);
  // Every violation, one per element of .problems, with the CLI's text; str() joins them by lines.
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const ConfigError& e) {
      py::object error = py::reinterpret_borrow<py::object>(config_error.ptr())(e.what());
      error.attr("problems") = e.problems();
      PyErr_SetObject(config_error.ptr(), error.ptr());
    }
  });

  py::class_<OracleView>(m, "Oracle", "the stochastic gradient oracle of a run, valid inside step()")
      .def(
          "gradient",
          &OracleView::gradient,
          py::arg("x"), py::arg("batch") = 1,
          "stochastic gradient at x averaged over `batch` draws: a numpy array over the run's gradient buffer, "
          "overwritten by the next call")
      .def_property_readonly("dim", &OracleView::dim);
  py::class_<ProblemView>(m, "ProblemInfo", "what prepare() learns about the problem")
      .def_readonly("dim", &ProblemView::dim)
      .def_readonly("facts", &ProblemView::facts);

  m.def("run_experiment", &run_experiment, py::arg("text"), py::arg("name_or_path"), py::arg("sets"), py::arg("output"),
        py::arg("overwrite"), py::arg("resume"), py::arg("threads"), py::arg("progress"), py::arg("plugins"),
        py::arg("command_line"), py::arg("handle_signals"));
  m.def("verify", &verify, py::arg("text"), py::arg("name_or_path"), py::arg("trace_file"), py::arg("quick"),
        py::arg("sets"), py::arg("threads"), py::arg("seed"), py::arg("scratch_output"), py::arg("plugins"),
        py::arg("command_line"), py::arg("handle_signals"));
  m.def("components", &components, py::arg("plugins"));
  m.def("describe", &describe, py::arg("name"), py::arg("plugins"));
  m.def("register_optimizer", &register_optimizer, py::arg("key"), py::arg("cls"), py::arg("summary"), py::arg("params"),
        py::arg("start_takes_rng"));
  py::class_<RandomView>(m, "Random", "the run's optimizer stream (Philox), sought to step t before each step")
      .def("uniform", &RandomView::uniform, py::arg("size") = py::none(),
           "uniform on (0, 1): one float, or a numpy array of `size` successive draws")
      .def("normal", &RandomView::normal, py::arg("size") = py::none(),
           "standard normal: one float, or a numpy array of `size` successive draws")
      .def("below", &RandomView::below, py::arg("n"), "uniform integer in [0, n), exact");
  m.def("unregister_optimizer", [](const std::string& key) { return python_optimizers().erase(key) > 0; });
  m.def("find_experiment", &find_experiment);
}
