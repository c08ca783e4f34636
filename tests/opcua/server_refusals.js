#!/usr/bin/env node
// Refusals of the services that work on a list of operations, against
// `edgeplane opcua-sim`: CreateMonitoredItems, ModifyMonitoredItems,
// DeleteMonitoredItems, SetMonitoringMode, DeleteSubscriptions and
// SetPublishingMode. Each is refused with one ServiceFault whose code
// follows a fixed order: an unknown subscription first, then an empty
// list (BadNothingToDo), then more than 100 000 operations
// (BadTooManyOperations), and only then the service's own check
// (TimestampsToReturn 7: BadTimestampsToReturnInvalid; MonitoringMode 5:
// BadMonitoringModeInvalid). Unknown ids inside an accepted request are
// reported per operation instead.
//
// usage: node server_refusals.js --edgeplane PATH
// Prints "ok N - ..." / "not ok N - ..." lines and "N passed, N failed".
"use strict";

const o = require("node-opcua");
const { startSim } = require("./opcua_sim");

const TOO_MANY = 100001; // opcua-sim's MaxNodesPerRequest is 100 000
const BAD_TS = 7; // TimestampsToReturn is 0..3
const BAD_MODE = 5; // MonitoringMode is 0..2

const results = [];
function report(ok, name, detail) {
    results.push(ok);
    console.log(`${ok ? "ok" : "not ok"} ${results.length} - ${name}${detail ? " # " + detail : ""}`);
}

// Sends req; returns the ServiceFault's code name, or "Good" and the
// response.
function transact(session, req) {
    return new Promise((resolve) => session.performMessageTransaction(req, (err, resp) => {
        if (!err) return resolve({ code: "Good", resp });
        const h = err.response && err.response.responseHeader;
        resolve({ code: h ? h.serviceResult.name : "error: " + err.message });
    }));
}

const ids = (n) => Array.from({ length: n }, (_, k) => k + 1);
const createItem = (k) => ({
    itemToMonitor: { nodeId: "ns=2;s=Plant.Oven1.Temperature", attributeId: o.AttributeIds.Value },
    monitoringMode: o.MonitoringMode.Reporting,
    requestedParameters: { clientHandle: k, samplingInterval: 1000, queueSize: 1, discardOldest: true },
});
const modifyItem = (k) => ({ monitoredItemId: k, requestedParameters: { clientHandle: k, samplingInterval: 1000, queueSize: 1 } });

// The constructors refuse out-of-range enumerations, so a failing own check
// is set on the built request (the encoder writes the number as it is).
const withField = (req, field, value) => Object.assign(req, { [field]: value });

// The four services on one subscription: (subscription id, n operations,
// the service's own check failing or not) -> request.
const itemServices = {
    CreateMonitoredItems: (sub, n, bad) => withField(new o.CreateMonitoredItemsRequest({ subscriptionId: sub,
        itemsToCreate: ids(n).map(createItem), timestampsToReturn: o.TimestampsToReturn.Both }),
    "timestampsToReturn", bad ? BAD_TS : o.TimestampsToReturn.Both),
    ModifyMonitoredItems: (sub, n, bad) => withField(new o.ModifyMonitoredItemsRequest({ subscriptionId: sub,
        itemsToModify: ids(n).map(modifyItem), timestampsToReturn: o.TimestampsToReturn.Both }),
    "timestampsToReturn", bad ? BAD_TS : o.TimestampsToReturn.Both),
    DeleteMonitoredItems: (sub, n) => new o.DeleteMonitoredItemsRequest({ subscriptionId: sub, monitoredItemIds: ids(n) }),
    SetMonitoringMode: (sub, n, bad) => withField(new o.SetMonitoringModeRequest({ subscriptionId: sub,
        monitoredItemIds: ids(n), monitoringMode: o.MonitoringMode.Reporting }),
    "monitoringMode", bad ? BAD_MODE : o.MonitoringMode.Reporting),
};
const ownCheck = { CreateMonitoredItems: "BadTimestampsToReturnInvalid",
    ModifyMonitoredItems: "BadTimestampsToReturnInvalid", SetMonitoringMode: "BadMonitoringModeInvalid" };

