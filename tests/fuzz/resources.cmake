# Connector resources (AssetEndpointProfile / Asset YAML, multi-document):
# parse, re-parse from the stored text as the connector does.
if(TARGET ep_svc_connector)
  ep_fuzz(resources ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_resources.c ep_svc_connector)
endif()
