# `cmake --install`: the ratelab executable, its presets, and what an out-of-tree plugin needs: the core
# headers, the static core library (position-independent) and a CMake package, so that a plugin project
# does find_package(ratelab) and links ratelab::plugin_sdk (examples/plugin/).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set_target_properties(ratelab_core PROPERTIES EXPORT_NAME core)
set_target_properties(ratelab_build_flags PROPERTIES EXPORT_NAME build_flags)
install(TARGETS ratelab_core ratelab_plugin_sdk ratelab_build_flags EXPORT ratelabTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES ${PROJECT_SOURCE_DIR}/core/fast_paths.hpp
              ${PROJECT_SOURCE_DIR}/core/optimizer.hpp ${PROJECT_SOURCE_DIR}/core/params.hpp
              ${PROJECT_SOURCE_DIR}/core/problem.hpp ${PROJECT_SOURCE_DIR}/core/registry.hpp
              ${PROJECT_SOURCE_DIR}/core/rng.hpp ${PROJECT_SOURCE_DIR}/core/run.hpp
              ${PROJECT_SOURCE_DIR}/core/schedule.hpp ${PROJECT_SOURCE_DIR}/core/plugin_abi.h
              ${PROJECT_SOURCE_DIR}/core/plugin_sdk.hpp
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/ratelab/core)
install(TARGETS ratelab ratelab_check_plugin RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})  # side by side: ratelab execs it
if(TARGET ratelab_mpi)
  install(TARGETS ratelab_mpi RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})  # ratelab execs it under mpirun
endif()
# The executable finds them at <prefix>/share/ratelab/presets (experiments/run_to_file.cpp).
install(DIRECTORY ${PROJECT_SOURCE_DIR}/experiments/presets/ DESTINATION ${CMAKE_INSTALL_DATADIR}/ratelab/presets)

set(ratelab_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/ratelab)
install(EXPORT ratelabTargets NAMESPACE ratelab:: DESTINATION ${ratelab_cmake_dir})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/ratelabConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/ratelabConfig.cmake INSTALL_DESTINATION ${ratelab_cmake_dir})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/ratelabConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/ratelabConfig.cmake ${PROJECT_BINARY_DIR}/ratelabConfigVersion.cmake
        DESTINATION ${ratelab_cmake_dir})
