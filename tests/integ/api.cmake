# Observability endpoints as a separate process: ep_api_serve is started on
# a free port, the check waits for /readyz (never a sleep), validates
# /metrics with the strict format checker and stops the server by signal.
# The in-process protocol tests are src/svc/api/server_test.c. A missing
# curl makes the check exit 77 (skipped, never passed).
if(TARGET ep_svc_api)
  add_executable(ep_api_serve ${CMAKE_CURRENT_LIST_DIR}/api_serve.c)
  target_link_libraries(ep_api_serve PRIVATE ep_svc_api)
  if(EXISTS /usr/bin/python3)
    set(_api_py /usr/bin/python3)
  else()
    find_program(_api_py NAMES python3)
  endif()
  add_test(NAME integ/api_serve
    COMMAND ${_api_py} ${CMAKE_CURRENT_LIST_DIR}/api_serve_check.py $<TARGET_FILE:ep_api_serve>)
  set_tests_properties(integ/api_serve PROPERTIES
    TIMEOUT 60 LABELS "integ;api" SKIP_RETURN_CODE 77)
endif()
