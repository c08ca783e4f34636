/*
 * reason_test.c - reason code names, per-packet validity, 3.1.1 mapping.
 */
#include "codec/mqtt/testutil.h"

static void test_names(void **state)
{
    (void)state;
    static const int assigned[] = {0x00, 0x01, 0x02, 0x04, 0x10, 0x11, 0x18, 0x19, 0x80, 0x81, 0x82,
                                   0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8B, 0x8C, 0x8D,
                                   0x8E, 0x8F, 0x90, 0x91, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98,
                                   0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2};
    int named = 0;
    for (int rc = 0; rc < 256; rc++)
        named += ep_mqtt_rc_name(rc) != NULL;
    assert_int_equal(named, (int)(sizeof(assigned) / sizeof(assigned[0])));
    for (size_t i = 0; i < sizeof(assigned) / sizeof(assigned[0]); i++)
        assert_non_null(ep_mqtt_rc_name(assigned[i]));
    assert_string_equal(ep_mqtt_rc_name(0x81), "Malformed Packet");
    assert_string_equal(ep_mqtt_rc_name(0x95), "Packet too large");
    assert_string_equal(ep_mqtt_rc_name(EP_MQTT_RC_SUCCESS), "Success");
    assert_null(ep_mqtt_rc_name(0x03));
    assert_null(ep_mqtt_rc_name(-1));
    assert_string_equal(ep_mqtt_type_name(EP_MQTT_PUBREL), "PUBREL");
    assert_string_equal(ep_mqtt_type_name(0), "UNKNOWN");
    assert_string_equal(ep_mqtt_type_name(16), "UNKNOWN");
}

static void test_valid_for(void **state)
{
    (void)state;
    assert_true(ep_mqtt_rc_valid_for(0x00, EP_MQTT_CONNACK));
    assert_true(ep_mqtt_rc_valid_for(0x84, EP_MQTT_CONNACK));
    assert_false(ep_mqtt_rc_valid_for(0x04, EP_MQTT_CONNACK));
    assert_true(ep_mqtt_rc_valid_for(0x10, EP_MQTT_PUBACK));
    assert_true(ep_mqtt_rc_valid_for(0x10, EP_MQTT_PUBREC));
    assert_false(ep_mqtt_rc_valid_for(0x10, EP_MQTT_PUBREL));
    assert_true(ep_mqtt_rc_valid_for(0x92, EP_MQTT_PUBCOMP));
    assert_true(ep_mqtt_rc_valid_for(0x02, EP_MQTT_SUBACK));
    assert_false(ep_mqtt_rc_valid_for(0x02, EP_MQTT_UNSUBACK));
    assert_true(ep_mqtt_rc_valid_for(0x11, EP_MQTT_UNSUBACK));
    assert_true(ep_mqtt_rc_valid_for(0x04, EP_MQTT_DISCONNECT));
    assert_true(ep_mqtt_rc_valid_for(0x8E, EP_MQTT_DISCONNECT));
    assert_false(ep_mqtt_rc_valid_for(0x84, EP_MQTT_DISCONNECT));
    assert_true(ep_mqtt_rc_valid_for(0x19, EP_MQTT_AUTH));
    assert_false(ep_mqtt_rc_valid_for(0x80, EP_MQTT_AUTH));
    assert_false(ep_mqtt_rc_valid_for(0x00, EP_MQTT_PUBLISH));
    assert_false(ep_mqtt_rc_valid_for(0x100, EP_MQTT_CONNACK));
}

static void test_v3_mapping(void **state)
{
    (void)state;
    ep_mqtt_rc rc;
    for (uint8_t c = 0; c <= 5; c++) {
        assert_int_equal(ep_mqtt_rc_from_v3_connack(c, &rc), EP_EOK);
        assert_int_equal(ep_mqtt_rc_to_v3_connack(rc), c);
    }
    assert_int_equal(ep_mqtt_rc_from_v3_connack(6, &rc), EP_EMALFORMED);
    assert_int_equal(ep_mqtt_rc_to_v3_connack(EP_MQTT_RC_BAD_AUTHENTICATION_METHOD), 5);
    assert_int_equal(ep_mqtt_rc_to_v3_connack(EP_MQTT_RC_SERVER_BUSY), 3);
    assert_int_equal(ep_mqtt_rc_to_v3_connack(EP_MQTT_RC_MALFORMED_PACKET), 3);
    assert_int_equal(ep_mqtt_rc_from_err(EP_EOK), 0x00);
    assert_int_equal(ep_mqtt_rc_from_err(EP_EMALFORMED), 0x81);
    assert_int_equal(ep_mqtt_rc_from_err(EP_EUTF8), 0x81);
    assert_int_equal(ep_mqtt_rc_from_err(EP_EPROTO), 0x82);
    assert_int_equal(ep_mqtt_rc_from_err(EP_EUNSUPPORTED), 0x84);
    assert_int_equal(ep_mqtt_rc_from_err(EP_ETOOBIG), 0x95);
    assert_int_equal(ep_mqtt_rc_from_err(EP_ENOMEM), 0x80);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_valid_for),
        cmocka_unit_test(test_v3_mapping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
