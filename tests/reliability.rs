//! Reliability of `aws_ec2_instance` scans through sphost (steampipe-plugin-sdk's client),
//! against the moto EC2 emulator behind the fault-injecting proxy
//! (`tests/fixtures/fault_proxy.py`): throttling, connection resets, 500s,
//! truncated and non-XML answers, slow answers and the per-attempt timeout,
//! cancellation, 1000 cancelled scans, and a SIGKILLed plugin restarted next
//! to its stale socket.
//!
//! What each fault does to a scan (measured; asserted below):
//!
//! | fault | retried by the SDK? | on one call | on every call |
//! |---|---|---|---|
//! | `RequestLimitExceeded` 503 / `Throttling` 400 | yes | every row | error after `max_error_retry_attempts` tries |
//! | connection reset (RST, no answer) | yes (I/O error) | every row | error after all tries |
//! | `InternalError` 500 | yes | every row | error after all tries |
//! | HTML 502 page (not XML) | yes (status 502) | every row | error after all tries |
//! | truncated XML, 200 | yes, as a response error (the plugin's `CompleteXml` check; the SDK alone took it for a shorter page) | every row | error after all tries |
//! | answer slower than the attempt timeout | yes (timeout) | every row | error after all tries, each cut at the timeout |
//!
//! Every error names the connection, the region and the operation
//! (`aws: DescribeInstances in eu-west-1: ...`) and ends the stream with an
//! error status, so the FDW never takes a partial result for a complete one.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use common::moto::{FaultProxy, Moto, ProxyEntry};
use common::*;
use serde_json::{json, Value};

struct Fleet {
    moto: Moto,
    seeded: Value,
}

/// One emulator for the whole test process, seeded once (8 instances in
/// us-east-1, 3 in eu-west-1).
fn fleet() -> &'static Fleet {
    static FLEET: OnceLock<Fleet> = OnceLock::new();
    FLEET.get_or_init(|| {
        let moto = Moto::start();
        let seeded = moto.seed(&[]);
        Fleet { moto, seeded }
    })
}

/// Tests that time AWS calls take this, so that they never share the
/// (single-threaded at heart) emulator with another test's scans.
fn moto_turn() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|p| p.into_inner())
}

fn seeded_ids(region: &str) -> BTreeSet<String> {
    fleet().seeded["regions"][region]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["InstanceId"].as_str().unwrap().to_string())
        .collect()
}

/// A connection config through `endpoint`; `extra` is more HCL lines.
fn config(endpoint: &str, regions: &[&str], extra: &str) -> String {
    let regions: Vec<String> = regions.iter().map(|r| format!("\"{r}\"")).collect();
    format!(
        "access_key = \"AKIDRELIABLE\"\ndefault_region = \"us-east-1\"\nendpoint_url = \"{endpoint}\"\n{extra}regions = [{}]\nsecret_key = \"reliable-secret\"\n",
        regions.join(", ")
    )
}

/// A scenario for the AWS plugin, with the query cache off (every scan calls AWS).
fn aws_scenario(config: &str, env: &[(&str, &str)], steps: Vec<Value>) -> Value {
    let mut e = json!({"AWS_EC2_METADATA_DISABLED": "true", "STEAMPIPE_LOG_LEVEL": "WARN"});
    for (k, v) in env {
        e[*k] = json!(v);
    }
    json!({
        "plugin": target_dir().join("steampipe-plugin-aws"),
        "env": e,
        "cache_options": {"enabled": false, "ttl": 300},
        "connections": [aws_connection("aws", config)],
        "steps": steps,
    })
}

/// An uncached scan of `aws_ec2_instance` (`region` = the given one, if any).
fn scan_request(columns: &[&str], region: Option<&str>) -> Value {
    let quals = match region {
        Some(r) => qual("region", "=", Some(json!({ "stringValue": r }))),
        None => json!({}),
    };
    let mut req = execute("aws_ec2_instance", "aws", columns, quals, None);
    req["executeConnectionData"]["aws"]["cacheEnabled"] = json!(false);
    req
}

fn scan(region: Option<&str>) -> Value {
    json!({"op": "execute", "request": scan_request(&["instance_id", "region"], region)})
}

