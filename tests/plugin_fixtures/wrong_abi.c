/* A plugin built for the next ABI major version. */
#include "core/plugin_abi.h"

const ratelab_plugin* ratelab_plugin_entry(void) {
  static const ratelab_plugin plugin = {RATELAB_PLUGIN_ABI_MAJOR + 1, 0, sizeof(ratelab_plugin), "future", "9.0", 0, 0};
  return &plugin;
}
