# Log recovery harness: arbitrary bytes as segment/snapshot files must be
# recovered or rejected cleanly, and recovery must be idempotent. Seeds in
# corpora/wal_reader are segments written by ep_wal (see the harness).
ep_fuzz(wal_reader ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_wal_reader.c ep_core)
