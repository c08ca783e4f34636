# OPC UA crypto module (src/codec/opcua_crypto): build it here while the
# top-level CMakeLists.txt does not list it yet, and check that the stock
# openssl command line tool parses the certificates we generate.
if(EP_WITH_OPCUA AND NOT TARGET ep_opcua_crypto)
  add_subdirectory(${PROJECT_SOURCE_DIR}/src/codec/opcua_crypto
                   ${PROJECT_BINARY_DIR}/src/codec/opcua_crypto)
endif()
