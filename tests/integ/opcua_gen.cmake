# Generated OPC UA tables are up to date: regenerate src/codec/opcua/gen from
# the OPC Foundation reference files with tools/gen_opcua.py into a scratch
# directory and compare with the committed output. The reference folder
# (../shared/reference/opcua) is not part of the project; without it the test
# is reported as skipped, never as passed.
#
# This file is both the ctest fragment (included by tests/integ) and, run
# with cmake -P, the check itself.

if(NOT CMAKE_SCRIPT_MODE_FILE)
  set(_ref ${PROJECT_SOURCE_DIR}/../shared/reference/opcua)
  if(EXISTS /usr/bin/python3)
    set(_py /usr/bin/python3)
  else()
    find_program(_py NAMES python3)
  endif()
  add_test(NAME integ/opcua_gen
    COMMAND ${CMAKE_COMMAND}
      -DREF=${_ref}
      -DPY=${_py}
      -DGEN=${PROJECT_SOURCE_DIR}/tools/gen_opcua.py
      -DCOMMITTED=${PROJECT_SOURCE_DIR}/src/codec/opcua/gen
      -DSCRATCH=${CMAKE_CURRENT_BINARY_DIR}/opcua_gen
      -P ${CMAKE_CURRENT_LIST_FILE})
  set_tests_properties(integ/opcua_gen PROPERTIES
    LABELS integ TIMEOUT 120 SKIP_REGULAR_EXPRESSION "SKIPPED:")
  return()
endif()

# ---- script mode ----
if(NOT EXISTS ${REF}/Opc.Ua.Types.bsd)
  message("SKIPPED: OPC UA reference files not found at ${REF}; "
          "the committed src/codec/opcua/gen cannot be checked here")
  return()
endif()
if(NOT PY OR NOT EXISTS ${PY})
  message("SKIPPED: python3 not found; cannot run ${GEN}")
  return()
endif()

file(REMOVE_RECURSE ${SCRATCH})
execute_process(COMMAND ${PY} ${GEN} ${REF} ${SCRATCH}
                RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "tools/gen_opcua.py failed (${_rc})")
endif()

file(GLOB _fresh RELATIVE ${SCRATCH} ${SCRATCH}/*)
file(GLOB _committed RELATIVE ${COMMITTED} ${COMMITTED}/*)
list(SORT _fresh)
list(SORT _committed)
if(NOT "${_fresh}" STREQUAL "${_committed}")
  message(FATAL_ERROR "generated file set differs:\n"
          "  generated: ${_fresh}\n  committed: ${_committed}")
endif()

set(_stale "")
foreach(_f ${_fresh})
  execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files
                          ${SCRATCH}/${_f} ${COMMITTED}/${_f}
                  RESULT_VARIABLE _diff)
  if(NOT _diff EQUAL 0)
    list(APPEND _stale ${_f})
    execute_process(COMMAND diff -u ${COMMITTED}/${_f} ${SCRATCH}/${_f}
                    OUTPUT_VARIABLE _out ERROR_QUIET)
    string(SUBSTRING "${_out}" 0 4000 _out)
    message("--- ${_f}\n${_out}")
  endif()
endforeach()
if(_stale)
  message(FATAL_ERROR "stale generated files: ${_stale}\n"
          "regenerate with: tools/gen_opcua.py ../shared/reference/opcua "
          "src/codec/opcua/gen")
endif()
message("src/codec/opcua/gen matches tools/gen_opcua.py output "
        "(${_fresh})")
