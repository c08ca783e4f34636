# OPC UA ReverseHello against node-opcua in both directions
# (tests/opcua/reverse_test.c): our server dials node-opcua's
# ClientReverseConnect listener (tests/opcua/server_reverse.js), and a
# node-opcua server with reverseConnect (tests/opcua/client_reverse.js) dials
# our client-role channel. Without node or tests/opcua/node_modules the test
# is reported as skipped.
if(TARGET ep_svc_opcua)
  find_program(EP_NODE_CLI node)
  add_executable(opcua_reverse_test ${PROJECT_SOURCE_DIR}/tests/opcua/reverse_test.c)
  target_link_libraries(opcua_reverse_test PRIVATE ep_svc_opcua)
  if(EP_NODE_CLI)
    add_test(NAME interop/opcua_reverse
      COMMAND opcua_reverse_test ${EP_NODE_CLI} ${PROJECT_SOURCE_DIR}/tests/opcua)
  else()
    add_test(NAME interop/opcua_reverse
      COMMAND sh -c "echo 'SKIP: node not installed (tools/install-deps.sh test)'; exit 77")
  endif()
  set_tests_properties(interop/opcua_reverse PROPERTIES
    TIMEOUT 120 SKIP_RETURN_CODE 77 LABELS "interop;opcua")
endif()