fn ids(ev: &[Value], step: usize) -> BTreeSet<String> {
    column(ev, step, "instance_id")
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// The DescribeInstances calls the proxy saw, grouped by SDK invocation (one
/// operation call and its retries), in order of first arrival.
fn invocations(calls: &[ProxyEntry]) -> Vec<Vec<ProxyEntry>> {
    let mut order: Vec<String> = Vec::new();
    let mut by: BTreeMap<String, Vec<ProxyEntry>> = BTreeMap::new();
    for c in calls {
        let id = c
            .invocation
            .clone()
            .expect("the SDK sends amz-sdk-invocation-id");
        if !by.contains_key(&id) {
            order.push(id.clone());
        }
        by.entry(id).or_default().push(c.clone());
    }
    order
        .into_iter()
        .map(|id| by.remove(&id).unwrap())
        .collect()
}

fn attempts(inv: &[ProxyEntry]) -> Vec<u64> {
    inv.iter().map(|c| c.attempt.unwrap()).collect()
}

fn in_region(calls: &[ProxyEntry], region: &str) -> Vec<ProxyEntry> {
    calls
        .iter()
        .filter(|c| c.region == region)
        .cloned()
        .collect()
}

/// Runs a scenario like [`run`], but hands each event to `on_event` as soon
/// as sphost prints it, while the scenario is still running.
fn run_live(scenario: &Value, mut on_event: impl FnMut(&Value)) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("scenario.json");
    std::fs::write(&file, serde_json::to_vec_pretty(scenario).unwrap()).unwrap();
    let mut child = Command::new(sphost())
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sphost");
    let pid = child.id() as i32;
    let mut stderr = child.stderr.take().unwrap();
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).unwrap();
        s
    });
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if done_rx.recv_timeout(Duration::from_secs(240)).is_err() {
            // SAFETY: kill(2) on the pid of our own still-running child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    });
    let mut events = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if line.trim().is_empty() {
            continue;
        }
        let v: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad event line {line:?}: {e}"));
        on_event(&v);
        events.push(v);
    }
    let _ = done_tx.send(());
    watchdog.join().unwrap();
    let status = child.wait().unwrap();
    let err = err_t.join().unwrap();
    assert!(
        status.success(),
        "sphost failed ({status}):\nstderr:\n{err}\nevents:\n{events:#?}"
    );
    events
}

/// `VmRSS` (kB) and `Threads` of a process, from `/proc/<pid>/status`.
fn proc_status(pid: u64) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    (field("VmRSS:"), field("Threads:"))
}

/// True once `pid` has exited (gone, or a zombie its parent has yet to reap).
fn process_gone(pid: u64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
    }
}

// ---------------------------------------------------------------------------
// a. throttling

/// With half the DescribeInstances calls throttled, every row still arrives;
/// the proxy log shows each faulted try followed by a retry of the same call.
/// The faults come from a seeded RNG: two runs fault the same tries.
#[test]
fn half_the_calls_throttled_every_row_still_arrives() {
    let _turn = moto_turn();
    let f = fleet();
    let run_once = || {
        let proxy = FaultProxy::start(
            &f.moto.endpoint,
            json!([{"action": "DescribeInstances", "code": "RequestLimitExceeded", "status": 503,
                    "message": "Request limit exceeded.", "share": 0.5, "seed": 7}]),
        );
        let cfg = config(
            &proxy.endpoint,
            &["us-east-1", "eu-west-1"],
            "max_error_retry_attempts = 10\nmin_error_retry_delay = 10\n",
        );
        // One region per scan, one after the other: the calls reach the
        // proxy in a fixed order, so the seeded faults are reproducible.
        let regions = ["us-east-1", "eu-west-1", "us-east-1", "eu-west-1"];
        let ev = run(&aws_scenario(
            &cfg,
            &[],
            regions.iter().map(|r| scan(Some(r))).collect(),
        ));
        for (step, region) in regions.iter().enumerate() {
            let end = one(&ev, "execute_end", Some(step));
            assert_eq!(end["end"], "eof", "scan {step}: {end}");
            assert_eq!(ids(&ev, step), seeded_ids(region), "scan {step} ({region})");
        }
        proxy.calls("DescribeInstances")
    };
    let calls = run_once();
    let invs = invocations(&calls);
    assert_eq!(invs.len(), 4, "one DescribeInstances call per scan");
    for inv in &invs {
        let n = inv.len();
        assert_eq!(
            attempts(inv),
            (1..=n as u64).collect::<Vec<_>>(),
            "tries of one call are numbered 1, 2, ...: {inv:?}"
        );
        assert!(
            inv[..n - 1].iter().all(|c| c.faulted) && !inv[n - 1].faulted,
            "retried while throttled, then answered: {inv:?}"
        );
    }
    let faulted = calls.iter().filter(|c| c.faulted).count();
    let retried = calls.iter().filter(|c| c.attempt > Some(1)).count();
    assert!(faulted >= 1, "the seed throttles some calls: {calls:?}");
    assert_eq!(retried, faulted, "every throttled try was retried");
    eprintln!(
        "figure: share 0.5 throttling: {} DescribeInstances tries for 4 calls, {faulted} throttled, {retried} retries, tries per call {:?}",
        calls.len(),
        invs.iter().map(Vec::len).collect::<Vec<_>>()
    );

    let again = run_once();
    assert_eq!(
        again.iter().map(|c| c.faulted).collect::<Vec<_>>(),
        calls.iter().map(|c| c.faulted).collect::<Vec<_>>(),
        "the same seed faults the same tries"
    );
}

