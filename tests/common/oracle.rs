//! turbot's Go AWS plugin as the oracle for a table: the same questions asked
//! of both plugins, through the same client (sphost, on
//! steampipe-plugin-sdk's own grpc client), against one deterministically
//! seeded moto; the Go plugin's answers recorded in a golden file that the
//! default test run checks our plugin against.
//!
//! # API
//!
//! A test file for table `aws_x` (see `tests/oracle_ec2_launch_template.rs`):
//!
//! ```ignore
//! mod common;
//! use common::oracle::{self, Bed, Case, Table};
//!
//! const TABLE: Table = Table {
//!     name: "aws_x",
//!     // the columns that name a row (per-row digests, row diffs)
//!     key: &["x_id"],
//!     // the API calls whose parameters are compared (what was pushed down)
//!     actions: &["DescribeX"],
//! };
//! fn bed() -> &'static Bed {
//!     static BED: OnceLock<Bed> = OnceLock::new();
//!     // seed moto's random generator, then run the seeding callback; files
//!     // the seeding depends on go into the recording's fingerprint
//!     BED.get_or_init(|| Bed::start(SEED, &["tests/fixtures/x.py"], |m| oracle::fixture(m, "x.py", &[])))
//! }
//! fn cases(seeded: &Value, columns: &[(String, bool)]) -> Vec<Case> {
//!     vec![Case::new("all columns", oracle::scan(TABLE.name, &names, json!({}), None)).regions(&[..]), ..]
//! }
//! #[test]
//! #[ignore = "needs turbot's Go plugin: run scripts/conformance.sh go-plugin"]
//! fn live() { oracle::compare_live(bed(), &TABLE, GOLDEN, |cols| cases(&bed().seeded, cols)) }
//! #[test]
//! fn recorded() { oracle::compare_golden(bed(), &TABLE, GOLDEN, |cols| cases(&bed().seeded, cols)) }
//! ```
//!
//! - [`Bed::start`] starts moto, `POST /moto-api/seed?a=SEED` (moto's ids
//!   become deterministic), runs the seeding callback (usually
//!   [`fixture`]: `tests/fixtures/<script> ENDPOINT OUT.json ARGS`, returning
//!   what the script wrote) and fingerprints the seeding files with the seed.
//! - [`Case`]: one question. [`Case::new`] with a step ([`schema_step`] or
//!   [`scan`] with columns, quals ([`eq`], [`in_list`], `common::qual`,
//!   `common::quals`) and a limit); builders `regions`, `extra` (more
//!   connection config lines), `rules` (a fault proxy in front of the
//!   endpoint), `endpoint` (another endpoint than moto, e.g. the fast test
//!   endpoint serving recorded answers), `count_only`, `digest`,
//!   `postgres_filters` (drop rows failing the step's `=`/`<>`/IN quals, as Postgres
//!   would, for filters the emulator ignores), `any_calls` (calls not
//!   compared).
//! - [`ask`]`(bed, plugin, table, case)`: runs the case's step on `plugin`
//!   ([`our_plugin`] = `target/<profile>/steampipe-plugin-aws`,
//!   [`go_plugin`] = `$GO_AWS_PLUGIN`) in a fresh sphost; the answer is the
//!   table's schema, or `{calls, end, error, error_text, bad_rows, count,
//!   rows}` where `rows` are `{column: [kind, value]}` (only the asked
//!   columns, plus `(connection)`), sorted, and `calls` the table's API calls
//!   that reached moto (per action: region, parameters without paging
//!   tokens, filters by name), each once.
//! - [`recorded`]`(answer, table, case)`: normalised for the record: times
//!   (`YYYY-MM-DD[T ]HH:MM:SS[.fraction]`) and UUIDs masked in every value, request ids
//!   and loopback ports masked in error texts; rows sorted; answers over
//!   [`FULL_ROWS_UP_TO`] rows (or `digest` cases) kept as one FNV-1a digest
//!   per row, keyed by the table's key columns.
//! - [`differences`]`(go, ours, table)`: readable lines, one per difference
//!   (schema column by column; calls, end, error facts, counts; rows by key,
//!   column by column; digests row by row). Errors are compared by
//!   [`error_facts`] (connection, operation, code, message), since the two
//!   SDKs word them differently.
//! - [`golden_text`], [`write_golden`], [`read_golden`]: the recording, one
//!   line per row/column/digest so that a re-recording reads as a diff; it
//!   carries the bed's fingerprint and is refused if the seeding changed.
//! - [`compare_live`]: asks the Go plugin for the schema, builds the cases
//!   from its columns, asks both plugins every case, writes the golden file
//!   with the Go plugin's answers, then fails with [`report`] if they differ.
//!   [`compare_golden`]: the default run; ours against the recording.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::moto::{python, FaultProxy, Moto};
use super::{aws_connection, events, execute, one, qual, root, run, target_dir};
use serde_json::{json, Value};

