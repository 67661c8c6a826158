# Statistics, tables and plots over trace data (no HDF5 here: everything takes an in-memory TraceData).
# Included from results/CMakeLists.txt. The CLI's analysis commands live in tools/ but are built here so
# the test suite can link them without the ratelab executable.
add_library(ratelab_analysis STATIC
  ${PROJECT_SOURCE_DIR}/results/statistics.cpp
  ${PROJECT_SOURCE_DIR}/tools/analysis_commands.cpp)
add_library(ratelab::analysis ALIAS ratelab_analysis)
target_link_libraries(ratelab_analysis PUBLIC ratelab::core PRIVATE ratelab_build_flags)