/// Throttled on every try: after `max_error_retry_attempts` tries the scan
/// fails naming the connection, region and operation, and ends with an error
/// even when another region's rows were already sent.
#[test]
fn throttled_until_retries_run_out_the_scan_fails_naming_connection_region_operation() {
    let _turn = moto_turn();
    let f = fleet();
    let proxy = FaultProxy::start(
        &f.moto.endpoint,
        json!([{"action": "DescribeInstances", "region": "us-east-1", "code": "Throttling",
                "status": 400, "message": "Rate exceeded", "share": 1.0}]),
    );
    let cfg = config(
        &proxy.endpoint,
        &["eu-west-1", "us-east-1"],
        "max_error_retry_attempts = 3\nmin_error_retry_delay = 10\n",
    );
    let ev = run(&aws_scenario(&cfg, &[], vec![scan(None)]));
    let end = one(&ev, "execute_end", Some(0));
    assert_eq!(end["end"], "error", "{end}");
    assert_eq!(
        end["message"],
        format!("aws: DescribeInstances in us-east-1: Throttling: Rate exceeded (HTTP 400 from {}, 3 attempts); AWS throttled every try: raise max_error_retry_attempts or min_error_retry_delay in the connection config", proxy.endpoint)
    );
    // eu-west-1's rows may have gone out first; the error still ends the
    // stream, so the FDW fails the query instead of showing them as all.
    let got = ids(&ev, 0);
    assert!(got.is_subset(&seeded_ids("eu-west-1")), "{got:?}");
    let us = in_region(&proxy.calls("DescribeInstances"), "us-east-1");
    assert_eq!(attempts(&us), [1, 2, 3], "{us:?}");
    assert!(us.iter().all(|c| c.faulted));
    eprintln!(
        "figure: throttled on every try: {} tries, then `{}` after {} ms ({} eu-west-1 rows sent before the error)",
        us.len(),
        end["message"].as_str().unwrap(),
        end["ms"],
        got.len()
    );
}

// ---------------------------------------------------------------------------
// b. resets, 500s, truncated and non-XML answers

struct Outcome {
    end: String,
    rows: usize,
    message: String,
    tries: Vec<u64>,
    ms: u64,
}

/// One scan of us-east-1 with `fault` on its first DescribeInstances try
/// only, and one of eu-west-1 with `fault` on every try.
fn with_fault(fault: Value) -> (Outcome, Outcome) {
    let f = fleet();
    let rule = |region: &str, select: Value| {
        let mut r = fault.clone();
        r["action"] = json!("DescribeInstances");
        r["region"] = json!(region);
        for (k, v) in select.as_object().unwrap() {
            r[k] = v.clone();
        }
        r
    };
    let proxy = FaultProxy::start(
        &f.moto.endpoint,
        json!([
            rule("us-east-1", json!({"nth": 1})),
            rule("eu-west-1", json!({"share": 1.0}))
        ]),
    );
    let cfg = config(
        &proxy.endpoint,
        &["us-east-1", "eu-west-1"],
        "max_error_retry_attempts = 3\nmin_error_retry_delay = 10\n",
    );
    let ev = run(&aws_scenario(
        &cfg,
        &[],
        vec![scan(Some("us-east-1")), scan(Some("eu-west-1"))],
    ));
    let calls = proxy.calls("DescribeInstances");
    let outcome = |step: usize, region: &str| {
        let end = one(&ev, "execute_end", Some(step));
        let tries = in_region(&calls, region);
        assert!(
            tries
                .iter()
                .all(|c| c.faulted == (region == "eu-west-1" || c.n == 1)),
            "{tries:?}"
        );
        Outcome {
            end: end["end"].as_str().unwrap().to_string(),
            rows: rows(&ev, step).len(),
            message: end["message"].as_str().unwrap_or("").to_string(),
            tries: attempts(&tries),
            ms: end["ms"].as_u64().unwrap(),
        }
    };
    (outcome(0, "us-east-1"), outcome(1, "eu-west-1"))
}

