# Config reader and binder: arbitrary bytes -> tree -> sample table, with a
# dump/re-parse round trip as the oracle.
ep_fuzz(cfg ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_cfg.c ep_core)
