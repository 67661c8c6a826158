/* A plugin of the right ABI major whose ratelab_plugin struct is smaller than ABI 1.0's. */
#include "core/plugin_abi.h"

const ratelab_plugin* ratelab_plugin_entry(void) {
  static const ratelab_plugin plugin = {RATELAB_PLUGIN_ABI_MAJOR, 0, 16, "truncated", "1.0", 0, 0};
  return &plugin;
}
