//! `check` memory and speed (prints figures; asserts nothing about speed).
//! Run with `cargo bench --bench check` (a few minutes on 2 cores).
//!
//! Every figure has its baseline measured in the same run:
//! - 100,000 instances in one region from the fast endpoint
//!   (`tests/fixtures/bench_endpoint.py`): the wall time and peak RSS of
//!   `check foundational_security_ec2_8` for each output format, against
//!   the plugin's own scan of the columns that control names, through
//!   Execute as a host reads it (sphost, steampipe-plugin-sdk's client),
//!   and the plugin's peak RSS while streaming it; the scan and the checks
//!   alternate, three rounds, best wall time of each;
//! - 900 instances (three regions of 300) from the fast endpoint and on the
//!   moto emulator: the peak RSS of `check` against the plugin's peak RSS
//!   streaming the same scan.
//!
//! Peak RSS of `check` is the child's `ru_maxrss` (wait4), so nothing is
//! missed between samples. `CHECK_BINARY=<path>` runs another build's
//! `check` (an earlier commit's) against this build's plugin scan: the
//! figures before a change, from the same bench.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/host_run.rs"]
mod host_run;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::moto::{FastEndpoint, Moto};
use host_run::host_run;
use serde_json::{json, Value};

const BIG: usize = 100_000;
const REGION: &str = "us-east-1";
const CONTROL: &str = "foundational_security_ec2_8";
/// The columns `check` asks for to run the control: those its SQL names and
/// the order keys (region, instance_id).
const CONTROL_COLUMNS: [&str; 6] = [
    "account_id",
    "arn",
    "metadata_options",
    "region",
    "title",
    "instance_id",
];
const MOTO_REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "ap-southeast-2"];

fn config(url: &str, regions: &[&str]) -> String {
    let regions: Vec<String> = regions.iter().map(|r| format!("\"{r}\"")).collect();
    format!(
        "access_key = \"AKIDPERF\"\ndefault_region = \"{REGION}\"\nendpoint_url = \"{url}\"\nregions = [{}]\nsecret_key = \"perf\"\n",
        regions.join(", ")
    )
}

fn scenario(plugin: &std::path::Path, config: &str, steps: Vec<Value>) -> Value {
    json!({
        "plugin": plugin,
        "env": {"AWS_EC2_METADATA_DISABLED": "true"},
        "connections": [{"connection": "aws", "plugin": "aws", "pluginShortName": "aws", "config": config}],
        "steps": steps,
    })
}

fn scan(columns: &[&str]) -> Value {
    let mut req = common::execute("aws_ec2_instance", "aws", columns, json!({}), None);
    req["executeConnectionData"]["aws"]["cacheEnabled"] = json!(false);
    json!({"op": "execute", "quiet": true, "request": req})
}

/// The plugin's own scan of the control's columns: best wall time of 3
/// (ms, from Execute to the end of the stream) and its peak RSS (KB).
fn plugin_scan(plugin: &std::path::Path, cfg: &str, rows: usize) -> (f64, u64) {
    let r = host_run(&scenario(
        plugin,
        cfg,
        (0..3).map(|_| scan(&CONTROL_COLUMNS)).collect(),
    ));
    let ends = common::events(&r.events, "execute_end", None);
    let mut best = f64::MAX;
    for e in ends {
        assert_eq!(e["end"], "eof", "{e}");
        assert_eq!(e["rows"].as_u64().unwrap() as usize, rows, "{e}");
        best = best.min(e["ms"].as_f64().unwrap());
    }
    (best, r.peak_rss_kb)
}

struct CheckRun {
    wall: Duration,
    max_rss_kb: u64,
    code: i32,
    stdout_bytes: u64,
}

