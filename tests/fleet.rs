//! Many connections, as an organisation has them, through sphost
//! (steampipe-plugin-sdk's client) against the moto emulator behind the
//! fault proxy: an aggregator's connections are scanned at most
//! `STEAMPIPE_MAX_CONCURRENT_CONNECTIONS` at a time (counted in flight at
//! the proxy), and connections with profiles of their own each sign with
//! their profile's keys although each gets only its profile's sections of
//! the shared files (`src/aws/profiles.rs`). The figures for a thousand
//! connections are in `benches/fleet.rs`.

mod common;

use std::sync::{Mutex, MutexGuard, OnceLock};

use common::moto::{FaultProxy, Moto, ProxyEntry};
use common::*;
use serde_json::{json, Value};

fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(|| {
        let m = Moto::start();
        m.seed(&[]);
        m
    })
}

fn turn() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|p| p.into_inner())
}

fn aggregator_scan(connections: &[(String, String)], env: Value) -> Vec<Value> {
    let mut conns: Vec<Value> = connections
        .iter()
        .map(|(n, c)| aws_connection(n, c))
        .collect();
    let mut agg = aws_connection("all", "");
    agg["childConnections"] = json!(connections.iter().map(|(n, _)| n).collect::<Vec<_>>());
    agg["type"] = json!("aggregator");
    conns.push(agg);
    let mut req = execute(
        "aws_ec2_instance",
        "all",
        &["instance_id", "account_id"],
        json!({}),
        None,
    );
    req["executeConnectionData"] = json!({"all": {"cacheEnabled": false}});
    let mut e = json!({"AWS_EC2_METADATA_DISABLED": "true", "STEAMPIPE_LOG_LEVEL": "WARN"});
    for (k, v) in env.as_object().unwrap() {
        e[k] = v.clone();
    }
    run(&json!({
        "plugin": target_dir().join("steampipe-plugin-aws"),
        "env": e,
        "cache_options": {"enabled": false, "ttl": 300},
        "connections": conns,
        "steps": [{"op": "execute", "request": req}],
    }))
}

fn most_in_flight(calls: &[ProxyEntry]) -> usize {
    let mut edges: Vec<(f64, i32)> = Vec::new();
    for c in calls {
        edges.push((c.t, 1));
        edges.push((c.t_end.expect("every call ended"), -1));
    }
    edges.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut now, mut most) = (0, 0);
    for (_, d) in edges {
        now += d;
        most = most.max(now);
    }
    most as usize
}

/// 12 connections behind an aggregator, each DescribeInstances held 400 ms
/// at the proxy: with `STEAMPIPE_MAX_CONCURRENT_CONNECTIONS=3` at most 3
/// are in flight (as the SDK's semaphore per Execute call), against all 12
/// at once with the default (25).
#[test]
fn an_aggregator_scans_at_most_max_concurrent_connections_at_once() {
    let _t = turn();
    let conns: Vec<(String, String)> = (0..12)
        .map(|i| {
            (
                format!("acct_{i:02}"),
                String::new(), // filled with the proxy's endpoint below
            )
        })
        .collect();
    let run_with = |env: Value| {
        let proxy = FaultProxy::start(
            &moto().endpoint,
            json!([{"action": "DescribeInstances", "fault": "delay", "delay_ms": 400, "times": -1}]),
        );
        let conns: Vec<(String, String)> = conns
            .iter()
            .enumerate()
            .map(|(i, (n, _))| {
                (
                    n.clone(),
                    format!(
                        "access_key = \"AKIDFLEET{i:02}\"\nsecret_key = \"s{i}\"\ndefault_region = \"us-east-1\"\nendpoint_url = \"{}\"\nregions = [\"us-east-1\"]\n",
                        proxy.endpoint
                    ),
                )
            })
            .collect();
        let ev = aggregator_scan(&conns, env);
        let end = one(&ev, "execute_end", Some(0));
        assert_eq!(end["end"], "eof", "{end}");
        assert_eq!(
            rows(&ev, 0).len(),
            12 * 8,
            "8 instances for each connection"
        );
        let calls = proxy.calls("DescribeInstances");
        assert_eq!(calls.len(), 12);
        let keys: std::collections::BTreeSet<&str> = calls.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(keys.len(), 12, "each connection signs with its own keys");
        most_in_flight(&calls)
    };
    let default = run_with(json!({}));
    let three = run_with(json!({"STEAMPIPE_MAX_CONCURRENT_CONNECTIONS": "3"}));
    eprintln!(
        "figure: 12 connections' DescribeInstances in flight at most: {default} by default, {three} with STEAMPIPE_MAX_CONCURRENT_CONNECTIONS=3"
    );
    assert!(default > 3, "baseline: more than 3 at once ({default})");
    assert_eq!(three, 3);
}

/// Connections with their own profiles (keys in the credentials file,
/// region in the config file, among other accounts' profiles) each sign
/// with their profile's key; a connection naming a profile the files do
/// not have fails with the SDK's own error, naming the profile.
#[test]
fn profile_connections_sign_with_their_own_profile() {
    let _t = turn();
    let proxy = FaultProxy::start(&moto().endpoint, json!([]));
    let dir = tempfile::tempdir().unwrap();
    let mut config = String::from("[default]\nregion = eu-west-1\n");
    let mut creds = String::new();
    for i in 0..50 {
        config.push_str(&format!("[profile acct{i}]\nregion = us-east-1\n"));
        creds.push_str(&format!(
            "[acct{i}]\naws_access_key_id = AKIDPROFILE{i:02}\naws_secret_access_key = secret{i}\n"
        ));
    }
    std::fs::write(dir.path().join("config"), config).unwrap();
    std::fs::write(dir.path().join("credentials"), creds).unwrap();
    let cfg = |profile: &str| {
        format!(
            "profile = \"{profile}\"\nendpoint_url = \"{}\"\nregions = [\"us-east-1\"]\n",
            proxy.endpoint
        )
    };
    let env = json!({
        "AWS_CONFIG_FILE": dir.path().join("config"),
        "AWS_SHARED_CREDENTIALS_FILE": dir.path().join("credentials"),
    });
    let ev = aggregator_scan(
        &[
            ("a7".to_string(), cfg("acct7")),
            ("a42".to_string(), cfg("acct42")),
        ],
        env.clone(),
    );
    let end = one(&ev, "execute_end", Some(0));
    assert_eq!(end["end"], "eof", "{end}");
    assert_eq!(rows(&ev, 0).len(), 16);
    let keys: std::collections::BTreeSet<String> = proxy
        .calls("DescribeInstances")
        .iter()
        .map(|c| format!("{}@{}", c.key, c.region))
        .collect();
    assert_eq!(
        keys,
        ["AKIDPROFILE07@us-east-1", "AKIDPROFILE42@us-east-1"]
            .map(String::from)
            .into()
    );

    let ev = aggregator_scan(&[("nope".to_string(), cfg("acct_missing"))], env);
    let end = one(&ev, "execute_end", Some(0));
    let msg = end["error"].as_str().unwrap_or_default();
    assert!(msg.contains("acct_missing"), "{end}");
}
