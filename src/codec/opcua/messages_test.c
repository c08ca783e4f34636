/*
 * messages_test.c - complete service messages, byte for byte.
 *
 * Two requests are captured traffic published with node-opcua
 * (packages/node-opcua-transport/test-fixtures/fixture_full_tcp_packets.js,
 * packets packet_cs_2 and packet_cs_3): the message body after the
 * transport and security headers, i.e. the encoding NodeId and the request.
 * ReadRequest, CreateSessionRequest and PublishResponse vectors are derived
 * by hand from Part 4 (field order) and Part 6 (encoding), annotated field
 * by field. Each is decoded with ep_ua_message_decode, checked field by
 * field, and re-encoded with ep_ua_message_encode to the same bytes.
 */
#include "codec/opcua/ua_testutil.h"

#include "codec/opcua/gen/nodeids.h"

/* clang-format off */
/* packet_cs_3 (GetEndpointsRequest), bytes 24..115 of the 116-byte MSG. */
static const uint8_t get_endpoints_req[] = {
    0x01, 0x00, 0xac, 0x01, 0x00, 0x00, 0xb7, 0x19, 0x40, 0xd9, 0xd0, 0x1d,
    0xcf, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff,
    0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2f, 0x00, 0x00,
    0x00, 0x6f, 0x70, 0x63, 0x2e, 0x74, 0x63, 0x70, 0x3a, 0x2f, 0x2f, 0x74,
    0x61, 0x74, 0x74, 0x61, 0x74, 0x61, 0x3a, 0x36, 0x32, 0x35, 0x34, 0x33,
    0x2f, 0x41, 0x41, 0x41, 0x41, 0x41, 0x2f, 0x41, 0x67, 0x67, 0x72, 0x65,
    0x67, 0x61, 0x74, 0x69, 0x6f, 0x6e, 0x53, 0x65, 0x72, 0x76, 0x65, 0x72,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};

/* packet_cs_2 (OpenSecureChannelRequest), bytes 79..131 of the OPN. */
static const uint8_t open_channel_req[] = {
    0x01, 0x00, 0xbe, 0x01, 0x00, 0x00, 0x43, 0xb2, 0x42, 0xd9, 0xd0, 0x1d,
    0xcf, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff,
    0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x80, 0xee, 0x36, 0x00,
};

/* 2024-01-01T00:00:00Z as DateTime bytes. */
#define TS_2024 0x00, 0xC0, 0x89, 0x76, 0x45, 0x3C, 0xDA, 0x01

static const uint8_t read_req[] = {
    0x01, 0x00, 0x77, 0x02,       /* NodeId i=631 ReadRequest, four-byte */
    0x01, 0x01, 0xE9, 0x03,       /* authenticationToken ns=1;i=1001 */
    TS_2024,                      /* timestamp */
    0x2A, 0x00, 0x00, 0x00,       /* requestHandle 42 */
    0x00, 0x00, 0x00, 0x00,       /* returnDiagnostics */
    0xFF, 0xFF, 0xFF, 0xFF,       /* auditEntryId null */
    0x10, 0x27, 0x00, 0x00,       /* timeoutHint 10000 */
    0x00, 0x00, 0x00,             /* additionalHeader: null NodeId, no body */
    0, 0, 0, 0, 0, 0, 0, 0,       /* maxAge 0.0 */
    0x02, 0x00, 0x00, 0x00,       /* timestampsToReturn Both */
    0x02, 0x00, 0x00, 0x00,       /* nodesToRead: 2 */
    0x01, 0x00, 0xD2, 0x08,       /* [0] nodeId i=2258 CurrentTime */
    0x0D, 0x00, 0x00, 0x00,       /*     attributeId Value */
    0xFF, 0xFF, 0xFF, 0xFF,       /*     indexRange null */
    0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, /* dataEncoding {0, null} */
    0x03, 0x02, 0x00, 0x0B, 0x00, 0x00, 0x00, /* [1] ns=2;s=Temperature */
    'T', 'e', 'm', 'p', 'e', 'r', 'a', 't', 'u', 'r', 'e',
    0x0D, 0x00, 0x00, 0x00,       /*     attributeId Value */
    0x03, 0x00, 0x00, 0x00, '0', ':', '1', /* indexRange "0:1" */
    0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF,
};

