#include "experiments/allocation_counter.hpp"

#include <cstddef>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define RATELAB_COUNT_ALLOCATIONS 0
#else
#define RATELAB_COUNT_ALLOCATIONS 1
#endif

namespace {
thread_local bool armed = false;
thread_local long allocation_count = 0;
}  // namespace

#if RATELAB_COUNT_ALLOCATIONS
extern "C" {
void* __libc_malloc(std::size_t size);
void* __libc_calloc(std::size_t count, std::size_t size);
void* __libc_realloc(void* p, std::size_t size);

void* malloc(std::size_t size) noexcept {
  if (armed) ++allocation_count;
  return __libc_malloc(size);
}
void* calloc(std::size_t count, std::size_t size) noexcept {
  if (armed) ++allocation_count;
  return __libc_calloc(count, size);
}
void* realloc(void* p, std::size_t size) noexcept {
  if (armed) ++allocation_count;
  return __libc_realloc(p, size);
}
}
#endif

namespace ratelab::allocations {

bool counting_available() { return RATELAB_COUNT_ALLOCATIONS != 0; }
void arm() {
  allocation_count = 0;
  armed = true;
}
long disarm() {
  armed = false;
  return allocation_count;
}

}  // namespace ratelab::allocations
