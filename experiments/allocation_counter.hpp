// Counting heap allocations in a hot loop, for the conformance check "allocates nothing after prepare".
//
// Method: allocation_counter.cpp defines malloc, calloc, realloc, memalign, aligned_alloc and posix_memalign
// in the executable that links it, forwarding to glibc's __libc_* entry points. Symbols of the executable
// interpose on every shared object, so the count covers operator new (libstdc++ calls malloc or
// aligned_alloc), Eigen's allocations and code in dlopen'ed plugins alike; only glibc's calls to its own
// allocator from inside libc (fopen, strdup) bypass it. Counting is per thread and only while
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
