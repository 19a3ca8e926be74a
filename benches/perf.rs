//! The performance table (prints figures; asserts nothing about speed).
//! Run with `cargo bench --bench perf` (a few minutes on 2 cores).
//!
//! Every figure has its baseline measured in the same run:
//! - spawn to handshake line and to the first GetSchema answer (median of 20)
//!   against fork+exec of /bin/true;
//! - rows/s through Execute (via sphost (steampipe-plugin-sdk's client)) for
//!   `instance_id, metadata_options` and for all non-hydrated columns over
//!   100,000 instances, against the floor: a bare aws-sdk-ec2 paginator loop
//!   over the same endpoint in this process;
//! - the plugin's idle and peak RSS;
//! - 8 regions with 100 ms added per page against one region;
//! - a repeated query served from the query cache against the first run;
//! - the stripped release binary's size.
//!
//! The endpoint is `tests/fixtures/bench_endpoint.py`: DescribeInstances
//! pages recorded from moto, replicated to distinct ids, served from memory.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/host_run.rs"]
mod host_run;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use host_run::{cpu_ms, host_run};

use serde_json::{json, Value};

const BIG: usize = 100_000;
const REGION: &str = "us-east-1";
const EIGHT: [&str; 8] = [
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "eu-west-1",
    "eu-west-2",
    "eu-central-1",
    "ap-southeast-2",
];

use common::moto::FastEndpoint;

fn endpoint(instances: usize, latency_ms: u64, regions: &[&str], page_size: usize) -> FastEndpoint {
    FastEndpoint::start_paged(instances, latency_ms, regions, page_size)
}

fn config(url: &str, regions: &[&str]) -> String {
    let regions: Vec<String> = regions.iter().map(|r| format!("\"{r}\"")).collect();
    format!(
        "access_key = \"AKIDPERF\"\ndefault_region = \"{REGION}\"\nendpoint_url = \"{url}\"\nregions = [{}]\nsecret_key = \"perf\"\n",
        regions.join(", ")
    )
}

/// The floor: the AWS SDK's own paginator over the same endpoint.
fn sdk_floor(url: &str) -> (usize, Duration) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let conf = aws_sdk_ec2::Config::builder()
            .region(aws_sdk_ec2::config::Region::new(REGION))
            .endpoint_url(url)
            .credentials_provider(aws_sdk_ec2::config::Credentials::new(
                "a", "b", None, None, "bench",
            ))
            .build();
        let client = aws_sdk_ec2::Client::from_conf(conf);
        let t = Instant::now();
        let mut n = 0usize;
        let mut pages = client
            .describe_instances()
            .max_results(1000)
            .into_paginator()
            .send();
        while let Some(p) = pages.next().await {
            for r in p.expect("page").reservations() {
                for i in r.instances() {
                    n += 1;
                    std::hint::black_box(i.metadata_options());
                }
            }
        }
        (n, t.elapsed())
    })
}

fn scenario(plugin: &std::path::Path, config: &str, steps: Vec<Value>) -> Value {
    json!({
        "plugin": plugin,
        "env": {"AWS_EC2_METADATA_DISABLED": "true"},
        "connections": [{"connection": "aws", "plugin": "aws", "pluginShortName": "aws", "config": config}],
        "steps": steps,
    })
}

fn scan(columns: &[&str], cache: bool) -> Value {
    let mut req = common::execute("aws_ec2_instance", "aws", columns, json!({}), None);
    req["executeConnectionData"]["aws"]["cacheEnabled"] = json!(cache);
    json!({"op": "execute", "quiet": true, "request": req})
}

fn ends(ev: &[Value]) -> Vec<(u64, f64)> {
    common::events(ev, "execute_end", None)
        .iter()
        .map(|e| {
            assert_eq!(e["end"], "eof", "{e}");
            (e["rows"].as_u64().unwrap(), e["ms"].as_f64().unwrap())
        })
        .collect()
}

