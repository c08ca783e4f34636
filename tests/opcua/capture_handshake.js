#!/usr/bin/env node
// capture_handshake.js - records a node-opcua client <-> node-opcua server
// session through a TCP relay, one line per OPC UA chunk, for the captured
// vectors in tests/data/opcua/ (decoded by src/svc/opcua/capture_test.c).
//
//   node capture_handshake.js --out DIR
//
// Writes DIR/capture_none.txt (SecurityPolicy None) and
// DIR/capture_basic256sha256.txt (Basic256Sha256 SignAndEncrypt; node-opcua
// first fetches the server certificate on a separate None connection, which
// is recorded too), plus the private keys of the throw-away certificates
// both sides generated for the run (DIR/capture_server_key.pem,
// DIR/capture_client_key.pem), so that the test can decrypt the secure
// session. Each session: Hello, Acknowledge, OpenSecureChannel,
// CreateSession, ActivateSession (anonymous), Read (ServerStatus.State and
// the namespace array), CloseSession, CloseSecureChannel.
//
// File format: '#' comment lines, then per chunk
//   <connection> <C|S> <TYPE><chunk type> <hex>
// C = client to server, S = server to client, in the order the relay saw
// them (per direction; the two directions interleave as they arrived).
"use strict";
const fs = require("fs");
const net = require("net");
const os = require("os");
const path = require("path");
const {
    OPCUAServer,
    OPCUAClient,
    OPCUACertificateManager,
    SecurityPolicy,
    MessageSecurityMode,
    AttributeIds,
} = require("node-opcua");

function arg(name, def) {
    const i = process.argv.indexOf(name);
    return i < 0 ? def : process.argv[i + 1];
}

// a relay that splits each direction into chunks by the 8-byte header
function startRelay(targetPort, records) {
    let conn = 0;
    const server = net.createServer((c) => {
        const id = ++conn;
        const s = net.connect(targetPort, "127.0.0.1");
        const splitter = (dir) => {
            let buf = Buffer.alloc(0);
            return (data) => {
                buf = Buffer.concat([buf, data]);
                while (buf.length >= 8) {
                    const size = buf.readUInt32LE(4);
                    if (buf.length < size) break;
                    const chunk = buf.subarray(0, size);
                    records.push(`${id} ${dir} ${chunk.toString("latin1", 0, 4)} ${chunk.toString("hex")}`);
                    buf = buf.subarray(size);
                }
            };
        };
        const fromClient = splitter("C"), fromServer = splitter("S");
        c.on("data", (d) => { fromClient(d); s.write(d); });
        s.on("data", (d) => { fromServer(d); c.write(d); });
        c.on("close", () => s.end());
        s.on("close", () => c.end());
        c.on("error", () => s.destroy());
        s.on("error", () => c.destroy());
    });
    return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

async function session(url, policy, mode, pki) {
    const clientCertificateManager = new OPCUACertificateManager({
        rootFolder: path.join(pki, "client"),
        automaticallyAcceptUnknownCertificate: true,
    });
    await clientCertificateManager.initialize();
    const client = OPCUAClient.create({
        applicationName: "edgeplane capture client",
        applicationUri: "urn:edgeplane:test:capture-client",
        securityPolicy: policy,
        securityMode: mode,
        endpointMustExist: false,
        clientCertificateManager,
        connectionStrategy: { maxRetry: 0 },
        requestedSessionTimeout: 60000,
    });
    await client.connect(url);
    const s = await client.createSession();
    await s.read([
        { nodeId: "ns=0;i=2259", attributeId: AttributeIds.Value },
        { nodeId: "ns=0;i=2255", attributeId: AttributeIds.Value },
    ]);
    await s.close();
    await client.disconnect();
}

(async () => {
    const out = path.resolve(arg("--out", "."));
    const pki = fs.mkdtempSync(path.join(os.tmpdir(), "ua-capture-"));
    const serverCertificateManager = new OPCUACertificateManager({
        rootFolder: path.join(pki, "server"),
        automaticallyAcceptUnknownCertificate: true,
    });
    await serverCertificateManager.initialize();
    const server = new OPCUAServer({
        port: 0,
        hostname: "127.0.0.1",
        resourcePath: "",
        serverCertificateManager,
        securityPolicies: [SecurityPolicy.None, SecurityPolicy.Basic256Sha256],
        securityModes: [MessageSecurityMode.None, MessageSecurityMode.SignAndEncrypt],
        allowAnonymous: true,
        serverInfo: { applicationUri: "urn:edgeplane:test:capture-server",
            applicationName: { text: "edgeplane capture server (node-opcua)" } },
    });
    await server.initialize();
    await server.start();
    const port = server.endpoints[0].port;
    const version = require("node-opcua/package.json").version;
    const runs = [
        ["capture_none.txt", SecurityPolicy.None, MessageSecurityMode.None, "None"],
        ["capture_basic256sha256.txt", SecurityPolicy.Basic256Sha256,
            MessageSecurityMode.SignAndEncrypt, "Basic256Sha256 SignAndEncrypt"],
    ];
    for (const [file, policy, mode, label] of runs) {
        const records = [];
        const relay = await startRelay(port, records);
        const url = `opc.tcp://127.0.0.1:${relay.address().port}`;
        await session(url, policy, mode, pki);
        await new Promise((r) => setTimeout(r, 300));
        relay.close();
        const head = [
            `# node-opcua ${version} client <-> node-opcua ${version} server, ${label},`,
            `# node ${process.version}, recorded by tests/opcua/capture_handshake.js`,
            "# <connection> <C|S> <type+chunk> <hex of one chunk>",
        ];
        fs.writeFileSync(path.join(out, file), head.concat(records).join("\n") + "\n");
        console.log(`${file}: ${records.length} chunks`);
    }
    await server.shutdown();
    fs.copyFileSync(path.join(pki, "server", "own", "private", "private_key.pem"),
        path.join(out, "capture_server_key.pem"));
    fs.copyFileSync(path.join(pki, "client", "own", "private", "private_key.pem"),
        path.join(out, "capture_client_key.pem"));
    fs.rmSync(pki, { recursive: true, force: true });
    process.exit(0);
})().catch((e) => { console.error("capture:", e); process.exit(1); });
