# The layering check: nothing in a lower layer includes a header of a higher one.
#
#   core  <-  optimizers, problems  <-  experiments  ->  results  <-  tools
#
# Usage (ctest runs it as the test `layers`; anyone can run it by hand):
#   cmake -DSOURCE_DIR=/path/to/ratelab -P cmake/CheckLayers.cmake
# Fails (exit status non-zero) listing every offending `#include "folder/..."` with file and line.
# A folder's allowed includes are declared once, here; folders not listed (tools, tests, bench, examples)
# may include anything.
if(NOT SOURCE_DIR)
  message(FATAL_ERROR "CheckLayers.cmake: pass -DSOURCE_DIR=<the source tree>")
endif()

set(allowed_core        core)
set(allowed_optimizers  core optimizers)
set(allowed_problems    core problems)
set(allowed_results     core results)
set(allowed_experiments core optimizers problems results experiments)
set(layers core optimizers problems results experiments)
# Every folder a project include may name; an include of another folder ("Eigen/Core" is <>) is not ours.
set(project_folders core optimizers problems results experiments tools)

set(violations "")
set(checked 0)
foreach(layer IN LISTS layers)
  file(GLOB_RECURSE sources "${SOURCE_DIR}/${layer}/*.hpp" "${SOURCE_DIR}/${layer}/*.cpp" "${SOURCE_DIR}/${layer}/*.h")
  foreach(source IN LISTS sources)
    math(EXPR checked "${checked} + 1")
    file(STRINGS "${source}" lines)
    set(line_number 0)
    foreach(line IN LISTS lines)
      math(EXPR line_number "${line_number} + 1")
      if(line MATCHES "^[ \t]*#[ \t]*include[ \t]*\"([A-Za-z0-9_]+)/")
        set(folder "${CMAKE_MATCH_1}")
        list(FIND project_folders "${folder}" is_ours)
        list(FIND allowed_${layer} "${folder}" is_allowed)
        if(is_ours GREATER -1 AND is_allowed EQUAL -1)
          file(RELATIVE_PATH relative "${SOURCE_DIR}" "${source}")
          list(JOIN allowed_${layer} ", " allowed_text)
          list(APPEND violations "${relative}:${line_number}: ${layer}/ includes ${folder}/ (${layer}/ may include: ${allowed_text})")
        endif()
      endif()
    endforeach()
  endforeach()
endforeach()

if(violations)
  list(JOIN violations "\n  " text)
  message(FATAL_ERROR "layering violations (a lower layer includes a higher one):\n  ${text}\n"
                      "Move the code the lower layer needs down (results/ for questions about a trace, core/ for "
                      "what every component shares), or the include up.")
endif()
message(STATUS "layers: ${checked} files checked, no lower layer includes a higher one")
