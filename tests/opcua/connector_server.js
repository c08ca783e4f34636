#!/usr/bin/env node
// connector_server.js - a node-opcua server for the connector's end-to-end
// tests and benchmark (tests/integ/connector_e2e.py, bench/connector.sh).
//
//   node connector_server.js --pki DIR [--port N] [--counter-ms MS]
//                            [--extra N] [--update-ms MS] [--strict]
//
// Address space (namespace 1, under Objects/Plant):
//   ns=1;s=Counter    UInt32, +1 every --counter-ms (default 50)
//   ns=1;s=Quality    Double, value = step; its StatusCode cycles through
//                     Good, UncertainLastUsableValue (0x40900000) and
//                     BadSensorFailure (0x808B0000) every 300 ms
//   ns=1;s=Text       String "tick N" (same cadence)
//   ns=1;s=Plant      event notifier: BaseEventType "tick N", Severity
//                     100 + N % 800, every 200 ms
//   ns=1;s=Extra.K    K = 0..N-1, Double, all changing every --update-ms
//                     with the source timestamp of the change
// Browse names equal the string ids (1:Counter, 1:Quality ...), so
// /1:Plant/1:Counter resolves to ns=1;s=Counter.
// Security: None, Basic256Sha256, Aes128_Sha256_RsaOaep, Aes256_Sha256_RsaPss
// with every mode; anonymous and user1/pass1. Client certificates are
// accepted unless --strict.
//
// Prints "READY <url>" on stdout once listening.
"use strict";
const net = require("net");
const path = require("path");
const {
    OPCUAServer,
    OPCUACertificateManager,
    Variant,
    DataType,
    DataValue,
    StatusCodes,
    StatusCode,
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
    const pki = path.resolve(arg("--pki", "./pki-connector-server"));
    let port = parseInt(arg("--port", "0"), 10);
    const extra = parseInt(arg("--extra", "0"), 10);
    const updateMs = parseInt(arg("--update-ms", "1000"), 10);
    const counterMs = parseInt(arg("--counter-ms", "50"), 10);
    const strict = arg("--strict", false) === true;
    if (!port) port = await freePort();

    const serverCertificateManager = new OPCUACertificateManager({
        rootFolder: path.join(pki, "server"),
        automaticallyAcceptUnknownCertificate: !strict,
    });
    await serverCertificateManager.initialize();

    const server = new OPCUAServer({
        port,
        hostname: "127.0.0.1",
        resourcePath: "",
        serverCertificateManager,
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
        maxConnectionsPerEndpoint: 500,
        serverCapabilities: {
            maxSessions: 500,
            maxMonitoredItemsPerSubscription: 200000,
            maxMonitoredItems: 1000000,
            maxSubscriptionsPerSession: 1000,
        },
        serverInfo: {
            applicationUri: "urn:edgeplane:test:connector-server",
            productUri: "urn:edgeplane:test",
            applicationName: { text: "edgeplane connector test server (node-opcua)" },
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

    const quality = ns.addVariable({
        componentOf: plant,
        browseName: "Quality",
        nodeId: "s=Quality",
        dataType: "Double",
        minimumSamplingInterval: 0,
    });
    const text = ns.addVariable({
        componentOf: plant,
        browseName: "Text",
        nodeId: "s=Text",
        dataType: "String",
        minimumSamplingInterval: 0,
    });
    const codes = [
        StatusCodes.Good,
        StatusCode.makeStatusCode(StatusCodes.UncertainLastUsableValue),
        StatusCodes.BadSensorFailure,
    ];
    let step = 0;
    const tickQuality = () => {
        step++;
        quality.setValueFromSource(
            { dataType: DataType.Double, value: step + 0.5 },
            codes[step % 3],
            new Date()
        );
        text.setValueFromSource({ dataType: DataType.String, value: "tick " + step });
    };
    tickQuality();
    setInterval(tickQuality, 300);

    let tick = 0;
    setInterval(() => {
        tick++;
        plant.raiseEvent("BaseEventType", {
            message: { dataType: DataType.LocalizedText, value: { text: "tick " + tick } },
            severity: { dataType: DataType.UInt16, value: 100 + (tick % 800) },
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
            const now = new Date();
            for (let k = 0; k < vars.length; k++)
                vars[k].setValueFromSource(
                    { dataType: DataType.Double, value: gen + k / 1e6 },
                    StatusCodes.Good,
                    now
                );
        }, updateMs);
    }

    await server.start();
    process.stdout.write("READY opc.tcp://127.0.0.1:" + port + "\n");

    const stop = async () => {
        await server.shutdown(0);
        process.exit(0);
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
}

main().catch((e) => {
    process.stderr.write("connector_server.js: " + (e.stack || e) + "\n");
    process.exit(1);
});
