// @ts-check
// The k6 load test of distributed-sum. It runs inside the cluster as a Job (loadtest/templates/), and
// every setting comes from the environment, so one script serves every run.
import { check, sleep } from "k6";
import { randomBytes } from "k6/crypto";
import http from "k6/http";
import { Counter, Rate } from "k6/metrics";
import grpc from "k6/net/grpc";

/** @param {string} name @param {string} fallback */
function envText(name, fallback) {
  const raw = __ENV[name];
  return raw === undefined || raw === "" ? fallback : raw;
}

/** @param {string} name @param {number} fallback */
function envNumber(name, fallback) {
  const raw = envText(name, String(fallback));
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name}=${raw} is not a number >= 0`);
  return value;
}

/** @param {string} name @param {number} fallback */
function envInteger(name, fallback) {
  const value = envNumber(name, fallback);
  if (!Number.isInteger(value)) throw new Error(`${name}=${value} is not a whole number`);
  return value;
}

const SUM_TARGET = envText("SUM_TARGET", "distributed-sum-sum:50051");
// The directory of the client certificate (tls.crt, tls.key, and ca.crt, the CA of the app's servers)
// that the app's mutual TLS asks for; empty where a service mesh does mutual TLS and k6 speaks plaintext.
const TLS_DIR = envText("TLS_DIR", "");
// k6 allows open() only in the init context, so every VU reads the files once, here.
/** @type {import("k6/net/grpc").TLSParams | null} */
const TLS =
  TLS_DIR === ""
    ? null
    : { cacerts: [open(`${TLS_DIR}/ca.crt`)], cert: open(`${TLS_DIR}/tls.crt`), key: open(`${TLS_DIR}/tls.key`) };
const LEDGER_URL = envText("LEDGER_URL", "http://distributed-sum-ledger:8080").replace(/\/+$/, "");
const PEAK_VUS = Math.max(1, envInteger("PEAK_VUS", 20));
const THINK_MIN_SECONDS = envNumber("THINK_MIN_SECONDS", 0.1);
const THINK_MAX_SECONDS = Math.max(THINK_MIN_SECONDS, envNumber("THINK_MAX_SECONDS", 1));
// Operands are drawn from [0, OPERAND_MAX]: never an overflow, and k6 counters (float64) stay exact
// for the acknowledged sum up to 2^53, i.e. billions of calls.
const OPERAND_MAX = Math.min(envInteger("OPERAND_MAX", 1000000), 1e9);
// Attempts of one new Add while the answer says "retry with the same id" (UNAVAILABLE, deadline).
const ADD_ATTEMPTS = Math.max(1, envInteger("ADD_ATTEMPTS", 5));
const ADD_TIMEOUT = envText("ADD_TIMEOUT", "10s");
const ENTRIES_LIMIT_MAX = Math.min(Math.max(1, envInteger("ENTRIES_LIMIT_MAX", 100)), 1000);
// How many of its acknowledged requests a VU keeps for retried Adds.
const REMEMBERED_PER_VU = 1000;

/** @type {import("k6/options").Options} */
export const options = {
  scenarios: {
    load: {
      executor: "ramping-vus",
      startVUs: 0,
      stages: [
        { duration: envText("RAMP_UP", "1m"), target: PEAK_VUS },
        { duration: envText("HOLD", "3m"), target: PEAK_VUS },
        { duration: envText("RAMP_DOWN", "30s"), target: 0 },
      ],
      gracefulRampDown: "30s",
    },
  },
  thresholds: {
    checks: [`rate>=${envNumber("MIN_CHECKS_RATE", 0.99)}`],
    grpc_req_duration: [
      `p(95)<${envNumber("GRPC_P95_MS", 500)}`,
      `p(99)<${envNumber("GRPC_P99_MS", 1000)}`,
    ],
    http_req_duration: [
      `p(95)<${envNumber("HTTP_P95_MS", 300)}`,
      `p(99)<${envNumber("HTTP_P99_MS", 800)}`,
    ],
    http_req_failed: [`rate<=${envNumber("MAX_HTTP_FAILED_RATE", 0.01)}`],
  },
  summaryTrendStats: ["avg", "med", "p(95)", "p(99)", "max", "count"],
  // The ledger's client certificate. k6's HTTP client takes no CA here: it trusts the system roots,
  // which the Job points at the app's CA (SSL_CERT_FILE).
  tlsAuth: TLS === null ? [] : [{ cert: TLS.cert, key: TLS.key }],
};

// VUs share no memory: what the summary reports is added up through these counters.
const acknowledgedIds = new Counter("distsum_acknowledged_ids");
const acknowledgedSum = new Counter("distsum_acknowledged_sum");
// New ids still UNAVAILABLE after every attempt: the ledger may or may not count them.
const unresolvedIds = new Counter("distsum_unresolved_ids");
const unresolvedSum = new Counter("distsum_unresolved_sum");
// Retried Adds answered from the replica's idempotency record (another replica answers false).
const retryReplayed = new Rate("distsum_retry_replayed");

/**
 * @typedef {{ total: string, count: number }} LedgerTotal
 * @typedef {{ before: LedgerTotal }} SetupData
 * @typedef {{ id: string, a: number, b: number }} AddRequest
 */

const client = new grpc.Client();
/** @type {import("k6/net/grpc").ConnectParams} */
const CONNECT_PARAMS =
  TLS === null ? { plaintext: true, reflect: true, timeout: "10s" } : { tls: TLS, reflect: true, timeout: "10s" };
let connected = false;
/** @type {AddRequest[]} this VU's acknowledged requests, oldest first */
const acknowledged = [];
// The newest entry count this VU has seen, so that GET /v1/entries asks for cursors that exist.
let ledgerCount = 0;

/** @param {number} low @param {number} high @returns {number} an integer in [low, high] */
function randomInt(low, high) {
  return low + Math.floor(Math.random() * (high - low + 1));
}

/** @returns {string} an RFC 4122 version 4 UUID (k6 has no UUID generator of its own) */
function uuid4() {
  const bytes = new Uint8Array(randomBytes(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
  return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)].join("-");
}

/** @param {unknown} body @returns {Record<string, unknown>} the parsed JSON object, or {} */
function jsonObject(body) {
  try {
    const parsed = JSON.parse(String(body));
    return parsed !== null && typeof parsed === "object" ? parsed : {};
  } catch (_unparsable) {
    return {};
  }
}

/** @param {grpc.Response} response @returns {{ sum: number, replayed: boolean }} */
function addReply(response) {
  const message = /** @type {{ sum?: string | number, replayed?: boolean } | null} */ (response.message);
  // proto3 JSON writes int64 as a string and may leave out a false bool.
  return { sum: Number(message?.sum ?? NaN), replayed: message?.replayed === true };
}

/** @param {number} status */
function mayRetry(status) {
  return status === grpc.StatusUnavailable || status === grpc.StatusDeadlineExceeded;
}

/** @param {AddRequest} request @param {string} call */
function invokeAdd(request, call) {
  return client.invoke(
    "distsum.v1.SumService/Add",
    { request_id: request.id, a: request.a, b: request.b },
    { timeout: ADD_TIMEOUT, tags: { call } },
  );
}

// A failed connect throws: k6 logs why and ends the iteration, and the next one tries again.
function connect() {
  try {
    client.connect(SUM_TARGET, CONNECT_PARAMS);
    connected = true;
  } finally {
    check(connected, { "gRPC: connected, SumService found by reflection": (ok) => ok });
  }
}

function newAdd() {
  /** @type {AddRequest} */
  const request = { id: uuid4(), a: randomInt(0, OPERAND_MAX), b: randomInt(0, OPERAND_MAX) };
  let response = invokeAdd(request, "add-new");
  // An unacknowledged event may still be delivered, so the same id goes again, as the contract says.
  for (let attempt = 1; attempt < ADD_ATTEMPTS && mayRetry(response.status); attempt++) {
    sleep(0.2 * attempt);
    response = invokeAdd(request, "add-new");
  }
  const expected = request.a + request.b;
  check(
    response,
    {
      "new Add: OK": (r) => r.status === grpc.StatusOK,
      "new Add: sum is a + b": (r) => r.status !== grpc.StatusOK || addReply(r).sum === expected,
    },
    { call: "add-new" },
  );
  if (response.status === grpc.StatusOK) {
    acknowledgedIds.add(1);
    acknowledgedSum.add(expected);
    acknowledged.push(request);
    if (acknowledged.length > REMEMBERED_PER_VU) acknowledged.shift();
  } else if (mayRetry(response.status)) {
    unresolvedIds.add(1);
    unresolvedSum.add(expected);
  }
}

function retriedAdd() {
  if (acknowledged.length === 0) return newAdd();
  const request = acknowledged[randomInt(0, acknowledged.length - 1)];
  const response = invokeAdd(request, "add-retry");
  check(
    response,
    {
      "retried Add: OK": (r) => r.status === grpc.StatusOK,
      "retried Add: the same sum": (r) => addReply(r).sum === request.a + request.b,
    },
    { call: "add-retry" },
  );
  if (response.status === grpc.StatusOK) retryReplayed.add(addReply(response).replayed);
}

function readTotal() {
  const response = http.get(`${LEDGER_URL}/v1/total`, { tags: { name: "GET /v1/total" } });
  const body = jsonObject(response.body);
  check(response, {
    "GET /v1/total: 200": (r) => r.status === 200,
    "GET /v1/total: total is a decimal string": () => typeof body.total === "string" && /^-?\d+$/.test(body.total),
    "GET /v1/total: count is a number": () => typeof body.count === "number",
  });
  if (typeof body.count === "number") ledgerCount = body.count;
}

function readEntries() {
  const limit = randomInt(1, ENTRIES_LIMIT_MAX);
  const after = randomInt(0, ledgerCount);
  const response = http.get(`${LEDGER_URL}/v1/entries?after=${after}&limit=${limit}`, {
    tags: { name: "GET /v1/entries" },
  });
  const body = jsonObject(response.body);
  check(response, {
    "GET /v1/entries: 200": (r) => r.status === 200,
    "GET /v1/entries: at most limit entries": () => Array.isArray(body.entries) && body.entries.length <= limit,
    "GET /v1/entries: a next cursor": () => typeof body.next_cursor === "string",
  });
}

const MIX = [
  { weight: envNumber("MIX_ADD", 60), call: newAdd },
  { weight: envNumber("MIX_RETRY", 15), call: retriedAdd },
  { weight: envNumber("MIX_TOTAL", 15), call: readTotal },
  { weight: envNumber("MIX_ENTRIES", 10), call: readEntries },
];
const MIX_WEIGHT = MIX.reduce((total, entry) => total + entry.weight, 0);
if (MIX_WEIGHT <= 0) throw new Error("MIX_ADD, MIX_RETRY, MIX_TOTAL and MIX_ENTRIES are all 0");

function pickCall() {
  let draw = Math.random() * MIX_WEIGHT;
  for (const entry of MIX) {
    if (draw < entry.weight) return entry.call;
    draw -= entry.weight;
  }
  return MIX[MIX.length - 1].call;
}

/** @returns {SetupData} the ledger before the run, so that the summary can say what to expect after it */
export function setup() {
  const response = http.get(`${LEDGER_URL}/v1/total`, { tags: { name: "GET /v1/total" } });
  const body = jsonObject(response.body);
  if (response.status !== 200 || typeof body.total !== "string" || typeof body.count !== "number") {
    throw new Error(`the ledger at ${LEDGER_URL} answered /v1/total with ${response.status}: ${response.body}`);
  }
  return { before: { total: body.total, count: body.count } };
}

/** @param {SetupData} data */
export default function (data) {
  if (__ITER === 0) ledgerCount = data.before.count;
  sleep(THINK_MIN_SECONDS + Math.random() * (THINK_MAX_SECONDS - THINK_MIN_SECONDS));
  if (!connected) connect();
  pickCall()();
}

/**
 * The parts of k6's end-of-test data this summary reads.
 * @typedef {{ values: Record<string, number>, thresholds?: Record<string, { ok: boolean }> }} SummaryMetric
 * @typedef {{ metrics: Record<string, SummaryMetric>, setup_data?: SetupData }} SummaryData
 */

/** @param {SummaryData} data @param {string} metric @param {string} key */
function stat(data, metric, key) {
  return data.metrics[metric]?.values[key] ?? 0;
}

/** @param {SummaryData} data */
function thresholdLines(data) {
  return Object.entries(data.metrics).flatMap(([name, metric]) =>
    Object.entries(metric.thresholds ?? {}).map(([rule, verdict]) => {
      const observed = Object.entries(metric.values)
        .map(([key, value]) => `${key}=${Number.isInteger(value) ? value : value.toFixed(4)}`)
        .join(" ");
      return `  ${verdict.ok ? "ok  " : "FAIL"}  ${name} ${rule}    (${observed})`;
    }),
  );
}

/** @param {SummaryData} data */
function totalLines(data) {
  const ids = stat(data, "distsum_acknowledged_ids", "count");
  const sum = stat(data, "distsum_acknowledged_sum", "count");
  const unresolved = stat(data, "distsum_unresolved_ids", "count");
  const before = data.setup_data?.before;
  const lines = [`acknowledged distinct ids: ${ids}, their sum: ${sum}`];
  if (before === undefined) return [...lines, "the ledger was not read before the run (setup failed)"];
  const expectedTotal = (BigInt(before.total) + BigInt(sum)).toString();
  const expectedCount = before.count + ids;
  lines.push(
    `ledger before the run: total ${before.total}, count ${before.count}`,
    `expected once the ledger has caught up: total ${expectedTotal}, count ${expectedCount}`,
    `  (exact when nothing else wrote to the ledger meanwhile; make loadtest compares it with GET ${LEDGER_URL}/v1/total)`,
  );
  if (unresolved > 0) {
    const unresolvedSumValue = stat(data, "distsum_unresolved_sum", "count");
    lines.push(
      `unresolved ids (no acknowledgement after ${ADD_ATTEMPTS} attempts): ${unresolved}, their sum: ${unresolvedSumValue};`,
      "  each may or may not be counted, so the total lies between the expected total and that plus their sum",
    );
  }
  const result = {
    acknowledged_ids: ids,
    acknowledged_sum: String(sum),
    unresolved_ids: unresolved,
    unresolved_sum: String(stat(data, "distsum_unresolved_sum", "count")),
  };
  const expected = { expected_total: expectedTotal, expected_count: expectedCount };
  lines.push(`distsum-loadtest-result ${JSON.stringify({ ...result, before, ...expected })}`);
  return lines;
}

/** @param {SummaryData} data */
export function handleSummary(data) {
  const ms = (/** @type {string} */ metric, /** @type {string} */ key) => stat(data, metric, key).toFixed(1);
  const text = [
    "",
    `distsum load test: ${SUM_TARGET} and ${LEDGER_URL}, up to ${PEAK_VUS} VUs`,
    "thresholds:",
    ...thresholdLines(data),
    `gRPC calls: ${stat(data, "grpc_req_duration", "count")}, p95 ${ms("grpc_req_duration", "p(95)")} ms,` +
      ` p99 ${ms("grpc_req_duration", "p(99)")} ms`,
    `HTTP requests: ${stat(data, "http_reqs", "count")}, p95 ${ms("http_req_duration", "p(95)")} ms,` +
      ` p99 ${ms("http_req_duration", "p(99)")} ms, failed ${stat(data, "http_req_failed", "passes")}`,
    `checks: ${stat(data, "checks", "passes")} passed, ${stat(data, "checks", "fails")} failed;` +
      ` retried Adds replayed by the same replica: ${stat(data, "distsum_retry_replayed", "passes")}`,
    ...totalLines(data),
    "",
  ];
  return { stdout: text.join("\n") };
}
