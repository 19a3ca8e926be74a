//! The plugin as Steampipe sees it: started, configured, queried, reattached
//! and killed through HashiCorp go-plugin's own client (sphost, in
//! `tests/host/`), against the SDK test plugin in `examples/`.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

const COOKIE: (&str, &str) = (
    "MANTIX_PLUGIN_MAGIC_COOKIE",
    "really-complex-permanent-string-value",
);

fn i(v: i64) -> Value {
    json!({"int64Value": v.to_string()})
}
fn s(v: &str) -> Value {
    json!({"stringValue": v})
}
fn d(v: f64) -> Value {
    json!({"doubleValue": v})
}

#[test]
fn handshake_line_is_the_first_stdout_line_and_stdout_stays_silent() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(sdk_test_plugin())
        .env(COOKIE.0, COOKIE.1)
        .env("PLUGIN_PROTOCOL_VERSIONS", "0")
        .env("PLUGIN_MIN_PORT", "10000")
        .env("PLUGIN_MAX_PORT", "25000")
        .env("PLUGIN_UNIX_SOCKET_DIR", dir.path())
        .env("STEAMPIPE_LOG_LEVEL", "TRACE")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert!(first.ends_with('\n'));
    let line = first.trim_end_matches('\n');
    let parts: Vec<&str> = line.split('|').collect();
    assert_eq!(parts.len(), 6, "{line}");
    assert_eq!(&parts[..3], ["1", "0", "unix"]);
    assert_eq!(parts[4], "grpc");
    assert_eq!(parts[5], "", "no server cert without AutoMTLS");
    let socket = std::path::Path::new(parts[3]);
    assert_eq!(
        socket.parent().unwrap(),
        dir.path(),
        "PLUGIN_UNIX_SOCKET_DIR honoured"
    );
    let name = socket.file_name().unwrap().to_str().unwrap();
    assert!(
        name.starts_with("plugin") && name[6..].chars().all(|c| c.is_ascii_digit()),
        "{name}"
    );
    {
        use std::os::unix::fs::FileTypeExt;
        assert!(std::fs::metadata(socket).unwrap().file_type().is_socket());
    }
    // SIGINT is ignored, as go-plugin servers do.
    unsafe_kill(child.id(), "INT");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "SIGINT stopped the plugin"
    );
    // SIGTERM stops it; nothing else ever reached stdout.
    unsafe_kill(child.id(), "TERM");
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "", "stdout after the handshake line");
    child.wait().unwrap();
    assert!(!socket.exists(), "socket removed on exit");
}

