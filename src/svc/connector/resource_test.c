/*
 * resource_test.c - resource parsing: a full profile and asset, the
 * reference's JSON-in-a-string configuration, defaults, multi-document
 * files with line numbers, errors that name the resource, the field and
 * what was expected, and the rules of each kind of list element (datasets,
 * data points, events).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "svc/connector/resource.h"

static ep_conn_res *parse_ok(const char *text)
{
    ep_cfg_errs errs = {0};
    ep_conn_res *r = NULL;
    ep_err rc = ep_conn_res_parse("t.yaml", 1, text, strlen(text), &r, &errs);
    if (rc != EP_EOK)
        ep_cfg_errs_print(&errs, stderr);
    assert_int_equal(rc, EP_EOK);
    assert_int_equal(errs.nerr, 0);
    ep_cfg_errs_fini(&errs);
    return r;
}

/* parse_err returns every error joined by '\n' (static buffer) */
static const char *parse_err(const char *text)
{
    static char out[8192];
    ep_cfg_errs errs = {0};
    ep_conn_res *r = NULL;
    ep_err rc = ep_conn_res_parse("t.yaml", 1, text, strlen(text), &r, &errs);
    assert_int_equal(rc, EP_ECONFIG);
    assert_null(r);
    out[0] = 0;
    for (size_t i = 0; i < errs.count; i++) {
        strncat(out, errs.items[i].text, sizeof(out) - strlen(out) - 2);
        strcat(out, "\n");
    }
    ep_cfg_errs_fini(&errs);
    return out;
}

static void test_profile_full(void **state)
{
    (void)state;
    ep_conn_res *r = parse_ok(
        "apiVersion: edgeplane.io/v1\n"
        "kind: AssetEndpointProfile\n"
        "metadata: {name: line-1}\n"
        "spec:\n"
        "  targetAddress: opc.tcp://plc:4840\n"
        "  endpointProfileType: Microsoft.OpcUa\n"
        "  authentication:\n"
        "    method: UsernamePassword\n"
        "    usernamePasswordCredentials: {usernameSecretName: u, passwordSecretName: p}\n"
        "  additionalConfiguration: '{\"applicationName\":\"x\",\"defaults\":"
        "{\"publishingIntervalMilliseconds\":500,\"samplingIntervalMilliseconds\":100,"
        "\"queueSize\":5,\"keyFrameCount\":3},\"session\":{\"timeoutMilliseconds\":30000},"
        "\"subscription\":{\"maxItems\":200},\"security\":{\"securityPolicy\":"
        "\"http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256\",\"securityMode\":"
        "\"SignAndEncrypt\",\"autoAcceptUntrustedServerCertificates\":true},\"shared\":true}'\n");
    assert_int_equal(r->kind, EP_CONN_KIND_PROFILE);
    assert_string_equal(r->name, "line-1");
    const ep_conn_profile *p = &r->u.profile;
    assert_string_equal(p->target_address, "opc.tcp://plc:4840");
    assert_int_equal(p->auth_method, EP_CONN_AUTH_USERNAME);
    assert_string_equal(p->username_secret, "u");
    assert_int_equal(p->defaults.publishing_ms, 500);
    assert_int_equal(p->defaults.sampling_ms, 100);
    assert_int_equal(p->defaults.queue_size, 5);
    assert_int_equal(p->defaults.key_frame_count, 3);
    assert_int_equal(p->session_timeout_ms, 30000);
    assert_int_equal(p->max_items, 200);
    assert_string_equal(p->security_policy, "Basic256Sha256");
    assert_int_equal(p->security_mode, 3);
    assert_true(p->auto_accept);
    assert_true(p->shared);
    ep_conn_res_free(r);
}

static void test_profile_defaults(void **state)
{
    (void)state;
    ep_conn_res *r = parse_ok("kind: AssetEndpointProfile\nmetadata: {name: a}\n"
                              "spec: {targetAddress: 'opc.tcp://h:1'}\n");
    const ep_conn_profile *p = &r->u.profile;
    assert_int_equal(p->auth_method, EP_CONN_AUTH_ANONYMOUS);
    assert_int_equal(p->defaults.publishing_ms, 1000);
    assert_int_equal(p->defaults.sampling_ms, 1000);
    assert_int_equal(p->defaults.queue_size, 1);
    assert_int_equal(p->defaults.key_frame_count, 0);
    assert_int_equal(p->max_items, 1000);
    assert_int_equal(p->reconnect_period_ms, 2000);
    assert_string_equal(p->security_policy, "None");
    assert_int_equal(p->security_mode, 1);
    assert_false(p->shared);
    ep_conn_res_free(r);
}

