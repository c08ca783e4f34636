/*
 * sim.c - the simulated plant behind `edgeplane opcua-sim` (see sim.h).
 *
 * Three timers drive it: the update timer moves every plant value (sine
 * waves around the setpoints, counters), the extra timer the extra
 * variables, the event timer raises an oven event. Extra variables are
 * updated through the server's Double fast path, and spread over the
 * update interval as a plant's values would be: every EXTRA_SLICE_MS one
 * slice of them changes (variable i in slice i mod nslices), so each still
 * changes once per update_ms, but the server samples and publishes a
 * steady stream instead of 100 000 changes stamped with the same instant,
 * and a value's wait for the next publishing cycle is spread over the
 * whole interval instead of being one phase difference for all of them.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "svc/opcua/server_int.h"
#include "svc/opcua/sim.h"

#define NOVENS 3
#define NPUMPS 2
#define NTHERMO 2
#define EXTRA_SLICE_MS 50u

typedef struct oven {
    ep_ua_node *temp, *setpoint, *heating, *status, *counter, *pressure;
} oven;

typedef struct pump {
    ep_ua_node *pressure, *flow, *running, *speed, *counter;
} pump;

typedef struct thermo {
    ep_ua_node *temp, *setpoint, *mode;
} thermo;

struct ep_ua_sim {
    ep_ua_server *srv;
    uint16_t ns;
    ep_timer update, event, extra_timer;
    uint32_t update_ms, event_ms;
    uint64_t tick;
    uint32_t nslices, slice; /* extra variables: slices per update, next */
    uint64_t extra_cycle;    /* completed passes over every slice */
    oven ovens[NOVENS];
    pump pumps[NPUMPS];
    thermo thermos[NTHERMO];
    ep_ua_node **extra;
    uint32_t nextra;
    uint32_t next_event;
};

static ep_ua_nodeid sid(uint16_t ns, const char *s)
{
    ep_ua_nodeid id;
    memset(&id, 0, sizeof(id));
    id.ns = ns;
    id.id_type = EP_UA_NODEID_STRING;
    id.id.string = ep_ua_string_from(s);
    return id;
}

static ep_err var(ep_ua_sim *sim, const char *parent, const char *name, const ep_ua_type *t,
                  const void *v, uint8_t access, ep_ua_node **out)
{
    char id[256];
    snprintf(id, sizeof(id), "%s.%s", parent, name);
    ep_ua_nodeid nid = sid(sim->ns, id), pid = sid(sim->ns, parent);
    ep_ua_variant val;
    memset(&val, 0, sizeof(val));
    val.type = t;
    val.data = (void *)(uintptr_t)v;
    return ep_ua_server_add_variable(sim->srv, &nid, &pid, 0, name, &val, 0, access, out);
}

static ep_err obj(ep_ua_sim *sim, const char *parent, const char *id, const char *name,
                  uint32_t type_def, uint8_t notifier)
{
    ep_ua_nodeid nid = sid(sim->ns, id);
    ep_ua_nodeid pid =
        parent ? sid(sim->ns, parent) : ep_ua_nodeid_numeric(0, EP_UA_NS0_ObjectsFolder);
    return ep_ua_server_add_object(sim->srv, &nid, &pid, 0, name, type_def, notifier, NULL);
}

static void set_str(ep_ua_server *srv, ep_ua_node *n, const char *s)
{
    ep_ua_string str = ep_ua_string_from(s);
    ep_ua_variant v;
    memset(&v, 0, sizeof(v));
    v.type = EP_UA_T(String);
    v.data = &str;
    ep_ua_server_set_value(srv, n, &v, 0);
}

static void set_typed(ep_ua_server *srv, ep_ua_node *n, const ep_ua_type *t, const void *d)
{
    ep_ua_variant v;
    memset(&v, 0, sizeof(v));
    v.type = t;
    v.data = (void *)(uintptr_t)d;
    ep_ua_server_set_value(srv, n, &v, 0);
}

static double dval(const ep_ua_node *n)
{
    const ep_ua_variant *v = ep_ua_server_value(n);
    return v && v->type == EP_UA_T(Double) && v->data ? *(double *)v->data : 0;
}

static bool bval(const ep_ua_node *n)
{
    const ep_ua_variant *v = ep_ua_server_value(n);
    return v && v->type == EP_UA_T(Boolean) && v->data ? *(bool *)v->data : false;
}

static uint32_t uval(const ep_ua_node *n)
{
    const ep_ua_variant *v = ep_ua_server_value(n);
    return v && v->type == EP_UA_T(UInt32) && v->data ? *(uint32_t *)v->data : 0;
}

