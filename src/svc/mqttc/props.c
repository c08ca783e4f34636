/*
 * props.c - owning copies of MQTT v5 property sets, and the PUBLISH property
 * block the client stores with each queued message.
 *
 * The codec's ep_mqtt_props only borrows its strings, so a Will kept for
 * every reconnect needs a deep copy: all slices go into one allocation.
 * Publications store their properties already encoded (ep_msg->props), with
 * Message Expiry Interval kept aside because the remaining lifetime is
 * written at send time.
 */
#include <stdlib.h>
#include <string.h>

#include "svc/mqttc/mqttc_int.h"

typedef struct copier {
    uint8_t *p;
    size_t len;
} copier;

static ep_mqtt_slice put(copier *cp, ep_mqtt_slice s)
{
    if (s.len == 0)
        return (ep_mqtt_slice){NULL, 0};
    ep_mqtt_slice out = {cp->p + cp->len, s.len};
    memcpy(cp->p + cp->len, s.p, s.len);
    cp->len += s.len;
    return out;
}

ep_err ep_mqttc__props_dup(ep_mqtt_props *dst, void **block, const ep_mqtt_props *src)
{
    /* Layout: user pair array | sub id array | all bytes of all strings. The
     * pair array holds pointers, so it goes first for alignment; its size is
     * a multiple of 8, which keeps the uint32_t array aligned too. */
    size_t users = (size_t)src->n_user * sizeof(ep_mqtt_user_prop);
    size_t ids = (size_t)src->n_sub_ids * sizeof(uint32_t);
    size_t bytes = (size_t)src->raw.len + src->content_type.len + src->response_topic.len +
                   src->correlation_data.len + src->assigned_client_identifier.len +
                   src->authentication_method.len + src->authentication_data.len +
                   src->response_information.len + src->server_reference.len +
                   src->reason_string.len;
    for (uint32_t i = 0; i < src->n_user; i++)
        bytes += (size_t)src->user[i].name.len + src->user[i].value.len;

    uint8_t *mem = malloc(users + ids + bytes + 1);
    if (mem == NULL)
        return EP_ENOMEM;
    *dst = *src;
    copier cp = {mem, users + ids};
    if (src->n_user) {
        ep_mqtt_user_prop *u = (ep_mqtt_user_prop *)(void *)mem;
        for (uint32_t i = 0; i < src->n_user; i++) {
            u[i].name = put(&cp, src->user[i].name);
            u[i].value = put(&cp, src->user[i].value);
        }
        dst->user = u;
    } else {
        dst->user = NULL;
    }
    if (src->n_sub_ids) {
        uint32_t *v = (uint32_t *)(void *)(mem + users);
        memcpy(v, src->sub_ids, ids);
        dst->sub_ids = v;
    } else {
        dst->sub_ids = NULL;
    }
    dst->raw = put(&cp, src->raw);
    dst->content_type = put(&cp, src->content_type);
    dst->response_topic = put(&cp, src->response_topic);
    dst->correlation_data = put(&cp, src->correlation_data);
    dst->assigned_client_identifier = put(&cp, src->assigned_client_identifier);
    dst->authentication_method = put(&cp, src->authentication_method);
    dst->authentication_data = put(&cp, src->authentication_data);
    dst->response_information = put(&cp, src->response_information);
    dst->server_reference = put(&cp, src->server_reference);
    dst->reason_string = put(&cp, src->reason_string);
    *block = mem;
    return EP_EOK;
}

#define PUB_ALLOWED                                                                                \
    (EP_MQTT_PROP_BIT(EP_MQTT_PROP_PAYLOAD_FORMAT_INDICATOR) |                                     \
     EP_MQTT_PROP_BIT(EP_MQTT_PROP_MESSAGE_EXPIRY_INTERVAL) |                                      \
     EP_MQTT_PROP_BIT(EP_MQTT_PROP_CONTENT_TYPE) | EP_MQTT_PROP_BIT(EP_MQTT_PROP_RESPONSE_TOPIC) | \
     EP_MQTT_PROP_BIT(EP_MQTT_PROP_CORRELATION_DATA) |                                             \
     EP_MQTT_PROP_BIT(EP_MQTT_PROP_USER_PROPERTY))

ep_err ep_mqttc__pub_props_encode(const ep_mqtt_props *p, uint8_t **out, size_t *len,
                                  bool *has_expiry, uint32_t *expiry)
{
    *out = NULL;
    *len = 0;
    *has_expiry = false;
    *expiry = 0;
    if (p == NULL)
        return EP_EOK;
    if ((p->present & ~PUB_ALLOWED) != 0 || p->n_sub_ids != 0)
        return EP_EINVAL;
    ep_mqtt_props tmp = *p;
    if (EP_MQTT_PROPS_HAS(p, EP_MQTT_PROP_MESSAGE_EXPIRY_INTERVAL)) {
        *has_expiry = true;
        *expiry = p->message_expiry_interval;
        tmp.present &= ~EP_MQTT_PROP_BIT(EP_MQTT_PROP_MESSAGE_EXPIRY_INTERVAL);
    }
    size_t n = ep_mqtt_props_size(&tmp);
    if (n == SIZE_MAX)
        return EP_EINVAL;
    if (n == 0)
        return EP_EOK;
    ep_buf b;
    ep_buf_init(&b, 0);
    ep_err err = ep_mqtt_props_encode(&b, &tmp);
    if (err) {
        ep_buf_fini(&b);
        return err == EP_ENOMEM ? EP_ENOMEM : EP_EINVAL;
    }
    /* Drop the Property Length prefix: ep_msg keeps the bare block. */
    size_t prefix = ep_buf_used(&b) - n;
    memmove(b.data, b.data + b.off + prefix, n);
    *out = b.data;
    *len = n;
    return EP_EOK;
}
