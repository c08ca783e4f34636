#!/usr/bin/env node
// node-opcua clients against `edgeplane opcua-sim` (src/svc/opcua): every
// security policy (None, Basic256Sha256, Aes128_Sha256_RsaOaep,
// Aes256_Sha256_RsaPss) x mode (Sign, SignAndEncrypt) x user token
// (anonymous, user1/pass1, X509) does: GetEndpoints, browse, read, write
// (good, wrong type, read-only), call (SetSetpoint with a good and a wrong
// argument, Reset), a subscription with data changes (DataChangeFilter
// with an absolute deadband on one item) and events with an EventFilter.
// The whole matrix runs in this one process against one server started
// here on a free port; the server is stopped by pid at the end.
//
// usage: node server_interop.js --edgeplane PATH [--only SUBSTRING]
// Prints "ok N - ..." / "not ok N - ..." lines and "N passed, N failed".
"use strict";

const { execFileSync } = require("child_process");
const fs = require("fs");
const os = require("os");
const path = require("path");
const {
    OPCUAClient,
    OPCUACertificateManager,
    MessageSecurityMode,
    SecurityPolicy,
    AttributeIds,
    DataType,
    StatusCodes,
    UserTokenType,
    TimestampsToReturn,
    ClientSubscription,
    ClientMonitoredItem,
    constructEventFilter,
    DataChangeFilter,
    DataChangeTrigger,
    DeadbandType,
} = require("node-opcua");
const { startSim } = require("./opcua_sim");

function arg(name, def) {
    const i = process.argv.indexOf(name);
    if (i < 0) return def;
    return process.argv[i + 1];
}

const results = [];
function report(ok, name, detail) {
    results.push(ok);
    console.log(`${ok ? "ok" : "not ok"} ${results.length} - ${name}${detail ? " # " + detail : ""}`);
}

function startSimFor(bin, pki) {
    return startSim(bin, ["--pki", pki, "--auto-accept", "--user", "user1:pass1", "--update-ms", "200",
        "--event-ms", "300", "--log-level", "warn"]);
}

function makeUserCert(dir) {
    // node-opcua's PKI helpers may leave OPENSSL_CONF set to "undefined"
    const env = { ...process.env };
    if (!env.OPENSSL_CONF || env.OPENSSL_CONF === "undefined") delete env.OPENSSL_CONF;
    const key = path.join(dir, "user_key.pem"), cert = path.join(dir, "user_cert.pem");
    execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
        "-out", cert, "-days", "30", "-subj", "/CN=interop-user",
        "-addext", "subjectAltName=URI:urn:edgeplane:test:user",
        "-addext", "keyUsage=critical,digitalSignature,nonRepudiation,keyEncipherment,dataEncipherment,keyCertSign",
        "-addext", "extendedKeyUsage=clientAuth"], { stdio: ["ignore", "ignore", "pipe"], env });
    const pem = fs.readFileSync(cert, "utf8");
    const der = Buffer.from(pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""), "base64");
    return { certificateData: der, privateKey: fs.readFileSync(key, "utf8") };
}

function withTimeout(p, ms, what) {
    let t;
    return Promise.race([p, new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`${what}: timeout`)), ms); })])
        .finally(() => clearTimeout(t));
}