static void on_update(ep_timer *t)
{
    ep_ua_sim *sim = t->data;
    ep_ua_server *srv = sim->srv;
    ep_ua__timer_again(&sim->update, sim->update_ms);
    double k = (double)++sim->tick;
    for (int i = 0; i < NOVENS; i++) {
        oven *o = &sim->ovens[i];
        double sp = dval(o->setpoint);
        double temp = dval(o->temp);
        bool heating = temp < sp;
        temp += heating ? 1.5 + 0.1 * i : -1.0;
        temp += 0.2 * sin(k / 7.0 + i);
        ep_ua_server_set_double(srv, o->temp, temp);
        ep_ua_server_set_double(srv, o->pressure, 1.0 + 0.05 * sin(k / 5.0 + i));
        if (heating != bval(o->heating))
            set_typed(srv, o->heating, EP_UA_T(Boolean), &heating);
        uint32_t c = uval(o->counter) + 1;
        set_typed(srv, o->counter, EP_UA_T(UInt32), &c);
        const char *st = fabs(temp - sp) < 5 ? "at setpoint" : heating ? "heating" : "cooling";
        const ep_ua_variant *cur = ep_ua_server_value(o->status);
        if (cur == NULL || cur->data == NULL || ((ep_ua_string *)cur->data)->len != strlen(st) ||
            memcmp(((ep_ua_string *)cur->data)->data, st, strlen(st)) != 0)
            set_str(srv, o->status, st);
    }
    for (int i = 0; i < NPUMPS; i++) {
        pump *p = &sim->pumps[i];
        bool run = bval(p->running);
        double speed = run ? dval(p->speed) : 0;
        ep_ua_server_set_double(srv, p->flow, speed * 0.12 + (run ? 0.3 * sin(k / 3.0) : 0));
        ep_ua_server_set_double(srv, p->pressure,
                                run ? 2.0 + speed / 1000.0 + 0.1 * cos(k / 4.0 + i) : 0);
        if (run) {
            uint32_t c = uval(p->counter) + 1;
            set_typed(srv, p->counter, EP_UA_T(UInt32), &c);
        }
    }
    for (int i = 0; i < NTHERMO; i++) {
        thermo *th = &sim->thermos[i];
        double temp = dval(th->temp), sp = dval(th->setpoint);
        temp += (sp - temp) * 0.1 + 0.05 * sin(k / 9.0 + i);
        ep_ua_server_set_double(srv, th->temp, temp);
    }
}

/* Every slice that is due changes: a loop that ran late (a loaded
 * machine) catches up, at most one whole interval, so every variable still
 * changes once per update_ms. */
static void on_extra(ep_timer *t)
{
    ep_ua_sim *sim = t->data;
    uint64_t now = ep_loop_now(t->loop), step = sim->update_ms / sim->nslices;
    uint64_t due = t->due;
    for (uint32_t n = 0; due <= now && n < sim->nslices; n++, due += step) {
        if (sim->slice == 0)
            sim->extra_cycle++;
        double k = (double)sim->extra_cycle;
        for (uint32_t i = sim->slice; i < sim->nextra; i += sim->nslices)
            ep_ua_server_set_double(sim->srv, sim->extra[i], k + i * 0.001);
        sim->slice = (sim->slice + 1) % sim->nslices;
    }
    ep_timer_start_at(t, due <= now ? now + step : due);
}

static void on_event(ep_timer *t)
{
    ep_ua_sim *sim = t->data;
    ep_timer_start(&sim->event, sim->event_ms);
    uint32_t i = sim->next_event++ % NOVENS;
    char id[64], msg[128];
    snprintf(id, sizeof(id), "Plant.Oven%u", i + 1);
    double temp = dval(sim->ovens[i].temp), sp = dval(sim->ovens[i].setpoint);
    uint16_t sev = (uint16_t)(100 + (sim->next_event * 200) % 900);
    snprintf(msg, sizeof(msg), "Oven%u temperature %.1f, setpoint %.1f", i + 1, temp, sp);
    ep_ua_nodeid src = sid(sim->ns, id);
    ep_ua_server_emit_event(sim->srv, &src, sev, msg);
}

static ep_ua_status m_reset(ep_ua_server *srv, void *ud, const ep_ua_nodeid *object, size_t nin,
                            const ep_ua_variant *in, size_t *nout, ep_ua_variant **out,
                            ep_ua_arena *arena)
{
    ep_ua_sim *sim = ud;
    (void)object;
    (void)nin;
    (void)in;
    uint32_t zero = 0, n = 0;
    for (int i = 0; i < NOVENS; i++, n++)
        set_typed(srv, sim->ovens[i].counter, EP_UA_T(UInt32), &zero);
    for (int i = 0; i < NPUMPS; i++, n++)
        set_typed(srv, sim->pumps[i].counter, EP_UA_T(UInt32), &zero);
    ep_ua_variant *o = ep_ua__alloc(arena, 1, sizeof(*o));
    uint32_t *v = ep_ua__alloc(arena, 1, sizeof(*v));
    if (o == NULL || v == NULL)
        return EP_UA_STATUS_BadOutOfMemory;
    *v = n;
    o->type = EP_UA_T(UInt32);
    o->data = v;
    *out = o;
    *nout = 1;
    EP_LOG_INFO(UA_LOG, "sim: Reset called, %u counters zeroed", n);
    return EP_UA_STATUS_Good;
}

