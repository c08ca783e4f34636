# kill -9 test of the write-ahead log (src/core/wal.c): a child appends in
# sync mode and prints every acknowledged seq; the parent kills it at random
# times, recovers, and checks every acknowledged record is present and
# intact. 25 iterations here; EP_WAL_CRASH_ITERS=1000 for a long run
# (EP_WAL_CRASH_SEED to replay one).
add_executable(wal_crash ${CMAKE_CURRENT_LIST_DIR}/wal_crash.c)
target_link_libraries(wal_crash PRIVATE ep_core)
add_test(NAME integ/wal_crash COMMAND wal_crash --iterations 25)
set_tests_properties(integ/wal_crash PROPERTIES TIMEOUT 300 LABELS "integ;wal")
