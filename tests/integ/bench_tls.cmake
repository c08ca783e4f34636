# `edgeplane bench` over TLS against the broker: handshake scenario (TLS 1.2,
# 1.3, resumption), QoS 0 and QoS 1 fan-in over TLS, refused certificates.
# Needs python3-cryptography (Debian's /usr/bin/python3); skipped without.
add_test(NAME integ/bench_tls
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/bench_tls.py $<TARGET_FILE:edgeplane>)
set_tests_properties(integ/bench_tls PROPERTIES LABELS integ TIMEOUT 180 SKIP_RETURN_CODE 77)