fn report(kind: &str, once: &Outcome, always: &Outcome) {
    eprintln!(
        "figure: {kind}: once -> {} {} rows, tries {:?}, {} ms {:?}; always -> {} {} rows, tries {:?}, {} ms: {}",
        once.end,
        once.rows,
        once.tries,
        once.ms,
        once.message,
        always.end,
        always.rows,
        always.tries,
        always.ms,
        always.message
    );
}

/// The faults the SDK retries: on one try, every row arrives after a retry;
/// on every try, the scan fails after the 3 tries with an error naming the
/// connection, region and operation.
fn assert_retried(kind: &str, once: &Outcome, always: &Outcome, detail: &str) {
    assert_eq!(once.end, "eof", "{kind} once: {}", once.message);
    assert_eq!(once.rows, 8, "{kind}: every row after the retry");
    assert_eq!(once.tries, [1, 2], "{kind}: one retry");
    assert_eq!(always.end, "error", "{kind} always");
    assert_eq!(always.rows, 0, "{kind} always");
    assert_eq!(always.tries, [1, 2, 3], "{kind}: every try used");
    let prefix = "aws: DescribeInstances in eu-west-1: ";
    assert!(
        always.message.starts_with(prefix) && always.message.contains(detail),
        "{kind}: {:?} should start with {prefix:?} and mention {detail:?}",
        always.message
    );
}

#[test]
fn connection_resets_are_retried_and_persistent_ones_fail_the_scan() {
    let _turn = moto_turn();
    // The proxy closes the connection with a TCP RST and no answer: the SDK
    // sees an I/O error (a dispatch failure), which it retries.
    let (once, always) = with_fault(json!({"fault": "reset"}));
    report("connection reset", &once, &always);
    assert_retried(
        "reset",
        &once,
        &always,
        "closed the connection without an answer, 3 attempts",
    );
}

#[test]
fn internal_errors_are_retried_and_persistent_ones_fail_the_scan() {
    let _turn = moto_turn();
    // An EC2 XML error, HTTP 500, code InternalError: retried (a transient
    // status and a transient error code); the message keeps AWS's code.
    let (once, always) = with_fault(json!({"code": "InternalError", "status": 500,
        "message": "An internal error has occurred."}));
    report("500 InternalError", &once, &always);
    assert_retried(
        "InternalError",
        &once,
        &always,
        "InternalError: An internal error has occurred.",
    );
}

#[test]
fn non_xml_502_pages_are_retried_and_persistent_ones_fail_the_scan() {
    let _turn = moto_turn();
    // An HTML "502 Bad Gateway" page: not an EC2 error, so there is no code;
    // the SDK retries on the 502 status, then the error says what came back
    // (the status), not the page itself.
    let (once, always) = with_fault(json!({"fault": "html", "status": 502}));
    report("HTML 502", &once, &always);
    assert_retried("html", &once, &always, "HTTP 502 without an AWS error code");
    assert!(
        !always.message.contains("<html"),
        "the page is not pasted into the error: {}",
        always.message
    );
}

#[test]
fn truncated_xml_is_retried_and_never_taken_for_a_shorter_page() {
    let _turn = moto_turn();
    // A 200 whose XML stops half way, with a Content-Length that matches what
    // was sent, so the transport sees nothing wrong. The SDK's XML decoder
    // alone accepts such a document as a shorter page: before the plugin's
    // CompleteXml interceptor (src/aws/client.rs) this scan ended `eof` with
    // 4 of 8 rows (us-east-1) and 2 of 3 (eu-west-1), no error. Now an
    // answer whose root element never closes is a response error: retried,
    // and once the tries run out, an error naming the operation and region.
    let (once, always) = with_fault(json!({"fault": "truncate"}));
    report("truncated XML", &once, &always);
    assert_retried("truncate", &once, &always, "incomplete XML answer from ");
    assert!(
        always
            .message
            .contains("without the closing </DescribeInstancesResponse>"),
        "{}",
        always.message
    );
    assert!(
        !always.message.contains("reservationSet"),
        "the half page is not pasted into the error: {}",
        always.message
    );
}

// ---------------------------------------------------------------------------
// c. slow answers and the per-attempt timeout

const ATTEMPT_TIMEOUT: (&str, &str) = ("STEAMPIPE_AWS_ATTEMPT_TIMEOUT_MS", "300");