static const uint8_t create_session_req[] = {
    0x01, 0x00, 0xCD, 0x01,       /* NodeId i=461 CreateSessionRequest */
    0x00, 0x00,                   /* authenticationToken null */
    TS_2024,                      /* timestamp */
    0x01, 0x00, 0x00, 0x00,       /* requestHandle 1 */
    0x00, 0x00, 0x00, 0x00,       /* returnDiagnostics */
    0xFF, 0xFF, 0xFF, 0xFF,       /* auditEntryId null */
    0x00, 0x00, 0x00, 0x00,       /* timeoutHint */
    0x00, 0x00, 0x00,             /* additionalHeader */
    /* clientDescription */
    0x06, 0x00, 0x00, 0x00, 'u', 'r', 'n', ':', 'e', 'p',  /* applicationUri */
    0x08, 0x00, 0x00, 0x00, 'u', 'r', 'n', ':', 'e', 'p', ':', 'p',
    0x02, 0x02, 0x00, 0x00, 0x00, 'e', 'p', /* applicationName text only */
    0x01, 0x00, 0x00, 0x00,       /* applicationType Client */
    0xFF, 0xFF, 0xFF, 0xFF,       /* gatewayServerUri null */
    0xFF, 0xFF, 0xFF, 0xFF,       /* discoveryProfileUri null */
    0xFF, 0xFF, 0xFF, 0xFF,       /* discoveryUrls null */
    0xFF, 0xFF, 0xFF, 0xFF,       /* serverUri null */
    0x10, 0x00, 0x00, 0x00, 'o', 'p', 'c', '.', 't', 'c', 'p', ':', '/', '/',
    'h', ':', '4', '8', '4', '0', /* endpointUrl */
    0x02, 0x00, 0x00, 0x00, 's', '1', /* sessionName */
    0x04, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04, /* clientNonce */
    0xFF, 0xFF, 0xFF, 0xFF,       /* clientCertificate null */
    0x00, 0x00, 0x00, 0x00, 0x80, 0x4F, 0x32, 0x41, /* timeout 1200000.0 */
    0x00, 0x00, 0x00, 0x00,       /* maxResponseMessageSize */
};

static const uint8_t publish_resp[] = {
    0x01, 0x00, 0x3D, 0x03,       /* NodeId i=829 PublishResponse */
    TS_2024,                      /* responseHeader.timestamp */
    0x05, 0x00, 0x00, 0x00,       /* requestHandle 5 */
    0x00, 0x00, 0x00, 0x00,       /* serviceResult Good */
    0x00,                         /* serviceDiagnostics: empty */
    0xFF, 0xFF, 0xFF, 0xFF,       /* stringTable null */
    0x00, 0x00, 0x00,             /* additionalHeader */
    0x03, 0x00, 0x00, 0x00,       /* subscriptionId 3 */
    0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, /* availableSeqNos [1] */
    0x00,                         /* moreNotifications false */
    0x01, 0x00, 0x00, 0x00,       /* notificationMessage.sequenceNumber */
    TS_2024,                      /* publishTime */
    0x01, 0x00, 0x00, 0x00,       /* notificationData: 1 ExtensionObject */
    0x01, 0x00, 0x2B, 0x03,       /*   typeId i=811 DataChangeNotification */
    0x01,                         /*   binary body */
    0x1E, 0x00, 0x00, 0x00,       /*   body length 30 */
    0x01, 0x00, 0x00, 0x00,       /*   monitoredItems: 1 */
    0x07, 0x00, 0x00, 0x00,       /*     clientHandle 7 */
    0x05,                         /*     DataValue: value + source ts */
    0x0B, 0, 0, 0, 0, 0, 0x80, 0x35, 0x40, /* Double 21.5 */
    TS_2024,                      /*     sourceTimestamp */
    0xFF, 0xFF, 0xFF, 0xFF,       /*   diagnosticInfos null */
    0x00, 0x00, 0x00, 0x00,       /* results: empty */
    0xFF, 0xFF, 0xFF, 0xFF,       /* diagnosticInfos null */
};

