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
// Prints "READY <url>" on stdout once listening. The scaffolding shared
// with client_server.js is in peer_server.js.
"use strict";
const path = require("path");
const { DataType, StatusCodes, StatusCode } = require("node-opcua");
const peer = require("./peer_server");

// addQuality adds ns=1;s=Quality and ns=1;s=Text under plant, both
// changing every 300 ms (Quality's StatusCode cycling).
function addQuality(ns, plant) {
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
}

async function main() {
    const { server, port } = await peer.createServer({
        pki: path.resolve(peer.arg("--pki", "./pki-connector-server")),
        port: peer.intArg("--port", 0),
        acceptUnknown: peer.arg("--strict", false) !== true,
        maxConnections: 500,
        capabilities: { maxMonitoredItems: 1000000, maxSubscriptionsPerSession: 1000 },
        applicationUri: "urn:edgeplane:test:connector-server",
        applicationName: "edgeplane connector test server (node-opcua)",
    });
    const { ns, plant } = peer.addPlant(server, peer.intArg("--counter-ms", 50));
    addQuality(ns, plant);
    peer.raiseTicks(plant, (tick) => 100 + (tick % 800));
    peer.addExtra(server, peer.intArg("--extra", 0), peer.intArg("--update-ms", 1000), true);
    await peer.start(server, port);
}

peer.run("connector_server.js", main);