fn unsafe_kill(pid: u32, sig: &str) {
    let st = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn without_the_magic_cookie_the_binary_refuses_to_run() {
    for bin in [sdk_test_plugin(), target_dir().join("steampipe-plugin-aws")] {
        let out = Command::new(&bin).env_remove(COOKIE.0).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", bin.display());
        assert!(
            out.stdout.is_empty(),
            "stdout: {:?}",
            String::from_utf8_lossy(&out.stdout)
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("This binary is a plugin"), "{err}");
        // A wrong cookie value is refused the same way.
        let out = Command::new(&bin).env(COOKIE.0, "wrong").output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn the_init_sequence_succeeds_as_the_plugin_manager_runs_it() {
    let ev = run(&scenario(
        vec![connection("c1", "rows = 3\n"), connection("c2", "")],
        vec![],
    ));
    let started = one(&ev, "started", None);
    assert_eq!(started["network"], "unix");
    assert_eq!(
        one(&ev, "ping", None)["ok"],
        true,
        "health service: plugin SERVING"
    );
    let init: Vec<&Value> = events(&ev, "init", None);
    let order: Vec<&str> = init.iter().map(|e| e["rpc"].as_str().unwrap()).collect();
    assert_eq!(
        order,
        [
            "GetSupportedOperations",
            "SetAllConnectionConfigs",
            "SetCacheOptions",
            "SetRateLimiters",
            "GetSchema"
        ]
    );
    for e in &init {
        assert!(e.get("error").is_none() || e["error"].is_null(), "{e}");
    }
    let ops = &init[0]["response"];
    for f in [
        "query_cache",
        "multiple_connections",
        "message_stream",
        "set_cache_options",
        "rate_limiters",
    ] {
        assert_eq!(ops[f], true, "{f}");
    }
    assert_eq!(init[1]["response"]["failed_connections"], json!({}));
}

#[test]
fn get_schema_reports_every_field_as_the_go_sdk_does() {
    let ev = run(&scenario(
        vec![connection("c1", "")],
        vec![json!({"op": "get_schema", "connection": "c1"})],
    ));
    let resp = &one(&ev, "schema", Some(0))["response"];
    assert_eq!(resp["rate_limiters"], json!([]));
    let schema = &resp["schema"];
    assert_eq!(schema["protocol_version"], "20220201");
    assert_eq!(schema["mode"], "static");
    assert_eq!(schema["sdk_version"], env!("CARGO_PKG_VERSION"));
    let tables = schema["schema"].as_object().unwrap();
    let mut names: Vec<&String> = tables.keys().collect();
    names.sort();
    assert_eq!(
        names,
        [
            "test_fail",
            "test_panic",
            "test_required",
            "test_stream",
            "test_types"
        ]
    );
    let t = &tables["test_types"];
    assert_eq!(
        t["description"],
        "A column of every type, with NULLs in row 3."
    );
    let cols: Vec<(&str, &str)> = t["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["type"].as_str().unwrap()))
        .collect();
    assert_eq!(
        cols,
        [
            ("id", "INT"),
            ("name", "STRING"),
            ("flag", "BOOL"),
            ("score", "DOUBLE"),
            ("doc", "JSON"),
            ("created", "TIMESTAMP"),
            ("ip", "IPADDR"),
            ("net", "CIDR"),
            ("addr", "INET"),
            ("path", "LTREE"),
            ("label", "STRING"),
            ("detail", "STRING"),
            ("sp_connection_name", "STRING"),
            ("sp_ctx", "JSON"),
            ("_ctx", "JSON"),
        ]
    );
    let detail = &t["columns"][11];
    assert_eq!(detail["hydrate"], "detail");
    assert_eq!(detail["description"], "From the hydrate call `detail`.");
    assert_eq!(detail["sort_order"], "None");
    assert!(detail["default"].is_null());
    assert_eq!(
        t["columns"][12]["description"],
        "Steampipe connection name."
    );
    // Key columns only in the two non-deprecated list fields.
    for deprecated in [
        "getCallKeyColumns",
        "listCallKeyColumns",
        "listCallOptionalKeyColumns",
    ] {
        assert!(
            t[deprecated].is_null(),
            "{deprecated} must be unset: {}",
            t[deprecated]
        );
    }
    assert_eq!(
        t["getCallKeyColumnList"],
        json!([{"name": "id", "operators": ["="], "require": "required", "cache_match": "subset"}])
    );
    assert_eq!(
        t["listCallKeyColumnList"],
        json!([
            {"name": "name", "operators": ["=", "is null", "is not null", "~~"], "require": "optional", "cache_match": "subset"},
            {"name": "flag", "operators": ["="], "require": "optional", "cache_match": "subset"},
            {"name": "score", "operators": ["=", "<", "<=", ">", ">="], "require": "optional", "cache_match": "subset"},
        ])
    );
    assert_eq!(tables["test_stream"]["getCallKeyColumnList"], json!([]));
    assert_eq!(
        tables["test_required"]["listCallKeyColumnList"][0]["require"],
        "required"
    );
}

const ALL: &[&str] = &[
    "id",
    "name",
    "flag",
    "score",
    "doc",
    "created",
    "ip",
    "net",
    "addr",
    "path",
    "label",
    "detail",
    "sp_connection_name",
    "sp_ctx",
    "_ctx",
];

#[test]
fn a_scan_returns_every_type_and_nulls() {
    let ev = run(&scenario(
        vec![connection("c1", "label = \"L\"\nrows = 4\n")],
        vec![
            json!({"op": "execute", "request": execute("test_types", "c1", ALL, json!({}), None)}),
        ],
    ));
    let end = one(&ev, "execute_end", Some(0));
    assert_eq!(end["end"], "eof", "{end}");
    assert!(events(&ev, "bad_row", None).is_empty());
    let rows = rows(&ev, 0);
    assert_eq!(rows.len(), 4);
    let r1 = &rows[0];
    assert_eq!(r1["connection"], "c1");
    let v = &r1["values"];
    let k = &r1["kinds"];
    let expect = [
        ("id", json!(1), "int_value"),
        ("name", json!("name-1"), "string_value"),
        ("flag", json!(false), "bool_value"),
        ("score", json!(1.5), "double_value"),
        (
            "doc",
            json!({"id": 1, "nested": {"list": [1, 2, 3], "none": null}, "text": "line one\nline \"two\""}),
            "json_value",
        ),
        (
            "created",
            json!("2024-01-02T00:00:00.001Z"),
            "timestamp_value",
        ),
        ("ip", json!("10.0.0.1"), "ip_addr_value"),
        ("net", json!("10.1.0.0/16"), "cidr_range_value"),
        ("addr", json!("fd00::1/64"), "cidr_range_value"),
        ("path", json!("top.sub1"), "ltree_value"),
        ("label", json!("L"), "string_value"),
        ("detail", json!("detail-1"), "string_value"),
        ("sp_connection_name", json!("c1"), "string_value"),
        (
            "sp_ctx",
            json!({"connection_name": "c1", "steampipe": {"sdk_version": env!("CARGO_PKG_VERSION")}}),
            "json_value",
        ),
        (
            "_ctx",
            json!({"connection_name": "c1", "steampipe": {"sdk_version": env!("CARGO_PKG_VERSION")}}),
            "json_value",
        ),
    ];
    for (col, val, kind) in expect {
        assert_eq!(v[col], val, "value of {col}");
        assert_eq!(k[col], kind, "kind of {col}");
    }
    // Row 3 carries NULLs as null_value, including an empty inet string.
    let r3 = rows.iter().find(|r| r["values"]["id"] == 3).unwrap();
    for col in [
        "name", "flag", "score", "doc", "created", "ip", "net", "addr", "path",
    ] {
        assert_eq!(r3["kinds"][col], "null_value", "{col}");
        assert!(r3["values"][col].is_null());
    }
    assert_eq!(r3["values"]["id"], 3);
}

#[test]
fn quals_equal_in_list_and_is_null_select_exactly() {
    let name_eq = execute(
        "test_types",
        "c1",
        &["id", "name"],
        qual("name", "=", Some(s("name-2"))),
        None,
    );
    let id_in = execute(
        "test_types",
        "c1",
        &["id"],
        qual(
            "id",
            "=",
            Some(json!({"listValue": {"values": [i(4), i(2), i(99)]}})),
        ),
        None,
    );
    let name_null = execute(
        "test_types",
        "c1",
        &["id", "name"],
        qual("name", "is null", None),
        None,
    );
    let id_eq = execute(
        "test_types",
        "c1",
        &["id", "score"],
        qual("id", "=", Some(i(5))),
        None,
    );
    let not_flag = execute(
        "test_types",
        "c1",
        &["id", "flag"],
        qual("flag", "<>", Some(json!({"boolValue": true}))),
        None,
    );
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut sc = scenario(
        vec![connection("c1", "rows = 5\n")],
        vec![
            json!({"op": "execute", "request": name_eq}),
            json!({"op": "execute", "request": id_in}),
            json!({"op": "execute", "request": name_null}),
            json!({"op": "execute", "request": id_eq}),
            json!({"op": "execute", "request": not_flag}),
        ],
    );
    sc["env"] = json!({"STEAMPIPE_LOG_LEVEL": "INFO"});
    sc["stderr_file"] = json!(log.path());
    let ev = run(&sc);
    assert_eq!(column(&ev, 0, "id"), [json!(2)]);
    let mut ids: Vec<i64> = column(&ev, 1, "id")
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        [2, 4],
        "IN list: one Get per value, the missing id gives no row"
    );
    assert_eq!(column(&ev, 2, "id"), [json!(3)]);
    assert_eq!(column(&ev, 2, "name"), [Value::Null]);
    assert_eq!(column(&ev, 3, "score"), [json!(7.5)]);
    // `where not flag` (flag <> true) matches the `=` key column as flag = false.
    let mut odd: Vec<i64> = column(&ev, 4, "id")
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    odd.sort();
    assert_eq!(odd, [1, 5], "row 3 has a NULL flag");

    let log = std::fs::read_to_string(log.path()).unwrap();
    assert!(
        log.contains("test_types list quals=[name = Some(String(\"name-2\"))]"),
        "{log}"
    );
    for id in [4, 2, 99] {
        assert!(
            log.contains(&format!("test_types get id={id}")),
            "Get per IN value: {log}"
        );
    }
    assert!(log.contains("test_types get id=5"));
    assert!(
        log.contains("test_types list quals=[flag = Some(Bool(false))]"),
        "{log}"
    );
}

#[test]
fn a_pushed_down_limit_counts_only_rows_that_pass_the_quals() {
    // score > 3 keeps ids 4 and 5 (3.0 is not > 3, row 3 is NULL). A plugin
    // that limited before filtering would send ids 1 and 2, which Postgres
    // would then drop, losing rows.
    let limited = execute(
        "test_types",
        "c1",
        &["id", "score"],
        qual("score", ">", Some(d(3.0))),
        Some(2),
    );
    let limit_one = execute("test_types", "c1", &["id"], json!({}), Some(1));
    // QueryContext.limit is the raw planner limit, not a pushdown: ignored.
    let mut raw = execute("test_types", "c1", &["id"], json!({}), None);
    raw["queryContext"]["limit"] = json!({"value": "1"});
    let ev = run(&scenario(
        vec![connection("c1", "rows = 10\n")],
        vec![
            json!({"op": "execute", "request": limited}),
            json!({"op": "execute", "request": limit_one}),
            json!({"op": "execute", "request": raw}),
        ],
    ));
    assert_eq!(column(&ev, 0, "id"), [json!(4), json!(5)]);
    assert_eq!(one(&ev, "execute_end", Some(0))["end"], "eof");
    assert_eq!(column(&ev, 1, "id"), [json!(1)]);
    assert_eq!(rows(&ev, 2).len(), 10);
}

#[test]
fn count_star_with_no_columns_still_gets_non_empty_rows() {
    let ev = run(&scenario(
        vec![connection("c1", "rows = 6\n")],
        vec![
            json!({"op": "execute", "request": execute("test_types", "c1", &[], json!({}), None)}),
        ],
    ));
    let rows = rows(&ev, 0);
    assert_eq!(rows.len(), 6);
    for r in &rows {
        let cols = r["values"].as_object().unwrap();
        assert!(
            cols.contains_key("id"),
            "first non-hydrate column chosen: {r}"
        );
        assert!(!cols.contains_key("detail"), "no hydrate for count(*)");
        assert_eq!(r["values"]["sp_connection_name"], "c1");
    }
    assert!(events(&ev, "bad_row", None).is_empty());
}

#[test]
fn an_aggregator_scans_each_child_and_tags_rows_with_it() {
    let mut req = execute("test_types", "all", &["id", "label"], json!({}), None);
    req["executeConnectionData"] = json!({"c1": {"cacheEnabled": true}, "c2": {"cacheEnabled": true, "limit": {"value": "3"}}});
    let ev = run(&scenario(
        vec![
            aggregator("all", &["c1", "c2"]),
            connection("c1", "label = \"one\"\nrows = 2\n"),
            connection("c2", "label = \"two\"\nrows = 5\n"),
        ],
        vec![
            json!({"op": "get_schema", "connection": "all"}),
            json!({"op": "execute", "request": req}),
        ],
    ));
    assert!(one(&ev, "schema", Some(0))["response"]["schema"]["schema"]["test_types"].is_object());
    let rows = rows(&ev, 1);
    assert_eq!(
        rows.len(),
        2 + 3,
        "c1 in full, c2 cut at its own limit of 3"
    );
    for r in &rows {
        let conn = r["connection"].as_str().unwrap();
        let want = if conn == "c1" { "one" } else { "two" };
        assert_eq!(r["values"]["label"], want, "{r}");
        assert_eq!(r["values"]["sp_connection_name"], conn);
    }
    assert_eq!(rows.iter().filter(|r| r["connection"] == "c1").count(), 2);
}

#[test]
fn failing_scans_report_status_and_text_as_the_sdk_does() {
    let ev = run(&scenario(
        vec![connection("c1", "")],
        vec![
            json!({"op": "execute", "request": execute("test_fail", "c1", &["n"], json!({}), None)}),
            json!({"op": "execute", "request": execute("test_required", "c1", &["region"], json!({}), None)}),
            json!({"op": "execute", "request": execute("nope", "c1", &["x"], json!({}), None)}),
            json!({"op": "execute", "request": execute("test_panic", "c1", &["n"], json!({}), None)}),
            json!({"op": "execute", "request": execute("test_required", "c1", &["region"], qual("region", "=", Some(s("eu-west-1"))), None)}),
        ],
    ));
    let fail = one(&ev, "execute_end", Some(0));
    assert_eq!(fail["end"], "error");
    assert_eq!(fail["code"], "Unknown");
    assert_eq!(
        fail["rows"], 2,
        "rows fetched before the error still stream"
    );
    assert_eq!(
        fail["message"],
        "c1: simulated failure after 2 rows\nsecond line of the message"
    );
    let missing = one(&ev, "execute_end", Some(1));
    assert_eq!(missing["code"], "Internal");
    assert_eq!(
        missing["message"],
        "c1: 'List' call for table 'test_required' is missing 1 required qual: column:'region' operator: ="
    );
    let unknown = one(&ev, "execute_end", Some(2));
    assert_eq!(unknown["code"], "Unknown");
    assert_eq!(
        unknown["message"],
        "c1: plugin sdktest does not provide table nope"
    );
    let panicked = one(&ev, "execute_end", Some(3));
    assert_eq!(panicked["code"], "Unknown");
    assert!(
        panicked["message"]
            .as_str()
            .unwrap()
            .contains("deliberate panic in test_panic"),
        "{panicked}"
    );
    // The process kept serving after the panic.
    assert_eq!(column(&ev, 4, "region"), [json!("eu-west-1")]);
}

#[test]
fn cancelling_a_scan_mid_stream_stops_its_producer() {
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut sc = scenario(
        vec![connection("c1", "")],
        vec![json!({
            "op": "execute",
            "request": execute("test_stream", "c1", &["n"], json!({}), None),
            "cancel_after_rows": 50,
            "hold_ms": 700,
            "quiet": true,
        })],
    );
    sc["stderr_file"] = json!(log.path());
    let ev = run(&sc);
    let end = one(&ev, "execute_end", Some(0));
    assert_eq!(end["end"], "cancelled", "{end}");
    assert_eq!(end["rows"], 50);
    let log = std::fs::read_to_string(log.path()).unwrap();
    assert!(
        log.contains("[WARN]  test_stream producer started"),
        "{log}"
    );
    let stopped = log
        .lines()
        .find_map(|l| l.strip_prefix("[WARN]  test_stream producer stopped after "))
        .unwrap_or_else(|| {
            panic!("the producer was not stopped within 700 ms of the cancel: {log}")
        });
    let n: u64 = stopped.trim_end_matches(" items").parse().unwrap();
    // 1 ms per item: had it run on for the 700 ms hold it would be far past 500.
    assert!((50..500).contains(&n), "producer made {n} items");
}

#[test]
fn twenty_concurrent_scans_over_four_reattached_clients_all_succeed() {
    let req = execute(
        "test_types",
        "c1",
        &["id", "name", "doc", "detail"],
        json!({}),
        None,
    );
    let ev = run(&scenario(
        vec![connection("c1", "rows = 40\n")],
        vec![
            json!({"op": "reattach", "count": 3}),
            json!({"op": "parallel", "scans": 20, "clients": [0, 1, 2, 3], "request": req}),
        ],
    ));
    assert_eq!(one(&ev, "reattached", Some(0))["clients"], json!([1, 2, 3]));
    let scans = events(&ev, "parallel_scan", Some(1));
    assert_eq!(scans.len(), 20);
    let digest = scans[0]["row_digest"].clone();
    for sc in &scans {
        assert_eq!(sc["end"], "eof", "{sc}");
        assert_eq!(sc["rows"], 40, "{sc}");
        assert_eq!(sc["row_digest"], digest);
    }
    let clients: std::collections::BTreeSet<i64> = scans
        .iter()
        .map(|s| s["client"].as_i64().unwrap())
        .collect();
    assert_eq!(clients.len(), 4);
}

#[test]
fn every_sdk_client_opens_the_stdio_stream_and_is_served() {
    // go-plugin >= 1.5 (Steampipe's is 1.7.0) opens plugin.GRPCStdio/StreamStdio
    // from every client it connects: the plugin manager's and each FDW
    // reattach. The plugin logs each one at DEBUG.
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut sc = scenario(
        vec![connection("c1", "rows = 1\n")],
        vec![
            json!({"op": "reattach", "count": 2}),
            json!({"op": "execute", "client": 2, "request": execute("test_types", "c1", &["id"], json!({}), None)}),
            json!({"op": "sleep", "ms": 300}),
        ],
    );
    sc["env"] = json!({"STEAMPIPE_LOG_LEVEL": "DEBUG"});
    sc["stderr_file"] = json!(log.path());
    let ev = run(&sc);
    assert_eq!(one(&ev, "reattached", Some(0))["clients"], json!([1, 2]));
    assert_eq!(one(&ev, "execute_end", Some(1))["rows"], 1);
    let text = std::fs::read_to_string(log.path()).unwrap();
    let opened = text.matches("stdio stream opened by a client").count();
    assert_eq!(
        opened, 3,
        "one stdio stream per client (1 + 2 reattached):\n{text}"
    );
}

#[test]
fn shutdown_exits_well_inside_the_grace_period_and_removes_the_socket() {
    let ev = run(&scenario(
        vec![connection("c1", "")],
        vec![
            // An open scan stream must not hold the exit up.
            json!({"op": "reattach", "count": 1}),
            json!({"op": "kill"}),
        ],
    ));
    let killed = one(&ev, "killed", Some(1));
    assert_eq!(killed["process_gone"], true);
    assert_eq!(killed["socket_gone"], true);
    assert_eq!(killed["forced"], false, "{killed}");
    assert!(killed["ms"].as_f64().unwrap() < 2000.0, "{killed}");
}

#[test]
fn a_bad_connection_config_is_named_with_its_attribute() {
    let ev = run(&scenario(
        vec![
            connection("good", "rows = 2\n"),
            connection("broken", "rows = \"abc\"\n"),
        ],
        vec![
            json!({"op": "rpc", "method": "UpdateConnectionConfigs", "request": {
                "added": [connection("typo", "rows = 1\nrowz = 2\n"), connection("syntax", "rows = [\n")],
                "changed": [connection("good", "rows = 1\n")],
            }}),
            json!({"op": "execute", "request": execute("test_types", "good", &["id"], json!({}), None)}),
            json!({"op": "execute", "request": execute("test_types", "typo", &["id"], json!({}), None)}),
        ],
    ));
    let set_all = events(&ev, "init", None)
        .into_iter()
        .find(|e| e["rpc"] == "SetAllConnectionConfigs")
        .unwrap();
    assert_eq!(set_all["code"], "Unknown", "{set_all}");
    assert_eq!(
        set_all["message"],
        "1 connection failed: connection 'broken': attribute 'rows': expected a number, got a string"
    );
    // What the plugin manager's SDK client returns: the bare status message.
    assert_eq!(set_all["sdk_error"], set_all["message"], "{set_all}");
    let update = &one(&ev, "rpc", Some(0))["response"]["failed_connections"];
    assert_eq!(
        update["typo"],
        "connection 'typo': attribute 'rowz': unsupported argument; the supported arguments are: label, rows, tags"
    );
    assert!(
        update["syntax"]
            .as_str()
            .unwrap()
            .starts_with("connection 'syntax': invalid HCL"),
        "{update}"
    );
    assert!(update.get("good").is_none());
    assert_eq!(
        column(&ev, 1, "id"),
        [json!(1)],
        "the changed config took effect"
    );
    let typo = one(&ev, "execute_end", Some(2));
    assert_eq!(
        typo["message"],
        "typo: connection 'typo' is not configured in this plugin"
    );
}

#[test]
fn cache_rate_limiter_and_message_stream_calls_are_answered() {
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut sc = scenario(
        vec![connection("c1", "")],
        vec![
            json!({"op": "rpc", "method": "SetRateLimiters", "request": {"definitions": [
                {"name": "user_limit", "fillRate": 2.5, "bucketSize": "10", "scope": ["connection"], "where": "connection = 'c1'"}
            ]}}),
            json!({"op": "rpc", "method": "GetRateLimiters", "request": {}}),
            json!({"op": "rpc", "method": "SetCacheOptions", "request": {"enabled": false, "ttl": "60", "maxSizeMb": "10"}}),
            json!({"op": "rpc", "method": "SetConnectionCacheOptions", "request": {"clearCacheForConnection": "c1"}}),
            json!({"op": "message_stream", "timeout_ms": 1000}),
        ],
    );
    sc["env"] = json!({"STEAMPIPE_LOG_LEVEL": "DEBUG"});
    sc["stderr_file"] = json!(log.path());
    let ev = run(&sc);
    for step in 0..4 {
        let e = one(&ev, "rpc", Some(step));
        assert!(e["error"].is_null() || e.get("error").is_none(), "{e}");
    }
    let limiters = &one(&ev, "rpc", Some(1))["response"]["definitions"];
    assert_eq!(
        limiters[0]["name"], "sdktest_list",
        "plugin-defined limiters, as the Go SDK answers"
    );
    let stream = one(&ev, "message_stream", Some(4));
    assert_eq!(stream["end"], "eof");
    assert_eq!(stream["messages"], json!([]));
    let log = std::fs::read_to_string(log.path()).unwrap();
    assert!(log.contains("[DEBUG] rate limiters set count=1"), "{log}");
    assert!(
        log.contains("[DEBUG] cache options set enabled=false ttl=60"),
        "{log}"
    );
}

#[test]
fn logs_are_hclog_lines_on_stderr_with_newlines_escaped_and_warn_by_default() {
    let run_with = |level: Option<&str>| {
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut sc = scenario(
            vec![connection("c1", "")],
            vec![
                json!({"op": "execute", "request": execute("test_fail", "c1", &["n"], json!({}), None)}),
            ],
        );
        if let Some(l) = level {
            sc["env"] = json!({"STEAMPIPE_LOG_LEVEL": l});
        }
        sc["stderr_file"] = json!(log.path());
        run(&sc);
        std::fs::read_to_string(log.path()).unwrap()
    };
    let trace = run_with(Some("TRACE"));
    assert!(trace.contains("[DEBUG] Execute"), "{trace}");
    for line in trace.lines() {
        assert!(
            ["[TRACE]", "[DEBUG]", "[INFO] ", "[WARN] ", "[ERROR]"]
                .iter()
                .any(|p| line.starts_with(p)),
            "not an hclog line: {line:?}"
        );
    }
    assert!(
        trace.contains("simulated failure after 2 rows\\nsecond line of the message"),
        "newline escaped inside one line: {trace}"
    );
    let default = run_with(None);
    assert!(
        !default.contains("[DEBUG]") && !default.contains("[INFO]"),
        "{default}"
    );
    assert!(default.contains("[WARN]  scan failed"), "{default}");
}

#[test]
fn the_aws_plugin_binary_answers_the_init_sequence() {
    let mut sc = scenario(
        vec![json!({
            "connection": "aws",
            "plugin": "hub.steampipe.io/plugins/turbot/aws@latest",
            "pluginShortName": "aws",
            "config": "regions = [\"us-east-1\"]\n",
            "childConnections": [],
            "pluginInstance": "hub.steampipe.io/plugins/turbot/aws@latest",
        })],
        vec![json!({"op": "kill"})],
    );
    sc["plugin"] = json!(target_dir().join("steampipe-plugin-aws"));
    let t = Instant::now();
    let ev = run(&sc);
    for e in events(&ev, "init", None) {
        assert!(e.get("error").is_none() || e["error"].is_null(), "{e}");
    }
    let schema = events(&ev, "init", None)
        .into_iter()
        .find(|e| e["rpc"] == "GetSchema")
        .unwrap();
    assert_eq!(schema["response"]["schema"]["mode"], "static");
    assert_eq!(one(&ev, "killed", Some(0))["forced"], false);
    assert!(t.elapsed() < Duration::from_secs(30));
}

// ---- go-plugin AutoMTLS (PLUGIN_CLIENT_CERT) ----

/// A one-time client certificate as go-plugin's AutoMTLS client makes one:
/// self-signed ECDSA P-521, a CA, for `localhost`. Returns (PEM, DER, PKCS#8 key).
fn go_plugin_style_client_cert() -> (String, Vec<u8>, Vec<u8>) {
    use base64::Engine as _;
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512).unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "HashiCorp");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::KeyAgreement,
        KeyUsagePurpose::KeyCertSign,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ClientAuth,
        ExtendedKeyUsagePurpose::ServerAuth,
    ];
    let der = params.self_signed(&key).unwrap().der().to_vec();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(chunk).unwrap());
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    (pem, der, key.serialize_der())
}