#[test]
fn an_endpoint_slower_than_the_attempt_timeout_fails_promptly() {
    let _turn = moto_turn();
    let f = fleet();
    let proxy = FaultProxy::start(
        &f.moto.endpoint,
        json!([{"action": "DescribeInstances", "fault": "delay", "delay_ms": 2000, "share": 1.0}]),
    );
    let cfg = config(
        &proxy.endpoint,
        &["us-east-1"],
        "max_error_retry_attempts = 3\nmin_error_retry_delay = 10\n",
    );
    let ev = run(&aws_scenario(&cfg, &[ATTEMPT_TIMEOUT], vec![scan(None)]));
    let end = one(&ev, "execute_end", Some(0));
    assert_eq!(end["end"], "error", "{end}");
    assert_eq!(end["rows"], 0);
    let msg = end["message"].as_str().unwrap();
    assert!(
        msg == format!(
            "aws: DescribeInstances in us-east-1: no answer from {} within 300 ms, 3 attempts",
            proxy.endpoint
        ),
        "{msg}"
    );
    let calls = proxy.calls("DescribeInstances");
    assert_eq!(attempts(&calls), [1, 2, 3], "each timed-out try is retried");
    // Tries start about 300 ms apart, not 2 s apart.
    let span = calls[2].t - calls[0].t;
    assert!(span < 1.5, "tries spread over {span:.2} s");
    let ms = end["ms"].as_u64().unwrap();
    // 3 tries of 2 s each would be 6 s; the timeout cuts each at 300 ms.
    assert!(ms < 2000, "the scan took {ms} ms to fail");
    eprintln!("figure: 2 s delay on every try, 300 ms attempt timeout, 3 tries: failed after {ms} ms: {msg}");
}

#[test]
fn one_slow_answer_is_cut_by_the_attempt_timeout_and_retried() {
    let _turn = moto_turn();
    let f = fleet();
    let proxy = FaultProxy::start(
        &f.moto.endpoint,
        json!([{"action": "DescribeInstances", "fault": "delay", "delay_ms": 2000, "nth": 1}]),
    );
    let cfg = config(
        &proxy.endpoint,
        &["us-east-1"],
        "max_error_retry_attempts = 3\nmin_error_retry_delay = 10\n",
    );
    let ev = run(&aws_scenario(&cfg, &[ATTEMPT_TIMEOUT], vec![scan(None)]));
    let end = one(&ev, "execute_end", Some(0));
    assert_eq!(end["end"], "eof", "{end}");
    assert_eq!(ids(&ev, 0), seeded_ids("us-east-1"));
    let calls = proxy.calls("DescribeInstances");
    assert_eq!(attempts(&calls), [1, 2]);
    assert!(calls[0].faulted && !calls[1].faulted);
    let ms = end["ms"].as_u64().unwrap();
    assert!(
        ms < 2000,
        "the retry did not wait for the slow answer: {ms} ms"
    );
    eprintln!("figure: 2 s delay on the first try, 300 ms attempt timeout: all rows after {ms} ms");
}

// ---------------------------------------------------------------------------
// d. cancellation

/// A scan over two regions, both slowed by the proxy (300 ms per
/// DescribeInstances try); eu-west-1 is also throttled on every try with 20
/// tries allowed, so without a working cancel it would go on retrying, a try
/// every ~300 ms, for seconds. The host cancels after the first row (from
/// us-east-1); from then on no AWS request may start (100 ms of slack).
#[test]
fn a_cancelled_scan_makes_no_more_aws_calls() {
    let _turn = moto_turn();
    let f = fleet();
    let proxy = FaultProxy::start(
        &f.moto.endpoint,
        json!([
            {"action": "DescribeInstances", "region": "eu-west-1", "code": "RequestLimitExceeded",
             "status": 503, "delay_ms": 300, "share": 1.0},
            {"action": "DescribeInstances", "region": "us-east-1", "fault": "delay",
             "delay_ms": 300, "share": 1.0},
        ]),
    );
    let cfg = config(
        &proxy.endpoint,
        &["us-east-1", "eu-west-1"],
        "max_error_retry_attempts = 20\nmin_error_retry_delay = 20\n",
    );
    let ev = run(&aws_scenario(
        &cfg,
        &[],
        vec![
            json!({"op": "execute", "request": scan_request(&["instance_id", "region"], None),
                    "cancel_after_rows": 1, "hold_ms": 2000}),
        ],
    ));
    let end = one(&ev, "execute_end", Some(0));
    assert_eq!(end["end"], "cancelled", "{end}");
    let cancel_t = end["cancel_t"].as_f64().expect("cancel_t");
    let all = proxy.entries();
    let eu = in_region(&proxy.calls("DescribeInstances"), "eu-west-1");
    assert!(
        eu.iter().any(|c| c.t < cancel_t),
        "eu-west-1 was being retried when the scan was cancelled: {eu:?}"
    );
    let late: Vec<&ProxyEntry> = all.iter().filter(|c| c.t > cancel_t + 0.1).collect();
    assert!(late.is_empty(), "AWS calls after the cancel: {late:?}");
    let last = all.iter().map(|c| c.t).fold(f64::MIN, f64::max);
    eprintln!(
        "figure: cancel after 1 row: {} eu-west-1 tries before the cancel, last AWS request started {:.0} ms after the cancel, none in the 2 s after",
        eu.len(),
        (last - cancel_t) * 1000.0
    );
}

