# Integration tests of the MQTT client library (src/svc/mqttc) through
# `edgeplane pub` / `edgeplane sub`, against Mosquitto and against our own
# broker (mqttc_tls: TLS, mutual TLS, passwords and SCRAM-SHA-256, with a
# throw-away PKI). Each script picks its broker port at run time, waits for the
# broker by connecting, stops it by pid, and ends with "N passed, N failed".
# A missing peer (mosquitto, mosquitto_pub/sub) makes the script exit 77,
# which ctest reports as skipped - never as passed.
if(TARGET edgeplane AND TARGET ep_svc_mqttc)
  set(_mqttc_py /usr/bin/python3)
  foreach(_broker mosquitto edgeplane)
    foreach(_t pubsub session restart tls)
      add_test(NAME integ/mqttc_${_t}_${_broker}
        COMMAND ${_mqttc_py} ${CMAKE_CURRENT_LIST_DIR}/mqttc_${_t}.py
                --edgeplane $<TARGET_FILE:edgeplane> --broker ${_broker})
      set_tests_properties(integ/mqttc_${_t}_${_broker} PROPERTIES
        TIMEOUT 180 LABELS "integ;mqttc" SKIP_RETURN_CODE 77)
    endforeach()
  endforeach()
  # Re-authentication (AUTH 0x19) needs the library itself: a small client
  # program, driven against our broker by mqttc_reauth.py.
  add_executable(integ_mqttc_reauth_client ${CMAKE_CURRENT_LIST_DIR}/mqttc_reauth_client.c)
  target_link_libraries(integ_mqttc_reauth_client PRIVATE ep_svc_mqttc)
  add_test(NAME integ/mqttc_reauth
    COMMAND ${_mqttc_py} ${CMAKE_CURRENT_LIST_DIR}/mqttc_reauth.py
            --edgeplane $<TARGET_FILE:edgeplane>
            --client $<TARGET_FILE:integ_mqttc_reauth_client>)
  set_tests_properties(integ/mqttc_reauth PROPERTIES
    TIMEOUT 120 LABELS "integ;mqttc" SKIP_RETURN_CODE 77)
  # The disk spool across a SIGKILL of the publishing process: a small
  # client program, driven against our broker by mqttc_spool.py.
  add_executable(integ_mqttc_spool_client ${CMAKE_CURRENT_LIST_DIR}/mqttc_spool_client.c)
  target_link_libraries(integ_mqttc_spool_client PRIVATE ep_svc_mqttc)
  add_test(NAME integ/mqttc_spool
    COMMAND ${_mqttc_py} ${CMAKE_CURRENT_LIST_DIR}/mqttc_spool.py
            --edgeplane $<TARGET_FILE:edgeplane>
            --client $<TARGET_FILE:integ_mqttc_spool_client>)
  set_tests_properties(integ/mqttc_spool PROPERTIES
    TIMEOUT 180 LABELS "integ;mqttc" SKIP_RETURN_CODE 77)
  # No real broker acknowledges out of order on demand: this one runs
  # against a scripted fake server (see the script).
  add_test(NAME integ/mqttc_ooo_acks
    COMMAND ${_mqttc_py} ${CMAKE_CURRENT_LIST_DIR}/mqttc_ooo_acks.py
            --edgeplane $<TARGET_FILE:edgeplane>)
  set_tests_properties(integ/mqttc_ooo_acks PROPERTIES
    TIMEOUT 120 LABELS "integ;mqttc" SKIP_RETURN_CODE 77)
endif()
