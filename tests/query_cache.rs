//! The query cache, as Steampipe's: repeated scans covered by a cached one are
//! served without calling AWS; per-scan and host settings, TTL, clearing a
//! connection, concurrent identical scans sharing one fetch, and stricter
//! scans served from a complete looser one. Shown by
//! counting the DescribeInstances calls the moto emulator recorded.

mod common;

use std::sync::OnceLock;

use common::moto::Moto;
use common::*;
use serde_json::{json, Value};

struct Fleet {
    moto: Moto,
    seeded: Value,
}

fn fleet() -> &'static Fleet {
    static F: OnceLock<Fleet> = OnceLock::new();
    F.get_or_init(|| {
        let moto = Moto::start();
        let seeded = moto.seed(&[]);
        moto.start_recording();
        Fleet { moto, seeded }
    })
}

fn instances() -> usize {
    fleet().seeded["regions"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_array().unwrap().len())
        .sum()
}

fn scenario_for(key: &str, steps: Vec<Value>) -> Value {
    let f = fleet();
    let config = format!(
        "access_key = \"{key}\"\ndefault_region = \"us-east-1\"\nendpoint_url = \"{}\"\nregions = [\"us-east-1\", \"eu-west-1\"]\nsecret_key = \"x\"\n",
        f.moto.endpoint
    );
    let mut sc = scenario(
        vec![
            json!({"connection": "aws", "plugin": "aws", "pluginShortName": "aws", "config": config}),
        ],
        steps,
    );
    sc["plugin"] = json!(target_dir().join("steampipe-plugin-aws"));
    sc["env"] = json!({"AWS_EC2_METADATA_DISABLED": "true"});
    sc
}

fn scan(columns: &[&str], limit: Option<i64>) -> Value {
    json!({"op": "execute", "request": execute("aws_ec2_instance", "aws", columns, json!({}), limit)})
}

fn with_cache(mut step: Value, enabled: bool, ttl: &str) -> Value {
    step["request"]["executeConnectionData"]["aws"]["cacheEnabled"] = json!(enabled);
    step["request"]["executeConnectionData"]["aws"]["cacheTtl"] = json!(ttl);
    step
}

fn describe_calls(key: &str) -> usize {
    fleet()
        .moto
        .recording()
        .iter()
        .filter(|r| r.access_key == key && r.action == "DescribeInstances")
        .count()
}

