# The configuration reference in docs/ is generated from the binding tables:
# fail when the committed file no longer matches what the code says.
add_test(NAME integ/docs_broker_config
  COMMAND sh ${PROJECT_SOURCE_DIR}/tools/check-config-docs.sh $<TARGET_FILE:edgeplane>
          ${PROJECT_SOURCE_DIR}/docs/broker-config.md)
set_tests_properties(integ/docs_broker_config PROPERTIES LABELS integ TIMEOUT 30)
