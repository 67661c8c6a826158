#include "experiments/plugins.hpp"

#include <dlfcn.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <set>

#include "core/fast_paths.hpp"
#include "core/plugin_abi.h"

namespace ratelab {

namespace {

constexpr std::size_t kPluginSize10 = offsetof(ratelab_plugin, optimizer_count) + sizeof(size_t);
constexpr std::size_t kDescriptorSize10 = offsetof(ratelab_optimizer_descriptor, report) + sizeof(void*);

std::string text(const char* s) { return s ? s : ""; }

std::vector<std::string> message_lines(const std::string& message) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start <= message.size()) {
    auto nl = message.find('\n', start);
    lines.push_back(message.substr(start, nl - start));
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  return lines;
}

// A ParamSpec from its C form: the declaration the plugin's Options::params() produced.
ParamSpec param_spec(const ratelab_param_spec& c, const std::string& where) {
  if (!c.key || c.type < RATELAB_PARAM_REAL || c.type > RATELAB_PARAM_CHOICE_LIST)
    throw ConfigError(where + " declares a parameter without a key or with an unknown type");
  ParamSpec spec;
  spec.key = c.key;
  spec.type = ParamType(c.type);
  spec.doc = text(c.doc);
  if (c.has_lo) spec.constraint.lo = c.lo;
  if (c.has_hi) spec.constraint.hi = c.hi;
  spec.constraint.lo_open = c.lo_open != 0;
  spec.constraint.hi_open = c.hi_open != 0;
  for (std::size_t i = 0; i < c.choice_count; ++i) spec.constraint.choices.push_back(text(c.choices[i]));
  const std::string default_text = text(c.default_text);
  if (default_text.empty() && spec.type == ParamType::real_list) spec.default_value = std::vector<double>{};
  else if (default_text.empty() && spec.type == ParamType::choice_list) spec.default_value = std::vector<std::string>{};
  else if (default_text.empty() && spec.type == ParamType::choice) spec.default_value = std::string{};
  else spec.default_value = parse_value(spec, default_text, where + "." + spec.key);
  return spec;
}

// The host's side of one plugin optimizer object. Host callbacks never let an exception into the plugin:
// they keep it and return an error code; when the plugin returns, the kept exception is rethrown.
class PluginOptimizer final : public Optimizer {
 public:
  PluginOptimizer(std::shared_ptr<void> library, const ratelab_optimizer_descriptor* d, ratelab_optimizer_object* o)
      : library_(std::move(library)), d_(d), object_(o) {}
  ~PluginOptimizer() override { d_->destroy(object_); }
  PluginOptimizer(const PluginOptimizer&) = delete;
  PluginOptimizer& operator=(const PluginOptimizer&) = delete;

