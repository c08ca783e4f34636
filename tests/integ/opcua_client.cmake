# OPC UA client interop (src/svc/opcua_client, `edgeplane opcua`): our client
# against a node-opcua server (tests/opcua/client_server.js) in every
# security policy x mode x user token type, exit codes, the rejected/ +
# trust workflow, and a connection dropped in the middle of a subscription
# (reconnect, reactivate, republish: no gap). Also against `edgeplane
# opcua-sim` when the binary has it. node-opcua comes from
# tests/opcua/package-lock.json (tools/install-deps.sh test); without it the
# test is reported as skipped.
if(TARGET edgeplane AND TARGET ep_svc_opcua_client)
  find_program(EP_NODE_CLI node)
  if(EP_NODE_CLI)
    add_test(NAME interop/opcua_client
      COMMAND ${EP_NODE_CLI} ${PROJECT_SOURCE_DIR}/tests/opcua/client_interop.js
              --edgeplane $<TARGET_FILE:edgeplane>)
  else()
    add_test(NAME interop/opcua_client
      COMMAND sh -c "echo 'SKIP: node not installed (tools/install-deps.sh test)'; exit 77")
  endif()
  set_tests_properties(interop/opcua_client PROPERTIES
    TIMEOUT 300 SKIP_RETURN_CODE 77 LABELS "interop;opcua")
endif()
