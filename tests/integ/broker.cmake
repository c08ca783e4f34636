# The broker's observability endpoints, checked with real traffic.
add_test(NAME integ/broker_metrics
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/broker_metrics.py $<TARGET_FILE:edgeplane>)
set_tests_properties(integ/broker_metrics PROPERTIES LABELS integ TIMEOUT 60 SKIP_RETURN_CODE 77)