  void prepare(const Problem& problem) override {
    problem_ = &problem;
    dim_ = problem.dim();
    const ProblemFacts& f = problem.facts();
    ratelab_problem& c = c_problem_;
    c = ratelab_problem{};
    c.struct_size = sizeof c;
    c.dim = dim_;
    auto fact = [&](const std::optional<double>& v, std::uint32_t bit, double& out) {
      if (v) c.facts_known |= bit, out = *v;
    };
    fact(f.f_star, RATELAB_FACT_F_STAR, c.f_star);
    fact(f.L, RATELAB_FACT_L, c.L);
    fact(f.mu, RATELAB_FACT_MU, c.mu);
    fact(f.G, RATELAB_FACT_G, c.G);
    fact(f.sigma2, RATELAB_FACT_SIGMA2, c.sigma2);
    fact(f.D, RATELAB_FACT_D, c.D);
    c.domain = std::int32_t(f.domain);
    c.has_gradient = problem.has_gradient();
    c.is_composite = problem.is_composite();
    c.has_block_gradient = problem.has_block_gradient();
    if (f.x_star_known) {
      x_star_ = problem.x_star();  // a copy the plugin may read for the life of the object
      c.x_star_known = 1;
      c.x_star = x_star_.data();
    }
    c.context = this;
    c.value = [](void* ctx, const double* x, double* out) {
      auto* self = static_cast<PluginOptimizer*>(ctx);
      return self->guard([&] { *out = self->problem_->value(self->view(x)); });
    };
    c.gradient = [](void* ctx, const double* x, double* g) {
      auto* self = static_cast<PluginOptimizer*>(ctx);
      return self->guard([&] { self->problem_->gradient(self->view(x), self->view(g)); });
    };
    c.block_gradient = [](void* ctx, const double* x, std::int64_t begin, std::int64_t size, double* g) {
      auto* self = static_cast<PluginOptimizer*>(ctx);
      return self->guard([&] {
        self->problem_->block_gradient(self->view(x), begin, size, Eigen::Map<Vec>(g, Eigen::Index(size)));
      });
    };
    c.prox = [](void* ctx, double eta, double* x) {
      auto* self = static_cast<PluginOptimizer*>(ctx);
      return self->guard([&] { self->problem_->prox(eta, self->view(x)); });
    };
    block_gradients_.prepare(dim_);  // the C oracle's block access works for every oracle (plugin_abi.h)
    c_oracle_ = ratelab_oracle{};
    c_oracle_.struct_size = sizeof c_oracle_;
    c_oracle_.context = this;
    c_oracle_.sample_gradient = [](void* ctx, const double* x, double* g, std::int32_t batch) {
      auto* self = static_cast<PluginOptimizer*>(ctx);
      return self->guard([&] { self->sample_minibatch(*self->oracle_, self->view(x), self->view(g), batch); });
    };
    c_oracle_.sample_block_gradient = [](void* ctx, const double* x, std::int64_t begin, std::int64_t size,
                                         double* g, std::int32_t batch) {
      auto* self = static_cast<PluginOptimizer*>(ctx);
      return self->guard([&] {
        self->block_gradients_.sample(self->view(x), begin, size, Eigen::Map<Vec>(g, Eigen::Index(size)), batch);
        const bool cheap = self->c_oracle_.has_cheap_block_gradient != 0;  // set with the step's oracle
        self->count_gradient_evaluations(double(batch) * (cheap ? double(size) / double(self->dim_) : 1.0));
      });
    };
    check(d_->prepare(object_, &c_problem_));
  }

  void start(ConstVecRef x0, RunStreams& streams) override {
    x0_ = x0;  // contiguous for the plugin whatever x0's storage
    check(d_->start(object_, x0_.data(), streams.master_seed, streams.replicate, streams.salt));
  }

  void step(long t, double eta, Oracle& oracle) override {
    oracle_ = &oracle;
    c_oracle_.has_cheap_block_gradient = block_gradients_.bind(oracle);
    check(d_->step(object_, t, eta, &c_oracle_));
  }

  ConstVecRef iterate() const override { return Eigen::Map<const Vec>(d_->iterate(object_), dim_); }

  void report(RunStats& stats) const override {
    const int status = d_->report(object_, [](void* ctx, const char* name, double value) {
      static_cast<RunStats*>(ctx)->emplace_back(name, value);
    }, &stats);
    if (status != RATELAB_OK) throw std::runtime_error(std::string(d_->key) + ": report failed: " + d_->last_error(object_));
  }

 private:
  Eigen::Map<const Vec> view(const double* x) const { return Eigen::Map<const Vec>(x, dim_); }
  Eigen::Map<Vec> view(double* x) const { return Eigen::Map<Vec>(x, dim_); }

  template <class F>
  int guard(F&& f) noexcept {
    try {
      f();
      return RATELAB_OK;
    } catch (...) {
      failure_ = std::current_exception();
      return RATELAB_RUN_ERROR;
    }
  }

  void check(int status) {
    if (status == RATELAB_OK) return;
    if (failure_) {  // the host's own exception, raised in a callback: rethrow it unchanged
      std::exception_ptr f = failure_;
      failure_ = nullptr;
      std::rethrow_exception(f);
    }
    const std::string message = d_->last_error(object_);
    if (status == RATELAB_CONFIG_ERROR) throw ConfigError(message_lines(message));
    throw std::runtime_error(message);
  }