static void test_asset_full(void **state)
{
    (void)state;
    ep_conn_res *r = parse_ok(
        "kind: Asset\n"
        "metadata: {name: oven-1}\n"
        "spec:\n"
        "  assetEndpointProfileRef: line-1\n"
        "  externalAssetId: 1234\n"
        "  attributes: {site: north, floor: 2}\n"
        "  defaultTopic: {path: plant/oven, retain: Keep}\n"
        "  defaultDatasetsConfiguration: '{\"publishingInterval\":200}'\n"
        "  datasets:\n"
        "    - name: fast\n"
        "      dataSource: ns=2;s=Oven\n"
        "      datasetConfiguration: {keyFrameCount: 5}\n"
        "      destinations: [{target: Mqtt, configuration: {topic: x/y, qos: Qos0}}]\n"
        "      dataPoints:\n"
        "        - {name: t, dataSource: 'ns=2;s=T', dataPointConfiguration: "
        "'{\"samplingInterval\":50,\"queueSize\":10}'}\n"
        "        - {dataSource: /2:Plant/2:P}\n"
        "  events:\n"
        "    - name: alarms\n"
        "      eventNotifier: i=2253\n"
        "      eventConfiguration: '{\"eventFilter\":{\"selectClauses\":["
        "{\"browsePath\":\"/Message\",\"fieldId\":\"msg\"},{\"browsePath\":\"/2:A/2:Sev\"}]}}'\n");
    const ep_conn_asset *a = &r->u.asset;
    assert_string_equal(a->profile, "line-1");
    assert_true(a->enabled);
    assert_string_equal(a->external_id, "1234");
    assert_string_equal(a->default_dest.topic, "plant/oven");
    assert_true(a->default_dest.retain);
    assert_int_equal(a->ds_defaults.publishing_ms, 200);
    assert_int_equal(a->ds_defaults.sampling_ms, -1);
    assert_int_equal(a->ndatasets, 1);
    const ep_conn_dataset *d = &a->datasets[0];
    assert_string_equal(d->start_node, "ns=2;s=Oven");
    assert_int_equal(d->cfg.key_frame_count, 5);
    assert_int_equal(d->cfg.publishing_ms, -1);
    assert_string_equal(d->dest.topic, "x/y");
    assert_int_equal(d->dest.qos, 0);
    assert_int_equal(d->npoints, 2);
    assert_int_equal(d->points[0].cfg.sampling_ms, 50);
    assert_int_equal(d->points[0].cfg.queue_size, 10);
    assert_string_equal(d->points[1].name, "/2:Plant/2:P"); /* name defaults to source */
    assert_int_equal(a->nevents, 1);
    assert_int_equal(a->events[0].nselect, 2);
    assert_string_equal(a->events[0].select[0].browse_path, "Message");
    assert_string_equal(a->events[0].select[0].field, "msg");
    assert_string_equal(a->events[0].select[1].browse_path, "2:A/2:Sev");
    assert_string_equal(a->events[0].select[1].field, "Sev");
    ep_conn_res_free(r);
}

static void test_errors_name_resource_field(void **state)
{
    (void)state;
    const char *e = parse_err("kind: Asset\n"
                              "metadata: {name: oven-1}\n"
                              "spec:\n"
                              "  assetEndpointProfileRef: line-1\n"
                              "  datasets:\n"
                              "    - name: d\n"
                              "      datasetConfiguration: '{\"queueSize\": \"many\"}'\n"
                              "      dataPoints:\n"
                              "        - {name: t, dataSorce: x}\n"
                              "        - {name: u, dataSource: 'not a node'}\n");
    assert_non_null(strstr(e, "Asset oven-1: t.yaml:9:"));
    assert_non_null(strstr(e, "dataSorce: unknown key; did you mean 'dataSource'?"));
    assert_non_null(strstr(e, "missing required key 'dataSource'"));
    assert_non_null(strstr(e, "queueSize: expected"));
    assert_non_null(strstr(e, "spec.datasets[0].dataPoints[1].dataSource: expected a NodeId"));

    e = parse_err(
        "kind: AssetEndpointProfile\nmetadata: {name: Bad_Name}\n"
        "spec: {targetAddress: 'http://x', additionalConfiguration: "
        "'{\"security\":{\"securityPolicy\":\"Basic128Rsa15\",\"securityMode\":\"Sign\"}}'}\n");
    assert_non_null(strstr(e, "AssetEndpointProfile Bad_Name: "));
    assert_non_null(strstr(e, "expected metadata.name"));
    assert_non_null(strstr(e, "expected an opc.tcp://HOST:PORT address"));
    assert_non_null(strstr(e, "deprecated by OPC UA"));

    e = parse_err("kind: Widget\nmetadata: {name: x}\nspec: {}\n");
    assert_non_null(strstr(e, "expected kind AssetEndpointProfile or Asset"));

    e = parse_err("kind: Asset\nmetadata: {name: a}\nspec:\n  assetEndpointProfileRef: p\n"
                  "  datasets:\n    - name: d\n      topic: {path: 'a/#'}\n"
                  "      dataPoints: [{dataSource: i=1}]\n");
    assert_non_null(strstr(e, "without wildcards"));

    e = parse_err("kind: AssetEndpointProfile\nmetadata: {name: a}\nspec:\n"
                  "  targetAddress: opc.tcp://h:1\n  authentication:\n"
                  "    method: UsernamePassword\n    usernamePasswordCredentials:\n"
                  "      {usernameSecretName: ../../etc/passwd, passwordSecretName: p}\n");
    assert_non_null(strstr(e, "without '/'"));

    e = parse_err("kind: AssetEndpointProfile\nmetadata: {name: a}\nspec:\n"
                  "  targetAddress: opc.tcp://h:1\n"
                  "  additionalConfiguration: '{\"subscription\":{\"maxItems\":5000}}'\n");
    assert_non_null(strstr(e, "maxItems"));
}

