/*
 * services.c - typed helpers over ep_uac_request for the common services.
 * Each builds the request on the stack (borrowing the caller's arrays) and
 * hands it to the request table, which encodes or copies it at once.
 */
#include <string.h>

#include "svc/opcua_client/uac_int.h"

ep_err ep_uac_request(ep_uac *c, const ep_ua_type *req_type, const void *req, ep_uac_resp_cb cb,
                      void *ud)
{
    if (c == NULL || req_type == NULL || req == NULL || req_type->kind != EP_UA_KIND_STRUCT ||
        req_type->nfields == 0 || req_type->fields[0].type != EP_UA_TYPE_RequestHeader)
        return EP_EINVAL;
    if (c->state == EP_UAC_DISCONNECTED || c->state == EP_UAC_CLOSING)
        return EP_ESTATE;
    ep_uac_req *r = ep_uac__req_new(c, EP_UAC_REQ_USER, req_type);
    if (r == NULL)
        return EP_ENOMEM;
    if (r->resp_type == NULL) {
        ep_uac__req_free(r);
        return EP_EINVAL;
    }
    r->cb = cb;
    r->ud = ud;
    /* discovery services work on a channel without a session */
    r->needs_session =
        req_type != EP_UA_T(GetEndpointsRequest) && req_type != EP_UA_T(FindServersRequest);
    return ep_uac__req_submit(c, r, req);
}

ep_err ep_uac_get_endpoints(ep_uac *c, ep_uac_resp_cb cb, void *ud)
{
    ep_ua_get_endpoints_request req;
    memset(&req, 0, sizeof(req));
    req.endpoint_url = ep_ua_string_from(c->url);
    return ep_uac_request(c, EP_UA_T(GetEndpointsRequest), &req, cb, ud);
}

ep_err ep_uac_find_servers(ep_uac *c, ep_uac_resp_cb cb, void *ud)
{
    ep_ua_find_servers_request req;
    memset(&req, 0, sizeof(req));
    req.endpoint_url = ep_ua_string_from(c->url);
    return ep_uac_request(c, EP_UA_T(FindServersRequest), &req, cb, ud);
}

ep_err ep_uac_read(ep_uac *c, size_t n, const ep_ua_read_value_id *ids,
                   ep_ua_timestamps_to_return ts, ep_uac_resp_cb cb, void *ud)
{
    ep_ua_read_request req;
    memset(&req, 0, sizeof(req));
    req.timestamps_to_return = ts;
    req.nodes_to_read_len = n;
    req.nodes_to_read = (ep_ua_read_value_id *)(uintptr_t)ids;
    return ep_uac_request(c, EP_UA_T(ReadRequest), &req, cb, ud);
}

ep_err ep_uac_write(ep_uac *c, size_t n, const ep_ua_write_value *values, ep_uac_resp_cb cb,
                    void *ud)
{
    ep_ua_write_request req;
    memset(&req, 0, sizeof(req));
    req.nodes_to_write_len = n;
    req.nodes_to_write = (ep_ua_write_value *)(uintptr_t)values;
    return ep_uac_request(c, EP_UA_T(WriteRequest), &req, cb, ud);
}

ep_err ep_uac_browse(ep_uac *c, size_t n, const ep_ua_browse_description *d, uint32_t max_refs,
                     ep_uac_resp_cb cb, void *ud)
{
    ep_ua_browse_request req;
    memset(&req, 0, sizeof(req));
    req.requested_max_references_per_node = max_refs;
    req.nodes_to_browse_len = n;
    req.nodes_to_browse = (ep_ua_browse_description *)(uintptr_t)d;
    return ep_uac_request(c, EP_UA_T(BrowseRequest), &req, cb, ud);
}

ep_err ep_uac_browse_next(ep_uac *c, bool release, size_t n, const ep_ua_bytestring *cps,
                          ep_uac_resp_cb cb, void *ud)
{
    ep_ua_browse_next_request req;
    memset(&req, 0, sizeof(req));
    req.release_continuation_points = release;
    req.continuation_points_len = n;
    req.continuation_points = (ep_ua_bytestring *)(uintptr_t)cps;
    return ep_uac_request(c, EP_UA_T(BrowseNextRequest), &req, cb, ud);
}

ep_err ep_uac_translate(ep_uac *c, size_t n, const ep_ua_browse_path *paths, ep_uac_resp_cb cb,
                        void *ud)
{
    ep_ua_translate_browse_paths_to_node_ids_request req;
    memset(&req, 0, sizeof(req));
    req.browse_paths_len = n;
    req.browse_paths = (ep_ua_browse_path *)(uintptr_t)paths;
    return ep_uac_request(c, EP_UA_T(TranslateBrowsePathsToNodeIdsRequest), &req, cb, ud);
}

ep_err ep_uac_call(ep_uac *c, size_t n, const ep_ua_call_method_request *m, ep_uac_resp_cb cb,
                   void *ud)
{
    ep_ua_call_request req;
    memset(&req, 0, sizeof(req));
    req.methods_to_call_len = n;
    req.methods_to_call = (ep_ua_call_method_request *)(uintptr_t)m;
    return ep_uac_request(c, EP_UA_T(CallRequest), &req, cb, ud);
}
