// Counting heap allocations in a hot loop, for the conformance check "allocates nothing after prepare".
//
// Method: allocation_counter.cpp defines malloc, calloc and realloc in the executable that links it,
// forwarding to glibc's __libc_malloc / __libc_calloc / __libc_realloc. Symbols of the executable interpose
// on every shared object, so the count covers operator new (libstdc++ calls malloc), Eigen's aligned
// allocations (std::malloc) and code in dlopen'ed plugins alike. Counting is per thread and only while
// armed: one thread-local flag test per allocation otherwise. Under AddressSanitizer the allocator belongs to
// the sanitizer, so counting is unavailable (the check is then reported as skipped, not passed).
#pragma once

namespace ratelab::allocations {

bool counting_available();
// Starts counting the allocations of the calling thread.
void arm();
// Stops counting and returns how many allocations the calling thread made since arm().
long disarm();

}  // namespace ratelab::allocations