static ep_ua_status m_setpoint(ep_ua_server *srv, void *ud, const ep_ua_nodeid *object, size_t nin,
                               const ep_ua_variant *in, size_t *nout, ep_ua_variant **out,
                               ep_ua_arena *arena)
{
    ep_ua_node *sp = ud;
    (void)object;
    if (nin != 1 || in[0].type != EP_UA_T(Double))
        return EP_UA_STATUS_BadInvalidArgument;
    double nv = *(double *)in[0].data;
    if (!(nv >= 0 && nv <= 1000))
        return EP_UA_STATUS_BadOutOfRange;
    ep_ua_variant *o = ep_ua__alloc(arena, 1, sizeof(*o));
    double *prev = ep_ua__alloc(arena, 1, sizeof(*prev));
    if (o == NULL || prev == NULL)
        return EP_UA_STATUS_BadOutOfMemory;
    *prev = dval(sp);
    ep_ua_server_set_double(srv, sp, nv);
    o->type = EP_UA_T(Double);
    o->data = prev;
    *out = o;
    *nout = 1;
    return EP_UA_STATUS_Good;
}

static ep_ua_argument arg(const char *name, uint32_t type)
{
    ep_ua_argument a;
    memset(&a, 0, sizeof(a));
    a.name = ep_ua_string_from(name);
    a.data_type = ep_ua_nodeid_numeric(0, type);
    a.value_rank = -1;
    a.array_dimensions = EP_UA_EMPTY;
    return a;
}

