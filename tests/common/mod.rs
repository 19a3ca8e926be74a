//! Test support: builds sphost (steampipe-plugin-sdk's client) (`tests/host/`), runs
//! scenarios through it against a plugin binary, and reads its JSON events.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub mod moto;
pub mod oracle;
pub mod pg;

use serde_json::{json, Value};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `target/<profile>` of the running test binary (tests live in `deps/`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf()
}

/// The SDK test plugin (`examples/sdk_test_plugin.rs`), built once per test
/// process so that `cargo test --test X` (which builds no examples) never runs
/// a stale binary.
pub fn sdk_test_plugin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(root())
            .args(["build", "--quiet", "--example", "sdk_test_plugin"]);
        if target_dir().ends_with("release") {
            cmd.arg("--release");
        }
        let status = cmd
            .status()
            .expect("run cargo build --example sdk_test_plugin");
        assert!(status.success(), "building the SDK test plugin failed");
        let p = target_dir().join("examples").join("sdk_test_plugin");
        assert!(p.exists(), "{} is missing after the build", p.display());
        p
    })
    .clone()
}

/// sphost, the host on steampipe-plugin-sdk's own client: `$SPHOST` if set, else built once per test process with
/// `tests/host/build.sh`. A failed build fails the test loudly.
pub fn sphost() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("SPHOST") {
            let p = PathBuf::from(p);
            assert!(p.exists(), "SPHOST={} does not exist", p.display());
            return p;
        }
        let out = target_dir().join("sphost");
        let status = Command::new("bash")
            .arg(root().join("tests/host/build.sh"))
            .arg(&out)
            .status()
            .expect("run tests/host/build.sh");
        assert!(
            status.success(),
            "building sphost (tests/host, the Steampipe SDK client) failed; it needs Go >= 1.26 and the Go module proxy for its first build (scripts/test.sh)"
        );
        out
    })
    .clone()
}

/// Runs a scenario; returns its events. Panics (with sphost's stderr) if sphost itself failed.
pub fn run(scenario: &Value) -> Vec<Value> {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("scenario.json");
    std::fs::write(&file, serde_json::to_vec_pretty(scenario).unwrap()).unwrap();
    let mut child = Command::new(sphost())
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sphost");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).unwrap();
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).unwrap();
        s
    });
    let deadline = Instant::now() + Duration::from_secs(240);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("sphost did not finish within 240 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = out_t.join().unwrap();
    let err = err_t.join().unwrap();
    let events: Vec<Value> = out
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad event line {l:?}: {e}")))
        .collect();
    assert!(
        status.success(),
        "sphost failed ({status}):\nstderr:\n{err}\nevents:\n{out}"
    );
    events
}

/// The events of kind `event` (optionally for one step).
pub fn events<'a>(all: &'a [Value], event: &str, step: Option<usize>) -> Vec<&'a Value> {
    all.iter()
        .filter(|e| e["event"] == event)
        .filter(|e| step.is_none_or(|s| e["step"] == json!(s)))
        .collect()
}

/// The one event of kind `event` for `step`.
pub fn one<'a>(all: &'a [Value], event: &str, step: Option<usize>) -> &'a Value {
    let found = events(all, event, step);
    assert_eq!(
        found.len(),
        1,
        "expected one {event} event for step {step:?}, got {found:?}\nall: {all:#?}"
    );
    found[0]
}

/// A ConnectionConfig as Steampipe sends it for a local plugin.
pub fn connection(name: &str, config: &str) -> Value {
    json!({
        "connection": name,
        "plugin": "local/sdktest",
        "pluginShortName": "local/sdktest",
        "config": config,
        "childConnections": [],
        "pluginInstance": "local/sdktest",
    })
}

/// An aggregator connection over `children`.
pub fn aggregator(name: &str, children: &[&str]) -> Value {
    json!({
        "connection": name,
        "plugin": "local/sdktest",
        "pluginShortName": "local/sdktest",
        "config": "",
        "childConnections": children,
        "pluginInstance": "local/sdktest",
    })
}

/// An ExecuteRequest as the FDW sends it for one connection.
pub fn execute(
    table: &str,
    conn: &str,
    columns: &[&str],
    quals: Value,
    limit: Option<i64>,
) -> Value {
    let mut data = json!({"cacheEnabled": true, "cacheTtl": "300"});
    if let Some(l) = limit {
        data["limit"] = json!({"value": l.to_string()});
    }
    json!({
        "table": table,
        "queryContext": {"columns": columns, "quals": quals},
        "connection": conn,
        "callId": "1764288000123",
        "traceContext": {"value": "{}"},
        "executeConnectionData": {conn: data},
    })
}

/// `{column: {"quals": [qual, ...]}}` for one qual.
pub fn qual(column: &str, op: &str, value: Option<Value>) -> Value {
    let mut q = json!({"fieldName": column, "stringValue": op});
    if let Some(v) = value {
        q["value"] = v;
    }
    json!({ column: {"quals": [q]} })
}

/// Merges qual maps.
pub fn quals(parts: &[Value]) -> Value {
    let mut out = serde_json::Map::new();
    for p in parts {
        for (k, v) in p.as_object().unwrap() {
            let entry = out.entry(k.clone()).or_insert_with(|| json!({"quals": []}));
            for q in v["quals"].as_array().unwrap() {
                entry["quals"].as_array_mut().unwrap().push(q.clone());
            }
        }
    }
    Value::Object(out)
}

/// A scenario against the SDK test plugin.
pub fn scenario(connections: Vec<Value>, steps: Vec<Value>) -> Value {
    json!({
        "plugin": sdk_test_plugin(),
        "env": {},
        "connections": connections,
        "init": true,
        "steps": steps,
    })
}

/// The rows of an execute step, in arrival order.
pub fn rows(all: &[Value], step: usize) -> Vec<Value> {
    events(all, "row", Some(step))
        .into_iter()
        .cloned()
        .collect()
}

/// The values of `column` in the rows of `step`.
pub fn column(all: &[Value], step: usize, column: &str) -> Vec<Value> {
    rows(all, step)
        .iter()
        .map(|r| r["values"][column].clone())
        .collect()
}

/// An aws `ConnectionConfig` as the plugin manager sends it for turbot's
/// plugin (installed as `hub.steampipe.io/plugins/turbot/aws@latest`).
#[allow(dead_code)]
pub fn aws_connection(name: &str, config: &str) -> serde_json::Value {
    serde_json::json!({
        "connection": name,
        "plugin": "hub.steampipe.io/plugins/turbot/aws@latest",
        "pluginShortName": "aws",
        "config": config,
        "pluginInstance": "hub.steampipe.io/plugins/turbot/aws@latest",
    })
}
