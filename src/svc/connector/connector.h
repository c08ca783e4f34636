/*
 * connector.h - the OPC UA connector service: assets on OPC UA servers,
 * published to the MQTT broker.
 *
 * The connector is a client of the broker like any other (the project's
 * MQTT client, include/ep/mqtt_client.h): it subscribes to the resource
 * topics `$edgeplane/resources/<kind>/<name>` (retained, written by
 * `edgeplane apply`), reconciles the assets it finds there, opens OPC UA
 * sessions (src/svc/opcua_client), and publishes every dataset and event
 * to its topic plus a retained health message per asset on
 * `$edgeplane/status/assets/<name>`. docs/connector.md describes the
 * topics, payloads and behaviour.
 *
 * Threads: the service runs one event loop on its own thread; every OPC UA
 * session and the MQTT client live on it. ep_connector_new/start/stop/wait/
 * free may be called from any one controlling thread (stop from any).
 *
 * Lifecycle (as the broker's): new -> start -> ... -> stop -> wait -> free.
 */
#ifndef EP_SVC_CONNECTOR_H
#define EP_SVC_CONNECTOR_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "ep/mqtt_client.h"
#include "svc/connector/resource.h"

typedef struct ep_connector ep_connector;

/* Options; zero-initialisable, 0/NULL meaning the default in brackets.
 * Strings are copied by ep_connector_new. */
typedef struct ep_connector_opts {
    const char *broker_host; /* ["127.0.0.1"] */
    uint16_t broker_port;    /* [1883] */
    const char *client_id;   /* ["edgeplane-connector"] */
    const char *username;    /* broker user [none] */
    const char *password_file;
    /* MQTT 5 enhanced authentication (EP_MQTTC_AUTH_SCRAM_SHA_256) and TLS
     * to the broker, passed to the MQTT client as they are; unlike the
     * strings above, these are borrowed until ep_connector_free. */
    const char *auth_method;
    ep_mqttc_tls_options tls;
    const char *pki_dir;     /* [~/.edgeplane/connector-pki], opened only when
                                a profile needs certificates */
    const char *secrets_dir; /* where secret names are looked up [.] */
    /* Publications kept while the broker is unreachable (the MQTT client's
     * offline queue, oldest dropped first and counted per asset). */
    uint32_t buffer_messages;    /* [100000] */
    size_t buffer_bytes;         /* [64 MiB] */
    uint32_t status_interval_ms; /* counters in status messages at most this
                                    often [5000]; state changes at once */
    /* Resources published (retained) to the broker on every start, as if
     * applied with `edgeplane apply`; borrowed until ep_connector_free. */
    const ep_conn_res_list *seed;
} ep_connector_opts;

/* ep_connector_new validates o and allocates the service; nothing runs yet.
 * Returns EP_EOK, EP_EINVAL (bad option), EP_ENOMEM. */
ep_err ep_connector_new(ep_connector **out, const ep_connector_opts *o);
/* ep_connector_start starts the loop thread and the broker connection
 * (retried with backoff while the broker is unreachable). Returns EP_EOK,
 * EP_ESYS (thread or loop creation), EP_ENOMEM. */
ep_err ep_connector_start(ep_connector *cn);
/* ep_connector_stop asks the service to close its sessions (CloseSession),
 * mark itself offline on the broker and stop. Any thread; idempotent. */
void ep_connector_stop(ep_connector *cn);
/* ep_connector_wait blocks until the loop thread has ended. */
void ep_connector_wait(ep_connector *cn);
/* ep_connector_free releases everything (after wait). NULL is accepted. */
void ep_connector_free(ep_connector *cn);

/* Totals over every asset, for the CLI and benchmarks. Any thread
 * (relaxed atomics). */
typedef struct ep_connector_stats {
    uint64_t values;   /* data values published */
    uint64_t messages; /* dataset and event messages handed to MQTT */
    uint64_t events;   /* OPC UA events published */
    uint64_t dropped;  /* messages the MQTT client dropped (queue full,
                          expired, refused) */
    uint64_t assets, assets_connected;
} ep_connector_stats;
void ep_connector_get_stats(ep_connector *cn, ep_connector_stats *out);

#endif
