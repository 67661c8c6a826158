/* A plugin written in plain C against core/plugin_abi.h whose optimizer key collides with the built-in
 * sgd. Registration must fail before any of its functions is called, so they only report an error. */
#include <stddef.h>

#include "core/plugin_abi.h"

static ratelab_optimizer_object* create(const ratelab_param_value* v, size_t n, int* status) {
  (void)v, (void)n;
  *status = RATELAB_RUN_ERROR;
  return NULL;
}
static void destroy(ratelab_optimizer_object* o) { (void)o; }
static const char* last_error(const ratelab_optimizer_object* o) { (void)o; return "never created"; }
static int prepare(ratelab_optimizer_object* o, const ratelab_problem* p) { (void)o, (void)p; return RATELAB_RUN_ERROR; }
static int start(ratelab_optimizer_object* o, const double* x0, uint64_t s, uint64_t r, uint64_t salt) {
  (void)o, (void)x0, (void)s, (void)r, (void)salt;
  return RATELAB_RUN_ERROR;
}
static int step(ratelab_optimizer_object* o, int64_t t, double eta, const ratelab_oracle* oracle) {
  (void)o, (void)t, (void)eta, (void)oracle;
  return RATELAB_RUN_ERROR;
}
static const double* iterate(const ratelab_optimizer_object* o) { (void)o; return NULL; }
static int report(const ratelab_optimizer_object* o, ratelab_stat_sink sink, void* ctx) {
  (void)o, (void)sink, (void)ctx;
  return RATELAB_OK;
}

const ratelab_plugin* ratelab_plugin_entry(void) {
  static const ratelab_optimizer_descriptor optimizers[] = {{sizeof(ratelab_optimizer_descriptor), "sgd",
                                                             "collides with the built-in sgd", NULL, 0, create,
                                                             destroy, last_error, prepare, start, step, iterate,
                                                             report}};
  static const ratelab_plugin plugin = {RATELAB_PLUGIN_ABI_MAJOR, RATELAB_PLUGIN_ABI_MINOR, sizeof(ratelab_plugin),
                                        "colliding", "0.1", optimizers, 1};
  return &plugin;
}
