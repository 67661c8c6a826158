// Not compiled: the layering check's fixture. A core header that includes a tools header must make
// cmake/CheckLayers.cmake fail (ctest: layers_check_rejects_upward_include).
#pragma once
#include "tools/analysis_commands.hpp"