/// Per scan: the CPU ms the plugin and the host used from the event before
/// its end to its end.
fn scan_cpu(ev: &[Value]) -> Vec<(f64, f64)> {
    let mut last: Option<(f64, f64)> = None;
    let mut out = Vec::new();
    for e in ev {
        let (Some(p), Some(h)) = (e["plugin_cpu_ms"].as_f64(), e["host_cpu_ms"].as_f64()) else {
            continue;
        };
        if e["event"] == "execute_end" {
            let (lp, lh) = last.expect("an event with CPU figures before each scan");
            out.push((p - lp, h - lh));
        }
        last = Some((p, h));
    }
    out
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn startup(plugin: &std::path::Path) -> (Duration, Duration, Duration) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut base = Vec::new();
    let mut hs = Vec::new();
    let mut gs = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        Command::new("/bin/true").status().unwrap();
        base.push(t.elapsed());
        let t = Instant::now();
        let mut child = Command::new(plugin)
            .env(
                "MANTIX_PLUGIN_MAGIC_COOKIE",
                "really-complex-permanent-string-value",
            )
            .env("PLUGIN_PROTOCOL_VERSIONS", "0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        hs.push(t.elapsed());
        let socket = line.trim().split('|').nth(3).unwrap().to_string();
        rt.block_on(async {
            let ch = tonic::transport::Endpoint::from_shared(format!("unix:{socket}"))
                .unwrap()
                .connect()
                .await
                .unwrap();
            steampipe_plugin_aws::pb::steampipe::wrapper_plugin_client::WrapperPluginClient::new(
                ch,
            )
            .get_schema(steampipe_plugin_aws::pb::steampipe::GetSchemaRequest {
                connection: "aws".into(),
            })
            .await
            .unwrap();
        });
        gs.push(t.elapsed());
        let _ = child.kill();
        let _ = child.wait();
        let _ = std::fs::remove_file(&socket);
    }
    (median(base), median(hs), median(gs))
}