/// How to refresh a recording.
pub const RERECORD: &str = "re-record with: scripts/conformance.sh go-plugin";
/// Answers with more rows than this are recorded as per-row digests.
pub const FULL_ROWS_UP_TO: usize = 40;
/// Few, quick retries (moto answers what it does not implement with HTTP
/// 500, which both plugins retry; the Go plugin's default backoff takes
/// minutes).
pub const FEW_RETRIES: &str = "max_error_retry_attempts = 2\nmin_error_retry_delay = 10\n";
/// What the Go plugin is (scripts/conformance/go-plugin.sh).
pub const GO_PLUGIN_VERSION: &str =
    "github.com/turbot/steampipe-plugin-aws v1.31.0 (scripts/conformance/go-plugin.sh)";

/// turbot's plugin, from `$GO_AWS_PLUGIN`.
pub fn go_plugin() -> PathBuf {
    let p = std::env::var_os("GO_AWS_PLUGIN").map(PathBuf::from).expect(
        "GO_AWS_PLUGIN is not set: build turbot's Go AWS plugin with scripts/conformance.sh go-plugin",
    );
    assert!(p.exists(), "GO_AWS_PLUGIN={} does not exist", p.display());
    p
}

/// Our plugin, as built for this test run.
pub fn our_plugin() -> PathBuf {
    target_dir().join("steampipe-plugin-aws")
}

/// FNV-1a, 64 bits: a stable digest for recordings (not a security hash).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// What a table's oracle needs to know about it.
#[derive(Clone, Copy, Debug)]
pub struct Table {
    /// `aws_...`
    pub name: &'static str,
    /// The columns that together name a row.
    pub key: &'static [&'static str],
    /// The API actions whose calls are compared.
    pub actions: &'static [&'static str],
}

/// One seeded emulator.
pub struct Bed {
    pub moto: Moto,
    /// What the seeding callback returned.
    pub seeded: Value,
    /// The seed and a digest of the seeding files: a recording made on
    /// another seeding is refused.
    pub fingerprint: String,
}

impl Bed {
    /// Starts moto, seeds its random generator with `seed`, then runs
    /// `seeding`. `files` (repository paths) are what the seeding depends on.
    pub fn start(seed: u64, files: &[&str], seeding: impl FnOnce(&Moto) -> Value) -> Bed {
        let moto = Moto::start();
        moto.http("POST", &format!("/moto-api/seed?a={seed}"));
        let seeded = seeding(&moto);
        let mut bytes = Vec::new();
        for f in files {
            bytes.extend(
                std::fs::read(root().join(f))
                    .unwrap_or_else(|e| panic!("{f}: {e} (a seeding file of the oracle)")),
            );
        }
        Bed {
            moto,
            seeded,
            fingerprint: format!("{:016x} seed={seed}", fnv1a(&bytes)),
        }
    }
}

/// Runs `tests/fixtures/<script> ENDPOINT OUT.json ARGS...` with the test
/// venv's Python; returns the JSON it wrote to OUT.json.
pub fn fixture(moto: &Moto, script: &str, args: &[&str]) -> Value {
    let out = tempfile::NamedTempFile::new().unwrap();
    let status = Command::new(python())
        .arg(root().join("tests/fixtures").join(script))
        .arg(&moto.endpoint)
        .arg(out.path())
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("run tests/fixtures/{script}: {e}"));
    assert!(
        status.success(),
        "seeding with tests/fixtures/{script} failed"
    );
    let text = std::fs::read(out.path()).unwrap();
    serde_json::from_slice(&text)
        .unwrap_or_else(|e| panic!("tests/fixtures/{script} wrote no JSON: {e}"))
}

