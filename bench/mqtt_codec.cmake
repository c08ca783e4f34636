# MQTT codec microbenchmark: decode/encode ns per packet, fan-out header
# writes, and topic matching per subscription count.
#   ./bench/mqtt_codec_bench [--quick]
add_executable(mqtt_codec_bench ${CMAKE_CURRENT_SOURCE_DIR}/micro/mqtt_codec_bench.c)
target_link_libraries(mqtt_codec_bench PRIVATE ep_codec_mqtt)
add_test(NAME bench/mqtt_codec COMMAND mqtt_codec_bench --quick)
set_tests_properties(bench/mqtt_codec PROPERTIES TIMEOUT 120 LABELS bench)
