// peer_server.js - what the node-opcua servers our OPC UA client and our
// connector are tested against (client_server.js, connector_server.js)
// have in common: command-line arguments, a free port, a server offering
// every security policy and mode to anonymous and user1/pass1 users, the
// shared part of the address space, and start-up (the "READY <url>" line)
// and shutdown on SIGTERM/SIGINT. Each server keeps only what is its own.
//
// Shared address space (namespace 1):
//   ns=1;s=Plant     under Objects, an event notifier (raiseTicks)
//   ns=1;s=Counter   under Plant, UInt32, +1 every counterMs (addPlant)
//   ns=1;s=Extra.K   under Objects/Extra, K = 0..N-1, Double, all changing
//                    every updateMs (addExtra)
"use strict";
const net = require("net");
const path = require("path");
const ua = require("node-opcua");

// arg returns the value after `name` on the command line, true for a flag
// without one, def when absent.
function arg(name, def) {
    const i = process.argv.indexOf(name);
    if (i < 0) return def;
    const v = process.argv[i + 1];
    return v === undefined || v.startsWith("--") ? true : v;
}

// intArg is arg for a decimal integer.
function intArg(name, def) {
    return parseInt(arg(name, String(def)), 10);
}

function freePort() {
    return new Promise((resolve, reject) => {
        const s = net.createServer();
        s.unref();
        s.on("error", reject);
        s.listen(0, "127.0.0.1", () => {
            const p = s.address().port;
            s.close(() => resolve(p));
        });
    });
}

async function certificateManager(folder, acceptUnknown) {
    const m = new ua.OPCUACertificateManager({
        rootFolder: folder,
        automaticallyAcceptUnknownCertificate: acceptUnknown,
    });
    await m.initialize();
    return m;
}

// createServer returns { server, port }, the server initialised (not yet
// started) on 127.0.0.1:port. opts: pki (folder; the server's PKI goes to
// pki/server), port (0: a free one), acceptUnknown (client certificates),
// x509Users (also accept X509 user tokens, any certificate, PKI under
// pki/users), maxConnections (per endpoint, and sessions), capabilities
// (more serverCapabilities), applicationUri, applicationName.
async function createServer(opts) {
    const port = opts.port || (await freePort());
    const options = {
        port,
        hostname: "127.0.0.1",
        resourcePath: "",
        serverCertificateManager: await certificateManager(
            path.join(opts.pki, "server"),
            opts.acceptUnknown
        ),
        securityPolicies: [
            ua.SecurityPolicy.None,
            ua.SecurityPolicy.Basic256Sha256,
            ua.SecurityPolicy.Aes128_Sha256_RsaOaep,
            ua.SecurityPolicy.Aes256_Sha256_RsaPss,
        ],
        securityModes: [
            ua.MessageSecurityMode.None,
            ua.MessageSecurityMode.Sign,
            ua.MessageSecurityMode.SignAndEncrypt,
        ],
        allowAnonymous: true,
        userManager: {
            isValidUser: (user, password) => user === "user1" && password === "pass1",
        },
        maxConnectionsPerEndpoint: opts.maxConnections,
        serverCapabilities: {
            maxSessions: opts.maxConnections,
            maxMonitoredItemsPerSubscription: 200000,
            ...opts.capabilities,
        },
        serverInfo: {
            applicationUri: opts.applicationUri,
            productUri: "urn:edgeplane:test",
            applicationName: { text: opts.applicationName },
        },
    };
    if (opts.x509Users) {
        const users = path.join(opts.pki, "users");
        options.userCertificateManager = await certificateManager(users, true);
    }
    const server = new ua.OPCUAServer(options);
    await server.initialize();
    return { server, port };
}

// addPlant adds ns=1;s=Plant and its ns=1;s=Counter, counting every
// counterMs; returns { ns, plant }.
function addPlant(server, counterMs) {
    const addressSpace = server.engine.addressSpace;
    const ns = addressSpace.getOwnNamespace();
    const plant = ns.addObject({
        organizedBy: addressSpace.rootFolder.objects,
        browseName: "Plant",
        nodeId: "s=Plant",
        eventNotifier: 1,
    });
    let counter = 0;
    const counterVar = ns.addVariable({
        componentOf: plant,
        browseName: "Counter",
        nodeId: "s=Counter",
        dataType: "UInt32",
        minimumSamplingInterval: 0,
    });
    counterVar.setValueFromSource({ dataType: ua.DataType.UInt32, value: counter });
    setInterval(() => {
        counter++;
        counterVar.setValueFromSource({ dataType: ua.DataType.UInt32, value: counter });
    }, counterMs);
    return { ns, plant };
}

// raiseTicks raises a BaseEventType event "tick N" on plant every 200 ms,
// with Severity severity(N).
function raiseTicks(plant, severity) {
    let tick = 0;
    setInterval(() => {
        tick++;
        plant.raiseEvent("BaseEventType", {
            message: { dataType: ua.DataType.LocalizedText, value: { text: "tick " + tick } },
            severity: { dataType: ua.DataType.UInt16, value: severity(tick) },
        });
    }, 200);
}

// addExtra adds n variables ns=1;s=Extra.K (none when n is 0), all given
// a new value every updateMs; with stamped, one source timestamp per
// change shared by all (else each value is stamped when set).
function addExtra(server, n, updateMs, stamped) {
    if (n <= 0) return;
    const addressSpace = server.engine.addressSpace;
    const ns = addressSpace.getOwnNamespace();
    const folder = ns.addFolder(addressSpace.rootFolder.objects, {
        browseName: "Extra",
        nodeId: "s=Extra",
    });
    const vars = [];
    for (let k = 0; k < n; k++) {
        const v = ns.addVariable({
            componentOf: folder,
            browseName: "Extra." + k,
            nodeId: "s=Extra." + k,
            dataType: "Double",
            minimumSamplingInterval: 0,
        });
        v.setValueFromSource({ dataType: ua.DataType.Double, value: 0 });
        vars.push(v);
    }
    let gen = 0;
    setInterval(() => {
        gen++;
        const now = stamped ? new Date() : undefined;
        for (let k = 0; k < vars.length; k++) {
            const value = { dataType: ua.DataType.Double, value: gen + k / 1e6 };
            if (stamped) vars[k].setValueFromSource(value, ua.StatusCodes.Good, now);
            else vars[k].setValueFromSource(value);
        }
    }, updateMs);
}

// start starts the server, prints "READY <url>", shuts it down on SIGTERM
// or SIGINT and returns the url.
async function start(server, port) {
    await server.start();
    const url = "opc.tcp://127.0.0.1:" + port;
    process.stdout.write("READY " + url + "\n");
    const stop = async () => {
        await server.shutdown(0);
        process.exit(0);
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
    return url;
}

// run runs the async main of the script `name`, exiting 1 with the error.
function run(name, main) {
    main().catch((e) => {
        process.stderr.write(name + ": " + (e.stack || e) + "\n");
        process.exit(1);
    });
}

module.exports = { arg, intArg, createServer, addPlant, raiseTicks, addExtra, start, run };