/// One question, asked of each plugin in a fresh process.
#[derive(Clone, Debug)]
pub struct Case {
    pub name: String,
    pub regions: Vec<String>,
    /// More connection config lines.
    pub extra: String,
    /// Fault proxy rules (`tests/fixtures/fault_proxy.py`); the plugins then
    /// talk to a fresh proxy each.
    pub rules: Option<Value>,
    /// Another endpoint than the bed's moto (then no calls are recorded).
    pub endpoint: Option<String>,
    /// A `get_schema` or `execute` step.
    pub step: Value,
    /// Only the row count is deterministic (a limit over several regions).
    pub count_only: bool,
    /// Recorded as one digest per row.
    pub digest: bool,
    /// Rows that fail one of the step's `=`, `<>` or IN quals on an asked column are
    /// dropped from the answer, as Postgres drops them: for filters the
    /// emulator does not apply (the Go SDK streams what the API returns, our
    /// SDK also evaluates key-column quals).
    pub postgres_filters: bool,
    /// The calls are not compared (which calls a limit cuts short is a race
    /// in the Go SDK).
    pub any_calls: bool,
    /// Asked twice in the same process: the repeat's scan metadata is
    /// compared too (a cached answer, when the step enables the cache).
    pub repeat: bool,
}

impl Case {
    /// A case in us-east-1.
    pub fn new(name: &str, step: Value) -> Case {
        Case {
            name: name.to_string(),
            regions: vec!["us-east-1".to_string()],
            extra: String::new(),
            rules: None,
            endpoint: None,
            step,
            count_only: false,
            digest: false,
            postgres_filters: false,
            any_calls: false,
            repeat: false,
        }
    }
    pub fn regions(mut self, r: &[&str]) -> Case {
        self.regions = r.iter().map(|r| r.to_string()).collect();
        self
    }
    pub fn extra(mut self, e: &str) -> Case {
        self.extra = e.to_string();
        self
    }
    pub fn rules(mut self, r: Value) -> Case {
        self.rules = Some(r);
        self
    }
    pub fn endpoint(mut self, e: &str) -> Case {
        self.endpoint = Some(e.to_string());
        self
    }
    pub fn count_only(mut self) -> Case {
        self.count_only = true;
        self
    }
    pub fn digest(mut self) -> Case {
        self.digest = true;
        self
    }
    pub fn postgres_filters(mut self) -> Case {
        self.postgres_filters = true;
        self
    }
    pub fn any_calls(mut self) -> Case {
        self.any_calls = true;
        self
    }
    pub fn repeat(mut self) -> Case {
        self.repeat = true;
        self
    }
}

/// Whether `row` passes every `=`, `<>` and IN qual of `step` on a
/// column it has (scalar qual values compared with the cell's value).
pub fn passes_quals(row: &Value, step: &Value) -> bool {
    fn scalar(v: &Value) -> Option<Value> {
        if let Some(s) = v.get("stringValue") {
            Some(s.clone())
        } else if let Some(b) = v.get("boolValue") {
            Some(b.clone())
        } else {
            v.get("int64Value").map(|i| {
                json!(i
                    .as_str()
                    .and_then(|s| s.parse::<i64>().ok())
                    .or(i.as_i64()))
            })
        }
    }
    fn same(have: &Value, want: &Value) -> bool {
        have == want || have.to_string().trim_matches('"') == want.to_string().trim_matches('"')
    }
    let quals = &step["request"]["queryContext"]["quals"];
    quals.as_object().into_iter().flatten().all(|(col, qs)| {
        let Some(cell) = row.get(col) else {
            return true;
        };
        let have = &cell[1];
        qs["quals"].as_array().into_iter().flatten().all(|q| {
            let v = &q["value"];
            let op = q["stringValue"].as_str().unwrap_or_default();
            if let Some(list) = v["listValue"]["values"].as_array() {
                return op != "=" || list.iter().filter_map(scalar).any(|w| same(have, &w));
            }
            match (op, scalar(v)) {
                ("=", Some(w)) => same(have, &w),
                ("<>", Some(w)) => !same(have, &w),
                _ => true, // another operator or kind: not evaluated here
            }
        })
    })
}

/// The schema question.
pub fn schema_step() -> Value {
    json!({"op": "get_schema", "connection": "aws"})
}

/// A scan of `table` (cache off).
pub fn scan(table: &str, columns: &[&str], quals: Value, limit: Option<i64>) -> Value {
    let mut req = execute(table, "aws", columns, quals, limit);
    req["executeConnectionData"]["aws"]["cacheEnabled"] = json!(false);
    json!({"op": "execute", "request": req})
}

/// `column = v` (a string).
pub fn eq(column: &str, v: &str) -> Value {
    qual(column, "=", Some(json!({ "stringValue": v })))
}

/// `column = v` (an integer).
pub fn eq_int(column: &str, v: i64) -> Value {
    qual(column, "=", Some(json!({ "int64Value": v.to_string() })))
}