/// The SDK test plugin started by hand as a go-plugin host would, with
/// `PLUGIN_CLIENT_CERT`; its stderr goes to `stderr`.
fn spawn_with_client_cert(
    cert: &str,
    socket_dir: &std::path::Path,
    stderr: &std::path::Path,
) -> std::process::Child {
    Command::new(sdk_test_plugin())
        .env(COOKIE.0, COOKIE.1)
        .env("PLUGIN_PROTOCOL_VERSIONS", "0")
        .env("PLUGIN_UNIX_SOCKET_DIR", socket_dir)
        .env("PLUGIN_CLIENT_CERT", cert)
        .env("STEAMPIPE_LOG_LEVEL", "DEBUG")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(stderr).unwrap())
        .spawn()
        .unwrap()
}

/// Reads the handshake line; returns (socket path, server certificate DER).
fn read_tls_handshake(child: &mut std::process::Child) -> (String, Vec<u8>) {
    use base64::Engine as _;
    let mut first = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut first)
        .unwrap();
    let line = first.trim_end_matches('\n');
    let parts: Vec<&str> = line.split('|').collect();
    assert_eq!(parts.len(), 6, "{line}");
    assert_eq!(&parts[..3], ["1", "0", "unix"], "{line}");
    assert_eq!(parts[4], "grpc", "{line}");
    // go-plugin only reads field 6 as a certificate when it is over 50 chars.
    assert!(parts[5].len() > 50, "server cert in field 6: {line}");
    assert!(!parts[5].contains('='), "RawStdEncoding has no padding");
    let der = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(parts[5])
        .unwrap_or_else(|e| panic!("field 6 is not unpadded base64: {e}"));
    (parts[3].to_string(), der)
}

