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
// Aligned forms (aligned operator new, Eigen with over-aligned types): glibc's memalign serves them all.
void* __libc_memalign(std::size_t alignment, std::size_t size);
void* memalign(std::size_t alignment, std::size_t size) noexcept {
  if (armed) ++allocation_count;
  return __libc_memalign(alignment, size);
}
void* aligned_alloc(std::size_t alignment, std::size_t size) noexcept {
  if (armed) ++allocation_count;
  return __libc_memalign(alignment, size);
}
int posix_memalign(void** out, std::size_t alignment, std::size_t size) noexcept {
  if (alignment % sizeof(void*) != 0 || (alignment & (alignment - 1)) != 0) return 22;  // EINVAL
  if (armed) ++allocation_count;
  void* p = __libc_memalign(alignment, size);
  if (!p && size != 0) return 12;  // ENOMEM
  *out = p;
  return 0;
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