async function oneCombination(url, certMgr, policy, mode, token, userCert) {
    const client = OPCUAClient.create({
        applicationName: "edgeplane-interop",
        applicationUri: "urn:edgeplane:test:node-opcua-client",
        clientCertificateManager: certMgr,
        securityMode: mode,
        securityPolicy: policy,
        endpointMustExist: false,
        connectionStrategy: { maxRetry: 0, initialDelay: 100 },
        requestedSessionTimeout: 60000,
    });
    const name = `${policy.replace(/^.*#/, "")}/${MessageSecurityMode[mode]}/${token}`;
    let session;
    try {
        await withTimeout(client.connect(url), 10000, "connect");
        const eps = await client.getEndpoints();
        if (eps.length !== 7) throw new Error(`expected 7 endpoints, got ${eps.length}`);
        let identity;
        if (token === "anonymous") identity = { type: UserTokenType.Anonymous };
        else if (token === "username") identity = { type: UserTokenType.UserName, userName: "user1", password: "pass1" };
        else identity = { type: UserTokenType.Certificate, ...userCert };
        session = await withTimeout(client.createSession(identity), 10000, "createSession");

        // browse and translate
        const br = await session.browse("ns=2;s=Plant");
        const names = br.references.map((r) => r.browseName.name).sort();
        for (const want of ["Oven1", "Pump1", "Thermostat1", "Reset"])
            if (!names.includes(want)) throw new Error(`browse: ${want} missing in ${names}`);
        const tr = await session.translateBrowsePath({
            startingNode: "ns=2;s=Plant",
            relativePath: { elements: [{ referenceTypeId: "i=33", isInverse: false, includeSubtypes: true, targetName: { namespaceIndex: 2, name: "Oven1" } }] },
        });
        if (tr.statusCode.value !== 0 || tr.targets[0].targetId.toString() !== "ns=2;s=Plant.Oven1")
            throw new Error(`translate: ${tr.statusCode.toString()}`);

        // read
        const dvs = await session.read([
            { nodeId: "ns=2;s=Plant.Oven1.Temperature", attributeId: AttributeIds.Value },
            { nodeId: "ns=2;s=Plant.Oven1.Setpoint", attributeId: AttributeIds.DataType },
            { nodeId: "i=2256", attributeId: AttributeIds.Value },
            { nodeId: "ns=2;s=NoSuchNode", attributeId: AttributeIds.Value },
        ]);
        if (dvs[0].value.dataType !== DataType.Double) throw new Error("read: temperature not a Double");
        if (dvs[1].value.value.toString() !== "ns=0;i=11") throw new Error(`read: DataType ${dvs[1].value.value}`);
        if (dvs[2].value.value.state !== 0) throw new Error("read: ServerStatus.State not Running");
        if (dvs[3].statusCode !== StatusCodes.BadNodeIdUnknown) throw new Error("read: unknown node not refused");

        // write: good, wrong type, read-only
        const sp = 150 + Math.floor(Math.random() * 50);
        const ws = await session.write([
            { nodeId: "ns=2;s=Plant.Oven1.Setpoint", attributeId: AttributeIds.Value, value: { value: { dataType: DataType.Double, value: sp } } },
            { nodeId: "ns=2;s=Plant.Oven1.Setpoint", attributeId: AttributeIds.Value, value: { value: { dataType: DataType.String, value: "x" } } },
            { nodeId: "ns=2;s=Plant.Oven1.Temperature", attributeId: AttributeIds.Value, value: { value: { dataType: DataType.Double, value: 1 } } },
        ]);
        if (ws[0] !== StatusCodes.Good || ws[1] !== StatusCodes.BadTypeMismatch || ws[2] !== StatusCodes.BadNotWritable)
            throw new Error(`write: ${ws.map((s) => s.name)}`);
        const back = await session.read({ nodeId: "ns=2;s=Plant.Oven1.Setpoint", attributeId: AttributeIds.Value });
        if (back.value.value !== sp) throw new Error(`write: read back ${back.value.value} != ${sp}`);

        // call
        const calls = await session.call([
            { objectId: "ns=2;s=Plant.Oven1", methodId: "ns=2;s=Plant.Oven1.SetSetpoint", inputArguments: [{ dataType: DataType.Double, value: 200 }] },
            { objectId: "ns=2;s=Plant.Oven1", methodId: "ns=2;s=Plant.Oven1.SetSetpoint", inputArguments: [{ dataType: DataType.String, value: "hot" }] },
            { objectId: "ns=2;s=Plant", methodId: "ns=2;s=Plant.Reset", inputArguments: [] },
        ]);
        if (calls[0].statusCode !== StatusCodes.Good || calls[0].outputArguments[0].value !== sp)
            throw new Error(`call: SetSetpoint ${calls[0].statusCode.toString()}`);
        if (calls[1].statusCode !== StatusCodes.BadInvalidArgument)
            throw new Error(`call: wrong argument gave ${calls[1].statusCode.toString()}`);
        if (calls[2].statusCode !== StatusCodes.Good || calls[2].outputArguments[0].value !== 5)
            throw new Error(`call: Reset ${calls[2].statusCode.toString()}`);

        // subscription: data changes and events
        const sub = ClientSubscription.create(session, {
            requestedPublishingInterval: 100, requestedLifetimeCount: 600,
            requestedMaxKeepAliveCount: 10, maxNotificationsPerPublish: 1000,
            publishingEnabled: true, priority: 1,
        });
        await new Promise((res, rej) => { sub.on("started", res); sub.on("internal_error", rej); });
        const data = [], deadband = [], events = [];
        const mi = ClientMonitoredItem.create(sub, { nodeId: "ns=2;s=Plant.Oven1.Counter", attributeId: AttributeIds.Value },
            { samplingInterval: 100, queueSize: 10, discardOldest: true }, TimestampsToReturn.Both);
        mi.on("changed", (dv) => data.push(dv.value.value));
        const mi2 = ClientMonitoredItem.create(sub, { nodeId: "ns=2;s=Plant.Oven1.Pressure", attributeId: AttributeIds.Value },
            { samplingInterval: 100, queueSize: 1, filter: new DataChangeFilter({ trigger: DataChangeTrigger.StatusValue, deadbandType: DeadbandType.Absolute, deadbandValue: 1000 }) },
            TimestampsToReturn.Source);
        mi2.on("changed", (dv) => deadband.push(dv.value.value));
        const fields = ["EventId", "EventType", "SourceNode", "SourceName", "Time", "ReceiveTime", "Message", "Severity"];
        const mie = ClientMonitoredItem.create(sub, { nodeId: "i=2253", attributeId: AttributeIds.EventNotifier },
            { queueSize: 100, filter: constructEventFilter(fields) }, TimestampsToReturn.Neither);
        mie.on("changed", (ev) => events.push(ev));
        await withTimeout(new Promise((res) => {
            const t = setInterval(() => { if (data.length >= 3 && events.length >= 1) { clearInterval(t); res(); } }, 50);
        }), 8000, `subscription (data ${data.length}, events ${events.length})`);
        for (let i = 1; i < data.length; i++)
            if (data[i] !== data[i - 1] + 1 && data[i] !== 0 && data[i] !== 1) throw new Error(`data: gap ${data}`);
        if (deadband.length !== 1) throw new Error(`deadband: ${deadband.length} notifications, expected only the first`);
        const ev = events[0];
        if (!/^Plant\.Oven/.test(ev[2].value.toString().replace(/^ns=2;s=/, "")) ||
            !/^Oven\d/.test(ev[3].value) || !/temperature/.test(ev[6].value.text) ||
            typeof ev[7].value !== "number")
            throw new Error(`event fields: ${JSON.stringify(ev.map((f) => String(f.value)))}`);
        await sub.terminate();
        await session.close();
        session = null;
        await client.disconnect();
        report(true, name);
    } catch (e) {
        report(false, name, e.message);
        try { if (session) await session.close(); } catch (_) { /* already gone */ }
        try { await client.disconnect(); } catch (_) { /* already gone */ }
    }
}

