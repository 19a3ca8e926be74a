//! A thousand connections (issue 12, part 2). Prints figures; asserts only
//! that every scan returned every row. Run with `cargo bench --bench fleet`
//! (about a minute on 2 cores).
//!
//! The fleet: 1,000 aws connections, half with static keys and half with a
//! profile of their own (1,000 profiles: 500 in `AWS_CONFIG_FILE`, keys in
//! `AWS_SHARED_CREDENTIALS_FILE`), spread over two endpoints, each with 10
//! instances in one region, and one aggregator over all of them. The
//! endpoints are `tests/fixtures/bench_endpoint.py` (moto is too slow for a
//! thousand accounts).
//!
//! Figures, each with its baseline from the same run (the same fleet of 1):
//! - the plugin's RSS after `SetAllConnectionConfigs` (through sphost,
//!   steampipe-plugin-sdk's client);
//! - wall time and peak RSS of one aggregator scan across all of them, with
//!   `STEAMPIPE_MAX_CONCURRENT_CONNECTIONS` at its default (25);
//! - wall time and peak RSS of `check --config` over all of them.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/host_run.rs"]
mod host_run;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::moto::FastEndpoint;
use host_run::{host_run, status_kb};
use serde_json::{json, Value};

const INSTANCES: usize = 10;
const REGION: &str = "us-east-1";
const COLUMNS: [&str; 6] = [
    "instance_id",
    "metadata_options",
    "region",
    "account_id",
    "tags",
    "title",
];

struct Fleet {
    /// (name, HCL config)
    connections: Vec<(String, String)>,
    env: Vec<(String, String)>,
}

/// `n` connections: even ones with static keys, odd ones with their own
/// profile; alternately on endpoint `a` and `b`.
fn fleet(n: usize, a: &str, b: &str, dir: &Path) -> Fleet {
    let mut config = String::new();
    let mut creds = String::new();
    let mut connections = Vec::new();
    for i in 0..n {
        let url = if i % 4 < 2 { a } else { b };
        let auth = if i % 2 == 0 {
            format!("access_key = \"AKIDFLEET{i:05}\"\nsecret_key = \"fleet-secret-{i}\"\n")
        } else {
            config.push_str(&format!("[profile p{i}]\nregion = {REGION}\n\n"));
            creds.push_str(&format!(
                "[p{i}]\naws_access_key_id = AKIDPROF{i:05}\naws_secret_access_key = prof-secret-{i}\n\n"
            ));
            format!("profile = \"p{i}\"\n")
        };
        connections.push((
            format!("aws_{i:04}"),
            format!(
                "{auth}default_region = \"{REGION}\"\nendpoint_url = \"{url}\"\nregions = [\"{REGION}\"]\n"
            ),
        ));
    }
    let cfg = dir.join(format!("config-{n}"));
    let cred = dir.join(format!("credentials-{n}"));
    std::fs::write(&cfg, config).unwrap();
    std::fs::write(&cred, creds).unwrap();
    Fleet {
        connections,
        env: vec![
            ("AWS_CONFIG_FILE".into(), cfg.display().to_string()),
            (
                "AWS_SHARED_CREDENTIALS_FILE".into(),
                cred.display().to_string(),
            ),
            ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        ],
    }
}

struct ScanFigures {
    config_ms: f64,
    idle_kb: u64,
    peak_kb: u64,
    scan_ms: f64,
    rows: u64,
}

/// SetAllConnectionConfigs with the fleet and an aggregator, a pause (the
/// RSS after configuration), then one scan of the aggregator.
fn scan_all(plugin: &Path, f: &Fleet) -> ScanFigures {
    let mut conns: Vec<Value> = f
        .connections
        .iter()
        .map(|(name, cfg)| common::aws_connection(name, cfg))
        .collect();
    let children: Vec<&str> = f.connections.iter().map(|(n, _)| n.as_str()).collect();
    let mut agg = common::aws_connection("aws_all", "");
    agg["childConnections"] = json!(children);
    agg["type"] = json!("aggregator");
    conns.push(agg);
    let mut req = common::execute("aws_ec2_instance", "aws_all", &COLUMNS, json!({}), None);
    req["executeConnectionData"] = json!({"aws_all": {"cacheEnabled": false}});
    let env: serde_json::Map<String, Value> =
        f.env.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    let run = host_run(&json!({
        "plugin": plugin,
        "env": env,
        "cache_options": {"enabled": false, "ttl": 300},
        "connections": conns,
        "steps": [
            {"op": "sleep", "ms": 1500},
            {"op": "execute", "quiet": true, "request": req},
        ],
    }));
    let init = run
        .events
        .iter()
        .find(|e| e["rpc"] == "SetAllConnectionConfigs")
        .expect("SetAllConnectionConfigs");
    assert!(init.get("error").is_none(), "{init}");
    let started = run.events.iter().find(|e| e["event"] == "started").unwrap();
    let end = common::one(&run.events, "execute_end", Some(1));
    assert_eq!(end["end"], "eof", "{end}");
    ScanFigures {
        config_ms: init["arrived_ms"].as_f64().unwrap() - started["arrived_ms"].as_f64().unwrap(),
        idle_kb: run.idle_rss_kb,
        peak_kb: run.peak_rss_kb,
        scan_ms: end["ms"].as_f64().unwrap(),
        rows: end["rows"].as_u64().unwrap(),
    }
}

