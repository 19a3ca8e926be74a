//! Our plugin beside turbot's Go AWS plugin, in the same run, through the same
//! client (sphost, on steampipe-plugin-sdk's grpc client) and the same fast
//! endpoint (`tests/fixtures/bench_endpoint.py`). Prints one table.
//!
//! ```sh
//! scripts/conformance.sh go-plugin     # builds the Go plugin, then runs this
//! GO_AWS_PLUGIN=target/conformance/bin/steampipe-plugin-aws-go cargo bench --bench side_by_side
//! ```
//!
//! - spawn -> handshake: sphost's `started.ms` (spawn to the handshake line
//!   read and the gRPC connection up), median of 10 starts each;
//! - spawn -> GetSchema answer: the same start plus the plugin manager's init
//!   calls (GetSupportedOperations, SetAllConnectionConfigs, SetCacheOptions,
//!   SetRateLimiters, GetSchema), read as the time sphost's GetSchema event
//!   arrived;
//! - rows/s through Execute (cache off) for `instance_id, metadata_options`
//!   and for every column that neither plugin hydrates, over 100,000
//!   instances in one region: best of 3 scans; the plugin's CPU seconds for
//!   that scan;
//! - idle RSS (after start, init and 600 ms) and peak RSS (VmHWM) over those
//!   scans;
//! - the binary's size on disk.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/host_run.rs"]
mod host_run;

use std::path::{Path, PathBuf};

use common::moto::FastEndpoint;
use host_run::host_run;
use serde_json::{json, Value};

const BIG: usize = 100_000;
const REGION: &str = "us-east-1";
const STARTS: usize = 10;

fn config(url: &str) -> String {
    format!("default_region = \"{REGION}\"\nendpoint_url = \"{url}\"\nregions = [\"{REGION}\"]\n")
}

fn scenario(plugin: &Path, config: &str, steps: Vec<Value>) -> Value {
    json!({
        "plugin": plugin,
        // With endpoint_url set the Go plugin takes its keys from the
        // environment only; both get the same.
        "env": {
            "AWS_ACCESS_KEY_ID": "AKIDBENCH",
            "AWS_SECRET_ACCESS_KEY": "bench-secret",
            "AWS_CONFIG_FILE": "/nonexistent/aws-config",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
            "AWS_EC2_METADATA_DISABLED": "true",
            "STEAMPIPE_LOG_LEVEL": "WARN",
        },
        "connections": [common::aws_connection("aws", config)],
        "steps": steps,
    })
}

fn scan(columns: &[&str]) -> Value {
    let mut req = common::execute("aws_ec2_instance", "aws", columns, json!({}), None);
    req["executeConnectionData"]["aws"]["cacheEnabled"] = json!(false);
    json!({"op": "execute", "quiet": true, "request": req})
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

struct Plugin {
    name: &'static str,
    path: PathBuf,
}

/// (spawn -> handshake ms, spawn -> GetSchema answer ms), medians.
fn startup(p: &Plugin, cfg: &str) -> (f64, f64) {
    let mut hs = Vec::new();
    let mut gs = Vec::new();
    for _ in 0..STARTS {
        let r = host_run(&scenario(&p.path, cfg, vec![]));
        let started = common::one(&r.events, "started", None);
        let schema = r
            .events
            .iter()
            .find(|e| e["event"] == "init" && e["rpc"] == "GetSchema")
            .expect("a GetSchema init event");
        assert!(schema.get("error").is_none(), "{}: {schema}", p.name);
        let ms = started["ms"].as_f64().unwrap();
        hs.push(ms);
        gs.push(
            ms + schema["arrived_ms"].as_f64().unwrap() - started["arrived_ms"].as_f64().unwrap(),
        );
    }
    (median(hs), median(gs))
}

/// The table's columns: (name, hydrated).
fn columns(p: &Plugin, cfg: &str) -> Vec<(String, bool)> {
    let ev = common::run(&scenario(
        &p.path,
        cfg,
        vec![json!({"op": "get_schema", "connection": "aws"})],
    ));
    common::one(&ev, "schema", Some(0))["response"]["schema"]["schema"]["aws_ec2_instance"]
        ["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["hydrate"].as_str().is_some_and(|h| !h.is_empty()),
            )
        })
        .collect()
}

struct Scans {
    narrow_rate: f64,
    all_rate: f64,
    narrow_cpu_s: f64,
    all_cpu_s: f64,
    idle_mb: f64,
    peak_mb: f64,
}

