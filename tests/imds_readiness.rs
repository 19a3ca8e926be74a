//! The IMDSv2 readiness tables through sphost (steampipe-plugin-sdk's
//! client): `aws_ec2_instance_metadata_defaults` against the fast test
//! endpoint (moto does not implement Get/ModifyInstanceMetadataDefaults), and
//! `aws_ec2_instance_metadata_usage` against moto's CloudWatch, seeded with
//! PutMetricData by `tests/fixtures/imds_readiness.py`. aws-sdk-cloudwatch
//! speaks Smithy RPC v2 CBOR, which moto 5.2.5 does not answer (it 404s the
//! CBOR path), so the fast endpoint stands in front of moto: it decodes the
//! CBOR GetMetricData, asks moto in JSON and encodes moto's answer in CBOR;
//! everything else goes to moto unchanged.

mod common;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use common::moto::{FastEndpoint, Moto};
use common::*;
use serde_json::{json, Value};

const DAY: i64 = 86_400;

struct Bed {
    _moto: Moto,
    front: FastEndpoint,
    seeded: Value,
}

/// The initial account defaults: set in us-east-1, never set in eu-west-1,
/// managed by a declarative policy in ap-southeast-2.
fn initial_defaults() -> Value {
    json!({
        "us-east-1": {"HttpTokens": "required", "HttpPutResponseHopLimit": 2,
                      "HttpEndpoint": "enabled", "InstanceMetadataTags": "disabled",
                      "ManagedBy": "account", "HttpTokensEnforced": "disabled"},
        "ap-southeast-2": {"HttpTokens": "optional", "ManagedBy": "declarative-policy",
                           "ManagedExceptionMessage": "Set by your organization's IMDS policy."}
    })
}

fn bed() -> &'static Bed {
    static BED: OnceLock<Bed> = OnceLock::new();
    BED.get_or_init(|| {
        let moto = Moto::start();
        let seeded = common::oracle::fixture(&moto, "imds_readiness.py", &["--bulk", "300"]);
        let front = FastEndpoint::front(&moto.endpoint, &initial_defaults());
        Bed {
            _moto: moto,
            front,
            seeded,
        }
    })
}

fn config(key: &str, regions: &[&str]) -> String {
    let regions: Vec<String> = regions.iter().map(|r| format!("\"{r}\"")).collect();
    format!(
        "access_key = \"{key}\"\ndefault_region = \"us-east-1\"\nendpoint_url = \"{}\"\nregions = [{}]\nsecret_key = \"test-secret-{key}\"\n",
        bed().front.endpoint,
        regions.join(", ")
    )
}

/// One scan; (rows with the asked columns, the end event).
fn scan(key: &str, regions: &[&str], table: &str, columns: &[&str], quals: Value) -> Vec<Value> {
    let mut req = execute(table, "aws", columns, quals, None);
    req["executeConnectionData"]["aws"]["cacheEnabled"] = json!(false);
    let ev = run(&json!({
        "plugin": target_dir().join("steampipe-plugin-aws"),
        "env": {"AWS_EC2_METADATA_DISABLED": "true", "STEAMPIPE_LOG_LEVEL": "WARN"},
        "connections": [aws_connection("aws", &config(key, regions))],
        "steps": [{"op": "execute", "request": req}],
    }));
    let end = one(&ev, "execute_end", Some(0)).clone();
    assert!(
        end["error"].is_null() || end["error"] == "",
        "the scan failed: {end}"
    );
    events(&ev, "row", Some(0))
        .into_iter()
        .map(|r| {
            let mut v = r["values"].clone();
            v.as_object_mut()
                .unwrap()
                .retain(|k, _| columns.contains(&k.as_str()));
            v
        })
        .collect()
}

fn case(name: &str) -> &'static Value {
    &bed().seeded["cases"][name]
}