#[test]
fn auto_mtls_is_served_when_the_host_asks_for_it() {
    let mut sc = scenario(
        vec![connection("c1", "rows = 3\n")],
        vec![
            json!({"op": "get_schema", "connection": "c1"}),
            json!({"op": "execute", "request": execute("test_types", "c1", &["id", "name"], json!({}), None)}),
            json!({"op": "kill"}),
        ],
    );
    sc["auto_mtls"] = json!(true);
    let ev = run(&sc);
    assert_eq!(
        one(&ev, "started", None)["tls"],
        true,
        "go-plugin dials over TLS with the plugin's certificate"
    );
    assert_eq!(one(&ev, "ping", None)["ok"], true);
    let init = events(&ev, "init", None);
    assert_eq!(init.len(), 5);
    for e in &init {
        assert!(e.get("error").is_none() || e["error"].is_null(), "{e}");
    }
    let schema = &one(&ev, "schema", Some(0))["response"]["schema"]["schema"];
    assert!(schema.get("test_types").is_some(), "{schema}");
    let end = one(&ev, "execute_end", Some(1));
    assert_eq!(end["end"], "eof", "{end}");
    assert_eq!(column(&ev, 1, "id"), [json!(1), json!(2), json!(3)]);
    let killed = one(&ev, "killed", Some(2));
    assert_eq!(killed["forced"], false, "{killed}");
    assert_eq!(killed["process_gone"], true, "{killed}");
    assert_eq!(killed["socket_gone"], true, "{killed}");
}

