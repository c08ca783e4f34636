#!/usr/bin/env node
// client_reverse.js - a node-opcua server that reverse-connects (OPC
// 10000-6 7.1.3) to our client's listener (tests/opcua/reverse_test.c): it
// dials --client-url, sends a ReverseHello and serves the secure channel
// the client then opens on that socket (SecurityPolicy None). Prints
// "READY <server application uri>" once started; runs until killed.
//
//   node client_reverse.js --client-url opc.tcp://127.0.0.1:PORT
"use strict";
const os = require("os");
const path = require("path");
const fs = require("fs");
const { OPCUAServer, OPCUACertificateManager, SecurityPolicy, MessageSecurityMode } = require("node-opcua");

function arg(n, d) {
    const i = process.argv.indexOf(n);
    return i < 0 ? d : process.argv[i + 1];
}

(async () => {
    const clientUrl = arg("--client-url");
    if (!clientUrl) throw new Error("--client-url is required");
    const pki = fs.mkdtempSync(path.join(os.tmpdir(), "ua-reverse-"));
    const serverCertificateManager = new OPCUACertificateManager({
        rootFolder: path.join(pki, "server"),
        automaticallyAcceptUnknownCertificate: true,
    });
    await serverCertificateManager.initialize();
    const uri = "urn:edgeplane:test:reverse-server";
    const server = new OPCUAServer({
        port: 0,
        hostname: "127.0.0.1",
        resourcePath: "",
        serverCertificateManager,
        securityPolicies: [SecurityPolicy.None],
        securityModes: [MessageSecurityMode.None],
        allowAnonymous: true,
        serverInfo: { applicationUri: uri, applicationName: { text: "edgeplane reverse test server" } },
        reverseConnect: { connections: [{ endpointUrl: clientUrl }], reconnectDelay: 500 },
    });
    await server.initialize();
    await server.start();
    console.log(`READY ${uri}`);
    const stop = async () => {
        await server.shutdown();
        fs.rmSync(pki, { recursive: true, force: true });
        process.exit(0);
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
})().catch((e) => { console.error("client_reverse:", e.message); process.exit(1); });
