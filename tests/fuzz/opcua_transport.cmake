# OPC UA transport harnesses (src/svc/opcua): opc.tcp framing decoders and
# a server channel fed through a socketpair (chunks, sequence numbers,
# reassembly limits, message decoding). Seeds: corpora/opcua_tcp and
# corpora/opcua_channel (Hello/Ack/Error/ReverseHello vectors of
# tcp_test.c, and MSG chunks carrying GetEndpoints/Read requests).
if(TARGET ep_svc_opcua)
  ep_fuzz(opcua_tcp ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_opcua_tcp.c ep_svc_opcua)
  ep_fuzz(opcua_channel ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_opcua_channel.c ep_svc_opcua)
endif()
