ep_fuzz(ws ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_ws.c ep_codec_ws)
