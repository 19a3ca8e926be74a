//! Scan throughput of `aws_ec2_instance` (prints figures; asserts nothing about speed).
//!
//! Seeds 5,000 instances into the moto emulator, then measures rows per second
//! through sphost (steampipe-plugin-sdk's client) (as the FDW reads them) for
//! `select instance_id, metadata_options` and for every column the schema
//! lists without a hydrate call.
//! The baseline, measured in the same run against the same emulator, is boto3
//! paging through DescribeInstances for the same instances: the emulator is
//! the bottleneck, so the ratio shows what the plugin adds on top of it.
//! Run with `cargo bench --bench ec2_scan`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::Command;
use std::time::Instant;

use common::moto::{python, Moto};
use serde_json::{json, Value};

const REGION: &str = "us-west-2";
const COUNT: usize = 5000;
const RUNS: usize = 3;

fn main() {
    let moto = Moto::start();
    let t = Instant::now();
    moto.seed(&[
        "--no-main",
        "--bulk-region",
        REGION,
        "--bulk-count",
        &COUNT.to_string(),
    ]);
    println!(
        "seeded {COUNT} instances in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // Baseline: boto3 paging DescribeInstances (1000 per page) over the same emulator.
    let script = format!(
        "import boto3,time\nc=boto3.client('ec2',region_name='{REGION}',endpoint_url='{}',aws_access_key_id='a',aws_secret_access_key='b')\n\
         best=1e9\nfor _ in range({RUNS}):\n  t=time.time();n=0\n  for p in c.get_paginator('describe_instances').paginate(PaginationConfig={{'PageSize':1000}}):\n    n+=sum(len(r['Instances']) for r in p['Reservations'])\n  best=min(best,time.time()-t)\nprint(n,best)\n",
        moto.endpoint
    );
    let out = Command::new(python())
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text.split_whitespace();
    let n: usize = it.next().expect("boto3 baseline").parse().unwrap();
    let base_s: f64 = it.next().unwrap().parse().unwrap();
    assert_eq!(n, COUNT);
    let base_rate = n as f64 / base_s;

    let plugin = common::target_dir().join("steampipe-plugin-aws");
    let config = format!(
        "access_key = \"AKIDBENCH\"\ndefault_region = \"{REGION}\"\nendpoint_url = \"{}\"\nregions = [\"{REGION}\"]\nsecret_key = \"bench\"\n",
        moto.endpoint
    );
    let schema = common::run(&json!({
        "plugin": plugin, "env": {"AWS_EC2_METADATA_DISABLED": "true"},
        "connections": [{"connection": "aws", "plugin": "aws", "pluginShortName": "aws", "config": config}],
        "steps": [{"op": "get_schema", "connection": "aws"}],
    }));
    let columns: Vec<String> = common::one(&schema, "schema", Some(0))["response"]["schema"]
        ["schema"]["aws_ec2_instance"]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            c["hydrate"] == ""
                && !["sp_connection_name", "sp_ctx", "_ctx"].contains(&c["name"].as_str().unwrap())
        })
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    let narrow = vec!["instance_id".to_string(), "metadata_options".to_string()];

    let mut report = Vec::new();
    let all_label = format!("all {} non-hydrated columns", columns.len());
    for (label, cols) in [
        ("instance_id, metadata_options", &narrow),
        (all_label.as_str(), &columns),
    ] {
        let cols: Vec<&str> = cols.iter().map(String::as_str).collect();
        let steps: Vec<Value> = (0..RUNS)
            .map(|_| json!({"op": "execute", "quiet": true, "request": common::execute("aws_ec2_instance", "aws", &cols, json!({}), None)}))
            .collect();
        let ev = common::run(&json!({
            "plugin": plugin, "env": {"AWS_EC2_METADATA_DISABLED": "true"},
            "connections": [{"connection": "aws", "plugin": "aws", "pluginShortName": "aws", "config": config}],
            "steps": steps,
        }));
        let best_ms = common::events(&ev, "execute_end", None)
            .iter()
            .map(|e| {
                assert_eq!(e["rows"], COUNT, "{e}");
                e["ms"].as_f64().unwrap()
            })
            .fold(f64::MAX, f64::min);
        report.push((label, COUNT as f64 / (best_ms / 1000.0), best_ms));
    }

    println!("ec2 scan benchmark: {COUNT} instances in one region, moto emulator, best of {RUNS}");
    println!(
        "  baseline boto3 DescribeInstances paging      {:9.0} rows/s  ({:.0} ms)",
        base_rate,
        base_s * 1000.0
    );
    for (label, rate, ms) in report {
        println!(
            "  plugin: {label:<36} {rate:9.0} rows/s  ({ms:.0} ms, {:.2}x baseline)",
            rate / base_rate
        );
    }
}
