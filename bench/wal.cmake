# Write-ahead log benchmark: append records/s per durability mode, group
# commit vs one fdatasync per record, shared vs per-thread logs, append
# scaling, and startup recovery of 1 000 000 records.
#   ./bench/wal_bench [--records N] [--cold] [--quick]
add_executable(wal_bench ${CMAKE_CURRENT_SOURCE_DIR}/micro/wal_bench.c)
target_link_libraries(wal_bench PRIVATE ep_core)
add_test(NAME bench/wal COMMAND wal_bench --quick)
set_tests_properties(bench/wal PROPERTIES TIMEOUT 300 LABELS bench)
