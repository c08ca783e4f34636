/*
 * err.h - the one error type of edgeplane.
 *
 * ep_err is an int: 0 means success, negative values are EP_E* codes. The
 * codes, their names and messages come from one X-macro table (EP_ERR_MAP) so
 * that the enum, ep_strerror() and ep_err_name() can never disagree.
 *
 * Protocol result codes (MQTT reason codes, OPC UA status codes) are separate
 * types owned by their codecs; they are mapped explicitly at the boundary and
 * never mixed into ep_err.
 */
#ifndef EP_CORE_ERR_H
#define EP_CORE_ERR_H

#include <errno.h>

typedef int ep_err;

/* XX(NAME, value, "message") */
#define EP_ERR_MAP(XX)                                                                             \
    XX(EOK, 0, "success")                                                                          \
    XX(ENOMEM, -1, "out of memory")                                                                \
    XX(EINVAL, -2, "invalid argument")                                                             \
    XX(EPROTO, -3, "protocol error")                                                               \
    XX(EMALFORMED, -4, "malformed packet")                                                         \
    XX(EAGAIN, -5, "resource temporarily unavailable")                                             \
    XX(ETOOBIG, -6, "value exceeds configured limit")                                              \
    XX(ENOTFOUND, -7, "not found")                                                                 \
    XX(EEXIST, -8, "already exists")                                                               \
    XX(ECLOSED, -9, "connection closed")                                                           \
    XX(EIO, -10, "input/output error")                                                             \
    XX(ETIMEDOUT, -11, "timed out")                                                                \
    XX(EADDRINUSE, -12, "address already in use")                                                  \
    XX(ECONNREFUSED, -13, "connection refused")                                                    \
    XX(EPERM, -14, "operation not permitted")                                                      \
    XX(ECONFIG, -15, "configuration error")                                                        \
    XX(EFULL, -16, "queue or buffer full")                                                         \
    XX(ESTATE, -17, "operation not valid in this state")                                           \
    XX(EUTF8, -18, "invalid UTF-8 string")                                                         \
    XX(ESYS, -19, "system error")                                                                  \
    XX(EUNSUPPORTED, -20, "not supported")                                                         \
    XX(ENEEDMORE, -21, "more input needed")                                                        \
    XX(ECRYPTO, -22, "cryptographic operation failed")                                             \
    XX(ESECURITY, -23, "security check failed")

enum {
#define EP_ERR_ENUM_(name, val, msg) EP_##name = (val),
    EP_ERR_MAP(EP_ERR_ENUM_)
#undef EP_ERR_ENUM_
};

/* ep_strerror returns a static, human-readable message for err. Any thread. */
const char *ep_strerror(ep_err err);
/* ep_err_name returns the static symbolic name ("EP_EINVAL") of err. */
const char *ep_err_name(ep_err err);
/* ep_err_from_errno maps a POSIX errno value to the closest ep_err. Call it at
 * the syscall boundary so errno never escapes a function. */
ep_err ep_err_from_errno(int e);

#define EP_ERR_FROM_ERRNO() ep_err_from_errno(errno)

#endif
