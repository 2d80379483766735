"use strict";
// One CMS GraphQL function container, driven by the test through stdin: each line is a
// JSON command, each answer one JSON line on stdout.
//   {"invoke": {...event}}  -> {"ok": true, "result": ...} or {"ok": false, "error": ...}
//   {"clock": <epoch ms>}   -> the container's clock reads that from now on (Date.now)
// argv[2]: the folder holding the built handler.js (the telemetry client) and _handler.js.
const path = require("path");
const readline = require("readline");

let fakeNow = process.env.HARNESS_CLOCK_MS ? Number(process.env.HARNESS_CLOCK_MS) : null;
const realNow = Date.now.bind(Date);
Date.now = () => (fakeNow === null ? realNow() : fakeNow);

const fn = require(path.join(process.argv[2], "handler.js"));
const context = { functionName: "cms-graphql", awsRequestId: "test" };

const lines = readline.createInterface({ input: process.stdin });
let queue = Promise.resolve();
lines.on("line", line => {
    queue = queue.then(async () => {
        const command = JSON.parse(line);
        if ("clock" in command) {
            fakeNow = command.clock;
            process.stdout.write(JSON.stringify({ ok: true }) + "\n");
            return;
        }
        try {
            const result = await fn.handler(command.invoke, context);
            process.stdout.write(JSON.stringify({ ok: true, result }) + "\n");
        } catch (error) {
            const same = error instanceof Error && error.thrownBy === "_handler.js";
            process.stdout.write(
                JSON.stringify({ ok: false, error: error.message, same, extra: error.extra }) + "\n"
            );
        }
    });
});