/// `column = v` (a bool).
pub fn eq_bool(column: &str, v: bool) -> Value {
    qual(column, "=", Some(json!({ "boolValue": v })))
}

/// `column IN (vs)`.
pub fn in_list(column: &str, vs: &[&str]) -> Value {
    let values: Vec<Value> = vs.iter().map(|v| json!({ "stringValue": v })).collect();
    qual(column, "=", Some(json!({"listValue": {"values": values}})))
}

/// The columns of a schema answer's table: (name, hydrated).
pub fn schema_columns(schema: &Value) -> Vec<(String, bool)> {
    schema["table"]["columns"]
        .as_array()
        .expect("the schema answer has the table's columns")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["hydrate"].as_str().is_some_and(|h| !h.is_empty()),
            )
        })
        .collect()
}

/// The connection config both plugins get. Credentials come from the
/// environment: with `endpoint_url` set, the Go plugin ignores `access_key`.
pub fn config(endpoint: &str, c: &Case) -> String {
    let regions: Vec<String> = c.regions.iter().map(|r| format!("\"{r}\"")).collect();
    format!(
        "default_region = \"us-east-1\"\nendpoint_url = \"{endpoint}\"\n{}regions = [{}]\n",
        c.extra,
        regions.join(", ")
    )
}

/// A one-step sphost scenario for an AWS plugin, with a clean AWS
/// environment; with `repeat`, the step twice in the same process.
pub fn scenario(plugin: &Path, config: &str, step: &Value, repeat: bool) -> Value {
    let steps = if repeat {
        vec![step.clone(), step.clone()]
    } else {
        vec![step.clone()]
    };
    json!({
        "plugin": plugin,
        "env": {
            "AWS_ACCESS_KEY_ID": "AKIDORACLE",
            "AWS_SECRET_ACCESS_KEY": "oracle-secret",
            "AWS_CONFIG_FILE": "/nonexistent/aws-config",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
            "AWS_EC2_METADATA_DISABLED": "true",
            "STEAMPIPE_LOG_LEVEL": "WARN",
        },
        "connections": [aws_connection("aws", config)],
        "steps": steps,
    })
}

/// Asks `plugin` one case (see the module doc for the answer's shape).
pub fn ask(bed: &Bed, plugin: &Path, table: &Table, c: &Case) -> Value {
    // One case at a time, so that the emulator's recording is this case's.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let moto = &bed.moto;
    let upstream = c.endpoint.as_ref().unwrap_or(&moto.endpoint);
    let proxy = c
        .rules
        .as_ref()
        .map(|r| FaultProxy::start(upstream, r.clone()));
    let endpoint = proxy.as_ref().map_or(upstream, |p| &p.endpoint);
    moto.start_recording();
    let sc = scenario(plugin, &config(endpoint, c), &c.step, c.repeat);
    // A harness failure (sphost's deadline, a missing event) is this case's
    // answer, not the end of the comparison.
    let ev = match std::panic::catch_unwind(|| run(&sc)) {
        Ok(ev) => ev,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            return json!({"harness_failure": msg.chars().take(300).collect::<String>()});
        }
    };
    if c.step["op"] == "get_schema" {
        let s = &one(&ev, "schema", Some(0))["response"]["schema"];
        return json!({
            "table": s["schema"][table.name],
            "mode": s["mode"],
            "protocol_version": s["protocol_version"],
            "sdk_version": s["sdk_version"],
        });
    }
    let end = one(&ev, "execute_end", Some(0));
    // The columns the query asked for: the FDW reads only those. (The Go
    // SDK also sends every other column its hydrate calls produced.)
    let asked: BTreeSet<&str> = c.step["request"]["queryContext"]["columns"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let mut rows: Vec<Value> = events(&ev, "row", Some(0))
        .into_iter()
        .map(|r| {
            let mut cells = serde_json::Map::new();
            for (k, v) in r["values"].as_object().unwrap() {
                if asked.contains(k.as_str()) {
                    cells.insert(k.clone(), json!([r["kinds"][k], v]));
                }
            }
            cells.insert("(connection)".into(), r["connection"].clone());
            Value::Object(cells)
        })
        .collect();
    if c.postgres_filters {
        rows.retain(|r| passes_quals(r, &c.step));
    }
    rows.sort_by_key(|r| r.to_string());
    let mut calls: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    if c.endpoint.is_none() && !c.any_calls {
        for r in moto.recording() {
            if table.actions.contains(&r.action.as_str()) {
                calls
                    .entry(r.action.clone())
                    .or_default()
                    .insert(call_text(&r));
            }
        }
    }
    let mut answer = json!({
        "calls": calls,
        "end": end["end"],
        "error": end.get("error").map(|e| error_facts(e.as_str().unwrap_or_default())),
        // The text itself, for the record (not compared; see error_facts).
        "error_text": end.get("error").map(|e| mask_error(e.as_str().unwrap_or_default())),
        "bad_rows": end["bad_rows"],
        "count": rows.len(),
    });
    if !c.count_only {
        answer["rows"] = Value::Array(rows);
    }
    answer
}

