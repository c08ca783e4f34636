#!/usr/bin/env node
// server_bench.js - notifications per second delivered to one node-opcua
// client subscribed to K variables of a server (sampling and publishing
// every --interval ms, MaxNotificationsPerPublish 1000), measured over
// --seconds after a warm-up. Used by bench/opcua-server.sh against
// `edgeplane opcua-sim --extra-nodes K` and against a node-opcua server
// (tests/opcua/client_server.js --extra K) with the same node count.
//
// usage: node server_bench.js --url URL --prefix "ns=2;s=Plant.Extra." -k K
//        [--interval 1000] [--seconds 10] [--pid SERVER_PID]
// Prints one JSON line: {"items":K,"created_s":..,"notifications_per_s":..,
// "server_cpu_us_per_notification":..} (the last with --pid: the server's
// user+system CPU during the measured window, from /proc).
"use strict";
const fs = require("fs");
const { OPCUAClient, AttributeIds, TimestampsToReturn, ClientSubscription } = require("node-opcua");

function arg(n, d) { const i = process.argv.indexOf(n); return i < 0 ? d : process.argv[i + 1]; }

(async () => {
    const url = arg("--url"), prefix = arg("--prefix"), k = parseInt(arg("-k", "1000"), 10);
    const interval = parseInt(arg("--interval", "1000"), 10), seconds = parseInt(arg("--seconds", "10"), 10);
    const client = OPCUAClient.create({ endpointMustExist: false, connectionStrategy: { maxRetry: 0 } });
    await client.connect(url);
    const session = await client.createSession();
    const sub = ClientSubscription.create(session, { requestedPublishingInterval: interval,
        requestedLifetimeCount: 600, requestedMaxKeepAliveCount: 10, maxNotificationsPerPublish: 1000,
        publishingEnabled: true, priority: 1 });
    await new Promise((res) => sub.on("started", res));
    let count = 0;
    sub.on("raw_notification", (n) => {
        for (const d of n.notificationData || []) if (d.monitoredItems) count += d.monitoredItems.length;
    });
    const t0 = Date.now();
    const batch = 5000;
    for (let i = 0; i < k; i += batch) {
        const items = [];
        for (let j = i; j < Math.min(k, i + batch); j++)
            items.push({ itemToMonitor: { nodeId: prefix + j, attributeId: AttributeIds.Value },
                monitoringMode: 2, requestedParameters: { clientHandle: j + 1, samplingInterval: interval,
                    queueSize: 1, discardOldest: true } });
        const r = await session.createMonitoredItems({ subscriptionId: sub.subscriptionId,
            timestampsToReturn: TimestampsToReturn.Neither, itemsToCreate: items });
        const bad = r.results.filter((x) => x.statusCode.value !== 0).length;
        if (bad) throw new Error(`${bad} items refused`);
    }
    const created = (Date.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 2 * interval + 500));
    const pid = arg("--pid");
    const cpu = () => { if (!pid) return 0; const f = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
        return (parseInt(f[11], 10) + parseInt(f[12], 10)) / 100; };
    count = 0;
    const c0 = cpu();
    const t1 = Date.now();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const rate = count / ((Date.now() - t1) / 1000);
    const got = count;
    const out = { items: k, created_s: created, notifications_per_s: Math.round(rate) };
    if (pid) out.server_cpu_us_per_notification = +((cpu() - c0) * 1e6 / Math.max(1, got)).toFixed(2);
    console.log("RESULT " + JSON.stringify(out));
    await sub.terminate();
    await session.close();
    await client.disconnect();
    process.exit(0);
})().catch((e) => { console.error("bench:", e.message); process.exit(1); });
