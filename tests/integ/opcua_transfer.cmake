# OPC UA client session recovery against `edgeplane opcua-sim`
# (tests/opcua/transfer_test.c): the connection is cut for longer than the
# session timeout, the server times the session out but keeps its
# subscription, and the client creates a new session and moves the
# subscription over with TransferSubscriptions without losing a counter
# value. About 20 s.
if(TARGET edgeplane AND TARGET ep_svc_opcua_client)
  add_executable(opcua_transfer_test ${PROJECT_SOURCE_DIR}/tests/opcua/transfer_test.c)
  target_link_libraries(opcua_transfer_test PRIVATE ep_svc_opcua_client)
  add_test(NAME integ/opcua_transfer
    COMMAND opcua_transfer_test $<TARGET_FILE:edgeplane>)
  set_tests_properties(integ/opcua_transfer PROPERTIES
    TIMEOUT 120 SKIP_RETURN_CODE 77 LABELS "integ;opcua")
endif()
