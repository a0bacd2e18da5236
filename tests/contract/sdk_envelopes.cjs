#!/usr/bin/env node
// Checks JSON that a `membrane` stand-in printed against @membranehq/sdk's own zod schemas.
//
// Usage: node sdk_envelopes.cjs <sdk-prefix> <cases.json>
//   <sdk-prefix>  a folder whose node_modules holds @membranehq/sdk (npm --prefix)
//   <cases.json>  [{"name", "schema", "value"}], schema one of SCHEMAS below
//
// Prints {"sdk": version, "checked": n, "problems": [{"case", "path", "message"}]} and
// exits 0 when there are no problems, 1 when there are, 2 when it cannot run at all.
// Driven by tests/contract/test_sdk_envelopes.py.
"use strict";

const fs = require("node:fs");
const path = require("node:path");

function main(argv) {
  if (argv.length !== 2) {
    process.stderr.write("usage: node sdk_envelopes.cjs <sdk-prefix> <cases.json>\n");
    return 2;
  }
  const [prefix, casesPath] = argv;
  const entry = require.resolve("@membranehq/sdk", { paths: [path.resolve(prefix)] });
  const sdk = require(entry);
  const version = readVersion(entry);
  const cases = JSON.parse(fs.readFileSync(casesPath, "utf8"));
  const problems = [];
  for (const c of cases) {
    for (const p of checkCase(sdk, c)) {
      problems.push({ case: c.name, path: p.path, message: p.message });
    }
  }
  process.stdout.write(JSON.stringify({ sdk: version, checked: cases.length, problems }) + "\n");
  return problems.length === 0 ? 0 : 1;
}

function readVersion(entry) {
  // entry is .../node_modules/@membranehq/sdk/dist/index.node.js
  const pkg = path.join(path.dirname(entry), "..", "package.json");
  return JSON.parse(fs.readFileSync(pkg, "utf8")).version;
}

function schemas(sdk) {
  return {
    connection: sdk.ConnectionApiResponse,
    connection_list: sdk.createPaginationResponseSchema(sdk.ConnectionApiResponse),
    action_list: sdk.createPaginationResponseSchema(sdk.ActionApiResponse),
    action_run: sdk.ActionRunResponse,
    // `action-run-log get <id>`: GET /action-run-logs/{id}.
    action_run_log: sdk.ActionRunLogRecordApiResponse,
    // `action-run-log get <id> --details`: GET /action-run-logs/{id}/details, which the
    // SDK has no schema for (the OpenAPI names it ActionRunLogRecordInDb, no properties):
    // the stored record, so at least the base record's fields.
    action_run_log_details: sdk.BaseActionRunLogRecord,
    error: sdk.ErrorDataSchema,
  };
}

// Fields the SDK's d.ts marks @deprecated on a connection: zod strips unknown keys and
// accepts optional ones, so only an explicit look finds them.
const DEPRECATED_CONNECTION_FIELDS = {
  disconnected: "deprecated in the SDK: use `connected`",
  error: "deprecated in the SDK: use `requestError` and `errors`",
};

function checkCase(sdk, c) {
  const schema = schemas(sdk)[c.schema];
  if (!schema) {
    return [{ path: "", message: `unknown schema ${JSON.stringify(c.schema)}` }];
  }
  const found = [];
  const parsed = schema.safeParse(c.value);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      found.push({ path: issue.path.join("."), message: issue.message });
    }
  }
  const value = c.value;
  if (c.schema === "connection") {
    found.push(...checkConnection(sdk, value, []));
  } else if (c.schema === "connection_list" && value && Array.isArray(value.items)) {
    value.items.forEach((item, i) => found.push(...checkConnection(sdk, item, ["items", i])));
  } else if (c.schema === "error") {
    found.push(...checkError(sdk, value, []));
  } else if (c.schema === "action_run_log" || c.schema === "action_run_log_details") {
    found.push(...checkRunLog(sdk, value, c.schema === "action_run_log" ? schema : null));
  }
  // zod already reports most enum misses; keep one problem per path.
  const seen = new Set();
  return found.filter((p) => !seen.has(p.path) && seen.add(p.path));
}

function checkConnection(sdk, conn, at) {
  if (!isObject(conn)) return [];
  const found = [];
  for (const [field, why] of Object.entries(DEPRECATED_CONNECTION_FIELDS)) {
    if (field in conn) found.push({ path: [...at, field].join("."), message: why });
  }
  const states = Object.values(sdk.WorkspaceElementState);
  if ("state" in conn && !states.includes(conn.state)) {
    found.push({
      path: [...at, "state"].join("."),
      message: `${JSON.stringify(conn.state)} is not a WorkspaceElementState (${states.join(", ")})`,
    });
  }
  const actionTypes = sdk.ConnectionClientAction.shape.type.options;
  if (isObject(conn.clientAction) && !actionTypes.includes(conn.clientAction.type)) {
    found.push({
      path: [...at, "clientAction", "type"].join("."),
      message: `${JSON.stringify(conn.clientAction.type)} is not one of ${actionTypes.join(", ")}`,
    });
  }
  if (Array.isArray(conn.errors)) {
    conn.errors.forEach((e, i) => found.push(...checkError(sdk, e, [...at, "errors", i])));
  }
  return found;
}

// zod strips keys a record does not define; a plain record (not --details) must hold
// only the SDK's, so a misspelt or invented field is found. Its ErrorData is checked
// like any error (enumerated keys).
function checkRunLog(sdk, record, strictSchema) {
  if (!isObject(record)) return [];
  const found = [];
  if (strictSchema) {
    const known = new Set(Object.keys(strictSchema.shape));
    for (const key of Object.keys(record)) {
      if (!known.has(key)) {
        found.push({ path: key, message: `not a field of ActionRunLogRecordApiResponse` });
      }
    }
  }
  if (record.status === "error" && !isObject(record.error)) {
    found.push({ path: "error", message: "a failed run's log carries no ErrorData" });
  }
  found.push(...checkError(sdk, record.error, ["error"]));
  return found;
}

function checkError(sdk, error, at) {
  if (!isObject(error)) return [];
  const found = [];
  const types = Object.values(sdk.ErrorType);
  if ("type" in error && !types.includes(error.type)) {
    found.push({
      path: [...at, "type"].join("."),
      message: `${JSON.stringify(error.type)} is not an ErrorType (${types.join(", ")})`,
    });
  }
  // The error types whose keys the SDK enumerates; other types carry free-form keys.
  const keyEnums = {
    [sdk.ErrorType.BAD_REQUEST]: ["BadRequestErrorKey", sdk.BadRequestErrorKey],
    [sdk.ErrorType.CONNECTION]: ["ConnectionErrorKey", sdk.ConnectionErrorKey],
    [sdk.ErrorType.CONCURRENCY]: ["ConcurrencyErrorKey", sdk.ConcurrencyErrorKey],
  };
  const known = keyEnums[error.type];
  if (known && error.key !== undefined) {
    const [enumName, values] = [known[0], Object.values(known[1])];
    if (!values.includes(error.key)) {
      found.push({
        path: [...at, "key"].join("."),
        message:
          `${JSON.stringify(error.key)} is not a ${enumName} (${values.join(", ")}) ` +
          `for type ${JSON.stringify(error.type)}`,
      });
    }
  }
  return found;
}

function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`sdk_envelopes.cjs: ${err && err.stack ? err.stack : err}\n`);
  process.exitCode = 2;
}