  std::shared_ptr<void> library_;  // keeps the code of d_ loaded while this object lives
  const ratelab_optimizer_descriptor* d_;
  ratelab_optimizer_object* object_;
  const Problem* problem_ = nullptr;
  Oracle* oracle_ = nullptr;
  BlockGradientSampler block_gradients_;  // behind c_oracle_.sample_block_gradient
  Eigen::Index dim_ = 0;
  Vec x_star_, x0_;
  ratelab_problem c_problem_{};
  ratelab_oracle c_oracle_{};
  std::exception_ptr failure_;
};

std::unique_ptr<Optimizer> make_plugin_optimizer(const std::shared_ptr<void>& library,
                                                 const ratelab_optimizer_descriptor* d, const ParamSet& params) {
  std::vector<std::pair<std::string, std::string>> texts;
  for (const auto& [k, v] : params.entries()) texts.emplace_back(k, format_value(v));
  std::vector<ratelab_param_value> values;
  for (const auto& [k, v] : texts) values.push_back({k.c_str(), v.c_str()});
  int status = RATELAB_RUN_ERROR;
  ratelab_optimizer_object* object = d->create(values.data(), values.size(), &status);
  if (!object) throw std::bad_alloc();
  if (status != RATELAB_OK) {
    const std::string message = d->last_error(object);
    d->destroy(object);
    if (status == RATELAB_CONFIG_ERROR) throw ConfigError(message_lines(message));
    throw std::runtime_error(message);
  }
  return std::make_unique<PluginOptimizer>(library, d, object);
}

}  // namespace

std::string fnv1a64_of_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError("plugin '" + path + "' cannot be read");
  std::uint64_t h = 0xcbf29ce484222325ULL;
  char buf[1 << 16];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    for (std::streamsize i = 0; i < in.gcount(); ++i) {
      h ^= std::uint64_t(static_cast<unsigned char>(buf[i]));
      h *= 0x100000001b3ULL;
    }
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