async function main() {
    const bin = arg("--edgeplane");
    const only = arg("--only", "");
    if (!bin) { console.error("usage: server_interop.js --edgeplane PATH"); process.exit(2); }
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ep-uasrv-"));
    const certMgr = new OPCUACertificateManager({ rootFolder: path.join(tmp, "client-pki"), automaticallyAcceptUnknownCertificate: true });
    await certMgr.initialize();
    const userCert = makeUserCert(tmp);
    const { child, url } = await startSimFor(bin, path.join(tmp, "server-pki"));
    const combos = [[SecurityPolicy.None, MessageSecurityMode.None]];
    for (const p of [SecurityPolicy.Basic256Sha256, SecurityPolicy.Aes128_Sha256_RsaOaep, SecurityPolicy.Aes256_Sha256_RsaPss])
        for (const m of [MessageSecurityMode.Sign, MessageSecurityMode.SignAndEncrypt]) combos.push([p, m]);
    try {
        for (const [p, m] of combos)
            for (const tok of ["anonymous", "username", "x509"]) {
                const n = `${p}/${m}/${tok}`;
                if (only && !n.includes(only)) continue;
                await oneCombination(url, certMgr, p, m, tok, userCert);
            }
    } finally {
        child.kill("SIGTERM");
        await new Promise((res) => { if (child.exitCode !== null) res(); else child.on("exit", res); });
        report(child.exitCode === 0 || child.signalCode === "SIGTERM", "opcua-sim exits cleanly on SIGTERM",
            `exit ${child.exitCode} ${child.signalCode || ""}`);
        fs.rmSync(tmp, { recursive: true, force: true });
    }
    const failed = results.filter((r) => !r).length;
    console.log(`${results.length - failed} passed, ${failed} failed`);
    process.exit(failed ? 1 : 0);
}

main().catch((e) => { console.error(e); process.exit(1); });
