//! Steampipe's rate limiters, enforced: `SetRateLimiters` definitions limit
//! the AWS calls of `aws_ec2_instance` scans run through sphost
//! (steampipe-plugin-sdk's own client), measured where the calls land: the
//! fault proxy's log of every request's arrival and end
//! (`tests/fixtures/fault_proxy.py`). Each test runs the same scan without
//! the limiter (or with one that does not apply) as its baseline.
//!
//! `GetRateLimiters` is compared with turbot's Go plugin: live by the
//! ignored test (`scripts/conformance.sh go-plugin`), which records
//! `tests/golden/go_plugin_rate_limiters.json`; the default test checks
//! ours against that recording.

mod common;

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, OnceLock};

use common::moto::{FastEndpoint, FaultProxy, Moto, ProxyEntry};
use common::*;
use serde_json::{json, Value};

const GOLDEN: &str = "tests/golden/go_plugin_rate_limiters.json";

/// One emulator for the process, seeded once (8 instances in us-east-1, 3 in eu-west-1).
fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(|| {
        let m = Moto::start();
        m.seed(&[]);
        m
    })
}

/// Timing tests take turns: the machine's two cores are not shared between them.
fn turn() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|p| p.into_inner())
}

fn config(endpoint: &str, regions: &[&str]) -> String {
    let regions: Vec<String> = regions.iter().map(|r| format!("\"{r}\"")).collect();
    format!(
        "access_key = \"AKIDLIMITER\"\ndefault_region = \"us-east-1\"\nendpoint_url = \"{endpoint}\"\nregions = [{}]\nsecret_key = \"limiter-secret\"\n",
        regions.join(", ")
    )
}

fn scenario_for(plugin: PathBuf, config: &str, limiters: Value, steps: Vec<Value>) -> Value {
    json!({
        "plugin": plugin,
        "env": {"AWS_EC2_METADATA_DISABLED": "true", "STEAMPIPE_LOG_LEVEL": "WARN"},
        "cache_options": {"enabled": false, "ttl": 300},
        "connections": [aws_connection("aws", config)],
        "rate_limiters": limiters,
        "steps": steps,
    })
}

fn ours() -> PathBuf {
    target_dir().join("steampipe-plugin-aws")
}

fn scan(columns: &[&str]) -> Value {
    let mut req = execute("aws_ec2_instance", "aws", columns, json!({}), None);
    req["executeConnectionData"]["aws"]["cacheEnabled"] = json!(false);
    json!({"op": "execute", "request": req})
}

fn limiter(name: &str, fill_rate: f64, bucket: i64, conc: i64, scope: &[&str], w: &str) -> Value {
    json!({"name": name, "fillRate": fill_rate, "bucketSize": bucket.to_string(),
           "maxConcurrency": conc.to_string(), "scope": scope, "where": w})
}

/// Runs one scan; returns its row count and the proxy's entries for `action`.
fn scan_through(
    proxy: &FaultProxy,
    regions: &[&str],
    limiters: Value,
    columns: &[&str],
    action: &str,
) -> (usize, Vec<ProxyEntry>) {
    let ev = run(&scenario_for(
        ours(),
        &config(&proxy.endpoint, regions),
        limiters.clone(),
        vec![scan(columns)],
    ));
    let init = events(&ev, "init", None)
        .into_iter()
        .find(|e| e["rpc"] == "SetRateLimiters")
        .cloned()
        .unwrap();
    assert!(init.get("error").is_none(), "SetRateLimiters: {init}");
    let end = one(&ev, "execute_end", Some(0));
    assert_eq!(end["end"], "eof", "{end}");
    let rows = rows(&ev, 0).len();
    let mut calls = proxy.calls(action);
    calls.sort_by(|a, b| a.t.total_cmp(&b.t));
    (rows, calls)
}

/// The most calls in any window of `secs` seconds.
fn most_in_window(calls: &[ProxyEntry], secs: f64) -> usize {
    (0..calls.len())
        .map(|i| {
            calls[i..]
                .iter()
                .take_while(|c| c.t < calls[i].t + secs)
                .count()
        })
        .max()
        .unwrap_or(0)
}

