# Auth module parsers: the password file, SCRAM messages (server and
# client side) and the authorization rules file (through core/cfg).
ep_fuzz(auth_passwd ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_auth_passwd.c ep_svc_auth)
ep_fuzz(auth_scram ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_auth_scram.c ep_svc_auth)
ep_fuzz(auth_rules ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_auth_rules.c ep_svc_auth)
# The answer of a custom authentication server (status + JSON body).
ep_fuzz(auth_callout ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_auth_callout.c ep_svc_auth)