/// Runs `check` with `args`, stdout drained and counted; wall time and peak
/// RSS from wait4.
fn run_check(endpoint: &str, regions: &[&str], args: &[&str]) -> CheckRun {
    // CHECK_BINARY: another build's `check` (an earlier commit's, for a before/after).
    let plugin = std::env::var_os("CHECK_BINARY")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| common::target_dir().join("steampipe-plugin-aws"));
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let mut child = Command::new(plugin)
        .current_dir(dir.path())
        .arg("check")
        .arg(CONTROL)
        .args(["--endpoint-url", endpoint, "--default-region", REGION])
        .args(["--regions", &regions.join(",")])
        .arg("--progress=false")
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "AKIDPERF")
        .env("AWS_SECRET_ACCESS_KEY", "perf")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("POWERPIPE_DISPLAY_WIDTH", "100")
        .env_remove("AWS_PROFILE")
        .env_remove("PP_VAR_common_dimensions")
        .env_remove("PP_VAR_tag_dimensions")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()).unwrap());
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data that wait4 fills for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4");
    let wall = t.elapsed();
    let stdout_bytes = reader.join().unwrap();
    // The child was reaped by wait4; `Child` must not wait on it again.
    std::mem::forget(child);
    CheckRun {
        wall,
        max_rss_kb: usage.ru_maxrss as u64,
        code: if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            -1
        },
        stdout_bytes,
    }
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
    let plugin = common::target_dir().join("steampipe-plugin-aws");
    let mut table: Vec<(String, String, String, String)> = Vec::new();

    // 100,000 instances, one region, the fast endpoint. The machine is
    // shared: each round runs the plugin's scan, then check in every
    // format, so that baseline and figures see the same load; best of 3.
    let ep = FastEndpoint::start(BIG, 0, &[REGION]);
    let cfg = config(&ep.endpoint, &[REGION]);
    let formats = [
        ("text", ""),
        ("none", ""),
        ("csv", ""),
        ("json", ""),
        ("snapshot", " (one document)"),
    ];
    let mut scans = Vec::new();
    let mut runs: Vec<Vec<CheckRun>> = formats.iter().map(|_| Vec::new()).collect();
    for _ in 0..3 {
        scans.push(plugin_scan(&plugin, &cfg, BIG));
        for (i, (format, _)) in formats.iter().enumerate() {
            let r = run_check(&ep.endpoint, &[REGION], &["--output", format]);
            assert_eq!(
                r.code, 1,
                "check --output {format} over the bench fleet alarms"
            );
            runs[i].push(r);
        }
    }
    let scan_ms = scans.iter().map(|s| s.0).fold(f64::MAX, f64::min);
    let scan_rss = scans.iter().map(|s| s.1).max().unwrap();
    table.push((
        format!(
            "plugin scan, the control's {} columns (100k)",
            CONTROL_COLUMNS.len()
        ),
        format!("{:.2} s", scan_ms / 1000.0),
        format!("plugin peak RSS {}", mb(scan_rss)),
        "the baseline".into(),
    ));
    for ((format, holds), runs) in formats.iter().zip(&runs) {
        let best = runs.iter().map(|r| r.wall).min().unwrap();
        let rss = runs.iter().map(|r| r.max_rss_kb).max().unwrap();
        let ratio = best.as_secs_f64() * 1000.0 / scan_ms;
        table.push((
            format!("check --output {format}{holds} (100k)"),
            format!("{:.2} s", best.as_secs_f64()),
            format!("plugin scan {:.2} s ({ratio:.2}x)", scan_ms / 1000.0),
            format!("<= 1.2x: {}", verdict(ratio <= 1.2)),
        ));
        table.push((
            format!(
                "  peak RSS, {} MB of output",
                runs[0].stdout_bytes / 1_000_000
            ),
            mb(rss),
            format!("plugin streaming {}", mb(scan_rss)),
            format!("<= 128 MB: {}", verdict(rss <= 128 * 1024)),
        ));
    }
    drop(ep);

    // 900 instances from the fast endpoint, three regions at once.
    let ep = FastEndpoint::start(300, 0, &MOTO_REGIONS);
    let cfg = config(&ep.endpoint, &MOTO_REGIONS);
    let (scan_ms, scan_rss) = plugin_scan(&plugin, &cfg, 900);
    let r = run_check(&ep.endpoint, &MOTO_REGIONS, &["--output", "text"]);
    assert_eq!(
        r.code, 1,
        "check over the 900 fast-endpoint instances alarms"
    );
    table.push((
        "check --output text (fast endpoint, 3 x 300)".into(),
        mb(r.max_rss_kb),
        format!(
            "plugin streaming {}; wall {:.2} s, scan {:.2} s",
            mb(scan_rss),
            r.wall.as_secs_f64(),
            scan_ms / 1000.0
        ),
        format!("<= 64 MB: {}", verdict(r.max_rss_kb <= 64 * 1024)),
    ));
    drop(ep);

    // 900 instances on moto, three regions.
    let moto = Moto::start();
    for r in MOTO_REGIONS {
        moto.seed(&["--no-main", "--bulk-region", r, "--bulk-count", "300"]);
    }
    let cfg = config(&moto.endpoint, &MOTO_REGIONS);
    let (scan_ms, scan_rss) = plugin_scan(&plugin, &cfg, 900);
    table.push((
        "plugin scan, the control's columns (moto, 900)".into(),
        format!("{:.2} s", scan_ms / 1000.0),
        format!("plugin peak RSS {}", mb(scan_rss)),
        "the baseline".into(),
    ));
    for format in ["text", "json", "snapshot"] {
        let r = run_check(&moto.endpoint, &MOTO_REGIONS, &["--output", format]);
        assert_eq!(r.code, 1, "check over the moto fleet alarms");
        table.push((
            format!("check --output {format} (moto, 900)"),
            mb(r.max_rss_kb),
            format!(
                "plugin streaming {}; wall {:.2} s",
                mb(scan_rss),
                r.wall.as_secs_f64()
            ),
            format!("<= 64 MB: {}", verdict(r.max_rss_kb <= 64 * 1024)),
        ));
    }

    println!("\ncheck memory and speed (2 cores; baselines measured in this run)");
    let (what, figure, baseline, target) = ("what", "figure", "baseline", "target");
    println!("{what:<46} {figure:>10}  {baseline:<40} {target}");
    for (a, b, c, d) in table {
        println!("{a:<46} {b:>10}  {c:<40} {d}");
    }
}