/// The most calls in flight at once at the proxy.
fn most_in_flight(calls: &[ProxyEntry]) -> usize {
    let mut edges: Vec<(f64, i32)> = Vec::new();
    for c in calls {
        edges.push((c.t, 1));
        edges.push((c.t_end.expect("every call ended"), -1));
    }
    // An end and a start at the same instant: the end first.
    edges.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut now, mut most) = (0, 0);
    for (_, d) in edges {
        now += d;
        most = most.max(now);
    }
    most as usize
}

fn span(calls: &[ProxyEntry]) -> f64 {
    calls.last().unwrap().t - calls.first().unwrap().t
}

/// A `fill_rate` limiter on DescribeInstances spaces the List pages out:
/// 10 pages (5 instances each) of one region at fill_rate 5 and a bucket of
/// 1 arrive 200 ms apart, at most 5 (plus one at a window's edge) in any
/// second, after the tokens the SDK takes (one when the List call starts,
/// one before each page). Without it, or with a `where` that does not
/// match, the same pages follow each other as fast as the endpoint answers.
#[test]
fn fill_rate_spaces_list_pages_and_where_picks_the_calls() {
    let _t = turn();
    let endpoint = FastEndpoint::start_paged(50, 0, &["us-east-1"], 5);
    let pages = |limiters: Value| {
        let proxy = FaultProxy::start(&endpoint.endpoint, json!([]));
        let (rows, calls) = scan_through(
            &proxy,
            &["us-east-1"],
            limiters,
            &["instance_id"],
            "DescribeInstances",
        );
        assert_eq!(rows, 50);
        assert_eq!(calls.len(), 10, "one call per page");
        calls
    };
    let gaps = |calls: &[ProxyEntry]| -> Vec<f64> {
        let mut g: Vec<f64> = calls.windows(2).map(|w| w[1].t - w[0].t).collect();
        g.sort_by(f64::total_cmp);
        g
    };
    let free = pages(json!([]));
    let other_service = pages(json!([limiter(
        "s3_only",
        5.0,
        1,
        0,
        &["connection"],
        "service = 's3'"
    )]));
    let limited = pages(json!([limiter(
        "ec2_pages",
        5.0,
        1,
        0,
        &["connection", "region"],
        "service = 'ec2' and action = 'DescribeInstances' and table = 'aws_ec2_instance' and function_name = 'listEc2Instance'"
    )]));
    eprintln!(
        "figure: 10 pages: {:.2} s without a limiter, {:.2} s with one for s3, {:.2} s at fill_rate 5 (most in 1 s: {}, {}, {})",
        span(&free),
        span(&other_service),
        span(&limited),
        most_in_window(&free, 1.0),
        most_in_window(&other_service, 1.0),
        most_in_window(&limited, 1.0)
    );
    // The baseline shows the endpoint answers faster than the limiter
    // lets pages go (else this test would prove nothing).
    assert!(gaps(&free)[4] < 0.15, "baseline gaps {:?}", gaps(&free));
    assert!(
        gaps(&other_service)[4] < 0.15,
        "a limiter for s3 leaves ec2 alone: {:?}",
        gaps(&other_service)
    );
    assert!(
        gaps(&limited)[0] >= 0.17,
        "pages at least ~200 ms apart: {:?}",
        gaps(&limited)
    );
    assert!(most_in_window(&limited, 1.0) <= 6);
    // 9 gaps of 200 ms.
    assert!(span(&limited) >= 1.7, "{}", span(&limited));
}