#[test]
fn without_auto_mtls_the_host_dials_plaintext() {
    let ev = run(&scenario(vec![connection("c1", "")], vec![]));
    assert_eq!(one(&ev, "started", None)["tls"], false);
}

#[test]
fn an_auto_mtls_socket_refuses_a_plaintext_grpc_client() {
    let (pem, _, _) = go_plugin_style_client_cert();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr.log");
    let mut child = spawn_with_client_cert(&pem, dir.path(), &log);
    let (socket, der) = read_tls_handshake(&mut child);
    // Field 6 is a DER certificate that parses.
    assert_eq!(der[0], 0x30, "a DER SEQUENCE");
    rustls::RootCertStore::empty()
        .add(rustls::pki_types::CertificateDer::from(der))
        .expect("field 6 is an X.509 certificate");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let result = rt.block_on(async {
        use steampipe_plugin_aws::pb::steampipe as pb;
        let channel = tonic::transport::Endpoint::from_shared(format!("unix:{socket}"))
            .unwrap()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(5))
            .connect()
            .await
            .map_err(|e| format!("connect: {e}"))?;
        pb::wrapper_plugin_client::WrapperPluginClient::new(channel)
            .get_supported_operations(pb::GetSupportedOperationsRequest {})
            .await
            .map_err(|e| format!("call: {e}"))
    });
    assert!(
        result.is_err(),
        "a plaintext (h2c) call succeeded on the TLS socket: {result:?}"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the plugin died after a bad client"
    );
    unsafe_kill(child.id(), "TERM");
    child.wait().unwrap();
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("TLS handshake with a client failed"), "{log}");
    assert!(
        !log.contains("PRIVATE KEY") && !log.contains("BEGIN CERTIFICATE"),
        "{log}"
    );
}