fn ts_qual(column: &str, op: &str, secs: i64) -> Value {
    qual(column, op, Some(json!({ "timestampValue": rfc3339(secs) })))
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
fn rfc3339(t: i64) -> String {
    let (days, rem) = (t.div_euclid(DAY), t.rem_euclid(DAY));
    // civil from days (Howard Hinnant)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The calls the front answered itself for the access key `key`.
fn front_calls(key: &str, action: &str) -> Vec<Value> {
    bed()
        .front
        .calls()
        .into_iter()
        .filter(|c| c["key"] == key && c["action"] == action)
        .collect()
}

/// A number cell as f64 (sphost writes 0.0 as 0), NULL as None.
fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn str_qual(column: &str, v: &str) -> Value {
    qual(column, "=", Some(json!({"stringValue": v})))
}

#[test]
fn defaults_give_one_row_per_region_with_never_set_as_null() {
    let regions = ["us-east-1", "eu-west-1", "ap-southeast-2"];
    let cols = [
        "region",
        "account_id",
        "partition",
        "http_tokens",
        "http_put_response_hop_limit",
        "http_endpoint",
        "instance_metadata_tags",
        "managed_by",
        "managed_exception_message",
        "http_tokens_enforced",
        "title",
    ];
    let rows = scan(
        "AKIDDEF",
        &regions,
        "aws_ec2_instance_metadata_defaults",
        &cols,
        json!({}),
    );
    let by: BTreeMap<String, Value> = rows
        .into_iter()
        .map(|r| (r["region"].as_str().unwrap().to_string(), r))
        .collect();
    assert_eq!(by.len(), 3, "{by:?}");
    let account = bed().seeded["account_id"].as_str().unwrap();
    let e = &by["us-east-1"];
    assert_eq!(e["http_tokens"], "required");
    assert_eq!(e["http_put_response_hop_limit"], 2);
    assert_eq!(e["http_endpoint"], "enabled");
    assert_eq!(e["instance_metadata_tags"], "disabled");
    assert_eq!(e["managed_by"], "account");
    assert_eq!(e["http_tokens_enforced"], "disabled");
    assert_eq!(e["managed_exception_message"], Value::Null);
    assert_eq!(e["account_id"], account);
    assert_eq!(e["partition"], "aws");
    assert_eq!(e["title"], "us-east-1 IMDS defaults");
    // Never set: every member absent from the answer, every column NULL.
    let w = &by["eu-west-1"];
    for c in &cols[3..10] {
        assert_eq!(w[*c], Value::Null, "{c} of a region never set: {w}");
    }
    let p = &by["ap-southeast-2"];
    assert_eq!(p["managed_by"], "declarative-policy");
    assert_eq!(
        p["managed_exception_message"],
        "Set by your organization's IMDS policy."
    );
    assert_eq!(p["http_put_response_hop_limit"], Value::Null);
    // One GetInstanceMetadataDefaults per region, signed for that region.
    let mut calls: Vec<String> = front_calls("AKIDDEF", "GetInstanceMetadataDefaults")
        .iter()
        .map(|c| c["region"].as_str().unwrap().to_string())
        .collect();
    calls.sort();
    assert_eq!(calls, ["ap-southeast-2", "eu-west-1", "us-east-1"]);
}

#[test]
fn defaults_scan_only_the_regions_a_qual_names() {
    let rows = scan(
        "AKIDDEFQ",
        &["us-east-1", "eu-west-1"],
        "aws_ec2_instance_metadata_defaults",
        &["region", "http_tokens"],
        quals(&[str_qual("region", "eu-west-1")]),
    );
    assert_eq!(
        rows,
        vec![json!({"region": "eu-west-1", "http_tokens": null})]
    );
    let calls = front_calls("AKIDDEFQ", "GetInstanceMetadataDefaults");
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0]["region"], "eu-west-1");
}

const USAGE_COLS: [&str; 10] = [
    "instance_id",
    "timestamp",
    "days_ago",
    "metadata_no_token",
    "metadata_no_token_rejected",
    "has_data",
    "window_start",
    "window_end",
    "region",
    "title",
];

/// The seeded sum of `kind` (`no_token`/`rejected`) of `case` `days_ago` days ago.
fn seeded_sum(case_name: &str, kind: &str, days_ago: i64) -> Option<f64> {
    case(case_name)[kind]
        .get(days_ago.to_string())
        .map(|v| v.as_f64().unwrap())
}

fn secs(v: &Value) -> i64 {
    let text = v.as_str().unwrap_or_else(|| panic!("not a timestamp: {v}"));
    chrono_like_parse(text)
}

