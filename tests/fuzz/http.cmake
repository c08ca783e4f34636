# HTTP request head parser of the API server; seeds in corpora/http_request
# (first byte: bit 0 selects small limits).
if(TARGET ep_svc_api)
  ep_fuzz(http_request ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_http_request.c ep_svc_api)
endif()
