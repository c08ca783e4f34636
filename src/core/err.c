/* err.c - tables generated from EP_ERR_MAP; see err.h. */
#include "core/err.h"

const char *ep_strerror(ep_err err)
{
    switch (err) {
#define EP_ERR_STR_(name, val, msg)                                                                \
    case (val):                                                                                    \
        return (msg);
        EP_ERR_MAP(EP_ERR_STR_)
#undef EP_ERR_STR_
    default:
        return "unknown error";
    }
}

const char *ep_err_name(ep_err err)
{
    switch (err) {
#define EP_ERR_NAME_(name, val, msg)                                                               \
    case (val):                                                                                    \
        return "EP_" #name;
        EP_ERR_MAP(EP_ERR_NAME_)
#undef EP_ERR_NAME_
    default:
        return "EP_EUNKNOWN";
    }
}

ep_err ep_err_from_errno(int e)
{
    switch (e) {
    case 0:
        return EP_EOK;
    case ENOMEM:
        return EP_ENOMEM;
    case EINVAL:
        return EP_EINVAL;
    case EAGAIN:
        return EP_EAGAIN;
    case ENOENT:
        return EP_ENOTFOUND;
    case EEXIST:
        return EP_EEXIST;
    case EPIPE:
    case ECONNRESET:
        return EP_ECLOSED;
    case EIO:
        return EP_EIO;
    case ETIMEDOUT:
        return EP_ETIMEDOUT;
    case EADDRINUSE:
        return EP_EADDRINUSE;
    case ECONNREFUSED:
        return EP_ECONNREFUSED;
    case EPERM:
    case EACCES:
        return EP_EPERM;
    case ENOSPC:
    case EDQUOT:
        return EP_EFULL;
    default:
        return EP_ESYS;
    }
}