/* clang-format on */

static void *decode_msg(const uint8_t *p, size_t n, const ep_ua_type *want, ep_ua_arena *a)
{
    const ep_ua_type *t = NULL;
    void *msg = NULL;
    size_t pos = 0;
    ep_ua_status st = 1;
    ep_err err = ep_ua_message_decode(p, n, &pos, &t, &msg, a, NULL, &st);
    if (err)
        fail_msg("decode failed: %s / %s", ep_err_name(err), ep_ua_status_name(st));
    assert_int_equal(st, EP_UA_STATUS_Good);
    assert_ptr_equal(t, want);
    assert_int_equal(pos, n);
    corpus_dump("opcua_message", -1, p, n);
    return msg;
}

static void reencode(const void *msg, const ep_ua_type *t, const uint8_t *p, size_t n)
{
    ep_buf b;
    ep_buf_init(&b, 0);
    assert_int_equal(ep_ua_message_encode(msg, t, &b), EP_EOK);
    assert_bytes(ep_buf_head(&b), ep_buf_used(&b), p, n);
    ep_buf_fini(&b);
}

static bool str_is(const ep_ua_string *s, const char *c)
{
    return s->data && s->len == strlen(c) && memcmp(s->data, c, s->len) == 0;
}

static void test_get_endpoints_capture(void **state)
{
    ep_ua_arena a;
    ep_ua_arena_init(&a, 0, NULL);
    ep_ua_get_endpoints_request *r =
        decode_msg(get_endpoints_req, sizeof(get_endpoints_req), EP_UA_T(GetEndpointsRequest), &a);
    assert_int_equal(r->request_header.request_handle, 1);
    assert_int_equal(r->request_header.timestamp, 0x01cf1dd0d94019b7LL);
    assert_null(r->request_header.audit_entry_id.data);
    assert_true(str_is(&r->endpoint_url, "opc.tcp://tattata:62543/AAAAA/AggregationServer"));
    /* empty, not null, arrays */
    assert_ptr_equal(r->locale_ids, EP_UA_EMPTY);
    assert_int_equal(r->locale_ids_len, 0);
    assert_ptr_equal(r->profile_uris, EP_UA_EMPTY);
    reencode(r, EP_UA_T(GetEndpointsRequest), get_endpoints_req, sizeof(get_endpoints_req));
    ep_ua_arena_fini(&a);
}

static void test_open_secure_channel_capture(void **state)
{
    ep_ua_arena a;
    ep_ua_arena_init(&a, 0, NULL);
    ep_ua_open_secure_channel_request *r = decode_msg(open_channel_req, sizeof(open_channel_req),
                                                      EP_UA_T(OpenSecureChannelRequest), &a);
    assert_int_equal(r->client_protocol_version, 0);
    assert_int_equal(r->request_type, EP_UA_SECURITY_TOKEN_REQUEST_TYPE_ISSUE);
    assert_int_equal(r->security_mode, EP_UA_MESSAGE_SECURITY_MODE_NONE);
    assert_ptr_equal(r->client_nonce.data, EP_UA_EMPTY);
    assert_int_equal(r->requested_lifetime, 3600000);
    reencode(r, EP_UA_T(OpenSecureChannelRequest), open_channel_req, sizeof(open_channel_req));
    ep_ua_arena_fini(&a);
}