/// One recorded call: region, parameters in name order without paging
/// tokens (numbered list members kept), filters by name. Filters are sorted:
/// the Go plugin builds them from a map.
fn call_text(r: &super::moto::Recorded) -> String {
    let mut filters: Vec<String> = r
        .filters()
        .into_iter()
        .map(|(n, vs)| format!("{n}={}", vs.join(",")))
        .collect();
    filters.sort();
    let mut params: Vec<String> = r
        .params
        .iter()
        .filter(|(k, _)| {
            !["Action", "Version", "NextToken"].contains(&k.as_str()) && !k.starts_with("Filter.")
        })
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    params.sort();
    params.extend(filters.into_iter().map(|f| format!("filter {f}")));
    format!("{} {}", r.region, params.join(" & "))
}

/// An error text with request ids and loopback ports masked.
pub fn mask_error(e: &str) -> String {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(
            r"RequestID: [^,]*,|127\.0\.0\.1:\d+|[Rr]equest[ _-]?[Ii][Dd]:? ?[0-9A-Za-z-]{16,}",
        )
        .unwrap()
    });
    re.replace_all(e, "<masked>").into_owned()
}

/// What an error says, in either plugin's wording: the connection it
/// names, the AWS operation, and the AWS error code and message (or the HTTP
/// status of an answer that was not an AWS error). The Go plugin shows the
/// AWS SDK for Go's `operation error EC2: OP, https response error
/// StatusCode: 403, RequestID: ..., api error CODE: MESSAGE`, ours `OP in
/// REGION: CODE: MESSAGE (HTTP 403 from ENDPOINT[, N attempts])[; hint]`.
pub fn error_facts(e: &str) -> Value {
    static RES: OnceLock<[regex::Regex; 7]> = OnceLock::new();
    let [desc, go_op, go_api, go_status, our_op, our_status, our_context] = RES.get_or_init(|| {
        [
            r"(?s)desc = ([^:]+): (.*)$",
            r"operation error [\w ]+: (\w+),",
            r"(?s)api error ([\w.]+): (.*)$",
            r"StatusCode: (\d+)",
            r"^(\w+) in [\w-]+: (.*)$",
            r"^HTTP (\d+) without an AWS error code",
            r" \(HTTP \d+ from .*$",
        ]
        .map(|r| regex::Regex::new(r).unwrap())
    });
    let Some(d) = desc.captures(e) else {
        return json!({ "text": e });
    };
    // A Get call's error comes without the connection name in front.
    let whole = &d[0]["desc = ".len()..];
    let (connection, rest) = if whole.starts_with("operation error ") || our_op.is_match(whole) {
        (None, whole)
    } else {
        (Some(&d[1]), &d[2])
    };
    let mut facts = json!({ "connection": connection });
    if let Some(op) = go_op.captures(rest) {
        facts["operation"] = json!(&op[1]);
        match go_api.captures(rest) {
            Some(api) => {
                facts["code"] = json!(&api[1]);
                facts["message"] = json!(trim_message(&api[2]));
            }
            None => {
                facts["http_status"] = json!(go_status.captures(rest).map(|s| s[1].to_string()))
            }
        }
    } else if let Some(op) = our_op.captures(rest) {
        facts["operation"] = json!(&op[1]);
        // Without the status, endpoint, tries and hint ours adds after the message.
        let detail = our_context.replace(&op[2], "");
        let detail = detail.as_ref();
        match our_status.captures(detail) {
            Some(s) => facts["http_status"] = json!(&s[1]),
            None => match detail.split_once(": ") {
                Some((code, message)) => {
                    facts["code"] = json!(code);
                    facts["message"] = json!(trim_message(message));
                }
                None => facts["code"] = json!(detail),
            },
        }
    } else {
        facts["text"] = json!(rest);
    }
    facts
}

/// A message without the final dots and newline (the Go SDK adds a `.`
/// after the AWS message, which has its own; its hydrate errors end in `\n`).
pub fn trim_message(m: &str) -> &str {
    m.trim_end_matches(|c: char| c == '.' || c.is_whitespace())
}