static ep_err build(ep_ua_sim *sim)
{
    ep_err e = obj(sim, NULL, "Plant", "Plant", EP_UA_NS0_BaseObjectType, 1);
    double d0 = 20, d1 = 0;
    bool f = false, tr = true;
    uint32_t u0 = 0;
    ep_ua_string idle = EP_UA_STRING_LIT("idle"), autom = EP_UA_STRING_LIT("auto");
    char id[64], name[32];
    for (int i = 0; e == EP_EOK && i < NOVENS; i++) {
        oven *o = &sim->ovens[i];
        snprintf(id, sizeof(id), "Plant.Oven%d", i + 1);
        snprintf(name, sizeof(name), "Oven%d", i + 1);
        double sp = 180 + 20 * i;
        e = obj(sim, "Plant", id, name, EP_UA_NS0_BaseObjectType, 1);
        if (e == EP_EOK) {
            ep_ua_nodeid a = sid(sim->ns, "Plant"), b = sid(sim->ns, id);
            e = ep_ua_server_add_reference(sim->srv, &a, EP_UA_NS0_HasEventSource, &b);
        }
        if (e == EP_EOK)
            e = var(sim, id, "Temperature", EP_UA_T(Double), &d0, 1, &o->temp);
        if (e == EP_EOK)
            e = var(sim, id, "Setpoint", EP_UA_T(Double), &sp, 3, &o->setpoint);
        if (e == EP_EOK)
            e = var(sim, id, "Heating", EP_UA_T(Boolean), &f, 1, &o->heating);
        if (e == EP_EOK)
            e = var(sim, id, "Status", EP_UA_T(String), &idle, 1, &o->status);
        if (e == EP_EOK)
            e = var(sim, id, "Counter", EP_UA_T(UInt32), &u0, 1, &o->counter);
        if (e == EP_EOK)
            e = var(sim, id, "Pressure", EP_UA_T(Double), &d1, 1, &o->pressure);
        if (e == EP_EOK) {
            char mid[96];
            snprintf(mid, sizeof(mid), "%s.SetSetpoint", id);
            ep_ua_nodeid m = sid(sim->ns, mid), p = sid(sim->ns, id);
            ep_ua_argument in = arg("Setpoint", EP_UA_NS0_Double);
            ep_ua_argument out = arg("Previous", EP_UA_NS0_Double);
            e = ep_ua_server_add_method(sim->srv, &m, &p, "SetSetpoint", 1, &in, 1, &out,
                                        m_setpoint, o->setpoint, NULL);
        }
    }
    for (int i = 0; e == EP_EOK && i < NPUMPS; i++) {
        pump *p = &sim->pumps[i];
        snprintf(id, sizeof(id), "Plant.Pump%d", i + 1);
        snprintf(name, sizeof(name), "Pump%d", i + 1);
        double speed = 1200 + 300 * i;
        e = obj(sim, "Plant", id, name, EP_UA_NS0_BaseObjectType, 0);
        if (e == EP_EOK)
            e = var(sim, id, "Pressure", EP_UA_T(Double), &d1, 1, &p->pressure);
        if (e == EP_EOK)
            e = var(sim, id, "FlowRate", EP_UA_T(Double), &d1, 1, &p->flow);
        if (e == EP_EOK)
            e = var(sim, id, "Running", EP_UA_T(Boolean), &tr, 3, &p->running);
        if (e == EP_EOK)
            e = var(sim, id, "Speed", EP_UA_T(Double), &speed, 3, &p->speed);
        if (e == EP_EOK)
            e = var(sim, id, "Counter", EP_UA_T(UInt32), &u0, 1, &p->counter);
    }
    for (int i = 0; e == EP_EOK && i < NTHERMO; i++) {
        thermo *th = &sim->thermos[i];
        snprintf(id, sizeof(id), "Plant.Thermostat%d", i + 1);
        snprintf(name, sizeof(name), "Thermostat%d", i + 1);
        double sp = 21 + i;
        e = obj(sim, "Plant", id, name, EP_UA_NS0_BaseObjectType, 0);
        if (e == EP_EOK)
            e = var(sim, id, "Temperature", EP_UA_T(Double), &d0, 1, &th->temp);
        if (e == EP_EOK)
            e = var(sim, id, "Setpoint", EP_UA_T(Double), &sp, 3, &th->setpoint);
        if (e == EP_EOK)
            e = var(sim, id, "Mode", EP_UA_T(String), &autom, 3, &th->mode);
    }
    if (e == EP_EOK) {
        ep_ua_nodeid m = sid(sim->ns, "Plant.Reset"), p = sid(sim->ns, "Plant");
        ep_ua_argument out = arg("Reset", EP_UA_NS0_UInt32);
        e = ep_ua_server_add_method(sim->srv, &m, &p, "Reset", 0, NULL, 1, &out, m_reset, sim,
                                    NULL);
    }
    if (e == EP_EOK && sim->nextra) {
        e = obj(sim, "Plant", "Plant.Extra", "Extra", EP_UA_NS0_FolderType, 0);
        sim->extra = calloc(sim->nextra, sizeof(*sim->extra));
        if (sim->extra == NULL)
            e = EP_ENOMEM;
        for (uint32_t i = 0; e == EP_EOK && i < sim->nextra; i++) {
            snprintf(name, sizeof(name), "%u", i);
            double v = i * 0.001;
            e = var(sim, "Plant.Extra", name, EP_UA_T(Double), &v, 1, &sim->extra[i]);
        }
    }
    return e;
}

ep_err ep_ua_sim_new(ep_loop *loop, ep_ua_server *srv, const ep_ua_sim_opts *opts, ep_ua_sim **out)
{
    ep_ua_sim *sim = calloc(1, sizeof(*sim));
    if (sim == NULL)
        return EP_ENOMEM;
    sim->srv = srv;
    sim->update_ms = opts && opts->update_ms ? opts->update_ms : 1000;
    sim->event_ms = opts && opts->event_ms ? opts->event_ms : 5000;
    sim->nextra = opts ? opts->extra_nodes : 0;
    sim->ns = ep_ua_server_add_namespace(srv, EP_UA_SIM_NAMESPACE);
    ep_err e = sim->ns ? build(sim) : EP_ENOMEM;
    if (e != EP_EOK) {
        free(sim->extra);
        free(sim);
        return e;
    }
    /* slices of an exact share of the interval */
    sim->nslices = sim->update_ms / EXTRA_SLICE_MS ? sim->update_ms / EXTRA_SLICE_MS : 1;
    while (sim->update_ms % sim->nslices)
        sim->nslices--;
    ep_timer_init(loop, &sim->update, on_update, sim);
    ep_timer_init(loop, &sim->event, on_event, sim);
    ep_timer_init(loop, &sim->extra_timer, on_extra, sim);
    ep_timer_start(&sim->update, sim->update_ms);
    ep_timer_start(&sim->event, sim->event_ms);
    if (sim->nextra)
        ep_timer_start(&sim->extra_timer, sim->update_ms / sim->nslices);
    *out = sim;
    return EP_EOK;
}

void ep_ua_sim_free(ep_ua_sim *sim)
{
    if (sim == NULL)
        return;
    ep_timer_stop(&sim->update);
    ep_timer_stop(&sim->event);
    ep_timer_stop(&sim->extra_timer);
    free(sim->extra);
    free(sim);
}
