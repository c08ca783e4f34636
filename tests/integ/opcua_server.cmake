# OPC UA server interop (src/svc/opcua, `edgeplane opcua-sim`): node-opcua
# clients (tests/opcua/server_*.js) against our server in every security
# policy x mode x user token, hostile input with a healthy client in
# parallel, and the refusals of the list services (ServiceFault codes and
# their order). Each script starts opcua-sim on a free port itself, waits for
# its readiness line and stops it by pid. node-opcua comes from
# tests/opcua/package-lock.json (tools/install-deps.sh); without node the
# tests are reported as skipped.
if(TARGET edgeplane AND TARGET ep_svc_opcua)
  find_program(EP_NODE_CLI node)
  foreach(_t interop hostile refusals)
    if(EP_NODE_CLI AND EXISTS ${PROJECT_SOURCE_DIR}/tests/opcua/server_${_t}.js)
      add_test(NAME interop/opcua_server_${_t}
        COMMAND ${EP_NODE_CLI} ${PROJECT_SOURCE_DIR}/tests/opcua/server_${_t}.js
                --edgeplane $<TARGET_FILE:edgeplane>)
    else()
      add_test(NAME interop/opcua_server_${_t}
        COMMAND sh -c "echo 'SKIP: node not installed (tools/install-deps.sh test)'; exit 77")
    endif()
    set_tests_properties(interop/opcua_server_${_t} PROPERTIES
      TIMEOUT 240 SKIP_RETURN_CODE 77 LABELS "interop;opcua")
  endforeach()
endif()
