/*
 * authz.h - broker authorization rules (the reference's
 * BrokerAuthorization, compat.md 1.8).
 *
 * Rules file (YAML, read with core/cfg; errors carry file:line:col: key):
 *
 *   cache: Enabled                  # accepted for compatibility; ignored
 *   rules:
 *     - principals:                 # the rule applies if ANY entry matches
 *         clientIds: [dev-1]        # exact client identifiers
 *         usernames: [alice]        # exact user names
 *         attributes:               # each map: all pairs must match (AND);
 *           - {building: b1}        # the maps are alternatives (OR)
 *       brokerResources:
 *         - method: Connect         # Connect | Publish | Subscribe
 *           clientIds: ["{principal.attributes.building}-*"]  # optional; a
 *                                   # trailing '*' matches any suffix
 *         - method: Publish
 *           topics: ["sensors/{principal.attributes.building}/{principal.clientId}/#"]
 *         - method: Subscribe
 *           topics: ["commands/{principal.clientId}"]
 *       stateStoreResources:        # checked for syntax; enforced later by
 *         - method: Read            # the state store
 *           keyType: Pattern
 *           keys: ["clients:{principal.clientId}:*"]
 *
 * Semantics:
 *   - No rule set (NULL) means authorization is off: everything is allowed.
 *     With a rule set, anything not granted is denied, including with an
 *     empty `rules` list.
 *   - Variables: {principal.clientId}, {principal.username},
 *     {principal.attributes.NAME}. A grant whose variable is undefined for
 *     the principal (no username, missing attribute) grants nothing. A
 *     value substituted into a topic filter must be a non-empty plain level
 *     part: a value containing '/', '+', '#' or NUL makes that filter grant
 *     nothing, so a client id of "#" cannot widen "dev/{principal.clientId}"
 *     into "dev/#". In a clientIds pattern, only a '*' written in the rule
 *     itself is a wildcard.
 *   - CONNECT is allowed if a matching rule has a Connect resource without
 *     clientIds, or one whose pattern matches the client id.
 *   - PUBLISH to a topic is allowed if the topic matches (MQTT matching,
 *     ep_mqtt_topic_match) a granted Publish filter.
 *   - SUBSCRIBE to a filter is allowed if every topic it can match is
 *     matched by one granted Subscribe filter: "a/+/c" grants "a/x/c" and
 *     "a/+/c" but not "a/#". "$share/GROUP/F" is checked as F.
 *
 * Threads and cost: a rule set (ep_authz_rules) is immutable and
 * refcounted; any thread may use it. At CONNECT the broker compiles the
 * principal's grants once (ep_authz_session_new: substitution, matching of
 * principals); a PUBLISH or SUBSCRIBE check is then a scan of that
 * principal's filters with ep_mqtt_topic_match, no parsing, no allocation,
 * no lock. ep_authz holds the current rule set for hot reload: a new set is
 * swapped in atomically; sessions compiled from the old set keep it alive
 * until freed, and ep_authz_generation tells the broker a reload happened.
 */
#ifndef EP_SVC_AUTH_AUTHZ_H
#define EP_SVC_AUTH_AUTHZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/cfg.h"
#include "core/err.h"

typedef enum ep_authz_action {
    EP_AUTHZ_CONNECT = 1,
    EP_AUTHZ_PUBLISH = 2,
    EP_AUTHZ_SUBSCRIBE = 3,
} ep_authz_action;

typedef struct ep_authz_attr {
    const char *name;
    const char *value;
} ep_authz_attr;

/* Who is asking. All strings NUL-terminated and borrowed for the call. */
typedef struct ep_authz_principal {
    const char *client_id;      /* required ("" for an empty client id) */
    const char *username;       /* NULL: none */
    const ep_authz_attr *attrs; /* from X.509 mapping, custom auth ... */
    size_t n_attrs;
} ep_authz_principal;

typedef struct ep_authz_rules ep_authz_rules;

