# End-to-end tests of the OPC UA connector (src/svc/connector) with
# `edgeplane broker`, `edgeplane connector`, `edgeplane apply/get/delete`,
# our simulation server and the node-opcua server
# tests/opcua/connector_server.js (pinned in tests/opcua/package-lock.json).
# Ports are chosen at run time; relays in the script drop connections and
# hide a broker restart. Skipped (exit 77) without node, node-opcua or
# paho-mqtt.
if(TARGET edgeplane AND TARGET ep_svc_connector)
  find_program(EP_NODE_FOR_CONNECTOR node)
  set(_node_arg "")
  if(EP_NODE_FOR_CONNECTOR)
    set(_node_arg --node ${EP_NODE_FOR_CONNECTOR})
  endif()
  add_test(NAME integ/connector_e2e
    COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/connector_e2e.py
            --edgeplane $<TARGET_FILE:edgeplane> --srcdir ${PROJECT_SOURCE_DIR} ${_node_arg})
  set_tests_properties(integ/connector_e2e PROPERTIES
    TIMEOUT 400 SKIP_RETURN_CODE 77 LABELS "integ;opcua;connector")
endif()

# Metrics, /healthz and /readyz of `edgeplane connector --http` and of the
# single endpoint of `edgeplane run --http`; and the bounded offline buffer
# across a broker killed and restarted. Our binaries only (opcua-sim as the
# server); skipped (77) without paho-mqtt.
if(TARGET edgeplane AND TARGET ep_svc_connector AND TARGET ep_svc_api)
  foreach(_t connector_metrics connector_buffer)
    add_test(NAME integ/${_t}
      COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/${_t}.py
              --edgeplane $<TARGET_FILE:edgeplane>)
    set_tests_properties(integ/${_t} PROPERTIES
      TIMEOUT 180 SKIP_RETURN_CODE 77 LABELS "integ;opcua;connector")
  endforeach()
endif()