/// The value of a row's key: its key columns' values joined with `/`.
pub fn row_key(table: &Table, row: &Value) -> String {
    let parts: Vec<String> = table
        .key
        .iter()
        .filter_map(|k| row.get(*k))
        .map(|v| match &v[1] {
            Value::String(s) => s.clone(),
            x => x.to_string(),
        })
        .collect();
    if parts.is_empty() {
        row.to_string()
    } else {
        parts.join("/")
    }
}

/// Every string in `v` with times and UUIDs masked.
pub fn normalise_row(row: &Value) -> Value {
    static TIME: OnceLock<regex::Regex> = OnceLock::new();
    static UUID: OnceLock<regex::Regex> = OnceLock::new();
    let time = TIME.get_or_init(|| {
        regex::Regex::new(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?").unwrap()
    });
    let uuid = UUID.get_or_init(|| {
        regex::Regex::new(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}").unwrap()
    });
    fn mask(v: &Value, time: &regex::Regex, uuid: &regex::Regex) -> Value {
        match v {
            Value::String(s) => {
                let s = time.replace_all(s, "<time>");
                json!(uuid.replace_all(&s, "<uuid>"))
            }
            Value::Array(a) => Value::Array(a.iter().map(|x| mask(x, time, uuid)).collect()),
            Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, x)| (k.clone(), mask(x, time, uuid)))
                    .collect(),
            ),
            x => x.clone(),
        }
    }
    mask(row, time, uuid)
}

/// An answer as recorded (see the module doc).
pub fn recorded(answer: &Value, table: &Table, c: &Case) -> Value {
    let Some(rows) = answer.get("rows").and_then(Value::as_array) else {
        return answer.clone();
    };
    let mut rows: Vec<Value> = rows.iter().map(normalise_row).collect();
    rows.sort_by_key(|r| r.to_string());
    let mut out = answer.clone();
    if c.digest || rows.len() > FULL_ROWS_UP_TO {
        let digests: BTreeMap<String, Value> = rows
            .iter()
            .map(|r| {
                (
                    row_key(table, r),
                    json!(format!("{:016x}", fnv1a(r.to_string().as_bytes()))),
                )
            })
            .collect();
        out.as_object_mut().unwrap().remove("rows");
        out["digests"] = json!(digests);
    } else {
        out["rows"] = Value::Array(rows);
    }
    out
}

/// Two errors' facts made comparable: the text after gRPC's `desc = `; a
/// Get call's error, which the Go SDK returns without the connection name,
/// compared without ours (a deliberate difference, docs/compatibility.md).
pub fn comparable_errors(go: &Value, ours: &Value) -> (Value, Value) {
    let norm = |v: &Value| {
        let mut v = v.clone();
        if let Some(t) = v.get("text").and_then(Value::as_str) {
            let t = t.split_once("desc = ").map_or(t, |(_, t)| t).to_string();
            v["text"] = json!(t);
        }
        if let Some(o) = v.as_object_mut() {
            if o.get("connection").is_some_and(Value::is_null) {
                o.remove("connection");
            }
        }
        v
    };
    let (go, mut ours) = (norm(go), norm(ours));
    if go.is_object() && go.get("connection").is_none() {
        if let Some(o) = ours.as_object_mut() {
            o.remove("connection");
        }
    }
    (go, ours)
}