LoadedPlugin load_plugin(Registry& registry, const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(path, ec))
    throw ConfigError("plugin '" + path + "' not found: no such file (give the path of the plugin's .so)");
  if (!fs::is_regular_file(path, ec)) throw ConfigError("plugin '" + path + "' is not a regular file");
  LoadedPlugin loaded;
  loaded.path = path;
  loaded.hash = "fnv1a64 " + fnv1a64_of_file(path);
  // dlopen searches the library path for a name without a slash; a plugin path is always a file path.
  const std::string open_path = path.find('/') == std::string::npos ? "./" + path : path;
  void* handle = dlopen(open_path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* why = dlerror();
    throw ConfigError("plugin '" + path + "' is not a loadable shared library: " + text(why));
  }
  std::shared_ptr<void> library(handle, [](void* h) { dlclose(h); });
  auto entry = reinterpret_cast<ratelab_plugin_entry_fn>(dlsym(handle, RATELAB_PLUGIN_ENTRY_SYMBOL));
  if (!entry)
    throw ConfigError("'" + path + "' is not a ratelab plugin: it exports no " RATELAB_PLUGIN_ENTRY_SYMBOL
                      " function (build it with core/plugin_sdk.hpp and RATELAB_PLUGIN(...))");
  const ratelab_plugin* plugin = entry();
  if (!plugin) throw ConfigError("plugin '" + path + "' failed to initialize: " RATELAB_PLUGIN_ENTRY_SYMBOL " returned NULL");
  const std::string host_abi =
      std::to_string(RATELAB_PLUGIN_ABI_MAJOR) + "." + std::to_string(RATELAB_PLUGIN_ABI_MINOR);
  if (plugin->abi_major != RATELAB_PLUGIN_ABI_MAJOR)
    throw ConfigError("plugin '" + path + "' was built for ratelab plugin ABI " + std::to_string(plugin->abi_major) +
                      "." + std::to_string(plugin->abi_minor) + ", but this ratelab speaks plugin ABI " + host_abi +
                      ": rebuild the plugin against this ratelab (find_package(ratelab))");
  if (plugin->struct_size < kPluginSize10)
    throw ConfigError("plugin '" + path + "' declares a ratelab_plugin struct of " + std::to_string(plugin->struct_size) +
                      " bytes, smaller than the " + std::to_string(kPluginSize10) + " bytes of ABI " + host_abi +
                      ": it is corrupt or was not built with core/plugin_abi.h");
  loaded.name = text(plugin->name);
  loaded.version = text(plugin->version);
  if (loaded.name.empty()) throw ConfigError("plugin '" + path + "' has no name");
  loaded.origin = "plugin " + loaded.name + " " + loaded.version + " (" + path + ", " + loaded.hash + ")";

  struct Pending {
    ComponentInfo info;
    const ratelab_optimizer_descriptor* descriptor;
  };
  std::vector<Pending> pending;
  const std::size_t stride = plugin->optimizer_count ? plugin->optimizers[0].struct_size : 0;
  for (std::size_t i = 0; i < plugin->optimizer_count; ++i) {
    const auto* d = reinterpret_cast<const ratelab_optimizer_descriptor*>(
        reinterpret_cast<const char*>(plugin->optimizers) + i * stride);
    if (d->struct_size < kDescriptorSize10)
      throw ConfigError("plugin '" + path + "': optimizer descriptor " + std::to_string(i) + " has struct_size " +
                        std::to_string(d->struct_size) + ", smaller than the " + std::to_string(kDescriptorSize10) +
                        " bytes of ABI " + host_abi);
    if (!d->key || !*d->key || !d->create || !d->destroy || !d->last_error || !d->prepare || !d->start || !d->step ||
        !d->iterate || !d->report)
      throw ConfigError("plugin '" + path + "': optimizer descriptor " + std::to_string(i) +
                        " lacks a key or one of its functions");
    ComponentInfo info{ComponentKind::optimizer, d->key, text(d->summary), {}, loaded.origin};
    const std::string where = "plugin optimizer " + info.key;
    for (std::size_t p = 0; p < d->param_count; ++p) info.params.push_back(param_spec(d->params[p], where));
    pending.push_back({std::move(info), d});
  }
  // All or nothing: a collision (with a built-in, another plugin or within this one) is found before any
  // component is added, and reported with the registry's own message naming both origins.
  std::set<std::string> keys;
  for (const auto& p : pending) {
    if (registry.contains(ComponentKind::optimizer, p.info.key)) registry.add_optimizer(p.info, {});  // throws
    if (!keys.insert(p.info.key).second)
      throw ConfigError("optimizer key '" + p.info.key + "' is registered twice: by " + loaded.origin + " and by " +
                        loaded.origin + "; rename one of them");
  }
  for (auto& p : pending) {
    loaded.optimizers.push_back(p.info.key);
    const ratelab_optimizer_descriptor* d = p.descriptor;
    registry.add_optimizer(std::move(p.info), [library, d](const ParamSet& params) {
      return make_plugin_optimizer(library, d, params);
    });
  }
  return loaded;
}

std::vector<std::string> plugin_path_libraries() {
  namespace fs = std::filesystem;
  std::vector<std::string> out;
  const char* env = std::getenv("RATELAB_PLUGIN_PATH");
  if (!env) return out;
  const std::string s = env;
  std::size_t start = 0;
  while (start <= s.size()) {
    auto colon = s.find(':', start);
    const std::string dir = s.substr(start, colon - start);
    std::error_code ec;
    if (!dir.empty() && fs::is_directory(dir, ec)) {
      std::vector<std::string> found;
      for (const auto& e : fs::directory_iterator(dir, ec))
        if (e.path().extension() == ".so") found.push_back(e.path().string());
      std::sort(found.begin(), found.end());
      out.insert(out.end(), found.begin(), found.end());
    } else if (!dir.empty()) {
      throw ConfigError("RATELAB_PLUGIN_PATH names '" + dir + "', which is not a directory");
    }
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  return out;
}

std::vector<LoadedPlugin> load_plugins(Registry& registry, const std::vector<std::string>& explicit_paths) {
  namespace fs = std::filesystem;
  std::vector<std::string> paths = plugin_path_libraries();
  paths.insert(paths.end(), explicit_paths.begin(), explicit_paths.end());
  std::vector<LoadedPlugin> loaded;
  std::set<std::string> seen;
  for (const auto& path : paths) {
    std::error_code ec;
    const std::string canonical = fs::weakly_canonical(path, ec).string();
    if (!ec && !seen.insert(canonical).second) continue;  // the same file named twice
    loaded.push_back(load_plugin(registry, path));
  }
  return loaded;
}

}  // namespace ratelab