/// 1000 scans of the SDK test plugin's endless `test_stream`, each cancelled
/// after 5 rows, 50 at a time: afterwards the plugin has as many threads as
/// before, about the same RSS, and every producer task was stopped.
#[test]
fn a_thousand_cancelled_scans_leave_no_threads_memory_or_tasks_behind() {
    let req = execute("test_stream", "c1", &["n"], json!({}), None);
    let batch = |scans: usize| json!({"op": "parallel", "scans": scans, "request": req, "cancel_after_rows": 5});
    // Warm-up (allocator arenas, runtime threads), a pause to measure, the
    // 1000 scans, a pause to measure again.
    let mut steps = vec![batch(50), batch(50), json!({"op": "sleep", "ms": 1500})];
    for _ in 0..20 {
        steps.push(batch(50));
    }
    steps.push(json!({"op": "sleep", "ms": 1500}));
    let last_batch = steps.len() - 2;
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut sc = scenario(vec![connection("c1", "")], steps);
    sc["stderr_file"] = json!(log.path());

    let mut pid = 0;
    let mut samples = Vec::new();
    let t0 = Instant::now();
    let ev = run_live(&sc, |e| {
        if e["event"] == "started" {
            pid = e["pid"].as_u64().unwrap();
        }
        // Sample in the middle of each pause, once cancelled scans have wound down.
        if e["event"] == "parallel_end" && (e["step"] == 1 || e["step"] == last_batch) {
            std::thread::sleep(Duration::from_millis(700));
            samples.push(proc_status(pid));
        }
    });
    let elapsed = t0.elapsed();
    let scans: Vec<&Value> = events(&ev, "parallel_scan", None)
        .into_iter()
        .filter(|e| e["step"].as_u64().unwrap() >= 3)
        .collect();
    assert_eq!(scans.len(), 1000);
    assert!(
        scans
            .iter()
            .all(|s| s["end"] == "cancelled" && s["rows"] == 5),
        "{:?}",
        scans.iter().find(|s| s["end"] != "cancelled")
    );
    let [(rss0, threads0), (rss1, threads1)] = samples[..] else {
        panic!("expected two samples, got {samples:?}")
    };
    eprintln!(
        "figure: 1000 cancelled scans in {:.1} s: RSS {rss0} kB -> {rss1} kB, threads {threads0} -> {threads1}",
        elapsed.as_secs_f64()
    );
    assert_eq!(threads1, threads0, "threads before and after");
    assert!(
        rss1 <= (rss0 + rss0 / 5).max(rss0 + 8 * 1024),
        "RSS grew from {rss0} kB to {rss1} kB"
    );
    let log = std::fs::read_to_string(log.path()).unwrap();
    let started = log.matches("test_stream producer started").count();
    let stopped = log.matches("test_stream producer stopped after").count();
    assert_eq!(started, 1100, "every scan started its producer");
    assert_eq!(stopped, started, "every producer was stopped");
}

// ---------------------------------------------------------------------------
// e. SIGKILL and the stale socket

fn is_socket(p: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::symlink_metadata(p)
        .map(|m| m.file_type().is_socket())
        .unwrap_or(false)
}