fn scans(p: &Plugin, cfg: &str, all: &[&str]) -> Scans {
    let narrow = ["instance_id", "metadata_options"];
    let mut steps = vec![json!({"op": "sleep", "ms": 600})];
    for _ in 0..3 {
        steps.push(scan(&narrow));
    }
    for _ in 0..3 {
        steps.push(scan(all));
    }
    let r = host_run(&scenario(&p.path, cfg, steps));
    // (ms, plugin CPU ms) of each scan, from the event before its end.
    let mut last_cpu = None;
    let mut out = Vec::new();
    for e in &r.events {
        if e["event"] == "execute_end" {
            assert_eq!(e["end"], "eof", "{}: {e}", p.name);
            assert_eq!(e["rows"].as_u64(), Some(BIG as u64), "{}: {e}", p.name);
            let cpu = e["plugin_cpu_ms"].as_f64().expect("CPU figures");
            out.push((
                e["ms"].as_f64().unwrap(),
                cpu - last_cpu.expect("an event before each scan"),
            ));
        }
        if let Some(c) = e["plugin_cpu_ms"].as_f64() {
            last_cpu = Some(c);
        }
    }
    assert_eq!(out.len(), 6, "{}: six scans", p.name);
    let best = |s: &[(f64, f64)]| s.iter().map(|x| x.0).fold(f64::MAX, f64::min);
    let cpu = |s: &[(f64, f64)]| s.iter().map(|x| x.1).fold(f64::MAX, f64::min);
    Scans {
        narrow_rate: BIG as f64 / (best(&out[0..3]) / 1000.0),
        all_rate: BIG as f64 / (best(&out[3..6]) / 1000.0),
        narrow_cpu_s: cpu(&out[0..3]) / 1000.0,
        all_cpu_s: cpu(&out[3..6]) / 1000.0,
        idle_mb: r.idle_rss_kb as f64 / 1024.0,
        peak_mb: r.peak_rss_kb as f64 / 1024.0,
    }
}

/// Size on disk, and of a stripped copy if the file has symbols (`strip`).
fn size(path: &Path) -> String {
    let mb = |n: u64| n as f64 / 1e6;
    let on_disk = std::fs::metadata(path).unwrap().len();
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("stripped");
    let stripped = std::process::Command::new("strip")
        .arg("-o")
        .arg(&copy)
        .arg(path)
        .status()
        .ok()
        .filter(|s| s.success())
        .and_then(|_| std::fs::metadata(&copy).ok())
        .map(|m| m.len());
    match stripped {
        // Ours is stripped at build time; only a real saving is worth a mention.
        Some(s) if s < on_disk - on_disk / 100 => {
            format!("{:.1} MB ({:.1} stripped)", mb(on_disk), mb(s))
        }
        _ => format!("{:.1} MB", mb(on_disk)),
    }
}

fn main() {
    let Some(go) = std::env::var_os("GO_AWS_PLUGIN").map(PathBuf::from) else {
        eprintln!("side_by_side: GO_AWS_PLUGIN is not set: build turbot's Go AWS plugin with scripts/conformance.sh go-plugin");
        std::process::exit(2);
    };
    assert!(go.exists(), "GO_AWS_PLUGIN={} does not exist", go.display());
    let ours = common::target_dir().join("steampipe-plugin-aws");
    assert!(
        ours.exists(),
        "{} is missing: cargo build --release",
        ours.display()
    );
    let plugins = [
        Plugin {
            name: "ours (Rust)",
            path: ours,
        },
        Plugin {
            name: "turbot's Go plugin",
            path: go,
        },
    ];

    let ep = FastEndpoint::start(BIG, 0, &[REGION]);
    let cfg = config(&ep.endpoint);
    // Every column neither plugin hydrates, in the Go plugin's order.
    let ours_cols = columns(&plugins[0], &cfg);
    let go_cols = columns(&plugins[1], &cfg);
    let all: Vec<&str> = go_cols
        .iter()
        .filter(|(n, h)| {
            !h && !["sp_connection_name", "sp_ctx", "_ctx"].contains(&n.as_str())
                && ours_cols.iter().any(|(m, oh)| m == n && !oh)
        })
        .map(|(n, _)| n.as_str())
        .collect();

    // Warm the endpoint's page cache with one scan.
    common::run(&scenario(
        &plugins[0].path,
        &cfg,
        vec![scan(&["instance_id"])],
    ));

    let mut rows: Vec<(String, Vec<String>)> = vec![
        ("spawn -> handshake (median of 10)".into(), vec![]),
        ("spawn -> GetSchema answer, after init calls".into(), vec![]),
        (
            "rows/s, instance_id + metadata_options (100k)".into(),
            vec![],
        ),
        (
            format!("rows/s, all {} non-hydrated columns (100k)", all.len()),
            vec![],
        ),
        ("plugin CPU, instance_id + metadata_options".into(), vec![]),
        (format!("plugin CPU, all {} columns", all.len()), vec![]),
        ("RSS idle (after init + 600 ms)".into(), vec![]),
        ("RSS peak (VmHWM, over the scans)".into(), vec![]),
        ("binary size".into(), vec![]),
    ];
    for p in &plugins {
        let (hs, gs) = startup(p, &cfg);
        let s = scans(p, &cfg, &all);
        let figures = [
            format!("{hs:.0} ms"),
            format!("{gs:.0} ms"),
            format!("{:.0}", s.narrow_rate),
            format!("{:.0}", s.all_rate),
            format!("{:.2} s", s.narrow_cpu_s),
            format!("{:.2} s", s.all_cpu_s),
            format!("{:.1} MB", s.idle_mb),
            format!("{:.1} MB", s.peak_mb),
            size(&p.path),
        ];
        for (row, f) in rows.iter_mut().zip(figures) {
            row.1.push(f);
        }
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "\nside by side ({cores} cores; same run, same client, same endpoint; cargo bench --bench side_by_side)"
    );
    println!(
        "| {:<46} | {:>24} | {:>24} |",
        "", plugins[0].name, plugins[1].name
    );
    println!("|{:-<48}|{:->26}|{:->26}|", "", "", "");
    for (what, f) in rows {
        println!("| {what:<46} | {:>24} | {:>24} |", f[0], f[1]);
    }
}