#[test]
fn auto_mtls_accepts_only_the_client_certificate_from_the_environment() {
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Trusts exactly one server certificate (webpki would refuse it as an
    /// end entity, since it is a CA, which is what go-plugin makes).
    #[derive(Debug)]
    struct PinnedServer(Vec<u8>, rustls::crypto::WebPkiSupportedAlgorithms);
    impl rustls::client::danger::ServerCertVerifier for PinnedServer {
        fn verify_server_cert(
            &self,
            end_entity: &rustls::pki_types::CertificateDer<'_>,
            _: &[rustls::pki_types::CertificateDer<'_>],
            _: &rustls::pki_types::ServerName<'_>,
            _: &[u8],
            _: rustls::pki_types::UnixTime,
        ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
            assert_eq!(end_entity.as_ref(), &self.0[..], "the announced cert");
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            m: &[u8],
            c: &rustls::pki_types::CertificateDer<'_>,
            d: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(m, c, d, &self.1)
        }
        fn verify_tls13_signature(
            &self,
            m: &[u8],
            c: &rustls::pki_types::CertificateDer<'_>,
            d: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(m, c, d, &self.1)
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.1.supported_schemes()
        }
    }

    let (pem, cert, key) = go_plugin_style_client_cert();
    let (_, other_cert, other_key) = go_plugin_style_client_cert();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr.log");
    let mut child = spawn_with_client_cert(&pem, dir.path(), &log);
    let (socket, server_der) = read_tls_handshake(&mut child);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Connects presenting (cert, key), sends the HTTP/2 preface and reads the
    // first frame header. Ok(ALPN, frame type) if the server talked back.
    let attempt = |cert: Vec<u8>, key: Vec<u8>| {
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let algs = provider.signature_verification_algorithms;
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedServer(server_der.clone(), algs)))
            .with_client_auth_cert(
                vec![cert.into()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.into()),
            )
            .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec()];
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let socket = socket.clone();
        rt.block_on(async move {
            let stream = tokio::net::UnixStream::connect(&socket).await.unwrap();
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let io = async {
                let mut tls = connector.connect(name, stream).await?;
                let alpn = tls.get_ref().1.alpn_protocol().map(|p| p.to_vec());
                tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
                    .await?;
                tls.flush().await?;
                let mut header = [0u8; 9];
                tls.read_exact(&mut header).await?;
                Ok::<_, std::io::Error>((alpn, header[3]))
            };
            tokio::time::timeout(Duration::from_secs(10), io)
                .await
                .expect("TLS exchange timed out")
        })
    };

    let good = attempt(cert, key).expect("the expected client certificate is accepted");
    assert_eq!(good.0.as_deref(), Some(&b"h2"[..]), "ALPN h2");
    assert_eq!(good.1, 0x4, "the server's HTTP/2 SETTINGS frame");
    let bad = attempt(other_cert, other_key);
    assert!(bad.is_err(), "another client certificate was accepted");

    unsafe_kill(child.id(), "TERM");
    child.wait().unwrap();
    let log = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        log.matches("TLS handshake with a client failed").count(),
        1,
        "only the other certificate was refused: {log}"
    );
    assert!(
        log.contains("invalid peer certificate: UnknownIssuer"),
        "{log}"
    );
}