/* ep_authz_rules_parse reads a rules file of len bytes named `name`.
 * Errors (every one, with file:line:col: key) go to errs (required).
 * *out is set only on success. Any thread.
 * Returns EP_EOK, EP_ECONFIG, EP_ENOMEM. */
ep_err ep_authz_rules_parse(const char *name, const char *text, size_t len, ep_authz_rules **out,
                            ep_cfg_errs *errs);
/* ep_authz_rules_load reads and parses path (blocking I/O). Returns as
 * ep_authz_rules_parse plus EP_EIO. */
ep_err ep_authz_rules_load(const char *path, ep_authz_rules **out, ep_cfg_errs *errs);

/* Refcounting; any thread; NULL accepted. */
ep_authz_rules *ep_authz_rules_ref(ep_authz_rules *r);
void ep_authz_rules_unref(ep_authz_rules *r);
/* ep_authz_rules_count returns the number of rules. */
size_t ep_authz_rules_count(const ep_authz_rules *r);

/* ------------------------------------------------------------------------ */
/* Per-connection compiled grants                                            */

typedef struct ep_authz_session ep_authz_session;

/* ep_authz_session_new compiles what `rules` grants principal p (copied
 * into the session; p is borrowed). rules may be NULL (allow everything);
 * otherwise the session takes a reference. Any thread, typically the
 * worker handling CONNECT. Returns EP_EOK, EP_EINVAL (p or client_id
 * NULL), EP_ENOMEM. */
ep_err ep_authz_session_new(ep_authz_rules *rules, const ep_authz_principal *p,
                            ep_authz_session **out);

/* ep_authz_session_allows answers for one action. topic is the PUBLISH
 * topic name or the SUBSCRIBE topic filter (len bytes, need not be
 * NUL-terminated); ignored for CONNECT. An invalid filter is denied.
 * O(granted filters), no allocation; any thread (the session is read-only
 * after creation). */
bool ep_authz_session_allows(const ep_authz_session *s, ep_authz_action a, const char *topic,
                             size_t len);

/* ep_authz_session_generation returns the generation of the rule set the
 * session was compiled from (0 for NULL rules). */
uint64_t ep_authz_session_generation(const ep_authz_session *s);

/* ep_authz_session_free releases the session (and its reference on the
 * rules). NULL accepted. */
void ep_authz_session_free(ep_authz_session *s);

/* ep_authz_check is the one-shot form: compile, answer, free. For tests,
 * tools and rare checks; the broker uses sessions. Returns false when out
 * of memory. */
bool ep_authz_check(ep_authz_rules *rules, const ep_authz_principal *p, ep_authz_action a,
                    const char *topic);

/* ------------------------------------------------------------------------ */
/* The live rule set, hot-reloadable                                         */

typedef struct ep_authz ep_authz;

/* ep_authz_new creates a holder with no rules (authorization off).
 * Returns EP_EOK or EP_ENOMEM. */
ep_err ep_authz_new(ep_authz **out);
/* ep_authz_free drops the holder's reference. NULL accepted. */
void ep_authz_free(ep_authz *az);

/* ep_authz_load reads path and, if it is valid, makes it the current rule
 * set. If not, the current set stays and errs says why. Blocking I/O: call
 * it from the control thread (SIGHUP, file watch), not a worker.
 * Returns as ep_authz_rules_load. */
ep_err ep_authz_load(ep_authz *az, const char *path, ep_cfg_errs *errs);

/* ep_authz_set installs rules (consumes the caller's reference; NULL turns
 * authorization off) and bumps the generation. Any thread. */
void ep_authz_set(ep_authz *az, ep_authz_rules *rules);

/* ep_authz_get returns a new reference to the current rule set, or NULL
 * when authorization is off. Any thread (a mutex held for a pointer copy
 * and an atomic increment). */
ep_authz_rules *ep_authz_get(ep_authz *az);

/* ep_authz_generation changes with every ep_authz_set/load. One atomic
 * load; cheap enough to compare per packet with the session's. */
uint64_t ep_authz_generation(const ep_authz *az);

#endif
