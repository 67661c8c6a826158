// Loading optimizer plugins (shared libraries speaking core/plugin_abi.h) into a registry.
//
// A plugin's components are registered like built-in ones (same parameter declarations, so the CLI,
// presets, validation, `describe` and the HDF5 attributes treat them alike) with the origin
// "plugin NAME VERSION (PATH, fnv1a64 HASH)", which `ratelab list` shows and every trace file that uses
// them records (root attribute `plugins`). Every failure is a ConfigError saying what is wrong and what
// to do: file not found, not loadable, not a ratelab plugin, another ABI major (both versions named), a
// struct smaller than this ABI's, a key that collides with a built-in or another plugin (the registry's
// message names both origins). A component is never half-registered: a plugin is added whole or not at all.
#pragma once

#include <string>
#include <vector>

#include "core/registry.hpp"

namespace ratelab {

struct LoadedPlugin {
  std::string name, version, path, hash;  // path as given; hash "fnv1a64 <16 hex digits>" of the file
  std::string origin;                     // what the registry records for its components
  std::vector<std::string> optimizers;    // keys it registered
};

LoadedPlugin load_plugin(Registry& registry, const std::string& path);

// Every *.so in the directories of RATELAB_PLUGIN_PATH (colon-separated), each directory sorted by name.
std::vector<std::string> plugin_path_libraries();

// The plugins of RATELAB_PLUGIN_PATH, then `explicit_paths` (--plugin), skipping a file already loaded.
std::vector<LoadedPlugin> load_plugins(Registry& registry, const std::vector<std::string>& explicit_paths);

// FNV-1a 64 of a file's bytes, as 16 hex digits; ConfigError if it cannot be read.
std::string fnv1a64_of_file(const std::string& path);

}  // namespace ratelab