#[test]
fn a_bad_plugin_client_cert_fails_startup() {
    for bad in [
        "not a certificate",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(sdk_test_plugin())
            .env(COOKIE.0, COOKIE.1)
            .env("PLUGIN_PROTOCOL_VERSIONS", "0")
            .env("PLUGIN_UNIX_SOCKET_DIR", dir.path())
            .env("PLUGIN_CLIENT_CERT", bad)
            .stderr(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let first = stdout.lines().next().unwrap_or("");
        assert!(
            first.starts_with("Plugin startup failed: ") && first.contains("PLUGIN_CLIENT_CERT"),
            "{stdout:?}"
        );
        assert_eq!(stdout.lines().count(), 1, "{stdout:?}");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "no socket left behind"
        );
    }
}

#[test]
fn aggregator_fan_out_is_bounded_by_steampipe_max_concurrent_connections() {
    let changes = |bound: Option<&str>| -> usize {
        let mut req = execute("test_stream", "all", &["n"], json!({}), None);
        req["executeConnectionData"] = json!({
            "c1": {"limit": {"value": "30"}},
            "c2": {"limit": {"value": "30"}},
        });
        let mut sc = scenario(
            vec![
                aggregator("all", &["c1", "c2"]),
                connection("c1", ""),
                connection("c2", ""),
            ],
            vec![json!({"op": "execute", "request": req})],
        );
        if let Some(b) = bound {
            sc["env"] = json!({"STEAMPIPE_MAX_CONCURRENT_CONNECTIONS": b});
        }
        let ev = run(&sc);
        let order: Vec<String> = rows(&ev, 0)
            .iter()
            .map(|r| r["connection"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(order.len(), 60);
        order.windows(2).filter(|w| w[0] != w[1]).count()
    };
    // Both children stream at once by default (1 row per ms each): rows interleave.
    assert!(
        changes(None) > 1,
        "children ran one after the other without a bound"
    );
    // With a bound of 1, one child finishes before the other starts.
    assert_eq!(changes(Some("1")), 1);
}

/// The metadata of each row of `step`, in arrival order.
fn row_metadata(ev: &[Value], step: usize) -> Vec<(i64, i64, bool)> {
    rows(ev, step)
        .iter()
        .map(|r| {
            let m = &r["metadata"];
            assert!(m.is_object(), "a row without metadata: {r}");
            (
                m["rows_fetched"].as_i64().unwrap(),
                m["hydrate_calls"].as_i64().unwrap(),
                m["cache_hit"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// The metadata the FDW keeps for `connection` after `step`: its last row's.
fn kept_metadata(ev: &[Value], step: usize, connection: &str) -> Value {
    let end = one(ev, "execute_end", Some(step));
    assert_eq!(end["rows_without_metadata"], 0, "{end}");
    end["metadata"][connection].clone()
}

fn meta(rows_fetched: i64, hydrate_calls: i64, cache_hit: bool) -> Value {
    json!({"rows_fetched": rows_fetched, "hydrate_calls": hydrate_calls, "cache_hit": cache_hit})
}

#[test]
fn every_row_carries_scan_metadata_counted_as_the_sdk_counts_it() {
    let uncached = |columns: &[&str], quals: Value, limit: Option<i64>| {
        let mut r = execute("test_types", "c1", columns, quals, limit);
        r["executeConnectionData"]["c1"]["cacheEnabled"] = json!(false);
        json!({"op": "execute", "request": r})
    };
    let cached = json!({"op": "execute", "request": execute("test_types", "c1", &["id", "detail"], json!({}), None)});
    let ids = json!({"listValue": {"values": [i(1), i(2), i(4), i(99)]}});
    let mut agg = execute("test_types", "all", &["id"], json!({}), None);
    agg["executeConnectionData"] =
        json!({"c1": {"cacheEnabled": false}, "c2": {"cacheEnabled": false}});
    let ev = run(&scenario(
        vec![
            connection("c1", "rows = 6\n"),
            connection("c2", "rows = 3\n"),
            aggregator("all", &["c1", "c2"]),
        ],
        vec![
            // 0: a List without hydrated columns
            uncached(&["id", "name"], json!({}), None),
            // 1: with the hydrated column: one call per row
            uncached(&["id", "detail"], json!({}), None),
            // 2: a limit
            uncached(&["id", "detail"], json!({}), Some(2)),
            // 3: a Get over an IN list: the SDK says 1 row fetched
            uncached(
                &["id", "detail"],
                json!({"id": {"quals": [{"fieldName": "id", "stringValue": "=", "value": ids}]}}),
                None,
            ),
            // 4, 5: cached: the first scan fetches, the repeat is a cache hit
            cached.clone(),
            cached,
            // 6: an aggregator: each child counts apart
            json!({"op": "execute", "request": agg}),
        ],
    ));
    // Each row: the counters as they stand when it is sent.
    let m0 = row_metadata(&ev, 0);
    assert_eq!(
        m0,
        (1..=6).map(|n| (n, 0, false)).collect::<Vec<_>>(),
        "rows fetched so far, no hydrate call"
    );
    assert_eq!(kept_metadata(&ev, 0, "c1"), meta(6, 0, false));
    let m1 = row_metadata(&ev, 1);
    for (k, (fetched, hydrates, hit)) in m1.iter().enumerate() {
        assert_eq!(*fetched, k as i64 + 1);
        assert!(*hydrates > k as i64 && *hydrates <= 6, "{m1:?}");
        assert!(!hit);
    }
    assert_eq!(kept_metadata(&ev, 1, "c1"), meta(6, 6, false));
    assert_eq!(kept_metadata(&ev, 2, "c1")["rows_fetched"], 2);
    assert_eq!(rows(&ev, 3).len(), 3);
    assert!(row_metadata(&ev, 3).iter().all(|m| m.0 == 1));
    assert_eq!(kept_metadata(&ev, 3, "c1"), meta(1, 3, false));
    assert_eq!(kept_metadata(&ev, 4, "c1"), meta(6, 6, false));
    assert_eq!(
        row_metadata(&ev, 5),
        (1..=6).map(|n| (n, 0, true)).collect::<Vec<_>>(),
        "a cached answer: rows counted as streamed, no hydrate call"
    );
    assert_eq!(kept_metadata(&ev, 6, "c1"), meta(6, 0, false));
    assert_eq!(kept_metadata(&ev, 6, "c2"), meta(3, 0, false));
}
