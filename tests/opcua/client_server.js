#!/usr/bin/env node
// client_server.js - a node-opcua server for testing edgeplane's OPC UA
// client (interop matrix, reconnect test, benchmark).
//
//   node client_server.js --pki DIR [--port N] [--relay] [--extra N]
//                         [--update-ms MS] [--counter-ms MS]
//
// Address space (namespace 1, under Objects/Plant):
//   ns=1;s=Counter   UInt32, +1 every --counter-ms (default 100)
//   ns=1;s=Writable  Double, read/write
//   ns=1;s=Add       method (Double a, Double b) -> Double sum
//   ns=1;s=Plant     event notifier: a BaseEventType event "tick N"
//                    (Severity 500) every 200 ms
//   ns=1;s=Extra.K   K = 0..N-1, Double, changing every --update-ms
// Security: every policy (None, Basic256Sha256, Aes128_Sha256_RsaOaep,
// Aes256_Sha256_RsaPss) and mode; anonymous, user1/pass1, X509 users
// (every certificate accepted, PKI under DIR).
//
// --port 0 (default) picks a free port. With --relay a TCP relay in front of
// the server is started too; writing "drop" to stdin kills every relayed
// connection at once (both directions) while the server keeps its sessions:
// the client must reconnect, reactivate and republish.
//
// Prints "READY <url>" (and "RELAY <url>") on stdout once listening.
"use strict";
const net = require("net");
const path = require("path");
const readline = require("readline");
const {
    OPCUAServer,
    OPCUACertificateManager,
    Variant,
    DataType,
    StatusCodes,
    SecurityPolicy,
    MessageSecurityMode,
} = require("node-opcua");

function arg(name, def) {
    const i = process.argv.indexOf(name);
    if (i < 0) return def;
    const v = process.argv[i + 1];
    return v === undefined || v.startsWith("--") ? true : v;
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

async function main() {
    const pki = path.resolve(arg("--pki", "./pki-node-server"));
    let port = parseInt(arg("--port", "0"), 10);
    const extra = parseInt(arg("--extra", "0"), 10);
    const updateMs = parseInt(arg("--update-ms", "1000"), 10);
    const counterMs = parseInt(arg("--counter-ms", "100"), 10);
    if (!port) port = await freePort();

    const serverCertificateManager = new OPCUACertificateManager({
        rootFolder: path.join(pki, "server"),
        automaticallyAcceptUnknownCertificate: true,
    });
    const userCertificateManager = new OPCUACertificateManager({
        rootFolder: path.join(pki, "users"),
        automaticallyAcceptUnknownCertificate: true,
    });
    await serverCertificateManager.initialize();
    await userCertificateManager.initialize();

    const server = new OPCUAServer({
        port,
        hostname: "127.0.0.1",
        resourcePath: "",
        serverCertificateManager,
        userCertificateManager,
        securityPolicies: [
            SecurityPolicy.None,
            SecurityPolicy.Basic256Sha256,
            SecurityPolicy.Aes128_Sha256_RsaOaep,
            SecurityPolicy.Aes256_Sha256_RsaPss,
        ],
        securityModes: [
            MessageSecurityMode.None,
            MessageSecurityMode.Sign,
            MessageSecurityMode.SignAndEncrypt,
        ],
        allowAnonymous: true,
        userManager: {
            isValidUser: (user, password) => user === "user1" && password === "pass1",
        },
        maxConnectionsPerEndpoint: 200,
        serverCapabilities: {
            maxSessions: 200,
            maxMonitoredItemsPerSubscription: 200000,
            maxMonitoredItems: 400000,
        },
        serverInfo: {
            applicationUri: "urn:edgeplane:test:node-opcua-server",
            productUri: "urn:edgeplane:test",
            applicationName: { text: "edgeplane test server (node-opcua)" },
        },
    });
    await server.initialize();

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
    counterVar.setValueFromSource({ dataType: DataType.UInt32, value: counter });
    setInterval(() => {
        counter++;
        counterVar.setValueFromSource({ dataType: DataType.UInt32, value: counter });
    }, counterMs);

    ns.addVariable({
        componentOf: plant,
        browseName: "Writable",
        nodeId: "s=Writable",
        dataType: "Double",
        accessLevel: "CurrentRead | CurrentWrite",
        userAccessLevel: "CurrentRead | CurrentWrite",
        value: new Variant({ dataType: DataType.Double, value: 1.5 }),
    });

    const add = ns.addMethod(plant, {
        browseName: "Add",
        nodeId: "s=Add",
        inputArguments: [
            { name: "a", dataType: DataType.Double },
            { name: "b", dataType: DataType.Double },
        ],
        outputArguments: [{ name: "sum", dataType: DataType.Double }],
    });
    add.bindMethod((inputs, context, callback) => {
        callback(null, {
            statusCode: StatusCodes.Good,
            outputArguments: [
                { dataType: DataType.Double, value: inputs[0].value + inputs[1].value },
            ],
        });
    });

    let tick = 0;
    setInterval(() => {
        tick++;
        plant.raiseEvent("BaseEventType", {
            message: { dataType: DataType.LocalizedText, value: { text: "tick " + tick } },
            severity: { dataType: DataType.UInt16, value: 500 },
        });
    }, 200);

    if (extra > 0) {
        const folder = ns.addFolder(addressSpace.rootFolder.objects, {
            browseName: "Extra",
            nodeId: "s=Extra",
        });
        const vars = [];
        for (let k = 0; k < extra; k++) {
            const v = ns.addVariable({
                componentOf: folder,
                browseName: "Extra." + k,
                nodeId: "s=Extra." + k,
                dataType: "Double",
                minimumSamplingInterval: 0,
            });
            v.setValueFromSource({ dataType: DataType.Double, value: 0 });
            vars.push(v);
        }
        let gen = 0;
        setInterval(() => {
            gen++;
            for (let k = 0; k < vars.length; k++)
                vars[k].setValueFromSource({ dataType: DataType.Double, value: gen + k / 1e6 });
        }, updateMs);
    }

    await server.start();
    const url = "opc.tcp://127.0.0.1:" + port;
    process.stdout.write("READY " + url + "\n");

    if (arg("--relay", false)) {
        const live = new Set();
        const relay = net.createServer((down) => {
            const up = net.connect(port, "127.0.0.1");
            const pair = { down, up };
            live.add(pair);
            const end = () => {
                live.delete(pair);
                down.destroy();
                up.destroy();
            };
            down.on("error", end).on("close", end);
            up.on("error", end).on("close", end);
            down.pipe(up);
            up.pipe(down);
        });
        relay.listen(0, "127.0.0.1", () => {
            process.stdout.write("RELAY opc.tcp://127.0.0.1:" + relay.address().port + "\n");
        });
        readline.createInterface({ input: process.stdin }).on("line", (line) => {
            if (line.trim() === "drop") {
                const n = live.size;
                for (const p of [...live]) {
                    p.down.destroy();
                    p.up.destroy();
                }
                live.clear();
                process.stdout.write("DROPPED " + n + "\n");
            }
        });
    }

    const stop = async () => {
        await server.shutdown(0);
        process.exit(0);
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
}

main().catch((e) => {
    process.stderr.write("client_server.js: " + (e.stack || e) + "\n");
    process.exit(1);
});
