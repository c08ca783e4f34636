# Integration tests of the auth module (src/svc/auth):
#  - auth_scram_broker: SCRAM-SHA-256 through the real broker's enhanced
#    authentication hook, over TCP (C, cmocka);
#  - auth_passwd_cli: `edgeplane passwd` end to end (file mode, add, change,
#    delete, --scram, refusals), entries checked with Python's hashlib.
if(TARGET ep_svc_auth AND TARGET ep_svc_broker)
  add_executable(integ_auth_scram_broker ${CMAKE_CURRENT_LIST_DIR}/auth_scram_broker.c)
  target_link_libraries(integ_auth_scram_broker PRIVATE ep_svc_auth ep_svc_broker
                        ep_test_mqtt_raw PkgConfig::CMOCKA)
  add_test(NAME integ/auth_scram_broker COMMAND integ_auth_scram_broker)
  set_tests_properties(integ/auth_scram_broker PROPERTIES TIMEOUT 120 LABELS "integ;auth")
endif()
if(TARGET edgeplane AND TARGET ep_svc_auth)
  add_test(NAME integ/auth_passwd_cli
    COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/auth_passwd_cli.py
            --edgeplane $<TARGET_FILE:edgeplane>)
  set_tests_properties(integ/auth_passwd_cli PROPERTIES TIMEOUT 120 LABELS "integ;auth"
                       SKIP_RETURN_CODE 77)
endif()
