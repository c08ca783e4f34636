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
// Prints "READY <url>" (and "RELAY <url>") on stdout once listening. The
// scaffolding shared with connector_server.js is in peer_server.js.
"use strict";
const net = require("net");
const path = require("path");
const readline = require("readline");
const { Variant, DataType, StatusCodes } = require("node-opcua");
const peer = require("./peer_server");

// startRelay starts the TCP relay in front of the server on port: prints
// "RELAY <url>", and "drop" on stdin closes every relayed connection.
function startRelay(port) {
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

async function main() {
    const { server, port } = await peer.createServer({
        pki: path.resolve(peer.arg("--pki", "./pki-node-server")),
        port: peer.intArg("--port", 0),
        acceptUnknown: true,
        x509Users: true,
        maxConnections: 200,
        capabilities: { maxMonitoredItems: 400000 },
        applicationUri: "urn:edgeplane:test:node-opcua-server",
        applicationName: "edgeplane test server (node-opcua)",
    });
    const { ns, plant } = peer.addPlant(server, peer.intArg("--counter-ms", 100));

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

    peer.raiseTicks(plant, () => 500);
    peer.addExtra(server, peer.intArg("--extra", 0), peer.intArg("--update-ms", 1000), false);

    await peer.start(server, port);
    if (peer.arg("--relay", false)) startRelay(port);
}

peer.run("client_server.js", main);
