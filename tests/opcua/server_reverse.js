#!/usr/bin/env node
// server_reverse.js - a node-opcua client waiting for a reverse connection
// (OPC 10000-6 7.1.3) from our server (tests/opcua/reverse_test.c): it
// listens with node-opcua's ClientReverseConnect, prints "LISTEN <url>",
// and when the server has dialled in and sent its ReverseHello, opens the
// secure channel on that socket (SecurityPolicy None), creates a session,
// reads ServerStatus.State and the NamespaceArray, closes the session and
// prints "RESULT <json>". Exit 0 on success.
//
//   node server_reverse.js [--server-uri URI] [--timeout MS]
"use strict";
const net = require("net");
const { OPCUAClient, ClientReverseConnect, AttributeIds } = require("node-opcua");

function arg(n, d) {
    const i = process.argv.indexOf(n);
    return i < 0 ? d : process.argv[i + 1];
}

function freePort() {
    return new Promise((resolve, reject) => {
        const s = net.createServer();
        s.on("error", reject);
        s.listen(0, "127.0.0.1", () => {
            const p = s.address().port;
            s.close(() => resolve(p));
        });
    });
}

(async () => {
    const timeout = parseInt(arg("--timeout", "20000"), 10);
    setTimeout(() => { console.error("server_reverse: timed out"); process.exit(2); }, timeout).unref();
    const url = `opc.tcp://127.0.0.1:${await freePort()}`;
    const listener = new ClientReverseConnect({ connectionUrl: url, acceptTimeout: timeout });
    await listener.start();
    console.log(`LISTEN ${url}`);
    const client = OPCUAClient.create({ endpointMustExist: false, connectionStrategy: { maxRetry: 0 } });
    const expectation = arg("--server-uri") ? { serverUri: arg("--server-uri") } : undefined;
    await client.connectReverse(listener, expectation);
    const session = await client.createSession();
    const dv = await session.read([
        { nodeId: "ns=0;i=2259", attributeId: AttributeIds.Value },
        { nodeId: "ns=0;i=2255", attributeId: AttributeIds.Value },
    ]);
    await session.close();
    await client.disconnect();
    await listener.stop();
    const out = {
        state: dv[0].value.value,
        status: dv[0].statusCode.name,
        namespaces: dv[1].value.value,
    };
    console.log("RESULT " + JSON.stringify(out));
    process.exit(dv[0].statusCode.value === 0 && out.state === 0 ? 0 : 1);
})().catch((e) => { console.error("server_reverse:", e.message); process.exit(1); });
