/* metrics_test.c - registry, validation, golden Prometheus text, sharded
 * updates from many threads, collectors, readiness checks, and the cost of
 * an increment. */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/clock.h"
#include "core/metrics.h"

static char *render(ep_metrics *r)
{
    static ep_buf b;
    ep_buf_fini(&b);
    ep_buf_init(&b, 0);
    assert_int_equal(ep_metrics_render(r, &b), EP_EOK);
    ep_buf_append_u8(&b, 0);
    return (char *)ep_buf_head(&b);
}

static void test_names(void **state)
{
    (void)state;
    assert_true(ep_metrics_name_valid("edgeplane_broker_messages_total"));
    assert_true(ep_metrics_name_valid("a:b_c9"));
    assert_true(ep_metrics_name_valid("_x"));
    assert_false(ep_metrics_name_valid(""));
    assert_false(ep_metrics_name_valid("9abc"));
    assert_false(ep_metrics_name_valid("a-b"));
    assert_false(ep_metrics_name_valid("a b"));
    assert_false(ep_metrics_name_valid("é"));
    assert_true(ep_metrics_label_name_valid("qos"));
    assert_true(ep_metrics_label_name_valid("_q"));
    assert_false(ep_metrics_label_name_valid("__name__"));
    assert_false(ep_metrics_label_name_valid("a:b"));
    assert_false(ep_metrics_label_name_valid("1a"));

    ep_metrics *r;
    assert_int_equal(ep_metrics_new(&r), EP_EOK);
    ep_metric *m;
    ep_metric_desc d = {.type = EP_METRIC_COUNTER, .name = "x_total", .labels = "a,b,a"};
    assert_int_equal(ep_metrics_register(r, &d, &m), EP_EINVAL); /* duplicate label */
    d.labels = "a,,b";
    assert_int_equal(ep_metrics_register(r, &d, &m), EP_EINVAL);
    d.labels = "a,__b";
    assert_int_equal(ep_metrics_register(r, &d, &m), EP_EINVAL);
    d.labels = "a,b,c,d,e,f,g,h,i";
    assert_int_equal(ep_metrics_register(r, &d, &m), EP_EINVAL);
    d.labels = "a, b";
    assert_int_equal(ep_metrics_register(r, &d, &m), EP_EOK);
    /* Same shape again: the same family. Another shape: EP_EEXIST. */
    ep_metric *m2;
    d.labels = "a,b";
    assert_int_equal(ep_metrics_register(r, &d, &m2), EP_EOK);
    assert_ptr_equal(m, m2);
    d.labels = "a";
    assert_int_equal(ep_metrics_register(r, &d, &m2), EP_EEXIST);
    d.type = EP_METRIC_GAUGE;
    d.labels = "a,b";
    assert_int_equal(ep_metrics_register(r, &d, &m2), EP_EEXIST);

    ep_metric_desc h = {.type = EP_METRIC_HISTOGRAM, .name = "h", .labels = "le"};
    assert_int_equal(ep_metrics_register(r, &h, &m2), EP_EINVAL);
    h.labels = NULL;
    h.buckets = (const double[]){1, 1};
    h.nbuckets = 2;
    assert_int_equal(ep_metrics_register(r, &h, &m2), EP_EINVAL); /* not increasing */
    h.buckets = (const double[]){1, INFINITY};
    assert_int_equal(ep_metrics_register(r, &h, &m2), EP_EINVAL);
    d.name = "bad-name";
    assert_int_equal(ep_metrics_register(r, &d, &m2), EP_EINVAL);

    /* Series lookups: wrong type, missing values, too long. */
    ep_gauge *g;
    assert_int_equal(ep_metric_gauge(m, EP_LABELS("x", "y"), &g), EP_EINVAL);
    ep_counter *c;
    assert_int_equal(ep_metric_counter(m, NULL, &c), EP_EINVAL);
    assert_int_equal(ep_metric_counter(m, EP_LABELS("x", NULL), &c), EP_EINVAL);
    char big[EP_METRICS_MAX_LABEL_LEN + 2];
    memset(big, 'v', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(ep_metric_counter(m, EP_LABELS("x", big), &c), EP_EINVAL);
    ep_counter *c2;
    assert_int_equal(ep_metric_counter(m, EP_LABELS("x", "y"), &c), EP_EOK);
    assert_int_equal(ep_metric_counter(m, EP_LABELS("x", "y"), &c2), EP_EOK);
    assert_ptr_equal(c, c2);
    ep_metrics_free(r);
}

static const char golden[] =
    "# HELP edgeplane_broker_messages_total Messages by direction and QoS.\n"
    "# TYPE edgeplane_broker_messages_total counter\n"
    "edgeplane_broker_messages_total{direction=\"in\",qos=\"0\"} 3\n"
    "edgeplane_broker_messages_total{direction=\"in\",qos=\"1\"} 18446744073709551615\n"
    "edgeplane_broker_messages_total{direction=\"out\",qos=\"0\"} 0\n"
    "# HELP edgeplane_commit_seconds Commit latency.\n"
    "# TYPE edgeplane_commit_seconds histogram\n"
    "edgeplane_commit_seconds_bucket{le=\"0.001\"} 1\n"
    "edgeplane_commit_seconds_bucket{le=\"0.01\"} 3\n"
    "edgeplane_commit_seconds_bucket{le=\"0.1\"} 3\n"
    "edgeplane_commit_seconds_bucket{le=\"+Inf\"} 5\n"
    "edgeplane_commit_seconds_sum 7.0155\n"
    "edgeplane_commit_seconds_count 5\n"
    "# TYPE edgeplane_escape gauge\n"
    "edgeplane_escape{path=\"C:\\\\dir\\\\\\\"x\\\"\\ny\"} -2.5\n"
    "# HELP edgeplane_queue_depth Help with \\\\ backslash and\\nnewline \"quoted\".\n"
    "# TYPE edgeplane_queue_depth gauge\n"
    "edgeplane_queue_depth{queue=\"a\"} 42\n"
    "edgeplane_queue_depth{queue=\"b\"} +Inf\n"
    "edgeplane_queue_depth{queue=\"c\"} NaN\n"
    "edgeplane_queue_depth{queue=\"d\"} 1e+300\n"
    "# HELP edgeplane_up Always 1.\n"
    "# TYPE edgeplane_up gauge\n"
    "edgeplane_up 1\n"
    "# HELP edgeplane_uptime_seconds_total Collected counter.\n"
    "# TYPE edgeplane_uptime_seconds_total counter\n"
    "edgeplane_uptime_seconds_total 12.25\n";

static void test_golden(void **state)
{
    (void)state;
    ep_metrics *r;
    assert_int_equal(ep_metrics_new(&r), EP_EOK);
    /* Registered in a different order than rendered. */
    ep_gauge *up;
    assert_int_equal(ep_metrics_gauge_simple(r, "edgeplane_up", "Always 1.", &up), EP_EOK);
    ep_gauge_set(up, 1);
    ep_metric *q;
    ep_metric_desc qd = {.type = EP_METRIC_GAUGE,
                         .name = "edgeplane_queue_depth",
                         .help = "Help with \\ backslash and\nnewline \"quoted\".",
                         .labels = "queue"};
    assert_int_equal(ep_metrics_register(r, &qd, &q), EP_EOK);
    ep_gauge *g;
    assert_int_equal(ep_metric_gauge(q, EP_LABELS("d"), &g), EP_EOK);
    ep_gauge_set(g, 1e300);
    assert_int_equal(ep_metric_gauge(q, EP_LABELS("b"), &g), EP_EOK);
    ep_gauge_set(g, INFINITY);
    assert_int_equal(ep_metric_gauge(q, EP_LABELS("a"), &g), EP_EOK);
    ep_gauge_add(g, 40);
    ep_gauge_inc(g);
    ep_gauge_inc(g);
    ep_gauge_inc(g);
    ep_gauge_dec(g);
    assert_int_equal(ep_metric_gauge(q, EP_LABELS("c"), &g), EP_EOK);
    ep_gauge_set(g, NAN);

    ep_metric *msgs;
    ep_metric_desc md = {.type = EP_METRIC_COUNTER,
                         .name = "edgeplane_broker_messages_total",
                         .help = "Messages by direction and QoS.",
                         .labels = "direction,qos"};
    assert_int_equal(ep_metrics_register(r, &md, &msgs), EP_EOK);
    ep_counter *c;
    assert_int_equal(ep_metric_counter(msgs, EP_LABELS("out", "0"), &c), EP_EOK);
    assert_int_equal(ep_metric_counter(msgs, EP_LABELS("in", "1"), &c), EP_EOK);
    ep_counter_add(c, UINT64_MAX);
    assert_int_equal(ep_metric_counter(msgs, EP_LABELS("in", "0"), &c), EP_EOK);
    ep_counter_inc(c);
    ep_counter_add(c, 2);

    ep_histogram *h;
    assert_int_equal(ep_metrics_histogram_simple(r, "edgeplane_commit_seconds", "Commit latency.",
                                                 (const double[]){0.001, 0.01, 0.1}, 3, &h),
                     EP_EOK);
    ep_histogram_observe(h, 0.0005);
    ep_histogram_observe(h, 0.01); /* upper bounds are inclusive */
    ep_histogram_observe(h, 0.005);
    ep_histogram_observe(h, 5);
    ep_histogram_observe(h, 2);
    assert_int_equal(ep_histogram_count(h), 5);

    ep_counter *up_s;
    assert_int_equal(
        ep_metrics_counter_simple(r, "edgeplane_uptime_seconds_total", "Collected counter.", &up_s),
        EP_EOK);
    ep_counter_set(up_s, 12.25);

    ep_metric *esc;
    ep_metric_desc ed = {.type = EP_METRIC_GAUGE, .name = "edgeplane_escape", .labels = "path"};
    assert_int_equal(ep_metrics_register(r, &ed, &esc), EP_EOK);
    assert_int_equal(ep_metric_gauge(esc, EP_LABELS("C:\\dir\\\"x\"\ny"), &g), EP_EOK);
    ep_gauge_set(g, -2.5);

    /* A labelled family without series is not rendered. */
    ep_metric *empty;
    ep_metric_desc xd = {.type = EP_METRIC_COUNTER, .name = "edgeplane_empty_total", .labels = "x"};
    assert_int_equal(ep_metrics_register(r, &xd, &empty), EP_EOK);

    const char *text = render(r);
    if (strcmp(text, golden) != 0)
        print_error("got:\n%s\nwant:\n%s\n", text, golden);
    assert_string_equal(text, golden);
    ep_metrics_free(r);
}

static void test_format_double(void **state)
{
    (void)state;
    char b[64];
    struct {
        double v;
        const char *s;
    } cases[] = {{0, "0"},
                 {1, "1"},
                 {0.1, "0.1"},
                 {0.005, "0.005"},
                 {2.5e-05, "2.5e-05"},
                 {1e15, "1e+15"},
                 {123456789, "123456789"},
                 {0.30000000000000004, "0.30000000000000004"},
                 {-0.0, "-0"},
                 {-INFINITY, "-Inf"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ep_metrics_format_double(cases[i].v, b, sizeof(b));
        assert_string_equal(b, cases[i].s);
    }
}

/* ---- many threads ---- */

enum { NTHREADS = 24, NITER = 200000 };

typedef struct thr_arg {
    ep_counter *c;
    ep_histogram *h;
} thr_arg;

static void *thr_main(void *p)
{
    thr_arg *a = p;
    for (int i = 0; i < NITER; i++) {
        ep_counter_inc(a->c);
        if ((i & 63) == 0)
            ep_histogram_observe(a->h, 0.5);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    ep_metrics *r;
    assert_int_equal(ep_metrics_new(&r), EP_EOK);
    thr_arg a;
    assert_int_equal(ep_metrics_counter_simple(r, "t_total", "", &a.c), EP_EOK);
    assert_int_equal(ep_metrics_histogram_simple(r, "t_seconds", "", NULL, 0, &a.h), EP_EOK);
    /* More threads than exclusive shards: the extra ones share the last. */
    pthread_t t[NTHREADS];
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < NTHREADS; i++)
            assert_int_equal(pthread_create(&t[i], NULL, thr_main, &a), 0);
        for (int i = 0; i < NTHREADS; i++)
            pthread_join(t[i], NULL);
    }
    /* Slots were returned by exited threads and reused in round 2. */
    assert_true(ep_counter_value(a.c) == 2.0 * NTHREADS * NITER);
    uint64_t per = (NITER + 63) / 64;
    assert_int_equal(ep_histogram_count(a.h), 2 * NTHREADS * per);
    assert_true(ep_histogram_sum(a.h) == 0.5 * 2 * NTHREADS * (double)per);
    ep_metrics_free(r);
}

/* ---- collectors and checks ---- */

static int collected;

static void collect(ep_metrics *r, void *ud)
{
    ep_gauge *g;
    ep_metric *f = ud;
    collected++;
    if (ep_metric_gauge(f, EP_LABELS("dyn"), &g) == EP_EOK)
        ep_gauge_set(g, collected);
    (void)r;
}

static bool check_fn(void *ud, char *why, size_t n)
{
    int *ok = ud;
    if (!*ok)
        snprintf(why, n, "listener %d not bound", 1883);
    return *ok;
}

typedef struct results {
    char text[512];
} results;

static void on_result(void *ud, const char *name, bool ready, const char *why)
{
    results *r = ud;
    size_t l = strlen(r->text);
    snprintf(r->text + l, sizeof(r->text) - l, "%s=%d(%s);", name, ready, why);
}

static void test_collectors_and_checks(void **state)
{
    (void)state;
    ep_metrics *r;
    assert_int_equal(ep_metrics_new(&r), EP_EOK);
    ep_metric *f;
    ep_metric_desc d = {.type = EP_METRIC_GAUGE, .name = "q", .labels = "name"};
    assert_int_equal(ep_metrics_register(r, &d, &f), EP_EOK);
    ep_metrics_collector *col;
    assert_int_equal(ep_metrics_collector_add(r, collect, f, &col), EP_EOK);
    assert_string_equal(render(r), "# TYPE q gauge\nq{name=\"dyn\"} 1\n");
    assert_string_equal(render(r), "# TYPE q gauge\nq{name=\"dyn\"} 2\n");
    ep_metrics_collector_remove(r, col);
    assert_string_equal(render(r), "# TYPE q gauge\nq{name=\"dyn\"} 2\n");

    int ok = 0;
    ep_metrics_check *c1, *c2;
    assert_int_equal(ep_metrics_check_add(r, "zeta", check_fn, &ok, &c1), EP_EOK);
    assert_int_equal(ep_metrics_check_add(r, "alpha", NULL, NULL, &c2), EP_EOK);
    assert_int_equal(ep_metrics_check_add(r, "alpha", NULL, NULL, NULL), EP_EEXIST);
    assert_int_equal(ep_metrics_check_add(r, "", NULL, NULL, NULL), EP_EINVAL);
    results res = {""};
    assert_int_equal(ep_metrics_checks_run(r, on_result, &res), 2);
    assert_string_equal(res.text, "alpha=0(not ready yet);zeta=0(listener 1883 not bound);");
    ep_metrics_check_set(c2, true, NULL);
    ok = 1;
    res.text[0] = '\0';
    assert_int_equal(ep_metrics_checks_run(r, on_result, &res), 0);
    assert_string_equal(res.text, "alpha=1();zeta=1();");
    ep_metrics_check_set(c2, false, "draining");
    assert_int_equal(ep_metrics_checks_run(r, NULL, NULL), 1);
    ep_metrics_check_remove(r, c2);
    assert_int_equal(ep_metrics_checks_run(r, NULL, NULL), 0);
    ep_metrics_free(r); /* frees c1 */
}

/* ---- cost ---- */

static void test_increment_cost(void **state)
{
    (void)state;
    ep_metrics *r;
    assert_int_equal(ep_metrics_new(&r), EP_EOK);
    ep_counter *c;
    ep_histogram *h;
    assert_int_equal(ep_metrics_counter_simple(r, "cost_total", "", &c), EP_EOK);
    assert_int_equal(ep_metrics_histogram_simple(r, "cost_seconds", "", NULL, 0, &h), EP_EOK);
    enum { N = 20000000 };
    ep_counter_inc(c);
    uint64_t t0 = ep_clock_mono_ns();
    for (int i = 0; i < N; i++)
        ep_counter_inc(c);
    uint64_t t1 = ep_clock_mono_ns();
    for (int i = 0; i < N / 10; i++)
        ep_histogram_observe(h, (double)(i & 1023) * 1e-5);
    uint64_t t2 = ep_clock_mono_ns();
    double inc_ns = (double)(t1 - t0) / N, obs_ns = (double)(t2 - t1) / (N / 10);
    printf("metrics: counter increment %.2f ns, histogram observe %.2f ns\n", inc_ns, obs_ns);
    assert_true(ep_counter_value(c) == N + 1.0);
    ep_metrics_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_golden),
        cmocka_unit_test(test_format_double),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_collectors_and_checks),
        cmocka_unit_test(test_increment_cost),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