/// The differences between two answers (the Go plugin's first), one line each.
pub fn differences(go: &Value, ours: &Value, table: &Table) -> Vec<String> {
    let mut out = Vec::new();
    if go.get("table").is_some() {
        let gt = &go["table"];
        let ot = &ours["table"];
        let cols =
            |t: &Value| -> Vec<Value> { t["columns"].as_array().cloned().unwrap_or_default() };
        let (gc, oc) = (cols(gt), cols(ot));
        let names = |v: &[Value]| -> Vec<String> {
            v.iter()
                .map(|c| c["name"].as_str().unwrap_or("").to_string())
                .collect()
        };
        if names(&gc) != names(&oc) {
            out.push(format!(
                "column names/order: go {:?}, ours {:?}",
                names(&gc),
                names(&oc)
            ));
        }
        for g in &gc {
            match oc.iter().find(|o| o["name"] == g["name"]) {
                Some(o) if g != o => out.push(format!("column {}: go {g}, ours {o}", g["name"])),
                _ => {}
            }
        }
        for (k, gv) in gt.as_object().into_iter().flatten() {
            if k != "columns" && ot.get(k) != Some(gv) {
                out.push(format!(
                    "table {k}: go {gv}, ours {}",
                    ot.get(k).unwrap_or(&Value::Null)
                ));
            }
        }
        for k in ["mode", "protocol_version", "sdk_version"] {
            if go[k] != ours[k] {
                out.push(format!("schema {k}: go {}, ours {}", go[k], ours[k]));
            }
        }
        return out;
    }
    for k in [
        "harness_failure",
        "calls",
        "end",
        "error",
        "bad_rows",
        "count",
    ] {
        let (go_k, ours_k) = match k {
            "error" => comparable_errors(&go[k], &ours[k]),
            _ => (go[k].clone(), ours[k].clone()),
        };
        if go_k != ours_k {
            out.push(format!(
                "{k}: go {}, ours {}",
                go.get(k).unwrap_or(&Value::Null),
                ours.get(k).unwrap_or(&Value::Null)
            ));
        }
    }
    if let Some(d) = go.get("digests") {
        let gd = d.as_object().cloned().unwrap_or_default();
        let od = ours["digests"].as_object().cloned().unwrap_or_default();
        for (id, g) in &gd {
            match od.get(id) {
                None => out.push(format!("row {id}: missing from ours")),
                Some(o) if o != g => out.push(format!("row {id}: differs from the recording")),
                _ => {}
            }
        }
        for id in od.keys().filter(|id| !gd.contains_key(*id)) {
            out.push(format!("row {id}: ours only"));
        }
        return out;
    }
    out.extend(row_differences(&go["rows"], &ours["rows"], |r| {
        row_key(table, r)
    }));
    out
}

/// The differences between two answers' rows, matched by `key`: rows only
/// one side has, and every column whose value differs.
pub fn row_differences(go: &Value, ours: &Value, key: impl Fn(&Value) -> String) -> Vec<String> {
    let mut out = Vec::new();
    let index = |v: &Value| -> BTreeMap<String, Value> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|r| (key(r), r.clone()))
            .collect()
    };
    let (gr, or) = (index(go), index(ours));
    for (id, g) in &gr {
        let Some(o) = or.get(id) else {
            out.push(format!("row {id}: go only"));
            continue;
        };
        let cols: BTreeSet<&String> = g
            .as_object()
            .unwrap()
            .keys()
            .chain(o.as_object().unwrap().keys())
            .collect();
        for c in cols {
            if g.get(c) != o.get(c) {
                out.push(format!(
                    "row {id} column {c}: go {}, ours {}",
                    g.get(c).unwrap_or(&Value::Null),
                    o.get(c).unwrap_or(&Value::Null)
                ));
            }
        }
    }
    for id in or.keys().filter(|id| !gr.contains_key(*id)) {
        out.push(format!("row {id}: ours only"));
    }
    out
}

/// The recording as text: one line per row, column and digest, so that a
/// re-recording shows as a readable diff. (Rows sit at depth 4:
/// `{answers: {case: {rows: [row]}}}`.)
pub fn golden_text(v: &Value) -> String {
    fn write(v: &Value, depth: usize, key: &str, out: &mut String) {
        let compact = depth >= 5 || (depth == 4 && key == "rows");
        let pad = "  ".repeat(depth + 1);
        match v {
            Value::Object(o) if !compact && !o.is_empty() => {
                out.push_str("{\n");
                for (i, (k, x)) in o.iter().enumerate() {
                    out.push_str(&format!("{pad}{}: ", json!(k)));
                    write(x, depth + 1, k, out);
                    out.push_str(if i + 1 < o.len() { ",\n" } else { "\n" });
                }
                out.push_str(&format!("{}}}", "  ".repeat(depth)));
            }
            Value::Array(a) if !compact && !a.is_empty() => {
                out.push_str("[\n");
                for (i, x) in a.iter().enumerate() {
                    out.push_str(&pad);
                    write(x, depth + 1, key, out);
                    out.push_str(if i + 1 < a.len() { ",\n" } else { "\n" });
                }
                out.push_str(&format!("{}]", "  ".repeat(depth)));
            }
            x => out.push_str(&x.to_string()),
        }
    }
    let mut out = String::new();
    write(v, 0, "", &mut out);
    out.push('\n');
    out
}

/// Writes the Go plugin's answers to `golden` (a repository path).
pub fn write_golden(golden: &str, writer: &str, fingerprint: &str, answers: Value) {
    let v = json!({
        "_": format!("What turbot's Go AWS plugin answered; written by {writer} (scripts/conformance.sh go-plugin), checked by its default test."),
        "go_plugin": GO_PLUGIN_VERSION,
        "fleet": fingerprint,
        "answers": answers,
    });
    std::fs::write(root().join(golden), golden_text(&v))
        .unwrap_or_else(|e| panic!("write {golden}: {e}"));
}