/// The scope names the instance: `[connection, region]` gives each region
/// its own bucket, `[connection]` one bucket for the whole connection.
#[test]
fn scope_gives_each_region_its_own_bucket_or_one_for_all() {
    let _t = turn();
    let endpoint = FastEndpoint::start_paged(30, 0, &["us-east-1", "eu-west-1"], 5);
    let run_with = |scope: &[&str]| {
        let proxy = FaultProxy::start(&endpoint.endpoint, json!([]));
        let (rows, calls) = scan_through(
            &proxy,
            &["us-east-1", "eu-west-1"],
            json!([limiter(
                "pages",
                5.0,
                1,
                0,
                scope,
                "action = 'DescribeInstances'"
            )]),
            &["instance_id"],
            "DescribeInstances",
        );
        assert_eq!(rows, 60);
        assert_eq!(calls.len(), 12);
        calls
    };
    let per_region = run_with(&["connection", "region"]);
    let shared = run_with(&["connection"]);
    eprintln!(
        "figure: 12 pages in 2 regions at 5/s: {:.2} s with a bucket per region, {:.2} s with one bucket",
        span(&per_region),
        span(&shared)
    );
    // Per region: 7 tokens each, in parallel, about 1.2 s; shared: 14 tokens, about 2.6 s.
    assert!(span(&per_region) < 1.8, "{}", span(&per_region));
    assert!(span(&shared) > 2.2, "{}", span(&shared));
    assert!(most_in_window(&shared, 1.0) <= 6);
}

/// `max_concurrency` caps the hydrate calls in flight (each held 300 ms at
/// the proxy): at most 2 DescribeInstanceAttribute calls at once, against
/// the 8 at once the scan makes without it.
#[test]
fn max_concurrency_caps_hydrate_calls_in_flight() {
    let _t = turn();
    let run_with = |limiters: Value| {
        let proxy = FaultProxy::start(
            &moto().endpoint,
            json!([{"action": "DescribeInstanceAttribute", "fault": "delay", "delay_ms": 300, "times": -1}]),
        );
        let (rows, calls) = scan_through(
            &proxy,
            &["us-east-1"],
            limiters,
            &["instance_id", "user_data"],
            "DescribeInstanceAttribute",
        );
        assert_eq!(rows, 8);
        assert_eq!(
            calls.len(),
            8,
            "one DescribeInstanceAttribute call per instance"
        );
        calls
    };
    let free = run_with(json!([]));
    let capped = run_with(json!([limiter(
        "attrs",
        0.0,
        0,
        2,
        &["connection"],
        "action = 'DescribeInstanceAttribute' and function_name = 'getInstanceUserData' and region = 'us-east-1'"
    )]));
    eprintln!(
        "figure: 8 hydrate calls of 300 ms: {} in flight at most without a limiter, {} with max_concurrency 2",
        most_in_flight(&free),
        most_in_flight(&capped)
    );
    assert!(most_in_flight(&free) > 2, "baseline: more than 2 at once");
    assert!(most_in_flight(&capped) <= 2);
    assert!(most_in_flight(&capped) == 2, "and the cap is used");
}

/// A definition `SetRateLimiters` cannot use fails the call naming it, as
/// the SDK's `failed to create rate limiter '<name>' from config: ...`.
#[test]
fn a_bad_definition_fails_set_rate_limiters_naming_it() {
    let ev = run(&scenario_for(
        ours(),
        &config("http://127.0.0.1:9", &["us-east-1"]),
        json!([
            limiter("fine", 1.0, 1, 0, &[], ""),
            limiter("broken_where", 1.0, 1, 0, &[], "service <"),
            limiter("no_bucket", 5.0, 0, 0, &[], "")
        ]),
        vec![],
    ));
    let init = events(&ev, "init", None)
        .into_iter()
        .find(|e| e["rpc"] == "SetRateLimiters")
        .cloned()
        .unwrap();
    let msg = init["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("failed to create rate limiter 'broken_where' from config: failed to parse 'where' property"),
        "{init}"
    );
    assert!(msg.contains("failed to create rate limiter 'no_bucket' from config: fill_rate 5 needs a bucket_size"), "{init}");
    assert!(!msg.contains("'fine'"), "{init}");
    assert!(!msg.contains('\n'), "one line: {msg}");
}

fn get_rate_limiters(plugin: PathBuf) -> Value {
    let ev = run(&scenario_for(
        plugin,
        &config("http://127.0.0.1:9", &["us-east-1"]),
        json!([]),
        vec![json!({"op": "rpc", "method": "GetRateLimiters", "request": {}})],
    ));
    one(&ev, "rpc", Some(0))["response"].clone()
}

/// `GetRateLimiters` answers turbot's plugin-defined limiters, as recorded.
#[test]
fn get_rate_limiters_answers_as_the_recorded_go_plugin() {
    let want: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join(GOLDEN)).unwrap()).unwrap();
    assert_eq!(
        get_rate_limiters(ours()),
        want,
        "re-record with: scripts/conformance.sh go-plugin"
    );
}