/// `2026-12-07T00:00:00Z` to unix seconds (UTC, whole seconds).
fn chrono_like_parse(t: &str) -> i64 {
    let (date, time) = t.split_once('T').unwrap();
    let d: Vec<i64> = date.split('-').map(|x| x.parse().unwrap()).collect();
    let hms: Vec<i64> = time
        .trim_end_matches('Z')
        .split(['.', '+'])
        .next()
        .unwrap()
        .split(':')
        .map(|x| x.parse().unwrap())
        .collect();
    // days from civil (Howard Hinnant)
    let (y, m, dd) = (d[0], d[1], d[2]);
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + dd - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * DAY + hms[0] * 3600 + hms[1] * 60 + hms[2]
}

#[test]
fn usage_has_a_row_per_instance_and_day_with_the_seeded_sums() {
    let rows = scan(
        "AKIDUSE",
        &["us-east-1", "eu-west-1"],
        "aws_ec2_instance_metadata_usage",
        &USAGE_COLS,
        json!({}),
    );
    let today = bed().seeded["today"].as_i64().unwrap();
    let names = [
        "safe",
        "safe_hop2",
        "inuse",
        "nodata",
        "partial",
        "required",
        "safe_eu",
    ];
    // 15 days (14 whole days and today) for every instance of both regions.
    assert_eq!(rows.len(), names.len() * 15, "{rows:#?}");
    for name in names {
        let c = case(name);
        let mine: Vec<&Value> = rows
            .iter()
            .filter(|r| r["instance_id"] == c["id"])
            .collect();
        assert_eq!(mine.len(), 15, "{name}");
        for r in mine {
            let day = secs(&r["timestamp"]);
            assert_eq!(day % DAY, 0, "a day starts at midnight UTC: {r}");
            let ago = (today - day) / DAY;
            assert_eq!(r["days_ago"], ago, "{r}");
            assert_eq!(r["region"], c["region"]);
            assert_eq!(r["title"], c["id"]);
            assert_eq!(
                num(&r["metadata_no_token"]),
                seeded_sum(name, "no_token", ago),
                "{name} {ago} days ago"
            );
            assert_eq!(
                num(&r["metadata_no_token_rejected"]),
                seeded_sum(name, "rejected", ago),
                "{name} {ago} days ago"
            );
            let has = seeded_sum(name, "no_token", ago).is_some()
                || seeded_sum(name, "rejected", ago).is_some();
            assert_eq!(r["has_data"], has, "{name} {ago} days ago");
            assert_eq!(secs(&r["window_start"]), today - 14 * DAY);
        }
    }
}

#[test]
fn usage_batches_500_queries_a_call_not_one_call_per_instance() {
    let rows = scan(
        "AKIDBULK",
        &["us-west-2"],
        "aws_ec2_instance_metadata_usage",
        &["instance_id", "days_ago", "metadata_no_token", "has_data"],
        json!({}),
    );
    let bulk = bed().seeded["bulk"].as_array().unwrap();
    assert_eq!(bulk.len(), 300);
    assert_eq!(rows.len(), 300 * 15);
    for (n, id) in bulk.iter().enumerate() {
        let r = rows
            .iter()
            .find(|r| r["instance_id"] == *id && r["days_ago"] == 1)
            .unwrap_or_else(|| panic!("no row for {id} yesterday"));
        assert_eq!(num(&r["metadata_no_token"]), Some((n % 3) as f64));
        assert_eq!(r["has_data"], true);
    }
    let calls = front_calls("AKIDBULK", "GetMetricData");
    let sizes: Vec<i64> = calls
        .iter()
        .map(|c| c["queries"].as_i64().unwrap())
        .collect();
    assert_eq!(
        sizes,
        vec![500, 100],
        "two metrics per instance, 500 queries a call"
    );
}

#[test]
fn usage_quals_choose_the_instances_and_the_window() {
    let c = case("inuse");
    let today = bed().seeded["today"].as_i64().unwrap();
    let rows = scan(
        "AKIDUSEQ",
        &["us-east-1", "eu-west-1"],
        "aws_ec2_instance_metadata_usage",
        &USAGE_COLS,
        quals(&[
            str_qual("instance_id", c["id"].as_str().unwrap()),
            str_qual("region", "us-east-1"),
            ts_qual("timestamp", ">=", today - 6 * DAY + 3600),
            ts_qual("timestamp", "<", today - DAY),
        ]),
    );
    // Days 5..2 ago: the day 6 days ago starts before the lower bound, so
    // its row fails the qual (as Postgres would drop it).
    let agos: Vec<i64> = rows
        .iter()
        .map(|r| r["days_ago"].as_i64().unwrap())
        .collect();
    assert_eq!(agos, vec![5, 4, 3, 2], "{rows:#?}");
    let sums: Vec<Option<f64>> = rows.iter().map(|r| num(&r["metadata_no_token"])).collect();
    assert_eq!(sums, [3.0, 0.0, 0.0, 2.0].map(Some));
    // One call, for that instance only, in us-east-1 only; no DescribeInstances needed.
    let calls = front_calls("AKIDUSEQ", "GetMetricData");
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0]["region"], "us-east-1");
    assert_eq!(calls[0]["instances"], json!([c["id"]]));
}

