"use strict";
// Control Panel telemetry client, served at /clients/latest.js. The CMS build renames its
// GraphQL function's handler to _handler.js and installs this file as handler.js: it calls
// that handler unchanged and reports how often it ran, as cumulative native readings
// (POST /api/v1/usage/batch), to the Control Panel that served it.
//
// - Results and thrown errors pass through unchanged; telemetry never fails a request.
// - One reading per container: instance = function name + container id, boot = container
//   start, api_calls = invocations since then. Cumulative, so a lost report heals itself.
// - Reports on the first invocation, then at most every WCP_TELEMETRY_FLUSH_SECONDS
//   (default 60; 0 = every invocation), sent alongside the handler and awaited at most
//   REPORT_TIMEOUT_MS in total (the function is frozen between invocations).
// - Key: WCP_PROJECT_ENVIRONMENT_API_KEY, else WCP_PROJECT_ENVIRONMENT (base64 JSON, apiKey).
//   URL: WCP_API_URL, else the one written below when this file was served.
//   No key, or the Control Panel unreachable: the function works as before, one warning.
const wrapped = require("./_handler.js");
const http = require("http");
const https = require("https");
const crypto = require("crypto");

const SERVED_BY = "__CONTROL_PANEL_URL__";
const REPORT_TIMEOUT_MS = 1000;
const CONTAINER_ID = crypto.randomBytes(8).toString("hex");
const BOOT = new Date(Date.now()).toISOString();

let invocations = 0;
let lastReportAt = null;
let inflight = null;
let warned = false;
let config;

function warnOnce(message) {
    if (!warned) {
        warned = true;
        console.warn(`[control-panel telemetry] ${message}`);
    }
}

function apiKey(env) {
    if (env.WCP_PROJECT_ENVIRONMENT_API_KEY) {
        return env.WCP_PROJECT_ENVIRONMENT_API_KEY;
    }
    if (!env.WCP_PROJECT_ENVIRONMENT) {
        return "";
    }
    try {
        const decoded = Buffer.from(env.WCP_PROJECT_ENVIRONMENT, "base64").toString("utf8");
        return JSON.parse(decoded).apiKey || "";
    } catch (error) {
        return "";
    }
}

function settings() {
    if (config !== undefined) {
        return config;
    }
    config = null;
    const env = process.env;
    const key = apiKey(env);
    if (!key) {
        warnOnce("no WCP_PROJECT_ENVIRONMENT_API_KEY or WCP_PROJECT_ENVIRONMENT: telemetry is off.");
        return config;
    }
    let url;
    try {
        url = new URL(`${(env.WCP_API_URL || SERVED_BY).replace(/\/+$/, "")}/api/v1/usage/batch`);
    } catch (error) {
        warnOnce("WCP_API_URL is not a URL: telemetry is off.");
        return config;
    }
    const flush = Number(env.WCP_TELEMETRY_FLUSH_SECONDS || 60);
    config = { key, url, flushMs: Number.isFinite(flush) && flush >= 0 ? flush * 1000 : 60000 };
    return config;
}

// Instance labels allow letters, digits and . _ : @ / + = - (at most 128 characters).
function instanceOf(context) {
    const name = (context && context.functionName) || process.env.AWS_LAMBDA_FUNCTION_NAME || "cms";
    const label = String(name).replace(/[^A-Za-z0-9._@/+=-]/g, "-").replace(/^[^A-Za-z0-9]+/, "");
    return `${label.slice(0, 100) || "cms"}:${CONTAINER_ID}`;
}

function post(settings, body) {
    return new Promise(resolve => {
        const transport = settings.url.protocol === "https:" ? https : http;
        const request = transport.request(
            settings.url,
            {
                method: "POST",
                // A new connection each time: a kept-alive one may have died while frozen.
                agent: false,
                timeout: REPORT_TIMEOUT_MS,
                headers: {
                    "content-type": "application/json",
                    authorization: `Bearer ${settings.key}`,
                    "content-length": Buffer.byteLength(body)
                }
            },
            response => {
                response.resume();
                response.on("end", () => resolve(`HTTP ${response.statusCode}`));
                response.on("error", error => resolve(error.message));
            }
        );
        request.on("timeout", () => request.destroy(new Error("timed out")));
        request.on("error", error => resolve(error.message));
        request.end(body);
    });
}

function report(context) {
    const current = settings();
    if (!current || inflight) {
        return null;
    }
    const now = Date.now();
    if (lastReportAt !== null && now - lastReportAt < current.flushMs) {
        return null;
    }
    lastReportAt = now;
    const reading = { instance: instanceOf(context), boot: BOOT, api_calls: invocations };
    inflight = post(current, JSON.stringify({ readings: [reading] })).then(outcome => {
        inflight = null;
        if (!/^HTTP 2\d\d$/.test(outcome)) {
            warnOnce(`could not report usage to ${current.url.origin} (${outcome}); will retry.`);
        }
    });
    return inflight;
}

function within(promise, milliseconds) {
    let timer;
    const expiry = new Promise(resolve => {
        timer = setTimeout(resolve, Math.max(0, milliseconds));
    });
    return Promise.race([promise, expiry]).then(() => clearTimeout(timer));
}

// Async handlers (the CMS's) and callback-style ones alike.
function invoke(event, context) {
    return new Promise((resolve, reject) => {
        let settled = false;
        const succeed = value => {
            if (!settled) {
                settled = true;
                resolve(value);
            }
        };
        const fail = error => {
            if (!settled) {
                settled = true;
                reject(error);
            }
        };
        let returned;
        try {
            returned = wrapped.handler(event, context, (error, value) =>
                error ? fail(error) : succeed(value)
            );
        } catch (error) {
            fail(error);
            return;
        }
        if (returned && typeof returned.then === "function") {
            returned.then(succeed, fail);
        } else if (wrapped.handler.length < 3) {
            succeed(returned);
        }
    });
}

async function handler(event, context) {
    invocations += 1;
    const startedAt = Date.now();
    let sending = null;
    try {
        sending = report(context);
    } catch (error) {
        warnOnce(`telemetry failed (${error && error.message}); the request goes on.`);
    }
    try {
        return await invoke(event, context);
    } finally {
        if (sending) {
            await within(sending, REPORT_TIMEOUT_MS - (Date.now() - startedAt));
        }
    }
}

module.exports = Object.assign({}, wrapped, { handler });