/// Live: turbot's Go plugin's `GetRateLimiters`, recorded for the default test.
#[test]
#[ignore = "needs turbot's Go AWS plugin: run scripts/conformance.sh go-plugin"]
fn go_plugin_rate_limiters_recording() {
    let go = std::env::var_os("GO_AWS_PLUGIN").map(PathBuf::from).expect(
        "GO_AWS_PLUGIN is not set: build turbot's Go AWS plugin with scripts/conformance.sh go-plugin",
    );
    let theirs = get_rate_limiters(go);
    assert_eq!(theirs["definitions"].as_array().map(Vec::len), Some(20));
    std::fs::write(
        root().join(GOLDEN),
        serde_json::to_string_pretty(&theirs).unwrap() + "\n",
    )
    .unwrap();
    assert_eq!(get_rate_limiters(ours()), theirs);
}

/// `check --config` takes the aws plugin's `limiter` blocks from the file
/// (here on a plugin instance the connection names, `plugin.aws_limited`)
/// and the plugin enforces them: the same 10 pages 200 ms apart, against
/// back to back without the block. A bad block stops `check` with one line
/// naming the file and the limiter.
#[test]
fn check_takes_limiter_blocks_from_its_config_file() {
    let _t = turn();
    let endpoint = FastEndpoint::start_paged(50, 0, &["us-east-1"], 5);
    let dir = tempfile::tempdir().unwrap();
    let run_check = |limiter_block: &str| {
        let proxy = FaultProxy::start(&endpoint.endpoint, json!([]));
        let spc = dir.path().join("aws.spc");
        std::fs::write(
            &spc,
            format!(
                "plugin \"aws_limited\" {{\n  source = \"aws\"\n{limiter_block}}}\n\
                 connection \"aws_a\" {{\n  plugin = plugin.aws_limited\n  regions = [\"us-east-1\"]\n  endpoint_url = \"{}\"\n  access_key = \"AKIDA\"\n  secret_key = \"a\"\n}}\n",
                proxy.endpoint
            ),
        )
        .unwrap();
        let out = std::process::Command::new(ours())
            .current_dir(dir.path())
            .args([
                "check",
                "control.foundational_security_ec2_8",
                "--output",
                "json",
                "--config",
            ])
            .arg(&spc)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .unwrap();
        let mut calls = proxy.calls("DescribeInstances");
        calls.sort_by(|a, b| a.t.total_cmp(&b.t));
        (out, calls)
    };
    let (free_out, free) = run_check("");
    assert!(
        matches!(free_out.status.code(), Some(0..=1)),
        "{}",
        String::from_utf8_lossy(&free_out.stderr)
    );
    let (limited_out, limited) = run_check(
        "  limiter \"pages\" {\n    fill_rate = 5\n    bucket_size = 1\n    scope = [\"connection\", \"region\"]\n    where = \"action = 'DescribeInstances'\"\n  }\n",
    );
    assert_eq!(limited_out.status.code(), free_out.status.code());
    assert_eq!(
        String::from_utf8_lossy(&limited_out.stdout)
            .matches("\"status\"")
            .count(),
        String::from_utf8_lossy(&free_out.stdout)
            .matches("\"status\"")
            .count(),
        "the same results"
    );
    assert_eq!((free.len(), limited.len()), (10, 10));
    eprintln!(
        "figure: check over 10 pages: {:.2} s without the limiter block, {:.2} s with fill_rate 5",
        span(&free),
        span(&limited)
    );
    let min_gap = |c: &[ProxyEntry]| {
        c.windows(2)
            .map(|w| w[1].t - w[0].t)
            .fold(f64::MAX, f64::min)
    };
    assert!(span(&free) < 1.0, "baseline {}", span(&free));
    assert!(min_gap(&limited) >= 0.17, "{}", min_gap(&limited));

    let (bad, _) = run_check("  limiter \"half\" {\n    fill_rate = 5\n  }\n");
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(254), "{err}");
    assert!(err.contains("limiter 'half': set a rate"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}