static void test_read_request(void **state)
{
    ep_ua_read_value_id ids[2];
    memset(ids, 0, sizeof(ids));
    ids[0].node_id = ep_ua_nodeid_numeric(0, EP_UA_NS0_Server_ServerStatus_CurrentTime);
    ids[0].attribute_id = 13;
    ids[1].node_id.ns = 2;
    ids[1].node_id.id_type = EP_UA_NODEID_STRING;
    ids[1].node_id.id.string = ep_ua_string_from("Temperature");
    ids[1].attribute_id = 13;
    ids[1].index_range = ep_ua_string_from("0:1");

    ep_ua_read_request req;
    memset(&req, 0, sizeof(req));
    req.request_header.authentication_token = ep_ua_nodeid_numeric(1, 1001);
    req.request_header.timestamp = ep_ua_datetime_from_unix_ms(1704067200000LL);
    req.request_header.request_handle = 42;
    req.request_header.timeout_hint = 10000;
    req.max_age = 0.0;
    req.timestamps_to_return = EP_UA_TIMESTAMPS_TO_RETURN_BOTH;
    req.nodes_to_read = ids;
    req.nodes_to_read_len = 2;
    reencode(&req, EP_UA_T(ReadRequest), read_req, sizeof(read_req));

    ep_ua_arena a;
    ep_ua_arena_init(&a, 0, NULL);
    ep_ua_read_request *d = decode_msg(read_req, sizeof(read_req), EP_UA_T(ReadRequest), &a);
    assert_true(ep_ua_equal(&req, d, EP_UA_T(ReadRequest)));
    assert_true(str_is(&d->nodes_to_read[1].node_id.id.string, "Temperature"));
    ep_ua_arena_fini(&a);
}

static void test_create_session_request(void **state)
{
    static uint8_t nonce[] = {1, 2, 3, 4};
    ep_ua_create_session_request req;
    memset(&req, 0, sizeof(req));
    req.request_header.timestamp = ep_ua_datetime_from_unix_ms(1704067200000LL);
    req.request_header.request_handle = 1;
    req.client_description.application_uri = ep_ua_string_from("urn:ep");
    req.client_description.product_uri = ep_ua_string_from("urn:ep:p");
    req.client_description.application_name.text = ep_ua_string_from("ep");
    req.client_description.application_type = EP_UA_APPLICATION_TYPE_CLIENT;
    req.endpoint_url = ep_ua_string_from("opc.tcp://h:4840");
    req.session_name = ep_ua_string_from("s1");
    req.client_nonce.data = nonce;
    req.client_nonce.len = sizeof(nonce);
    req.requested_session_timeout = 1200000.0;
    reencode(&req, EP_UA_T(CreateSessionRequest), create_session_req, sizeof(create_session_req));

    ep_ua_arena a;
    ep_ua_arena_init(&a, 0, NULL);
    ep_ua_create_session_request *d = decode_msg(create_session_req, sizeof(create_session_req),
                                                 EP_UA_T(CreateSessionRequest), &a);
    assert_true(ep_ua_equal(&req, d, EP_UA_T(CreateSessionRequest)));
    assert_null(d->client_description.discovery_urls);
    assert_true(d->requested_session_timeout == 1200000.0);
    ep_ua_arena_fini(&a);
}

