# OPC UA codec harnesses. Seeds in corpora/opcua_variant and
# corpora/opcua_message come from the codec unit tests: run
#   EP_UA_CORPUS_DIR=<dir> ep_codec_opcua_roundtrip_test (and messages_test)
# then merge <dir>/<name> into corpora/<name> with the harness's -merge=1.
ep_fuzz(opcua_variant ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_opcua_variant.c
        ep_codec_opcua)
ep_fuzz(opcua_message ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_opcua_message.c
        ep_codec_opcua)
