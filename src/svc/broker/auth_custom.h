/*
 * auth_custom.h - custom authentication (the HTTP(S) callout) used for
 * MQTT 5 enhanced authentication: a CONNECT with an Authentication Method
 * that no built-in method (SCRAM) of the listener takes, and AUTH
 * re-authentication of a client so authenticated. auth.c implements it;
 * handle_connect.c calls it. The callout answers asynchronously: the
 * connection stops reading until it does, and the packet that started it
 * (CONNECT or AUTH) is handled again with the answer at hand.
 */
#ifndef EP_SVC_BROKER_AUTH_CUSTOM_H
#define EP_SVC_BROKER_AUTH_CUSTOM_H

#include <stdbool.h>

#include "svc/broker/broker_int.h"

/* bk_auth_custom_relevant: does the listener's chain have a custom method
 * (which finds every credential relevant, so any method name goes to it)? */
bool bk_auth_custom_relevant(const bk_conn *c);

/* bk_auth_custom_attach runs once the CONNECT passed authentication: when
 * the callout accepted its Authentication Method, c->auth records the
 * method (for the CONNACK and later AUTH packets). Returns EP_EOK, or an
 * error once the client was refused (out of memory). */
ep_err bk_auth_custom_attach(bk_conn *c, const ep_mqtt_connect *cn);

/* bk_auth_is_custom: was c authenticated by the callout's "auth" form? */
bool bk_auth_is_custom(const bk_conn *c);

/* bk_auth_custom_reauth handles an AUTH packet of such a client:
 * re-authentication (reason 0x19, or 0x18 after a transient failure left
 * the exchange open). Returns EP_EOK (answered, or paused for the
 * callout), or an error once the connection was closed. */
ep_err bk_auth_custom_reauth(bk_conn *c, const ep_mqtt_auth *a);

#endif
