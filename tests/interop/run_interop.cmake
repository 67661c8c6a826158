# ctest driver for h5py_interop: writes the sample with TraceWriter, then checks it with h5py.
# Expects -DWRITER=... -DPYTHON=... -DCHECK=... -DOUT=<path prefix>.
execute_process(COMMAND "${WRITER}" "${OUT}.h5" "${OUT}.json" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "write_sample failed (${rc})")
endif()
execute_process(COMMAND "${PYTHON}" "${CHECK}" "${OUT}.h5" "${OUT}.json" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "check_h5py.py found mismatches (${rc})")
endif()
