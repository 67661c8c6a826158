/* The ratelab plugin boundary: a small, versioned C ABI (in the manner of CLAP).
 *
 * A plugin is a shared library exporting one function, `ratelab_plugin_entry`, that returns a pointer to a
 * constant `ratelab_plugin`. Only C types cross the boundary: the host passes the problem and the oracle as
 * C structs of callbacks, the plugin answers with status codes and a message held by its optimizer object
 * (valid until the object is destroyed). No C++ type, allocator or exception crosses it.
 *
 * Versioning. `abi_major` changes when a struct layout or a function signature changes incompatibly; the
 * host refuses another major. `abi_minor` grows when fields are appended at the end of a struct; each
 * struct starts with (or carries) its `struct_size`, so a newer host reads only the fields an older plugin
 * has, and refuses a struct smaller than the version-1.0 layout.
 *
 * Randomness. The plugin receives (master seed, replicate, salt) in `start` and builds the same Philox
 * streams as core/rng.hpp (the SDK compiles core/rng.cpp into the plugin); it positions them at step t
 * before each step, as the run loop does for built-in optimizers, so a plugin component draws the same
 * bits as the same component built in. The host's `init` stream belongs to the initial point.
 *
 * Plugin authors do not write against this header directly: core/plugin_sdk.hpp exports an ordinary
 * ratelab Optimizer class with one macro.
 */
#ifndef RATELAB_PLUGIN_ABI_H
#define RATELAB_PLUGIN_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RATELAB_PLUGIN_ABI_MAJOR 1
#define RATELAB_PLUGIN_ABI_MINOR 0
#define RATELAB_PLUGIN_ENTRY_SYMBOL "ratelab_plugin_entry"

/* Status codes returned by every plugin function that can fail. */
enum {
  RATELAB_OK = 0,
  RATELAB_CONFIG_ERROR = 1, /* bad parameters or a problem the optimizer refuses (ratelab::ConfigError) */
  RATELAB_RUN_ERROR = 2     /* anything else thrown during a run: the run ends with status `error` */
};

/* Parameter types, in the order of ratelab::ParamType. */
enum {
  RATELAB_PARAM_REAL = 0,
  RATELAB_PARAM_INTEGER = 1,
  RATELAB_PARAM_BOOLEAN = 2,
  RATELAB_PARAM_CHOICE = 3,
  RATELAB_PARAM_REAL_LIST = 4,
  RATELAB_PARAM_CHOICE_LIST = 5
};

/* One declared parameter: ratelab::ParamSpec in C form. Values are written as ratelab's canonical text
 * (reals with 17 significant digits, lists comma-separated), which round-trips exactly. */
typedef struct ratelab_param_spec {
  const char* key;
  int32_t type;                 /* RATELAB_PARAM_* */
  const char* default_text;
  int32_t has_lo, has_hi;       /* constraint bounds present? */
  double lo, hi;
  int32_t lo_open, hi_open;     /* strict inequalities */
  const char* const* choices;   /* for choice and choice_list */
  size_t choice_count;
  const char* doc;
} ratelab_param_spec;

/* One resolved parameter value (canonical text), handed to `create`. */
typedef struct ratelab_param_value {
  const char* key;
  const char* text;
} ratelab_param_value;

/* Known-facts bits of ratelab_problem::facts_known. */
enum {
  RATELAB_FACT_F_STAR = 1,
  RATELAB_FACT_L = 2,
  RATELAB_FACT_MU = 4,
  RATELAB_FACT_G = 8,
  RATELAB_FACT_SIGMA2 = 16,
  RATELAB_FACT_D = 32
};

/* The problem as the optimizer sees it in `prepare`; valid until the optimizer is destroyed. Callbacks
 * return RATELAB_OK or an error code (the host keeps the error and rethrows it after the plugin returns). */
typedef struct ratelab_problem {
  size_t struct_size;
  int64_t dim;
  uint32_t facts_known; /* RATELAB_FACT_* bits */
  double f_star, L, mu, G, sigma2, D;
  int32_t x_star_known;
  int32_t domain;       /* ratelab::Domain: 0 euclidean, 1 simplex, 2 ball, 3 box */
  int32_t has_gradient, is_composite, has_block_gradient;
  const double* x_star; /* dim values when x_star_known, else NULL */
  void* context;
  int (*value)(void* context, const double* x, double* out);
  int (*gradient)(void* context, const double* x, double* g);
  int (*block_gradient)(void* context, const double* x, int64_t begin, int64_t size, double* g_block);
  int (*prox)(void* context, double eta, double* x);
} ratelab_problem;

/* The run's stochastic oracle, handed to every `step`. */
typedef struct ratelab_oracle {
  size_t struct_size;
  void* context;
  int32_t has_cheap_block_gradient;
  int (*sample_gradient)(void* context, const double* x, double* g, int32_t batch);
  int (*sample_block_gradient)(void* context, const double* x, int64_t begin, int64_t size, double* g_block,
                               int32_t batch);
} ratelab_oracle;

/* Receives the run-level statistics an optimizer reports at the end of a run. */
typedef void (*ratelab_stat_sink)(void* context, const char* name, double value);

typedef struct ratelab_optimizer_object ratelab_optimizer_object; /* opaque, owned by the plugin */

typedef struct ratelab_optimizer_descriptor {
  size_t struct_size;
  const char* key;
  const char* summary;
  const ratelab_param_spec* params;
  size_t param_count;
  /* Always returns an object (NULL only when memory is exhausted); on failure `*status` is an error code and
   * last_error(object) says why. The host destroys it either way. */
  ratelab_optimizer_object* (*create)(const ratelab_param_value* values, size_t value_count, int* status);
  void (*destroy)(ratelab_optimizer_object* object);
  /* The message of the last failure; owned by the object, valid until the next call on it. */
  const char* (*last_error)(const ratelab_optimizer_object* object);
  int (*prepare)(ratelab_optimizer_object* object, const ratelab_problem* problem);
  int (*start)(ratelab_optimizer_object* object, const double* x0, uint64_t master_seed, uint64_t replicate,
               uint64_t salt);
  int (*step)(ratelab_optimizer_object* object, int64_t t, double eta, const ratelab_oracle* oracle);
  /* dim values, valid until the next step. */
  const double* (*iterate)(const ratelab_optimizer_object* object);
  int (*report)(const ratelab_optimizer_object* object, ratelab_stat_sink sink, void* context);
} ratelab_optimizer_descriptor;

typedef struct ratelab_plugin {
  uint32_t abi_major;
  uint32_t abi_minor;
  size_t struct_size;
  const char* name;
  const char* version;
  const ratelab_optimizer_descriptor* optimizers;
  size_t optimizer_count;
} ratelab_plugin;

typedef const ratelab_plugin* (*ratelab_plugin_entry_fn)(void);

#ifdef __cplusplus
}
#endif

#endif /* RATELAB_PLUGIN_ABI_H */