// ---- the readiness benchmark, through `check` (SQLite) and on PostgreSQL ----

fn binary() -> std::path::PathBuf {
    target_dir().join("steampipe-plugin-aws")
}

/// `steampipe-plugin-aws <command> …` against the front, signed with `key`.
fn command(key: &str, dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(binary())
        .current_dir(dir)
        .args(args)
        .env("AWS_ACCESS_KEY_ID", key)
        .env("AWS_SECRET_ACCESS_KEY", "secret")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("PP_VAR_common_dimensions")
        .env_remove("PP_VAR_tag_dimensions")
        .env_remove("PIPES_TOKEN")
        .output()
        .unwrap()
}

fn check_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let endpoint: &'static str = Box::leak(bed().front.endpoint.clone().into_boxed_str());
    let mut a = vec![
        "check",
        "--endpoint-url",
        endpoint,
        "--default-region",
        "us-east-1",
        "--regions",
        "us-east-1,eu-west-1,ap-southeast-2",
        "--output",
        "json",
    ];
    a.extend_from_slice(extra);
    a
}

/// One result of a check JSON output: (control, resource, status, reason, dimensions).
type Res = (String, String, String, String, BTreeMap<String, String>);

/// Every result of a check JSON output.
fn results(json: &Value) -> Vec<Res> {
    fn walk(v: &Value, out: &mut Vec<Res>) {
        for c in v["controls"].as_array().into_iter().flatten() {
            let control = c["control_id"].as_str().unwrap_or_default().to_string();
            for r in c["results"].as_array().into_iter().flatten() {
                let dims = r["dimensions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|d| {
                        (
                            d["key"].as_str().unwrap().to_string(),
                            d["value"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect();
                out.push((
                    control.clone(),
                    r["resource"].as_str().unwrap().to_string(),
                    r["status"].as_str().unwrap().to_string(),
                    r["reason"].as_str().unwrap().to_string(),
                    dims,
                ));
            }
        }
        for g in v["groups"].as_array().into_iter().flatten() {
            walk(g, out);
        }
    }
    let mut out = Vec::new();
    walk(json, &mut out);
    out
}

fn instance_result<'a>(all: &'a [Res], name: &str) -> &'a Res {
    let id = case(name)["id"].as_str().unwrap();
    all.iter()
        .find(|r| r.0 == "control.imds_readiness_instance" && r.1.ends_with(id))
        .unwrap_or_else(|| panic!("no instance result for {name} ({id}): {all:#?}"))
}

/// The date `days` days before the seeded today, `YYYY-MM-DD`.
fn date_ago(days: i64) -> String {
    rfc3339(bed().seeded["today"].as_i64().unwrap() - days * DAY)[..10].to_string()
}

#[test]
fn the_readiness_benchmark_classifies_every_instance() {
    let dir = tempfile::tempdir().unwrap();
    let out = command(
        "AKIDCHECK",
        dir.path(),
        &check_args(&["benchmark.imds_readiness"]),
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "alarms give exit code 1: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let all = results(&json);
    let status = |n: &str| instance_result(&all, n).2.clone();
    let reason = |n: &str| instance_result(&all, n).3.clone();
    // Required, but MetadataNoTokenRejected shows refused IMDSv1 calls.
    assert_eq!(status("required"), "info");
    assert_eq!(
        reason("required"),
        format!(
            "required requires IMDSv2, but 4 IMDSv1 calls were refused in 14 days, last on {}: something on it still calls IMDSv1.",
            date_ago(1)
        )
    );
    assert_eq!(instance_result(&all, "required").4["imdsv1_calls"], "4");
    assert_eq!(status("safe"), "alarm");
    assert_eq!(
        reason("safe"),
        "safe allows IMDSv1; safe to enforce: 0 IMDSv1 calls in 14 days."
    );
    let safe = instance_result(&all, "safe");
    let id = case("safe")["id"].as_str().unwrap();
    assert_eq!(
        safe.4["remediation"],
        format!("aws ec2 modify-instance-metadata-options --region us-east-1 --instance-id {id} --http-tokens required")
    );
    assert_eq!(safe.4["imdsv1_calls"], "0");
    assert_eq!(status("safe_hop2"), "alarm");
    assert_eq!(status("safe_eu"), "alarm");
    assert_eq!(status("inuse"), "alarm");
    assert_eq!(
        reason("inuse"),
        format!(
            "inuse allows IMDSv1; in use: 5 IMDSv1 calls in 14 days, last on {}.",
            date_ago(2)
        )
    );
    assert_eq!(instance_result(&all, "inuse").4["imdsv1_calls"], "5");
    assert_eq!(status("nodata"), "info");
    assert!(reason("nodata").contains("no MetadataNoToken data in 14 days"));
    assert_eq!(status("partial"), "info");
    assert!(
        reason("partial").contains("data on only 5 of 14 days"),
        "{}",
        reason("partial")
    );
    // Region defaults: required in us-east-1, never set in eu-west-1, a
    // declarative policy in ap-southeast-2.
    let region = |r: &str| {
        all.iter()
            .find(|x| {
                x.0 == "control.imds_readiness_region_default" && x.1.contains(&format!(":{r}:"))
            })
            .unwrap_or_else(|| panic!("no default result for {r}"))
            .clone()
    };
    assert_eq!(region("us-east-1").2, "ok");
    assert_eq!(
        region("us-east-1").3,
        "us-east-1: new instances require IMDSv2 by default (hop limit 2)."
    );
    assert_eq!(region("eu-west-1").2, "alarm");
    assert_eq!(
        region("eu-west-1").4["remediation"],
        "aws ec2 modify-instance-metadata-defaults --region eu-west-1 --http-tokens required --http-put-response-hop-limit 2"
    );
    assert_eq!(region("ap-southeast-2").2, "info");
    assert_eq!(
        region("ap-southeast-2").3,
        "ap-southeast-2: the default (optional) is set by a declarative policy."
    );
    // NULL: nothing the account can run.
    assert_eq!(
        region("ap-southeast-2")
            .4
            .get("remediation")
            .map(String::as_str),
        Some("<nil>")
    );
    // Launch templates: optional, inheriting a required default, unset
    // where nothing is required, required.
    let template = |name: &str| {
        let id = bed().seeded["templates"][name].as_str().unwrap();
        all.iter()
            .find(|x| x.0 == "control.imds_readiness_launch_template" && x.1 == id)
            .unwrap_or_else(|| panic!("no template result for {name}"))
            .clone()
    };
    assert_eq!(template("lt-optional").2, "alarm");
    assert_eq!(
        template("lt-optional").3,
        "lt-optional version 1 allows IMDSv1 (HttpTokens optional)."
    );
    assert_eq!(template("lt-inherits").2, "ok");
    assert_eq!(
        template("lt-inherits").3,
        "lt-inherits version 1 sets no HttpTokens; the region default requires IMDSv2."
    );
    assert_eq!(template("lt-unset-eu").2, "alarm");
    assert_eq!(template("lt-required-eu").2, "ok");
    // The account's AMI: no ImdsSupport, but us-east-1 requires IMDSv2.
    let image = bed().seeded["image"].as_str().unwrap();
    let ami = all
        .iter()
        .find(|x| x.0 == "control.imds_readiness_ami" && x.1.ends_with(image))
        .expect("an AMI result");
    assert_eq!(ami.2, "info");
    assert_eq!(
        ami.4["remediation"],
        format!("aws ec2 modify-image-attribute --region us-east-1 --image-id {image} --imds-support v2.0")
    );
    // The summary of us-east-1: 6 instances (nodata is stopped, not gone).
    let summary = all
        .iter()
        .find(|x| x.0 == "control.imds_readiness_posture_summary" && x.1.contains(":us-east-1:"))
        .unwrap();
    assert_eq!(summary.2, "info");
    assert_eq!(
        summary.3,
        "us-east-1: 6 instances: 1 require IMDSv2 (1 with refused IMDSv1 calls), 2 safe to enforce, 1 still use IMDSv1, 2 without 14 days of data."
    );
}

#[test]
fn the_days_variable_moves_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let out = command(
        "AKIDCHECKVAR",
        dir.path(),
        &check_args(&[
            "control.imds_readiness_instance",
            "--var",
            "imds_readiness_days=3",
        ]),
    );
    let json: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let all = results(&json);
    // 3 days: the 3 calls of 5 days ago are outside; the 5 days of zeros of
    // "partial" now cover the window.
    assert_eq!(
        instance_result(&all, "inuse").3,
        format!(
            "inuse allows IMDSv1; in use: 2 IMDSv1 calls in 3 days, last on {}.",
            date_ago(2)
        )
    );
    assert_eq!(instance_result(&all, "partial").2, "alarm");
    assert_eq!(
        instance_result(&all, "partial").3,
        "partial allows IMDSv1; safe to enforce: 0 IMDSv1 calls in 3 days."
    );
}

/// Every column of `table` (from the plugin's schema) and its schema entry.
fn table_schema(table: &str) -> (Vec<String>, Value) {
    let mut sc = scenario(
        vec![
            json!({"connection": "aws", "plugin": "aws", "pluginShortName": "aws",
                    "config": config("AKIDPG", &["us-east-1", "eu-west-1", "ap-southeast-2"])}),
        ],
        vec![json!({"op": "get_schema", "connection": "aws"})],
    );
    sc["plugin"] = json!(binary());
    sc["env"] = json!({"AWS_EC2_METADATA_DISABLED": "true"});
    let ev = run(&sc);
    let t = one(&ev, "schema", Some(0))["response"]["schema"]["schema"][table].clone();
    let cols = t["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    (cols, t)
}

#[test]
fn check_and_postgres_agree_on_every_readiness_control() {
    let dir = tempfile::tempdir().unwrap();
    let out = command(
        "AKIDCHECKPG",
        dir.path(),
        &check_args(&["benchmark.imds_readiness"]),
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let from_check = results(&json);
    // The same SQL, Powerpipe-style, on PostgreSQL over the plugin's rows.
    let pg = common::pg::Postgres::start();
    let regions = ["us-east-1", "eu-west-1", "ap-southeast-2"];
    for table in [
        "aws_ec2_instance",
        "aws_ec2_instance_metadata_usage",
        "aws_ec2_instance_metadata_defaults",
        "aws_ec2_launch_template_version",
        "aws_ec2_ami",
    ] {
        let (cols, schema) = table_schema(table);
        let cols: Vec<&str> = cols.iter().map(String::as_str).collect();
        let mut req = execute(table, "aws", &cols, json!({}), None);
        req["executeConnectionData"]["aws"]["cacheEnabled"] = json!(false);
        let ev = run(&json!({
            "plugin": binary(),
            "env": {"AWS_EC2_METADATA_DISABLED": "true"},
            "connections": [aws_connection("aws", &config("AKIDPG", &regions))],
            "steps": [{"op": "execute", "request": req}],
        }));
        pg.load_table("aws", table, &schema, &rows(&ev, 0));
    }
    let def =
        steampipe_plugin_aws::check::powerpipe_mod::ModDef::load(&root().join("mod")).unwrap();
    let m =
        steampipe_plugin_aws::check::powerpipe_mod::ResolvedMod::resolve(def, &Default::default())
            .unwrap();
    let mut checked = 0;
    for control in [
        "imds_readiness_instance",
        "imds_readiness_region_default",
        "imds_readiness_launch_template",
        "imds_readiness_ami",
        "imds_readiness_posture_summary",
    ] {
        let sql = m.control_sql(control).unwrap();
        let mut from_pg: Vec<(String, String, String)> = pg
            .query("aws, public", &sql)
            .iter()
            .map(|r| {
                (
                    r["resource"].as_str().unwrap().to_string(),
                    r["status"].as_str().unwrap().to_string(),
                    r["reason"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let mut mine: Vec<(String, String, String)> = from_check
            .iter()
            .filter(|r| r.0 == format!("control.{control}"))
            .map(|r| (r.1.clone(), r.2.clone(), r.3.clone()))
            .collect();
        from_pg.sort();
        mine.sort();
        assert_eq!(
            mine, from_pg,
            "{control}: SQLite in check and PostgreSQL agree"
        );
        checked += mine.len();
    }
    assert!(checked >= 7 + 3 + 3, "{checked} results compared");
}
