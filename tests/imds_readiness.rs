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
        "ap-southeast-2": {"HttpTokens": "required", "ManagedBy": "declarative-policy",
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
