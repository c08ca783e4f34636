/*
 * sim.h - a simulated plant for `edgeplane opcua-sim`: ovens, pumps and
 * thermostats with changing variables, writable setpoints, methods, an
 * event source and N extra fast-changing variables for load tests, all in
 * namespace "urn:edgeplane:opcua-sim:plant" (index 2) under Objects/Plant.
 *
 * Node ids (string ids in the sim namespace, stable for scripts):
 *   Plant                           object, event notifier, method Reset()
 *   Plant.Oven<k>                   k = 1..3, event source
 *     .Temperature  Double   r      .Setpoint  Double  rw
 *     .Heating      Boolean  r      .Status    String  r
 *     .Counter      UInt32   r      .Pressure  Double  r
 *     .SetSetpoint(Double) -> Double (previous)
 *   Plant.Pump<k>                   k = 1..2
 *     .Pressure Double r  .FlowRate Double r  .Running Boolean rw
 *     .Speed Double rw   .Counter UInt32 r
 *   Plant.Thermostat<k>             k = 1..2
 *     .Temperature Double r  .Setpoint Double rw  .Mode String rw
 *   Plant.Extra.<i>                 i = 0..N-1, Double r, change every
 *                                   update_ms, spread over it in 50 ms
 *                                   slices (i mod update_ms/50)
 * Plant.Reset() zeroes every Counter and returns how many were reset.
 * Every update the plant values move; every event_ms an oven raises a
 * BaseEventType event (severity 100..900) through Plant to Server.
 *
 * Threads: loop thread only, like the server it populates.
 */
#ifndef EP_SVC_OPCUA_SIM_H
#define EP_SVC_OPCUA_SIM_H

#include <stdint.h>

#include "svc/opcua/server.h"

#define EP_UA_SIM_NAMESPACE "urn:edgeplane:opcua-sim:plant"

typedef struct ep_ua_sim ep_ua_sim;

typedef struct ep_ua_sim_opts {
    uint32_t extra_nodes; /* Plant.Extra.<i> variables */
    uint32_t update_ms;   /* 0: 1000 */
    uint32_t event_ms;    /* 0: 5000 */
} ep_ua_sim_opts;

/* ep_ua_sim_new builds the plant in srv (borrowed; must outlive the sim)
 * and starts its timers. Errors: EP_ENOMEM, EP_EEXIST (built twice). */
ep_err ep_ua_sim_new(ep_loop *loop, ep_ua_server *srv, const ep_ua_sim_opts *opts, ep_ua_sim **out);
/* ep_ua_sim_free stops the timers (the nodes stay in the server). */
void ep_ua_sim_free(ep_ua_sim *sim);

#endif