/* count of needle in hay */
static size_t count_of(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* Datasets, data points and events go through one element walk: each kind
 * keeps its own messages, required keys, node rules and destinations. */
static void test_element_kinds(void **state)
{
    (void)state;
    const char *e = parse_err("kind: Asset\nmetadata: {name: a}\nspec:\n"
                              "  assetEndpointProfileRef: p\n"
                              "  datasets:\n"
                              "    - 5\n"
                              "    - name: d\n"
                              "      dataSource: /2:Plant\n"
                              "      dataPoints: [x, {name: t, dataSource: i=1},\n"
                              "                   {name: t, dataSource: i=2},\n"
                              "                   {dataSource: i=3}, {dataSource: i=3}]\n"
                              "    - name: d\n"
                              "    - {name: e, dataPoints: 3}\n"
                              "  events:\n"
                              "    - y\n"
                              "    - {name: ev, eventNotifier: /2:Plant}\n"
                              "    - {name: ev2}\n");
    assert_int_equal(count_of(e, "spec.datasets[0]: expected a map with name and dataPoints"), 1);
    assert_int_equal(
        count_of(e, "spec.datasets[1].dataSource: expected a NodeId (ns=2;s=Name, i=85), got "
                    "\"/2:Plant\""),
        1);
    assert_int_equal(
        count_of(e, "spec.datasets[1].dataPoints[0]: expected a map with name and dataSource"), 1);
    assert_int_equal(count_of(e, "spec.datasets[1].dataPoints[2].name: expected a name unique in "
                                 "the dataset, \"t\" is used by dataPoints[1]"),
                     1);
    /* a point without a name is named by its source; the index named is
     * the item's position in the document (items before it were refused) */
    assert_int_equal(count_of(e, "spec.datasets[1].dataPoints[4]: expected a name unique in the "
                                 "dataset, \"i=3\" is used by dataPoints[3]"),
                     1);
    assert_int_equal(count_of(e, "spec.datasets[2]: missing required key 'dataPoints'"), 1);
    assert_int_equal(count_of(e, "spec.datasets[2].name: expected a dataset name unique in the "
                                 "asset, \"d\" is used by datasets[1]"),
                     1);
    assert_int_equal(count_of(e, "spec.datasets[3].dataPoints: expected a list"), 1);
    assert_int_equal(count_of(e, "spec.events[0]: expected a map with name and eventNotifier"), 1);
    assert_int_equal(count_of(e, "spec.events[1].eventNotifier: expected a NodeId (ns=2;s=Name, "
                                 "i=85), got \"/2:Plant\""),
                     1);
    assert_int_equal(count_of(e, "spec.events[2]: missing required key 'eventNotifier'"), 1);
    assert_int_equal(count_of(e, "unique"), 3);

    ep_conn_res *r = parse_ok(
        "kind: Asset\nmetadata: {name: a}\nspec:\n"
        "  assetEndpointProfileRef: p\n"
        "  datasets:\n"
        "    - name: d\n"
        "      topic: {path: d/t}\n"
        "      dataPoints: [{dataSource: 'ns=1;s=X'}]\n"
        "  events:\n"
        "    - name: ev\n"
        "      eventNotifier: i=2253\n"
        "      destinations: [{target: Mqtt, configuration: {topic: e/t, retain: Keep, qos: Qos0,"
        " ttl: 60}}]\n"
        "      eventConfiguration: {queueSize: 7, eventFilter: {selectClauses:\n"
        "        [{browsePath: /2:Sev}, {browsePath: Message, typeDefinitionId: i=2041}]}}\n"
        "    - name: ev\n"
        "      eventNotifier: ns=2;s=Other\n"
        "      topic: {path: e/u, retain: Never}\n");
    const ep_conn_asset *a = &r->u.asset;
    assert_int_equal(a->ndatasets, 1);
    assert_string_equal(a->datasets[0].dest.topic, "d/t");
    assert_int_equal(a->datasets[0].dest.qos, 1);
    assert_null(a->datasets[0].start_node);
    assert_string_equal(a->datasets[0].points[0].name, "ns=1;s=X");
    assert_int_equal(a->datasets[0].points[0].cfg.sampling_ms, -1);
    assert_int_equal(a->datasets[0].cfg.queue_size, -1);
    /* event names need not be unique (each event has its own subscription) */
    assert_int_equal(a->nevents, 2);
    const ep_conn_event *ev = &a->events[0];
    assert_string_equal(ev->notifier, "i=2253");
    assert_string_equal(ev->dest.topic, "e/t");
    assert_true(ev->dest.retain);
    assert_int_equal(ev->dest.qos, 0);
    assert_int_equal(ev->dest.ttl_s, 60);
    assert_int_equal(ev->cfg.queue_size, 7);
    assert_int_equal(ev->cfg.publishing_ms, -1);
    assert_int_equal(ev->nselect, 2);
    assert_string_equal(ev->select[0].browse_path, "2:Sev");
    assert_string_equal(ev->select[0].field, "Sev");
    assert_null(ev->select[0].type_def);
    assert_string_equal(ev->select[1].field, "Message");
    assert_string_equal(ev->select[1].type_def, "i=2041");
    ev = &a->events[1];
    assert_string_equal(ev->notifier, "ns=2;s=Other");
    assert_string_equal(ev->dest.topic, "e/u");
    assert_false(ev->dest.retain);
    assert_true(ev->dest.has_retain);
    assert_int_equal(ev->nselect, 0);
    assert_int_equal(ev->cfg.queue_size, -1);
    ep_conn_res_free(r);
}

static void test_multi_document_lines(void **state)
{
    (void)state;
    const char *text = "# resources\n"
                       "---\n"
                       "kind: AssetEndpointProfile\n"
                       "metadata: {name: p}\n"
                       "spec: {targetAddress: 'opc.tcp://h:1'}\n"
                       "---\n"
                       "\n"
                       "kind: Asset\n"
                       "metadata: {name: a}\n"
                       "spec:\n"
                       "  assetEndpointProfileRef: p\n"
                       "  datasets: [{name: d, dataPoints: [{name: x, dataSource: 7}]}]\n"
                       "---\n"
                       "kind: Asset\n"
                       "metadata: {name: b}\n"
                       "spec:\n"
                       "  assetEndpointProfileRef: p\n"
                       "  datasets: [{name: d, dataPoints: [{nme: x}]}]\n";
    ep_conn_res_list l = {0};
    ep_cfg_errs errs = {0};
    assert_int_equal(ep_conn_res_parse_multi("f.yaml", text, strlen(text), &l, &errs), EP_ECONFIG);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.items[0]->name, "p");
    assert_string_equal(l.items[1]->name, "a");
    assert_int_equal(l.items[1]->u.asset.datasets[0].npoints, 1);
    /* the error of the third document points at its line in the file */
    assert_true(errs.count >= 1);
    assert_non_null(strstr(errs.items[0].text, "Asset b: f.yaml:18:"));
    /* the stored text is the document alone, as sent to the broker */
    assert_ptr_equal(strstr(l.items[1]->text, "kind: Asset"), l.items[1]->text + 1);
    ep_cfg_errs_fini(&errs);
    ep_conn_res_list_fini(&l);
}

static void test_kinds_names(void **state)
{
    (void)state;
    assert_int_equal(ep_conn_kind_parse("assets"), EP_CONN_KIND_ASSET);
    assert_int_equal(ep_conn_kind_parse("AEP"), EP_CONN_KIND_PROFILE);
    assert_int_equal(ep_conn_kind_parse("nope"), EP_CONN_KIND_NONE);
    assert_true(ep_conn_name_valid("oven-1.a"));
    assert_false(ep_conn_name_valid("-oven"));
    assert_false(ep_conn_name_valid("Oven"));
    assert_false(ep_conn_name_valid("a/b"));
    assert_false(ep_conn_name_valid(""));
    char t[128];
    ep_conn_res_topic(EP_CONN_KIND_ASSET, "x", t, sizeof(t));
    assert_string_equal(t, "$edgeplane/resources/asset/x");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_profile_full),  cmocka_unit_test(test_profile_defaults),
        cmocka_unit_test(test_asset_full),    cmocka_unit_test(test_errors_name_resource_field),
        cmocka_unit_test(test_element_kinds), cmocka_unit_test(test_multi_document_lines),
        cmocka_unit_test(test_kinds_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
