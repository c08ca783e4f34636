#!/usr/bin/env node
// client_bench.js - node-opcua's own client under the load of
// bench/opcua-client.sh, measured the same way as our client
// (src/svc/opcua_client/bench/uac_bench.c) so the figures compare:
//
//   notifications_per_s      items delivered to the application ("changed"
//                            of ClientMonitoredItemGroups created with
//                            subscription.monitorItems, 1000 items each)
//   cpu_us_per_notification  process.cpuUsage() user+system delta over the
//                            measured window only (setup and warm-up
//                            excluded) / notifications in the window; the
//                            window runs from the first notification of a
//                            publishing burst to the first one of the burst
//                            after --seconds, so whole cycles are counted
//   rss_per_1000_items_kib   (RSS at the end of the window - RSS of the idle
//                            connected client) / (K / 1000); both after a
//                            full GC when run with --expose-gc
//
// usage: node [--expose-gc] client_bench.js --url URL --prefix "ns=2;s=Plant.Extra."
//        -k K [--interval 1000] [--sampling -1] [--seconds 10] [--warmup 3]
// Prints one JSON line on stdout.
"use strict";
const { OPCUAClient, AttributeIds, TimestampsToReturn, ClientSubscription } = require("node-opcua");

function arg(n, d) {
    const i = process.argv.indexOf(n);
    return i < 0 ? d : process.argv[i + 1];
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// full collections, with a pause for the allocator to hand pages back
const settle = async () => {
    for (let i = 0; i < 3 && global.gc; i++) { global.gc(); await sleep(100); }
};
const rssKiB = () => process.memoryUsage().rss / 1024;

(async () => {
    const url = arg("--url"), prefix = arg("--prefix");
    const k = parseInt(arg("-k", "10000"), 10);
    const interval = parseFloat(arg("--interval", "1000"));
    const sampling = parseFloat(arg("--sampling", "-1"));
    const seconds = parseFloat(arg("--seconds", "10"));
    const warmup = parseFloat(arg("--warmup", "3"));
    if (!url || !prefix) throw new Error("--url and --prefix are required");

    const client = OPCUAClient.create({ endpointMustExist: false, connectionStrategy: { maxRetry: 0 },
        requestedSessionTimeout: 120000 });
    await client.connect(url);
    const session = await client.createSession();
    await sleep(500);
    await settle();
    const rssIdle = rssKiB();

    const t0 = Date.now();
    const sub = ClientSubscription.create(session, { requestedPublishingInterval: interval,
        requestedLifetimeCount: 60, requestedMaxKeepAliveCount: 10, maxNotificationsPerPublish: 0,
        publishingEnabled: true, priority: 1 });
    await new Promise((res, rej) => { sub.once("started", res); sub.once("internal_error", rej); });
    // window edges are taken at the first notification after a gap
    let count = 0, last = 0, state = "idle";
    const gapMs = interval / 4, windowMs = seconds * 1000;
    let w0 = null, w1 = null, finished = null;
    const done = new Promise((r) => { finished = r; });
    const edge = (now) => {
        if (state === "armed") {
            w0 = { cpu: process.cpuUsage(), t: process.hrtime.bigint(), n: count, ms: now };
            state = "measuring";
        } else if (state === "measuring" && now - w0.ms >= windowMs) {
            w1 = { cpu: process.cpuUsage(w0.cpu), t: process.hrtime.bigint(), n: count };
            state = "done";
            finished();
        }
    };
    // one clock reading per notification message (before its items are
    // dispatched), not per item, as in ep_uac_bench
    const onChanged = () => { count++; };
    sub.on("received_notifications", () => {
        const now = Date.now();
        if ((state === "armed" || state === "measuring") && now - last > gapMs) edge(now);
        last = now;
    });
    const groups = [];
    for (let off = 0; off < k; off += 1000) {
        const n = Math.min(1000, k - off);
        const items = [];
        for (let j = off; j < off + n; j++) items.push({ nodeId: prefix + j, attributeId: AttributeIds.Value });
        const params = { samplingInterval: sampling, queueSize: 1, discardOldest: true };
        const g = await sub.monitorItems(items, params, TimestampsToReturn.Both);
        g.on("changed", onChanged);
        groups.push(g);
    }
    const created = (Date.now() - t0) / 1000;
    const wend = Date.now() + 30000;
    while (count === 0 && Date.now() < wend) await sleep(50);
    await sleep(warmup * 1000);

    last = Date.now();
    state = "armed";
    // the process sleeps until traffic; no burst edge (continuous flow):
    // close on time
    const fallback = setTimeout(() => {
        if (state === "measuring") edge(Date.now());
        finished();
    }, windowMs + 4 * interval + 5000);
    await done;
    clearTimeout(fallback);
    if (state !== "done") throw new Error("no notifications in the window");
    const n = w1.n - w0.n;
    const span = Number(w1.t - w0.t) / 1e9;
    const cpuUs = w1.cpu.user + w1.cpu.system;
    await settle();
    const rssSub = rssKiB();
    const out = {
        client: "node-opcua",
        items: k,
        created_s: +created.toFixed(2),
        seconds: +span.toFixed(2),
        notifications: n,
        notifications_per_s: Math.round(n / span),
        cpu_s: +(cpuUs / 1e6).toFixed(4),
        cpu_us_per_notification: n ? +(cpuUs / n).toFixed(4) : 0,
        rss_idle_kib: Math.round(rssIdle),
        rss_subscribed_kib: Math.round(rssSub),
        rss_per_1000_items_kib: +((rssSub - rssIdle) / (k / 1000)).toFixed(1),
    };
    console.log(JSON.stringify(out));
    try {
        await sub.terminate();
        await session.close();
        await client.disconnect();
    } catch (e) { /* the measurement is done */ }
    process.exit(0);
})().catch((e) => { console.error("client_bench:", e.message); process.exit(1); });
