# Fails when BINARY defines a heap allocator of its own (malloc, calloc, realloc, memalign, aligned_alloc,
# posix_memalign: the counting interposer of experiments/allocation_counter.cpp), naming the symbols.
#   cmake -DNM=nm -DBINARY=build/release/tools/ratelab -P tests/malloc_interposer.cmake
# The test ratelab_has_no_malloc_interposer runs it on the production binary; the test
# check_plugin_has_the_malloc_interposer on ratelab-check-plugin, where it must fail (so the check can).
if(NOT NM OR NOT BINARY)
  message(FATAL_ERROR "malloc_interposer.cmake: pass -DNM=<nm> -DBINARY=<executable>")
endif()
execute_process(COMMAND "${NM}" --defined-only "${BINARY}" OUTPUT_VARIABLE symbols RESULT_VARIABLE nm_failed)
if(nm_failed)
  message(FATAL_ERROR "${NM} could not read ${BINARY}")
endif()
set(found "")
foreach(name malloc calloc realloc memalign aligned_alloc posix_memalign)
  if(symbols MATCHES "(^|\n)[0-9a-f]+ [TtWw] ${name}(\n|$)")
    list(APPEND found ${name})
  endif()
endforeach()
if(found)
  list(JOIN found ", " text)
  message(FATAL_ERROR "an executable defines its own allocator: it links the counting malloc of "
                      "experiments/allocation_counter.cpp (ratelab::conformance)\n  ${BINARY}: ${text}\n")
endif()
message(STATUS "${BINARY}: no allocator of its own")