fn main() {
    let plugin = common::target_dir().join("steampipe-plugin-aws");
    let mut table: Vec<(String, String, String, String)> = Vec::new();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;

    let (base, hs, gs) = startup(&plugin);
    table.push((
        "spawn -> handshake line (median of 20)".into(),
        format!("{:.2} ms", ms(hs)),
        format!(
            "/bin/true {:.2} ms ({:.1}x)",
            ms(base),
            hs.as_secs_f64() / base.as_secs_f64()
        ),
        format!(
            "<= 10 ms: {}",
            if ms(hs) <= 10.0 { "met" } else { "MISSED" }
        ),
    ));
    table.push((
        "spawn -> first GetSchema answer".into(),
        format!("{:.2} ms", ms(gs)),
        format!(
            "/bin/true {:.2} ms ({:.1}x)",
            ms(base),
            gs.as_secs_f64() / base.as_secs_f64()
        ),
        String::new(),
    ));

    // 100,000 instances in one region.
    let ep = endpoint(BIG, 0, &[REGION], 0);
    let _ = sdk_floor(&ep.endpoint); // warm the endpoint's page cache
    let (n, floor, floor_cpu) = (0..3)
        .map(|_| {
            let cpu = cpu_ms("self").unwrap();
            let (n, t) = sdk_floor(&ep.endpoint);
            (n, t, cpu_ms("self").unwrap() - cpu)
        })
        .min_by_key(|r| r.1)
        .unwrap();
    assert_eq!(n, BIG);
    let floor_rate = BIG as f64 / floor.as_secs_f64();
    let cfg = config(&ep.endpoint, &[REGION]);
    let schema = common::run(&scenario(
        &plugin,
        &cfg,
        vec![json!({"op": "get_schema", "connection": "aws"})],
    ));
    let cols: Vec<String> = common::one(&schema, "schema", Some(0))["response"]["schema"]["schema"]
        ["aws_ec2_instance"]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            c["hydrate"] == ""
                && !["sp_connection_name", "sp_ctx", "_ctx"].contains(&c["name"].as_str().unwrap())
        })
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    let all: Vec<&str> = cols.iter().map(String::as_str).collect();
    let narrow = ["instance_id", "metadata_options"];
    // Streaming without the cache: idle first, then the scans; the peak is read from VmHWM.
    let mut steps = vec![json!({"op": "sleep", "ms": 600})];
    for _ in 0..3 {
        steps.push(scan(&narrow, false));
    }
    for _ in 0..3 {
        steps.push(scan(&all, false));
    }
    steps.push(json!({"op": "sleep", "ms": 200}));
    let r = host_run(&scenario(&plugin, &cfg, steps));
    let e = ends(&r.events);
    let best =
        |range: std::ops::Range<usize>| e[range].iter().map(|x| x.1).fold(f64::MAX, f64::min);
    for x in &e {
        assert_eq!(x.0 as usize, BIG);
    }
    let cpu = scan_cpu(&r.events);
    assert_eq!(cpu.len(), 6, "CPU figures for every scan");
    let min_of =
        |v: &[(f64, f64)], f: fn(&(f64, f64)) -> f64| v.iter().map(f).fold(f64::MAX, f64::min);
    let all_plugin_cpu = min_of(&cpu[3..6], |c| c.0);
    let all_host_cpu = min_of(&cpu[3..6], |c| c.1);
    let narrow_plugin_cpu = min_of(&cpu[0..3], |c| c.0);
    let narrow_rate = BIG as f64 / (best(0..3) / 1000.0);
    let all_rate = BIG as f64 / (best(3..6) / 1000.0);
    table.push((
        "rows/s, instance_id + metadata_options (100k)".into(),
        format!("{narrow_rate:.0}"),
        format!(
            "SDK paginator {floor_rate:.0} ({:.0}%)",
            100.0 * narrow_rate / floor_rate
        ),
        format!(
            ">= 80%: {}",
            if narrow_rate >= 0.8 * floor_rate {
                "met"
            } else {
                "MISSED"
            }
        ),
    ));
    table.push((
        format!("rows/s, all {} non-hydrated columns (100k)", all.len()),
        format!("{all_rate:.0}"),
        format!(
            "SDK paginator {floor_rate:.0} ({:.0}%)",
            100.0 * all_rate / floor_rate
        ),
        format!(
            ">= 80%: {}",
            if all_rate >= 0.8 * floor_rate {
                "met"
            } else {
                "MISSED"
            }
        ),
    ));
    table.push((
        "plugin CPU, instance_id + metadata_options".into(),
        format!("{:.2} s", narrow_plugin_cpu / 1000.0),
        format!(
            "SDK paginator {:.2} s ({:.2}x)",
            floor_cpu / 1000.0,
            narrow_plugin_cpu / floor_cpu
        ),
        String::new(),
    ));
    table.push((
        format!("plugin CPU, all {} non-hydrated columns", all.len()),
        format!("{:.2} s", all_plugin_cpu / 1000.0),
        format!(
            "SDK paginator {:.2} s ({:.2}x)",
            floor_cpu / 1000.0,
            all_plugin_cpu / floor_cpu
        ),
        String::new(),
    ));
    table.push((
        "host (sphost) CPU decoding those rows".into(),
        format!("{:.2} s", all_host_cpu / 1000.0),
        format!("plugin {:.2} s", all_plugin_cpu / 1000.0),
        "same 2 cores as the plugin".into(),
    ));
    // Plugin and host share the cores: their CPU seconds over the core count
    // bound the wall time of the all-columns scan, however well they overlap.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let bound = BIG as f64 / ((all_plugin_cpu + all_host_cpu) / 1000.0 / cores);
    table.push((
        "CPU bound, all columns: (plugin + host) / cores".into(),
        format!("{bound:.0}"),
        format!(
            "SDK paginator {floor_rate:.0} ({:.0}%)",
            100.0 * bound / floor_rate
        ),
        format!("the scan reaches {:.0}% of it", 100.0 * all_rate / bound),
    ));
    table.push((
        "plugin RSS idle".into(),
        format!("{:.1} MB", r.idle_rss_kb as f64 / 1024.0),
        String::new(),
        format!(
            "<= 16 MB: {}",
            if r.idle_rss_kb <= 16 * 1024 {
                "met"
            } else {
                "MISSED"
            }
        ),
    ));
    table.push((
        "plugin RSS peak (streaming 100k, no cache)".into(),
        format!("{:.1} MB", r.peak_rss_kb as f64 / 1024.0),
        format!("idle {:.1} MB", r.idle_rss_kb as f64 / 1024.0),
        format!(
            "<= 64 MB: {}",
            if r.peak_rss_kb <= 64 * 1024 {
                "met"
            } else {
                "MISSED"
            }
        ),
    ));

    // The cache: the same scan twice, cached.
    let c = host_run(&scenario(
        &plugin,
        &cfg,
        vec![scan(&narrow, true), scan(&narrow, true)],
    ));
    let ce = ends(&c.events);
    let (first, cached) = (ce[0].1, ce[1].1);
    table.push((
        "repeated query from the cache (100k rows)".into(),
        format!("{cached:.0} ms"),
        format!(
            "first run {first:.0} ms ({:.1}x faster)",
            first / cached.max(0.001)
        ),
        format!("RSS holding it {:.0} MB", c.peak_rss_kb as f64 / 1024.0),
    ));
    // The host's own ceiling for wide rows: all columns served from the cache
    // (the plugin only copies cached bytes), with room for 100k wide rows.
    let c = host_run(&scenario(
        &plugin,
        &cfg,
        vec![
            json!({"op": "rpc", "method": "SetCacheOptions",
                   "request": {"enabled": true, "ttl": "300", "maxSizeMb": "1024"}}),
            scan(&all, true),
            scan(&all, true),
            scan(&all, true),
        ],
    ));
    let ce = ends(&c.events);
    let ceiling = BIG as f64 / (ce[1].1.min(ce[2].1) / 1000.0);
    table.push((
        "host ceiling: all columns from the cache".into(),
        format!("{ceiling:.0}"),
        format!(
            "SDK paginator {floor_rate:.0} ({:.0}%)",
            100.0 * ceiling / floor_rate
        ),
        format!(
            "all-columns scan reaches {:.0}% of it",
            100.0 * all_rate / ceiling
        ),
    ));
    drop(ep);

    // 8 regions against one, each page 100 ms late and 100 instances long, so
    // that the wait for AWS dominates, as it does against the real API.
    let per_region = 1_000;
    let ep = endpoint(per_region, 100, &EIGHT, 100);
    let one = host_run(&scenario(
        &plugin,
        &config(&ep.endpoint, &[REGION]),
        vec![scan(&["instance_id"], false), scan(&["instance_id"], false)],
    ));
    let eight = host_run(&scenario(
        &plugin,
        &config(&ep.endpoint, &EIGHT),
        vec![scan(&["instance_id"], false), scan(&["instance_id"], false)],
    ));
    let t1 = ends(&one.events)
        .iter()
        .map(|x| x.1)
        .fold(f64::MAX, f64::min);
    let e8 = ends(&eight.events);
    assert_eq!(e8[0].0 as usize, per_region * 8);
    let t8 = e8.iter().map(|x| x.1).fold(f64::MAX, f64::min);
    table.push((
        "8 regions x 10 pages of 100, 100 ms per page".into(),
        format!("{t8:.0} ms"),
        format!("1 region {t1:.0} ms ({:.2}x)", t8 / t1),
        format!("<= 1.3x: {}", if t8 / t1 <= 1.3 { "met" } else { "MISSED" }),
    ));

    let size = std::fs::metadata(&plugin).unwrap().len();
    table.push((
        "stripped release binary".into(),
        format!("{:.1} MB", size as f64 / 1e6),
        String::new(),
        format!(
            "<= 25 MB: {}",
            if size <= 25_000_000 { "met" } else { "MISSED" }
        ),
    ));

    println!("\nperformance (2 cores; baselines measured in this run)");
    let (what, figure, baseline, target) = ("what", "figure", "baseline", "target");
    println!("{what:<46} {figure:>12}  {baseline:<36} {target}");
    for (a, b, c, d) in table {
        println!("{a:<46} {b:>12}  {c:<36} {d}");
    }
}