#[test]
fn a_sigkilled_plugin_restarts_next_to_its_stale_socket() {
    let f = fleet();
    let dir = tempfile::tempdir().unwrap();
    let dir_s = dir.path().to_str().unwrap();
    let cfg = config(&f.moto.endpoint, &["us-east-1"], "");
    let env = [("PLUGIN_UNIX_SOCKET_DIR", dir_s)];

    // Run 1: a query, then SIGKILL from here while sphost sleeps; the next
    // query then fails (the plugin is gone).
    let mut first: Option<(u64, PathBuf)> = None;
    let mut left_behind = false;
    let ev = run_live(
        &aws_scenario(
            &cfg,
            &env,
            vec![scan(None), json!({"op": "sleep", "ms": 1500}), scan(None)],
        ),
        |e| {
            if e["event"] == "started" {
                first = Some((
                    e["pid"].as_u64().unwrap(),
                    PathBuf::from(e["address"].as_str().unwrap()),
                ));
            }
            if e["event"] == "execute_end" && e["step"] == 0 {
                let (pid, sock) = first.clone().unwrap();
                // SAFETY: kill(2) with a pid sphost just reported.
                assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
                let t = Instant::now();
                while !process_gone(pid) {
                    assert!(
                        t.elapsed() < Duration::from_secs(5),
                        "pid {pid} survived SIGKILL"
                    );
                    std::thread::sleep(Duration::from_millis(10));
                }
                left_behind = is_socket(&sock);
            }
        },
    );
    let (_, stale) = first.unwrap();
    assert_eq!(ids(&ev, 0), seeded_ids("us-east-1"));
    assert_eq!(stale.parent(), Some(dir.path()));
    assert!(left_behind, "a SIGKILLed plugin cannot remove its socket");
    assert_eq!(one(&ev, "execute_end", Some(2))["end"], "error");
    assert!(is_socket(&stale), "the stale socket is still on disk");

    // Run 2: the same socket dir, the stale socket still there.
    let ev = run(&aws_scenario(&cfg, &env, vec![scan(None), scan(None)]));
    let started = one(&ev, "started", None);
    let fresh = PathBuf::from(started["address"].as_str().unwrap());
    assert_eq!(fresh.parent(), Some(dir.path()), "same socket dir");
    assert_ne!(fresh, stale);
    assert_eq!(one(&ev, "ping", None)["ok"], true);
    for step in [0, 1] {
        assert_eq!(one(&ev, "execute_end", Some(step))["end"], "eof");
        assert_eq!(ids(&ev, step), seeded_ids("us-east-1"));
    }
    assert!(
        is_socket(&stale),
        "the new plugin neither needed nor touched the stale socket"
    );
    assert!(
        !fresh.exists(),
        "the new plugin removed its own socket on kill"
    );
}

// ---------------------------------------------------------------------------
// f. slow consumers and sustained load

fn fast_config(endpoint: &str) -> String {
    format!(
        "access_key = \"AKIDLOAD\"\ndefault_region = \"us-east-1\"\nendpoint_url = \"{endpoint}\"\nregions = [\"us-east-1\"]\nsecret_key = \"x\"\n"
    )
}

fn fast_scenario(endpoint: &str, steps: Vec<Value>) -> Value {
    let mut sc = scenario(
        vec![
            json!({"connection": "aws", "plugin": "aws", "pluginShortName": "aws", "config": fast_config(endpoint)}),
        ],
        steps,
    );
    sc["plugin"] = json!(target_dir().join("steampipe-plugin-aws"));
    sc["env"] = json!({"AWS_EC2_METADATA_DISABLED": "true"});
    sc
}

fn uncached(columns: &[&str]) -> Value {
    let mut req = execute("aws_ec2_instance", "aws", columns, json!({}), None);
    req["executeConnectionData"]["aws"]["cacheEnabled"] = json!(false);
    req
}

