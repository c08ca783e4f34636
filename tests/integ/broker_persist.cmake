# Broker persistence: what survives a clean restart and a kill -9 (v3.1.1
# and v5), damaged log files, a full disk (tmpfs, skipped without mount),
# and the crash loop (20 kills here; EP_BROKER_CRASH_ITERS=1000 for the long
# run of the same script).
add_test(NAME integ/broker_persist
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/broker_persist.py $<TARGET_FILE:edgeplane>)
set_tests_properties(integ/broker_persist PROPERTIES LABELS integ TIMEOUT 300 SKIP_RETURN_CODE 77)
add_test(NAME integ/broker_persist_crash
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/broker_persist_crash.py $<TARGET_FILE:edgeplane>)
# Fails on any loss of an acknowledged message and on any QoS 2 duplicate.
set_tests_properties(integ/broker_persist_crash PROPERTIES LABELS integ TIMEOUT 180)
