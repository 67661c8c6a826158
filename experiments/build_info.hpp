// What this build is: written at build time by cmake/BuildInfo.cmake (the generated build_info.cpp).
#pragma once

namespace ratelab::build_info {
extern const char* const git_commit;  // "unknown" outside a git checkout
extern const bool git_dirty;          // tracked files differed from the commit
extern const char* const version;     // project(VERSION) in CMakeLists.txt
extern const char* const compiler;
extern const char* const compile_flags;
}  // namespace ratelab::build_info