/// The recorded answers in `golden`; fails if it is missing or was recorded
/// on another seeding.
pub fn read_golden(golden: &str, fingerprint: &str) -> serde_json::Map<String, Value> {
    let text = std::fs::read_to_string(root().join(golden))
        .unwrap_or_else(|e| panic!("{golden}: {e}; {RERECORD}"));
    let v: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{golden}: {e}; {RERECORD}"));
    assert_eq!(
        v["fleet"],
        json!(fingerprint),
        "{golden} was recorded on another seeding; {RERECORD}"
    );
    v["answers"]
        .as_object()
        .cloned()
        .unwrap_or_else(|| panic!("{golden} has no answers; {RERECORD}"))
}

/// The differences of several cases, readable (12 lines a case at most).
pub fn report(diffs: &BTreeMap<String, Vec<String>>) -> String {
    let mut s = String::new();
    for (name, d) in diffs {
        s.push_str(&format!("\n== {name} ({} differences)\n", d.len()));
        for line in d.iter().take(12) {
            let line: String = line.chars().take(600).collect();
            s.push_str(&format!("  {line}\n"));
        }
    }
    s
}

/// The live comparison: the Go plugin's schema, then `cases(columns)` (the
/// first named "schema" is answered from it), asked of both; records the Go
/// plugin's answers in `golden`, then fails on any difference.
pub fn compare_live(
    bed: &Bed,
    table: &Table,
    golden: &str,
    cases: impl Fn(&[(String, bool)]) -> Vec<Case>,
) {
    let (go, ours) = (go_plugin(), our_plugin());
    let go_schema = ask(bed, &go, table, &Case::new("schema", schema_step()));
    assert!(
        go_schema["table"].is_object(),
        "the Go plugin has no table {}: {go_schema}",
        table.name
    );
    let cases = cases(&schema_columns(&go_schema));
    let mut diffs = BTreeMap::new();
    let mut recording = serde_json::Map::new();
    for c in &cases {
        let t = std::time::Instant::now();
        let g = if c.step == schema_step() {
            go_schema.clone()
        } else {
            ask(bed, &go, table, c)
        };
        let tg = t.elapsed();
        let o = ask(bed, &ours, table, c);
        eprintln!(
            "{}: go {:.1} s, ours {:.1} s",
            c.name,
            tg.as_secs_f64(),
            (t.elapsed() - tg).as_secs_f64()
        );
        let (g, o) = (recorded(&g, table, c), recorded(&o, table, c));
        let d = differences(&g, &o, table);
        if !d.is_empty() {
            diffs.insert(c.name.clone(), d);
        }
        recording.insert(c.name.clone(), g);
    }
    write_golden(
        golden,
        &format!("the live oracle test of {}", table.name),
        &bed.fingerprint,
        Value::Object(recording),
    );
    assert!(
        diffs.is_empty(),
        "{}: the Go plugin and ours differ in {} of {} cases:{}",
        table.name,
        diffs.len(),
        cases.len(),
        report(&diffs)
    );
}

/// The default run: ours against the recording in `golden`. The cases are
/// built from the recorded schema's columns (case "schema").
pub fn compare_golden(
    bed: &Bed,
    table: &Table,
    golden: &str,
    cases: impl Fn(&[(String, bool)]) -> Vec<Case>,
) {
    let answers = read_golden(golden, &bed.fingerprint);
    let schema = answers
        .get("schema")
        .unwrap_or_else(|| panic!("{golden} has no \"schema\" answer; {RERECORD}"));
    let cases = cases(&schema_columns(schema));
    let names: BTreeSet<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    let recorded_names: BTreeSet<&str> = answers.keys().map(String::as_str).collect();
    assert_eq!(
        names, recorded_names,
        "{golden} has other cases than the test; {RERECORD}"
    );
    let mut diffs = BTreeMap::new();
    for c in &cases {
        let o = recorded(&ask(bed, &our_plugin(), table, c), table, c);
        let d = differences(&answers[&c.name], &o, table);
        if !d.is_empty() {
            diffs.insert(c.name.clone(), d);
        }
    }
    assert!(
        diffs.is_empty(),
        "{}: ours differs from the recorded Go plugin in {} of {} cases:{}",
        table.name,
        diffs.len(),
        cases.len(),
        report(&diffs)
    );
}