/// `check --config` over the fleet: (wall time, peak RSS in kB, exit code).
fn check_all(plugin: &Path, f: &Fleet, dir: &Path) -> (Duration, u64, Option<i32>) {
    let mut spc = String::new();
    for (name, cfg) in &f.connections {
        spc.push_str(&format!(
            "connection \"{name}\" {{\n  plugin = \"aws\"\n{cfg}}}\n"
        ));
    }
    spc.push_str("connection \"aws_all\" {\n  plugin = \"aws\"\n  type = \"aggregator\"\n  connections = [\"aws_*\"]\n}\n");
    let file = dir.join(format!("fleet-{}.spc", f.connections.len()));
    std::fs::write(&file, spc).unwrap();
    let t = Instant::now();
    let mut child = Command::new(plugin)
        .args([
            "check",
            "foundational_security_ec2_8",
            "--output",
            "json",
            "--config",
        ])
        .arg(&file)
        .envs(f.env.iter().cloned())
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (done, peak) = (done.clone(), peak.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                if let Some(hwm) = status_kb(pid, "VmHWM:") {
                    peak.fetch_max(hwm, Ordering::SeqCst);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let status = child.wait().unwrap();
    let wall = t.elapsed();
    done.store(true, Ordering::SeqCst);
    sampler.join().unwrap();
    (wall, peak.load(Ordering::SeqCst), status.code())
}

fn mb(kb: u64) -> String {
    format!("{:.1} MB", kb as f64 / 1024.0)
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}

fn main() {
    let plugin: PathBuf = common::target_dir().join("steampipe-plugin-aws");
    let n: usize = std::env::var("FLEET_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let dir = tempfile::tempdir().unwrap();
    let a = FastEndpoint::start(INSTANCES, 0, &[REGION]);
    let b = FastEndpoint::start(INSTANCES, 0, &[REGION]);
    let one = fleet(1, &a.endpoint, &b.endpoint, dir.path());
    let all = fleet(n, &a.endpoint, &b.endpoint, dir.path());

    // Warm the endpoints (and the page cache for the binary).
    let _ = scan_all(&plugin, &one);
    let base = scan_all(&plugin, &one);
    let big = scan_all(&plugin, &all);
    assert_eq!(base.rows, INSTANCES as u64);
    assert_eq!(
        big.rows,
        (n * INSTANCES) as u64,
        "every row of every connection"
    );
    let (cbase, cbase_kb, cbase_code) = check_all(&plugin, &one, dir.path());
    let (call, call_kb, call_code) = check_all(&plugin, &all, dir.path());
    assert_eq!(cbase_code, Some(1), "the fleet has IMDSv1 instances: alarm");
    assert_eq!(call_code, Some(1), "check over the fleet");

    let rows: Vec<[String; 4]> = vec![
        [
            format!("plugin RSS after SetAllConnectionConfigs ({n} connections + 1 aggregator)"),
            mb(big.idle_kb),
            format!("1 connection: {}", mb(base.idle_kb)),
            format!("<= 50 MB: {}", verdict(big.idle_kb <= 50 * 1024)),
        ],
        [
            "SetAllConnectionConfigs, spawn to answer".into(),
            format!("{:.0} ms", big.config_ms),
            format!("1 connection: {:.0} ms", base.config_ms),
            String::new(),
        ],
        [
            format!(
                "aggregator scan across {n} connections ({} rows): wall",
                big.rows
            ),
            format!("{:.2} s", big.scan_ms / 1000.0),
            format!("1 connection: {:.3} s", base.scan_ms / 1000.0),
            String::new(),
        ],
        [
            "aggregator scan: plugin peak RSS".into(),
            mb(big.peak_kb),
            format!("1 connection: {}", mb(base.peak_kb)),
            format!("<= 150 MB: {}", verdict(big.peak_kb <= 150 * 1024)),
        ],
        [
            format!("check --config over {n} connections: wall"),
            format!("{:.2} s", call.as_secs_f64()),
            format!("1 connection: {:.2} s", cbase.as_secs_f64()),
            String::new(),
        ],
        [
            "check --config: peak RSS".into(),
            mb(call_kb),
            format!("1 connection: {}", mb(cbase_kb)),
            String::new(),
        ],
    ];
    println!("\n| figure | measured | baseline (same run) | target |");
    println!("|---|---|---|---|");
    for r in rows {
        println!("| {} | {} | {} | {} |", r[0], r[1], r[2], r[3]);
    }
}