// The two services on a list of subscriptions: n operations -> request.
const subServices = {
    DeleteSubscriptions: (n) => new o.DeleteSubscriptionsRequest({ subscriptionIds: ids(n).map((k) => 1000000 + k) }),
    SetPublishingMode: (n) => new o.SetPublishingModeRequest({ publishingEnabled: true,
        subscriptionIds: ids(n).map((k) => 1000000 + k) }),
};

async function expect(session, name, req, want, check) {
    const r = await transact(session, req);
    let ok = r.code === want;
    let detail = `got ${r.code}`;
    if (ok && check) [ok, detail] = check(r.resp);
    report(ok, `${name} -> ${want}`, ok ? "" : detail);
}

const perOp = (want) => (resp) => {
    const codes = resp.results.map((s) => (s.statusCode || s).name);
    return [codes.length === 1 && codes[0] === want, `results ${codes}`];
};

async function run(session) {
    const cs = await transact(session, new o.CreateSubscriptionRequest({ requestedPublishingInterval: 1000,
        requestedLifetimeCount: 600, requestedMaxKeepAliveCount: 20, publishingEnabled: true }));
    const sub = cs.resp.subscriptionId;
    report(cs.code === "Good", "CreateSubscription", cs.code);
    for (const [svc, make] of Object.entries(itemServices)) {
        const own = ownCheck[svc];
        const failing = own ? ", own check failing" : "";
        await expect(session, `${svc} unknown subscription, empty list${failing}`,
            make(sub + 1000, 0, true), "BadSubscriptionIdInvalid");
        await expect(session, `${svc} empty list${failing}`, make(sub, 0, true), "BadNothingToDo");
        await expect(session, `${svc} ${TOO_MANY} operations${failing}`,
            make(sub, TOO_MANY, true), "BadTooManyOperations");
        if (own)
            await expect(session, `${svc} one operation, own check failing`, make(sub, 1, true), own);
    }
    await expect(session, "ModifyMonitoredItems unknown item", itemServices.ModifyMonitoredItems(sub, 1, false),
        "Good", perOp("BadMonitoredItemIdInvalid"));
    await expect(session, "DeleteMonitoredItems unknown item", itemServices.DeleteMonitoredItems(sub, 1),
        "Good", perOp("BadMonitoredItemIdInvalid"));
    await expect(session, "SetMonitoringMode unknown item", itemServices.SetMonitoringMode(sub, 1, false),
        "Good", perOp("BadMonitoredItemIdInvalid"));
    for (const [svc, make] of Object.entries(subServices)) {
        await expect(session, `${svc} empty list`, make(0), "BadNothingToDo");
        await expect(session, `${svc} ${TOO_MANY} operations`, make(TOO_MANY), "BadTooManyOperations");
        await expect(session, `${svc} unknown subscription`, make(1), "Good", perOp("BadSubscriptionIdInvalid"));
    }
    // the subscription is still there and usable after all the refusals
    await expect(session, "CreateMonitoredItems one item", itemServices.CreateMonitoredItems(sub, 1, false),
        "Good", perOp("Good"));
}

async function main() {
    const i = process.argv.indexOf("--edgeplane");
    const bin = i < 0 ? undefined : process.argv[i + 1];
    if (!bin) { console.error("usage: server_refusals.js --edgeplane PATH"); process.exit(2); }
    const { child, url } = await startSim(bin, ["--log-level", "warn"]);
    const client = o.OPCUAClient.create({ endpointMustExist: false, connectionStrategy: { maxRetry: 0 } });
    try {
        await client.connect(url);
        const session = await client.createSession();
        await run(session);
        await session.close();
    } catch (e) {
        report(false, "session", e.message);
    } finally {
        await client.disconnect();
        child.kill("SIGTERM");
        await new Promise((res) => { if (child.exitCode !== null) res(); else child.on("exit", res); });
    }
    const failed = results.filter((r) => !r).length;
    console.log(`${results.length - failed} passed, ${failed} failed`);
    process.exit(failed ? 1 : 0);
}

main().catch((e) => { console.error(e); process.exit(1); });