fn ids(ev: &[Value], step: usize) -> Vec<String> {
    let mut v: Vec<String> = column(ev, step, "instance_id")
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn a_repeated_scan_covered_by_a_cached_one_does_not_call_aws() {
    let key = "AKIDCACHEHIT";
    let ev = run(&scenario_for(
        key,
        vec![
            scan(&["instance_id", "metadata_options"], None),
            scan(&["instance_id", "metadata_options"], None),
            scan(&["instance_id"], None),    // fewer columns: covered
            scan(&["instance_id"], Some(3)), // a limit: covered by the unlimited scan
        ],
    ));
    assert_eq!(rows(&ev, 0).len(), instances());
    assert_eq!(ids(&ev, 0), ids(&ev, 1));
    assert_eq!(ids(&ev, 0), ids(&ev, 2));
    assert_eq!(rows(&ev, 3).len(), 3);
    assert_eq!(
        describe_calls(key),
        2,
        "one DescribeInstances per region, for the first scan only"
    );
    // A column the cached scan did not fetch needs a new fetch.
    let key2 = "AKIDCACHEMISS";
    run(&scenario_for(
        key2,
        vec![
            scan(&["instance_id"], None),
            scan(&["instance_id", "title"], None),
        ],
    ));
    assert_eq!(describe_calls(key2), 4);
}

#[test]
fn the_cache_follows_host_and_scan_settings_and_its_ttl() {
    // Off for the scan.
    let key = "AKIDCACHEOFF";
    run(&scenario_for(
        key,
        vec![
            with_cache(scan(&["instance_id"], None), false, "300"),
            with_cache(scan(&["instance_id"], None), false, "300"),
        ],
    ));
    assert_eq!(describe_calls(key), 4);
    // Off for the host (SetCacheOptions enabled = false).
    let key = "AKIDCACHEHOSTOFF";
    let mut sc = scenario_for(
        key,
        vec![scan(&["instance_id"], None), scan(&["instance_id"], None)],
    );
    sc["cache_options"] = json!({"enabled": false, "ttl": "300"});
    run(&sc);
    assert_eq!(describe_calls(key), 4);
    // A 1-second TTL expires.
    let key = "AKIDCACHETTL";
    run(&scenario_for(
        key,
        vec![
            with_cache(scan(&["instance_id"], None), true, "1"),
            with_cache(scan(&["instance_id"], None), true, "1"),
            json!({"op": "sleep", "ms": 1300}),
            with_cache(scan(&["instance_id"], None), true, "1"),
        ],
    ));
    assert_eq!(describe_calls(key), 4, "fetched, served, expired, fetched");
    // Rows cached longer ago than the scan's TTL do not serve it: after
    // `.cache clear` the FDW sends the seconds since the clear as the TTL.
    let key = "AKIDCACHECLEARTIME";
    let ev = run(&scenario_for(
        key,
        vec![
            with_cache(scan(&["instance_id"], None), true, "300"),
            json!({"op": "sleep", "ms": 1300}),
            with_cache(scan(&["instance_id"], None), true, "1"),
            with_cache(scan(&["instance_id"], None), true, "300"),
        ],
    ));
    assert_eq!(
        describe_calls(key),
        4,
        "fetched, too old for a 1 s TTL so fetched, then served"
    );
    let hit =
        |step: usize| one(&ev, "execute_end", Some(step))["metadata"]["aws"]["cache_hit"].clone();
    assert_eq!(
        [hit(0), hit(2), hit(3)],
        [json!(false), json!(false), json!(true)]
    );
}

#[test]
fn clearing_a_connections_cache_makes_the_next_scan_fetch() {
    let key = "AKIDCACHECLEAR";
    run(&scenario_for(
        key,
        vec![
            scan(&["instance_id"], None),
            scan(&["instance_id"], None),
            json!({"op": "rpc", "method": "SetConnectionCacheOptions", "request": {"clearCacheForConnection": "aws"}}),
            scan(&["instance_id"], None),
        ],
    ));
    assert_eq!(describe_calls(key), 4);
}

#[test]
fn concurrent_identical_scans_share_one_fetch() {
    let key = "AKIDCACHESHARE";
    let req = execute(
        "aws_ec2_instance",
        "aws",
        &["instance_id", "metadata_options"],
        json!({}),
        None,
    );
    let ev = run(&scenario_for(
        key,
        vec![
            json!({"op": "reattach", "count": 3}),
            json!({"op": "parallel", "scans": 8, "clients": [0, 1, 2, 3], "request": req}),
        ],
    ));
    let scans = events(&ev, "parallel_scan", Some(1));
    assert_eq!(scans.len(), 8);
    for s in &scans {
        assert_eq!(s["rows"], instances());
        assert_eq!(s["row_digest"], scans[0]["row_digest"]);
    }
    assert_eq!(describe_calls(key), 2, "8 scans, one fetch per region");
}

fn scan_where(columns: &[&str], quals: Value, limit: Option<i64>) -> Value {
    json!({"op": "execute", "request": execute("aws_ec2_instance", "aws", columns, quals, limit)})
}

#[test]
fn a_stricter_scan_is_served_from_a_complete_looser_one_and_filtered() {
    let key = "AKIDCACHELOOSER";
    let running = qual(
        "instance_state",
        "=",
        Some(json!({"stringValue": "running"})),
    );
    let ev = run(&scenario_for(
        key,
        vec![
            // 0: complete, no quals
            scan(&["instance_id", "instance_state"], None),
            // 1: stricter, served and filtered here (the qual's column was kept)
            scan_where(&["instance_id", "instance_state"], running.clone(), None),
            // 2: stricter with a limit: the limit counts only matching rows
            scan_where(&["instance_id"], running.clone(), Some(2)),
        ],
    ));
    let all = rows(&ev, 0);
    assert_eq!(all.len(), instances());
    let mut want: Vec<String> = all
        .iter()
        .filter(|r| r["values"]["instance_state"] == "running")
        .map(|r| r["values"]["instance_id"].as_str().unwrap().to_string())
        .collect();
    want.sort();
    assert!(
        !want.is_empty() && want.len() < all.len(),
        "the fleet has running and other instances"
    );
    assert_eq!(ids(&ev, 1), want, "exactly the running instances");
    let limited = ids(&ev, 2);
    assert_eq!(limited.len(), 2);
    assert!(limited.iter().all(|id| want.contains(id)), "{limited:?}");
    assert_eq!(
        describe_calls(key),
        2,
        "the stricter scans made no DescribeInstances call"
    );

    // A cached scan with a limit is not complete, and one whose rows lack the
    // qual's column cannot be filtered before a limit: both fetch.
    let key = "AKIDCACHELOOSER2";
    run(&scenario_for(
        key,
        vec![
            scan(&["instance_id", "instance_state"], Some(100)),
            scan_where(&["instance_id"], running.clone(), None),
            scan(&["instance_id"], None),
            scan_where(
                &["instance_id"],
                qual(
                    "instance_state",
                    "=",
                    Some(json!({"stringValue": "stopped"})),
                ),
                Some(2),
            ),
        ],
    ));
    assert_eq!(describe_calls(key), 2 + 2 + 2 + 2);
}