/// Samples a process's RSS every 50 ms from another thread until dropped.
struct RssSampler {
    pid: std::sync::Arc<std::sync::atomic::AtomicU64>,
    peak: std::sync::Arc<std::sync::atomic::AtomicU64>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RssSampler {
    fn new() -> RssSampler {
        use std::sync::atomic::Ordering::SeqCst;
        let pid = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (p, k, s) = (pid.clone(), peak.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(SeqCst) {
                let id = p.load(SeqCst);
                if id != 0 && !process_gone(id) {
                    if let Ok(status) = std::fs::read_to_string(format!("/proc/{id}/status")) {
                        if let Some(kb) = status
                            .lines()
                            .find_map(|l| l.strip_prefix("VmRSS:"))
                            .and_then(|v| v.split_whitespace().next())
                            .and_then(|v| v.parse::<u64>().ok())
                        {
                            k.fetch_max(kb, SeqCst);
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        RssSampler {
            pid,
            peak,
            stop,
            thread: Some(thread),
        }
    }
    fn watch(&self, pid: u64) {
        self.pid.store(pid, std::sync::atomic::Ordering::SeqCst);
    }
    fn peak_kb(&self) -> u64 {
        self.peak.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A client reading one row every 10 ms while 100,000 are available: the
/// plugin's memory stays bounded and it fetches pages only as the rows are
/// read (back-pressure reaches the paginator).
#[test]
fn a_slow_consumer_keeps_memory_bounded_and_pages_unfetched() {
    let ep = common::moto::FastEndpoint::start(100_000, 0, &["us-east-1"]);
    let sampler = RssSampler::new();
    let steps = vec![json!({
        "op": "execute", "quiet": true, "read_delay_ms": 10, "cancel_after_rows": 1200,
        "request": uncached(&["instance_id", "metadata_options", "tags", "network_interfaces"]),
    })];
    let ev = run_live(&fast_scenario(&ep.endpoint, steps), |e| {
        if e["event"] == "started" {
            sampler.watch(e["pid"].as_u64().unwrap());
        }
    });
    let end = one(&ev, "execute_end", Some(0));
    assert_eq!(end["rows"], 1200);
    let pages = ep.pages();
    let peak_mb = sampler.peak_kb() as f64 / 1024.0;
    eprintln!(
        "figure: slow consumer read 1200 rows in {:.1} s; {} of 100 pages fetched; peak RSS {peak_mb:.1} MB",
        end["ms"].as_f64().unwrap() / 1000.0,
        pages.len()
    );
    assert!(
        pages.len() <= 5,
        "{} pages fetched for 1200 rows read: no back-pressure",
        pages.len()
    );
    assert!(peak_mb < 64.0, "peak RSS {peak_mb:.1} MB");
}

/// 64 concurrent scans over 8 reattached clients, for about 60 s: every scan
/// returns every row, and the plugin's RSS at the end is within 10% of its RSS
/// after the first round.
#[test]
fn sixty_seconds_of_64_concurrent_scans_over_8_clients() {
    const INSTANCES: usize = 1000;
    let ep = common::moto::FastEndpoint::start(INSTANCES, 0, &["us-east-1"]);
    let req = uncached(&["instance_id", "metadata_options", "title"]);
    let round =
        json!({"op": "parallel", "scans": 64, "clients": [0, 1, 2, 3, 4, 5, 6, 7], "request": req});
    // One round to time it, then enough rounds for about a minute.
    let t = Instant::now();
    run(&fast_scenario(
        &ep.endpoint,
        vec![json!({"op": "reattach", "count": 7}), round.clone()],
    ));
    let per_round = t.elapsed().as_secs_f64().max(0.5);
    let rounds = ((60.0 / per_round).ceil() as usize).clamp(3, 120);
    // RSS is read in a pause after round 1 and after the last round: the host
    // sees a scan's end slightly before the plugin has finished the Execute
    // call and given its pages back, so a reading taken at once can catch that.
    let pause = json!({"op": "sleep", "ms": 300});
    let mut steps = vec![
        json!({"op": "reattach", "count": 7}),
        round.clone(),
        pause.clone(),
    ];
    steps.extend((1..rounds).map(|_| round.clone()));
    steps.push(pause);
    let mut pid = 0;
    let mut samples = Vec::new();
    let t = Instant::now();
    let ev = run_live(&fast_scenario(&ep.endpoint, steps), |e| {
        if e["event"] == "started" {
            pid = e["pid"].as_u64().unwrap();
        }
        if e["event"] == "slept" {
            samples.push(proc_status(pid).0);
        }
    });
    let elapsed = t.elapsed();
    let scans = events(&ev, "parallel_scan", None);
    assert_eq!(scans.len(), 64 * rounds);
    let digest = &scans[0]["row_digest"];
    for s in &scans {
        assert_eq!(s["end"], "eof", "{s}");
        assert_eq!(s["rows"], INSTANCES, "{s}");
        assert_eq!(&s["row_digest"], digest, "every scan returns the same rows");
    }
    let clients: BTreeSet<u64> = scans
        .iter()
        .map(|s| s["client"].as_u64().unwrap())
        .collect();
    assert_eq!(clients.len(), 8);
    let (start, end) = (samples[0], samples[1]);
    eprintln!(
        "figure: {} scans ({rounds} rounds of 64 over 8 clients) in {:.0} s; RSS {start} kB after round 1, {end} kB at the end",
        scans.len(),
        elapsed.as_secs_f64()
    );
    assert!(elapsed.as_secs() >= 30, "the load ran {:?}", elapsed);
    assert!(
        end <= start + start / 10,
        "RSS grew from {start} kB to {end} kB"
    );
}
