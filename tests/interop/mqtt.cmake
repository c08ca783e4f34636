# MQTT interop and hostile-input suite (tests/interop/mqtt/, described in
# tests/interop/README.md). Each file is one ctest test run against the
# edgeplane binary built here; labels: interop. A file whose every test was
# skipped (missing peer) exits 77 and shows as skipped.
#
# The Python tests need Debian's interpreter, which is the one that sees
# python3-paho-mqtt; MQTT.js comes from tests/interop/package-lock.json.

set(EP_INTEROP_PYTHON /usr/bin/python3 CACHE FILEPATH
    "Python for the interop tests (must import paho-mqtt 1.6.1)")
find_program(EP_INTEROP_NPM npm)

set(_ep_mqtt_dir ${CMAKE_CURRENT_SOURCE_DIR}/mqtt)
set(_ep_mqtt_env "EP_BINARY=$<TARGET_FILE:edgeplane>;EP_TEST_BROKER=edgeplane")
if(EP_SANITIZE)
  list(APPEND _ep_mqtt_env "EP_SANITIZED=1")
endif()

# name         file                          timeout (s)
set(_ep_mqtt_tests
    mosquitto_clients  test_mosquitto_clients.py 180
    paho               test_paho.py              300
    hostile            test_hostile.py           300
    mqttjs             test_mqttjs.py            240
    tls_ws             test_tls_ws.py            240
    auth               test_auth.py              300
    auth_custom        test_auth_custom.py       300
    auth_x509          test_auth_x509.py         180)

list(LENGTH _ep_mqtt_tests _n)
math(EXPR _last "${_n} - 1")
foreach(_i RANGE 0 ${_last} 3)
  math(EXPR _j "${_i} + 1")
  math(EXPR _k "${_i} + 2")
  list(GET _ep_mqtt_tests ${_i} _name)
  list(GET _ep_mqtt_tests ${_j} _file)
  list(GET _ep_mqtt_tests ${_k} _timeout)
  add_test(NAME interop/mqtt/${_name}
           COMMAND ${EP_INTEROP_PYTHON} ${_ep_mqtt_dir}/${_file}
           WORKING_DIRECTORY ${_ep_mqtt_dir})
  set_tests_properties(interop/mqtt/${_name} PROPERTIES
    LABELS interop
    TIMEOUT ${_timeout}
    ENVIRONMENT "${_ep_mqtt_env}"
    SKIP_RETURN_CODE 77
    # Timing-sensitive (keep alive, will delay, expiry) and load-heavy
    # (floods, 2100 connections): never alongside each other.
    RESOURCE_LOCK ep_interop_mqtt)
endforeach()
set_tests_properties(interop/mqtt/hostile PROPERTIES RUN_SERIAL TRUE)

if(EP_INTEROP_NPM)
  add_test(NAME interop/mqtt/npm-ci
           COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/npm-install.sh)
  set_tests_properties(interop/mqtt/npm-ci PROPERTIES
    LABELS interop TIMEOUT 300 FIXTURES_SETUP ep_interop_npm)
  set_tests_properties(interop/mqtt/mqttjs PROPERTIES
    FIXTURES_REQUIRED ep_interop_npm)
endif()