static void test_publish_response_data_change(void **state)
{
    ep_ua_arena a;
    ep_ua_arena_init(&a, 0, NULL);
    ep_ua_publish_response *r =
        decode_msg(publish_resp, sizeof(publish_resp), EP_UA_T(PublishResponse), &a);
    assert_int_equal(r->subscription_id, 3);
    assert_int_equal(r->available_sequence_numbers_len, 1);
    const ep_ua_notification_message *nm = &r->notification_message;
    assert_int_equal(nm->notification_data_len, 1);
    const ep_ua_extensionobject *eo = &nm->notification_data[0];
    assert_int_equal(eo->encoding, EP_UA_EXTOBJ_DECODED);
    assert_ptr_equal(eo->type, EP_UA_T(DataChangeNotification));
    const ep_ua_data_change_notification *dcn = eo->data;
    assert_int_equal(dcn->monitored_items_len, 1);
    const ep_ua_monitored_item_notification *mi = &dcn->monitored_items[0];
    assert_int_equal(mi->client_handle, 7);
    assert_int_equal(mi->value.mask, EP_UA_DATAVALUE_VALUE | EP_UA_DATAVALUE_SOURCE_TIMESTAMP);
    assert_ptr_equal(mi->value.value.type, EP_UA_T(Double));
    assert_true(*(double *)mi->value.value.data == 21.5);
    assert_int_equal(mi->value.source_timestamp, ep_ua_datetime_from_unix_ms(1704067200000LL));
    assert_null(dcn->diagnostic_infos);
    reencode(r, EP_UA_T(PublishResponse), publish_resp, sizeof(publish_resp));
    ep_ua_arena_fini(&a);
}

static void test_message_every_prefix(void **state)
{
    static const struct {
        const uint8_t *p;
        size_t n;
    } msgs[] = {
        {get_endpoints_req, sizeof(get_endpoints_req)},
        {open_channel_req, sizeof(open_channel_req)},
        {read_req, sizeof(read_req)},
        {create_session_req, sizeof(create_session_req)},
        {publish_resp, sizeof(publish_resp)},
    };
    ep_ua_arena a;
    ep_ua_arena_init(&a, 0, NULL);
    for (size_t m = 0; m < sizeof(msgs) / sizeof(msgs[0]); m++) {
        for (size_t k = 0; k < msgs[m].n; k++) {
            uint8_t *pre = malloc(k ? k : 1);
            assert_non_null(pre);
            memcpy(pre, msgs[m].p, k);
            const ep_ua_type *t = NULL;
            void *out = NULL;
            size_t pos = 0;
            ep_ua_status st = 0;
            assert_int_equal(ep_ua_message_decode(pre, k, &pos, &t, &out, &a, NULL, &st),
                             EP_EMALFORMED);
            assert_int_equal(st, EP_UA_STATUS_BadDecodingError);
            assert_null(t);
            assert_null(out);
            assert_int_equal(ep_ua_arena_used(&a), 0);
            free(pre);
        }
    }
    ep_ua_arena_fini(&a);
}

static void test_message_unknown_type(void **state)
{
    /* ns=0;i=1 is not an encoding id; ns=1 ids are never service messages */
    static const uint8_t unknown[] = {0x00, 0x01, 0x00};
    static const uint8_t other_ns[] = {0x01, 0x01, 0x77, 0x02};
    ep_ua_arena a;
    ep_ua_arena_init(&a, 0, NULL);
    const ep_ua_type *t = NULL;
    void *out = NULL;
    size_t pos = 0;
    ep_ua_status st = 0;
    assert_int_equal(ep_ua_message_decode(unknown, sizeof(unknown), &pos, &t, &out, &a, NULL, &st),
                     EP_EUNSUPPORTED);
    assert_int_equal(st, EP_UA_STATUS_BadServiceUnsupported);
    assert_int_equal(
        ep_ua_message_decode(other_ns, sizeof(other_ns), &pos, &t, &out, &a, NULL, &st),
        EP_EUNSUPPORTED);
    assert_int_equal(pos, 0);
    assert_null(t);
    ep_ua_arena_fini(&a);

    ep_buf b;
    ep_buf_init(&b, 0);
    int32_t i = 0;
    assert_int_equal(ep_ua_message_encode(&i, EP_UA_T(Int32), &b), EP_EINVAL);
    ep_buf_fini(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_endpoints_capture),
        cmocka_unit_test(test_open_secure_channel_capture),
        cmocka_unit_test(test_read_request),
        cmocka_unit_test(test_create_session_request),
        cmocka_unit_test(test_publish_response_data_change),
        cmocka_unit_test(test_message_every_prefix),
        cmocka_unit_test(test_message_unknown_type),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
