# OPC UA crypto module (src/codec/opcua_crypto): build it here while the
# top-level CMakeLists.txt does not list it yet. Its cert_test runs the
# openssl command line tool on generated certificates; say so when the tool
# is missing, because that check is then skipped.
if(EP_WITH_OPCUA AND NOT TARGET ep_opcua_crypto)
  add_subdirectory(${PROJECT_SOURCE_DIR}/src/codec/opcua_crypto
                   ${PROJECT_BINARY_DIR}/src/codec/opcua_crypto)
endif()
find_program(EP_OPENSSL_CLI openssl)
if(NOT EP_OPENSSL_CLI)
  message(STATUS "openssl tool not found: OPC UA certificate interop check will be skipped")
endif()
