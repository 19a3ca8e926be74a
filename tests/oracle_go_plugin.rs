//! turbot's Go AWS plugin as the oracle for `aws_ec2_instance` (issue 11,
//! item 3).
//!
//! Both plugins are started by the same client (sphost, on
//! steampipe-plugin-sdk's own grpc client) with the same connection config and
//! environment, against the same moto fleet (3 regions, 1050 reservations in
//! one, every edge case of `tests/fixtures/ec2_fleet.py`), and asked the same
//! questions: the schema, every column of every row (hydrated ones included),
//! Get, IN lists, each pushed-down key-column filter, `limit`, region quals
//! and errors (bad instance ids, throttling through the fault proxy, unknown
//! regions). Every answer must be equal.
//!
//! - `go_plugin_and_ours_answer_alike` (ignored: it needs turbot's plugin,
//!   built by `scripts/conformance.sh go-plugin`, in `$GO_AWS_PLUGIN`)
//!   compares the two live and rewrites `tests/golden/go_plugin_oracle.json`
//!   with what the Go plugin answered, normalised: rows sorted, times replaced
//!   by their rank within the row, client tokens and request ids masked,
//!   large answers kept as one digest per instance.
//! - `ours_answers_as_the_recorded_go_plugin` (default run) seeds the same
//!   fleet with the same moto random seed (`POST /moto-api/seed`, which makes
//!   moto's ids, addresses and reservation ids deterministic), asks our plugin
//!   the same questions and compares with that recording.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::OnceLock;

use common::moto::{FaultProxy, Moto};
use common::oracle::{
    self, config, error_facts, fnv1a, go_plugin, golden_text, our_plugin, report, scenario, Case,
    FEW_RETRIES, FULL_ROWS_UP_TO, RERECORD,
};
use common::*;
use serde_json::{json, Value};

const SEED: u64 = 20_261_207;
const BIG_REGION: &str = "ap-southeast-2";
const BIG_COUNT: usize = 1050;
const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", BIG_REGION];
const GOLDEN: &str = "tests/golden/go_plugin_oracle.json";

struct Bed {
    moto: Moto,
    seeded: Value,
}

/// One emulator for the test process, seeded deterministically.
fn bed() -> &'static Bed {
    static BED: OnceLock<Bed> = OnceLock::new();
    BED.get_or_init(|| {
        let moto = Moto::start();
        moto.http("POST", &format!("/moto-api/seed?a={SEED}"));
        let seeded = moto.seed(&[
            "--control-cases",
            "--big-region",
            BIG_REGION,
            "--big-count",
            &BIG_COUNT.to_string(),
        ]);
        Bed { moto, seeded }
    })
}

/// What the recording depends on besides the plugin: the fleet script, the
/// seed and the fleet's size.
fn fleet_fingerprint() -> String {
    let script = std::fs::read(root().join("tests/fixtures/ec2_fleet.py")).unwrap();
    format!(
        "{:016x} seed={SEED} {BIG_REGION}x{BIG_COUNT}",
        fnv1a(&script)
    )
}

/// A question over the three regions.
fn case(name: &str, step: Value) -> Case {
    Case::new(name, step).regions(&REGIONS)
}

fn scan(columns: &[&str], quals: Value, limit: Option<i64>) -> Value {
    let mut req = execute("aws_ec2_instance", "aws", columns, quals, limit);
    req["executeConnectionData"]["aws"]["cacheEnabled"] = json!(false);
    json!({"op": "execute", "request": req})
}

/// A scan the query cache may serve (the host enables the cache, TTL 300 s).
fn cached_scan(columns: &[&str], quals: Value) -> Value {
    let req = execute("aws_ec2_instance", "aws", columns, quals, None);
    json!({"op": "execute", "request": req})
}

fn eq(column: &str, v: &str) -> Value {
    qual(column, "=", Some(json!({ "stringValue": v })))
}

fn in_list(column: &str, vs: &[&str]) -> Value {
    let values: Vec<Value> = vs.iter().map(|v| json!({ "stringValue": v })).collect();
    qual(column, "=", Some(json!({"listValue": {"values": values}})))
}

/// The columns of `aws_ec2_instance` in a schema answer: (name, hydrated).
fn schema_columns(schema: &Value) -> Vec<(String, bool)> {
    schema["columns"]
        .as_array()
        .expect("the schema has columns")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["hydrate"].as_str().is_some_and(|h| !h.is_empty()),
            )
        })
        .collect()
}

/// Every question. `columns` are the schema's, in order.
fn cases(seeded: &Value, columns: &[(String, bool)]) -> Vec<Case> {
    let all: Vec<&str> = columns.iter().map(|c| c.0.as_str()).collect();
    let plain: Vec<&str> = columns
        .iter()
        .filter(|c| !c.1)
        .map(|c| c.0.as_str())
        .collect();
    let small = |region: &str| -> Vec<Value> {
        seeded["regions"][region]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let us = small("us-east-1");
    let eu = small("eu-west-1");
    let big = small(BIG_REGION);
    let id = |i: &Value| i["InstanceId"].as_str().unwrap().to_string();
    let mut out = vec![case(
        "schema",
        json!({"op": "get_schema", "connection": "aws"}),
    )];

    // Every column of every row: hydrated columns over the 11 small-region
    // instances, the rest over all three regions.
    out.push(case(
        "all columns, us-east-1 and eu-west-1",
        scan(&all, in_list("region", &["us-east-1", "eu-west-1"]), None),
    ));
    out.push(case(
        "all non-hydrated columns, 3 regions",
        scan(&plain, json!({}), None),
    ));
    out.push(
        case(
            "all columns, first 200 of ap-southeast-2",
            scan(&all, eq("region", BIG_REGION), Some(200)),
        )
        .digest(),
    );
    // What moto cannot produce, through the proxy's rewrites (as in
    // tests/compliance_mod.rs): a pending metadata options change, an
    // instance without metadata options.
    out.push(
        case(
            "all columns, pending and missing metadata options",
            scan(&all, json!({}), None),
        )
        .regions(&["us-east-1"])
        .rules(json!([{"action": "DescribeInstances", "rewrite": [
            ["<state>applied</state>(\\s*<httpTokens>required</httpTokens>\\s*<httpPutResponseHopLimit>7</httpPutResponseHopLimit>)", "<state>pending</state>\\1"],
            ["<metadataOptions>\\s*<state>applied</state>\\s*<httpTokens>optional</httpTokens>\\s*<httpPutResponseHopLimit>9</httpPutResponseHopLimit>.*?</metadataOptions>", ""]
        ]}])),
    );

    // Get: each small-fleet instance, one from the big region, ids that do
    // not exist or are malformed.
    for i in us.iter().chain(&eu) {
        let id = id(i);
        out.push(
            case(
                &format!("get {id}"),
                scan(&all, eq("instance_id", &id), None),
            )
            .digest(),
        );
    }
    let big_id = id(&big[BIG_COUNT / 2]);
    out.push(case(
        "get one of ap-southeast-2",
        scan(
            &["instance_id", "region", "instance_state"],
            eq("instance_id", &big_id),
            None,
        ),
    ));
    for (what, bad) in [
        ("unknown", "i-0123456789abcdef0"),
        ("malformed", "not-an-instance-id"),
        ("empty", ""),
    ] {
        out.push(case(
            &format!("get {what} instance id"),
            scan(&["instance_id", "region"], eq("instance_id", bad), None),
        ));
    }
    let (u0, e0) = (id(&us[0]), id(&eu[0]));
    out.push(case(
        "instance_id IN (us, eu, big, unknown)",
        scan(
            &["instance_id", "region", "tags"],
            in_list("instance_id", &[&u0, &e0, &big_id, "i-0123456789abcdef0"]),
            None,
        ),
    ));
    out.push(case(
        "instance_id IN (valid, malformed)",
        scan(
            &["instance_id", "region"],
            in_list("instance_id", &[&u0, "not-an-instance-id"]),
            None,
        ),
    ));
    out.push(
        case(
            "instance_id <> (not a key column operator)",
            scan(
                &["instance_id", "region"],
                qual("instance_id", "<>", Some(json!({"stringValue": u0}))),
                None,
            ),
        )
        .regions(&["us-east-1", "eu-west-1"]),
    );

    // Each pushed-down list filter, with a value the fleet has (else one it
    // does not have).
    let first = &us[0];
    let get = |path: &[&str]| -> Option<String> {
        let mut v = first;
        for p in path {
            v = v.get(*p)?;
        }
        v.as_str().filter(|s| !s.is_empty()).map(str::to_string)
    };
    let filters: Vec<(&str, String)> = vec![
        ("hypervisor", get(&["Hypervisor"]).unwrap_or("xen".into())),
        (
            "iam_instance_profile_arn",
            get(&["IamInstanceProfile", "Arn"])
                .unwrap_or("arn:aws:iam::123456789012:instance-profile/none".into()),
        ),
        ("image_id", get(&["ImageId"]).unwrap_or("ami-none".into())),
        (
            "instance_lifecycle",
            get(&["InstanceLifecycle"]).unwrap_or("spot".into()),
        ),
        ("instance_state", "stopped".into()),
        ("instance_type", "t3.micro".into()),
        (
            "monitoring_state",
            get(&["Monitoring", "State"]).unwrap_or("disabled".into()),
        ),
        (
            "outpost_arn",
            get(&["OutpostArn"])
                .unwrap_or("arn:aws:outposts:us-east-1:123456789012:outpost/op-0".into()),
        ),
        (
            "placement_availability_zone",
            get(&["Placement", "AvailabilityZone"]).unwrap_or("us-east-1a".into()),
        ),
        (
            "placement_group_name",
            get(&["Placement", "GroupName"]).unwrap_or("no-such-group".into()),
        ),
        (
            "public_dns_name",
            get(&["PublicDnsName"]).unwrap_or("ec2-1-2-3-4.compute-1.amazonaws.com".into()),
        ),
        (
            "ram_disk_id",
            get(&["RamdiskId"]).unwrap_or("ari-00000000".into()),
        ),
        (
            "root_device_name",
            get(&["RootDeviceName"]).unwrap_or("/dev/sda1".into()),
        ),
        (
            "root_device_type",
            get(&["RootDeviceType"]).unwrap_or("ebs".into()),
        ),
        (
            "subnet_id",
            get(&["SubnetId"]).unwrap_or("subnet-none".into()),
        ),
        (
            "placement_tenancy",
            get(&["Placement", "Tenancy"]).unwrap_or("default".into()),
        ),
        (
            "virtualization_type",
            get(&["VirtualizationType"]).unwrap_or("hvm".into()),
        ),
        ("vpc_id", get(&["VpcId"]).unwrap_or("vpc-none".into())),
    ];
    // One region: moto answers some filters with an HTTP 500 (not
    // implemented), and with several regions which region fails first is a
    // race. The calls sent show the push-down either way.
    for (col, v) in &filters {
        out.push(
            case(
                &format!("filter {col} = {v}"),
                scan(&["instance_id", "region", col], eq(col, v), None),
            )
            .regions(&["us-east-1"])
            .extra(FEW_RETRIES),
        );
    }
    let two = ["us-east-1", "eu-west-1"];
    out.push(
        case(
            "filter instance_type IN (t3.micro, m5.large, c5.xlarge)",
            scan(
                &["instance_id", "instance_type"],
                in_list("instance_type", &["t3.micro", "m5.large", "c5.xlarge"]),
                None,
            ),
        )
        .regions(&two),
    );
    out.push(
        case(
            "filter instance_state = running and instance_type = t3.nano",
            scan(
                &["instance_id", "instance_type", "instance_state"],
                quals(&[
                    eq("instance_state", "running"),
                    eq("instance_type", "t3.nano"),
                ]),
                None,
            ),
        )
        .regions(&two),
    );
    out.push(
        case(
            "filter instance_type <> t3.micro (not pushed down)",
            scan(
                &["instance_id", "instance_type"],
                qual(
                    "instance_type",
                    "<>",
                    Some(json!({"stringValue": "t3.micro"})),
                ),
                None,
            ),
        )
        .regions(&two),
    );
    out.push(
        case(
            "filter on a column that is not a key column (title)",
            scan(&["instance_id", "title"], eq("title", "web-1"), None),
        )
        .regions(&two),
    );

    // limit
    for n in [3, 40, 1001] {
        out.push(case(
            &format!("limit {n}, ap-southeast-2"),
            scan(
                &["instance_id", "instance_state"],
                eq("region", BIG_REGION),
                Some(n),
            ),
        ));
    }
    out.push(
        case(
            "limit 7, 3 regions",
            scan(&["instance_id", "region"], json!({}), Some(7)),
        )
        .count_only(),
    );
    out.push(
        case(
            "limit 2 with a filter",
            scan(&["instance_id"], eq("instance_type", "t3.small"), Some(2)),
        )
        .count_only(),
    );

    // Connection key columns: quals on them choose the connections.
    let account = seeded["account_id"].as_str().unwrap().to_string();
    for (what, q) in [
        ("account_id = the account", eq("account_id", &account)),
        (
            "account_id = another account",
            eq("account_id", "000000000000"),
        ),
        (
            "account_id LIKE '1234%'",
            qual("account_id", "~~", Some(json!({"stringValue": "1234%"}))),
        ),
        ("sp_connection_name = aws", eq("sp_connection_name", "aws")),
        (
            "sp_connection_name <> aws",
            qual(
                "sp_connection_name",
                "<>",
                Some(json!({"stringValue": "aws"})),
            ),
        ),
    ] {
        out.push(
            case(what, scan(&["instance_id", "account_id"], q, None))
                .regions(&["us-east-1", "eu-west-1"]),
        );
    }

    // Region quals and regions.
    out.push(case(
        "region = eu-west-1",
        scan(
            &["instance_id", "region", "account_id"],
            eq("region", "eu-west-1"),
            None,
        ),
    ));
    out.push(case(
        "region IN (us-east-1, eu-west-1)",
        scan(
            &["instance_id", "region"],
            in_list("region", &["us-east-1", "eu-west-1"]),
            None,
        ),
    ));
    out.push(case(
        "region = us-west-2 (not in the connection)",
        scan(&["instance_id", "region"], eq("region", "us-west-2"), None),
    ));
    out.push(case(
        "region = xx-nowhere-1 (unknown)",
        scan(
            &["instance_id", "region"],
            eq("region", "xx-nowhere-1"),
            None,
        ),
    ));
    out.push(
        case(
            "regions [us-east-1, xx-nowhere-1]",
            scan(&["instance_id", "region"], json!({}), None),
        )
        .regions(&["us-east-1", "xx-nowhere-1"]),
    );
    out.push(
        case(
            "regions [xx-nowhere-1]",
            scan(&["instance_id", "region"], json!({}), None),
        )
        .regions(&["xx-nowhere-1"]),
    );
    out.push(
        case(
            "regions [eu-*, us-east-?]",
            scan(&["instance_id", "region"], json!({}), None),
        )
        .regions(&["eu-*", "us-east-?"]),
    );

    // Throttling and other API errors, through the fault proxy.
    let throttle = |times: i64| {
        json!([{"action": "DescribeInstances", "code": "RequestLimitExceeded", "status": 503,
                "message": "Request limit exceeded.", "times": times}])
    };
    out.push(
        case(
            "throttled twice, then served",
            scan(&["instance_id", "instance_state"], json!({}), None),
        )
        .regions(&["us-east-1"])
        .extra("max_error_retry_attempts = 5\nmin_error_retry_delay = 40\n")
        .rules(throttle(2)),
    );
    out.push(
        case(
            "throttled until retries run out (list)",
            scan(&["instance_id"], json!({}), None),
        )
        .regions(&["us-east-1"])
        .extra("max_error_retry_attempts = 3\nmin_error_retry_delay = 10\n")
        .rules(throttle(-1)),
    );
    out.push(
        case(
            "throttled until retries run out (get)",
            scan(&["instance_id"], eq("instance_id", &u0), None),
        )
        .regions(&["us-east-1"])
        .extra("max_error_retry_attempts = 3\nmin_error_retry_delay = 10\n")
        .rules(throttle(-1)),
    );
    out.push(
        case(
            "hydrate call throttled until retries run out",
            scan(&["instance_id", "user_data"], json!({}), None),
        )
        .regions(&["eu-west-1"])
        .extra("max_error_retry_attempts = 2\nmin_error_retry_delay = 10\n")
        .rules(
            json!([{"action": "DescribeInstanceAttribute", "code": "RequestLimitExceeded",
                       "status": 503, "message": "Request limit exceeded.", "times": -1}]),
        ),
    );
    out.push(
        case(
            "access denied on DescribeInstances",
            scan(&["instance_id"], json!({}), None),
        )
        .regions(&["us-east-1"])
        .rules(
            json!([{"action": "DescribeInstances", "code": "UnauthorizedOperation",
                       "status": 403, "times": -1,
                       "message": "You are not authorized to perform this operation."}]),
        ),
    );
    // Scan metadata of a cached answer: each question asked twice in one
    // process, the second served from the query cache.
    out.push(
        case(
            "cached repeat, all non-hydrated columns",
            cached_scan(&plain, json!({})),
        )
        .regions(&["us-east-1", "eu-west-1"])
        .repeat(),
    );
    out.push(
        case(
            "cached repeat, user_data and region (hydrated)",
            cached_scan(&["instance_id", "user_data", "region"], json!({})),
        )
        .regions(&["eu-west-1"])
        .repeat(),
    );
    out
}

/// Asks `plugin` one case; returns the answer: the table's schema, or
/// `{end, error, rows}` with rows as `{column: [kind, value]}`, sorted.
fn ask(plugin: &Path, c: &Case) -> Value {
    // One case at a time, so that the emulator's recording is this case's.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let moto = &bed().moto;
    let proxy = c
        .rules
        .as_ref()
        .map(|r| FaultProxy::start(&moto.endpoint, r.clone()));
    let endpoint = proxy.as_ref().map_or(&moto.endpoint, |p| &p.endpoint);
    moto.start_recording();
    let sc = scenario(plugin, &config(endpoint, c), &c.step, c.repeat);
    // A harness failure (sphost's deadline, a missing event) is this case's
    // answer, not the end of the comparison.
    let ev = match std::panic::catch_unwind(|| run(&sc)) {
        Ok(ev) => ev,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            return json!({"harness_failure": msg.chars().take(300).collect::<String>()});
        }
    };
    if c.step["op"] == "get_schema" {
        let s = &one(&ev, "schema", Some(0))["response"]["schema"];
        return json!({
            "table": s["schema"]["aws_ec2_instance"],
            "tables": s["schema"].as_object().map_or(0, |m| m.len()),
            "mode": s["mode"],
            "protocol_version": s["protocol_version"],
            "sdk_version": s["sdk_version"],
        });
    }
    let end = one(&ev, "execute_end", Some(0));
    // The columns the query asked for: the FDW reads only those. (The Go
    // SDK also sends every other column its hydrate calls produced.)
    let asked: BTreeSet<&str> = c.step["request"]["queryContext"]["columns"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let mut rows: Vec<Value> = events(&ev, "row", Some(0))
        .into_iter()
        .map(|r| {
            let mut cells = serde_json::Map::new();
            for (k, v) in r["values"].as_object().unwrap() {
                if asked.contains(k.as_str()) {
                    cells.insert(k.clone(), json!([r["kinds"][k], v]));
                }
            }
            cells.insert("(connection)".into(), r["connection"].clone());
            Value::Object(cells)
        })
        .collect();
    rows.sort_by_key(|r| r.to_string());
    // The DescribeInstances calls that reached the emulator, without paging
    // tokens, each once (retries repeat them): what was pushed down.
    let calls: BTreeSet<String> = moto
        .recording()
        .into_iter()
        .filter(|r| r.action == "DescribeInstances")
        .map(|r| {
            // Filters in name order: the Go plugin builds them from a map.
            let mut filters: Vec<String> = r
                .filters()
                .into_iter()
                .map(|(n, vs)| format!("{n}={}", vs.join(",")))
                .collect();
            filters.sort();
            let mut params: Vec<String> = r
                .params
                .iter()
                .filter(|(k, _)| {
                    !["Action", "Version", "NextToken"].contains(&k.as_str())
                        && !k.starts_with("Filter.")
                })
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            params.sort();
            params.extend(filters.into_iter().map(|f| format!("filter {f}")));
            format!("{} {}", r.region, params.join(" & "))
        })
        .collect();
    let mut answer = json!({
        "describe_instances": calls,
        "end": end["end"],
        "error": end.get("error").map(|e| error_facts(e.as_str().unwrap_or_default())),
        // The text itself, for the record (not compared; see error_facts).
        "error_text": end.get("error").map(|e| {
            let re = regex::Regex::new(r"RequestID: [^,]*,|127\.0\.0\.1:\d+").unwrap();
            re.replace_all(e.as_str().unwrap_or_default(), "<masked>").into_owned()
        }),
        "bad_rows": end["bad_rows"],
        "count": rows.len(),
        // The scan metadata the FDW keeps: each connection's last row's.
        "metadata": end["metadata"],
        "rows_without_metadata": end["rows_without_metadata"],
    });
    if c.repeat {
        let again = one(&ev, "execute_end", Some(1));
        answer["repeat"] = json!({
            "end": again["end"],
            "count": again["rows"],
            "metadata": again["metadata"],
            "rows_without_metadata": again["rows_without_metadata"],
        });
    }
    if !c.count_only {
        answer["rows"] = Value::Array(rows);
    }
    answer
}

/// The hydrate calls the Go plugin makes for values ours has at hand: the
/// ARN (built from the item and the connection's partition and account) and
/// the common columns (region, partition, account id, known per connection
/// and region). Ours makes no call for them, so they are not in its
/// `hydrate_calls` (docs/compatibility.md).
const GO_ONLY_HYDRATES: [&str; 2] = ["getEc2InstanceARN", "getCommonColumns"];

/// The hydrate functions a case's columns need, by the schema (both report
/// the same names): (all of them, those only the Go plugin calls).
fn asked_hydrates(table: &Value, c: &Case) -> (usize, usize) {
    let asked: BTreeSet<&str> = c.step["request"]["queryContext"]["columns"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let hydrates: BTreeSet<&str> = table["columns"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|col| col["name"].as_str().is_some_and(|n| asked.contains(n)))
        .filter_map(|col| col["hydrate"].as_str().filter(|h| !h.is_empty()))
        .collect();
    let go_only = hydrates
        .iter()
        .filter(|h| GO_ONLY_HYDRATES.contains(h))
        .count();
    (hydrates.len(), go_only)
}

/// The scan metadata compared: per connection, `rows_fetched` and
/// `cache_hit` equal; `hydrate_calls` by the SDK's rule (each row, one call
/// per hydrate function its columns need), which the Go plugin must follow
/// with its hydrates and ours with its own; a repeat's metadata equal.
fn metadata_differences(go: &Value, ours: &Value, hydrates: (usize, usize)) -> Vec<String> {
    let mut out = Vec::new();
    let (gm, om) = (&go["metadata"], &ours["metadata"]);
    let conns = |m: &Value| -> BTreeSet<String> {
        m.as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    };
    if !gm.is_object() {
        return vec![format!("the recording has no scan metadata; {RERECORD}")];
    }
    if conns(gm) != conns(om) {
        out.push(format!("metadata: go {gm}, ours {om}"));
        return out;
    }
    for k in ["rows_without_metadata", "repeat"] {
        if go.get(k) != ours.get(k) {
            out.push(format!(
                "{k}: go {}, ours {}",
                go.get(k).unwrap_or(&Value::Null),
                ours.get(k).unwrap_or(&Value::Null)
            ));
        }
    }
    let rows = go["count"].as_u64().unwrap_or(0) as i64;
    let (all, go_only) = (hydrates.0 as i64, hydrates.1 as i64);
    for conn in conns(gm) {
        let (g, o) = (&gm[&conn], &om[&conn]);
        for k in ["rows_fetched", "cache_hit"] {
            if g[k] != o[k] {
                out.push(format!("metadata {conn} {k}: go {}, ours {}", g[k], o[k]));
            }
        }
        // A failed scan stops wherever it was; only a complete one has a
        // count to check.
        if go["end"] != "eof" {
            continue;
        }
        let (gh, oh) = (
            g["hydrate_calls"].as_i64().unwrap_or(-1),
            o["hydrate_calls"].as_i64().unwrap_or(-1),
        );
        if gh != rows * all {
            out.push(format!(
                "metadata {conn} hydrate_calls: go {gh}, not {rows} rows x {all} hydrates"
            ));
        }
        if oh != rows * (all - go_only) {
            out.push(format!(
                "metadata {conn} hydrate_calls: ours {oh}, not {rows} rows x {} hydrates",
                all - go_only
            ));
        }
    }
    out
}

/// The differences between two answers, one line each; `hydrates` as
/// [`asked_hydrates`] gives them.
fn differences(go: &Value, ours: &Value, hydrates: (usize, usize)) -> Vec<String> {
    let mut out = Vec::new();
    if go.get("table").is_some() {
        let gt = &go["table"];
        let ot = &ours["table"];
        let cols =
            |t: &Value| -> Vec<Value> { t["columns"].as_array().cloned().unwrap_or_default() };
        let (gc, oc) = (cols(gt), cols(ot));
        let names = |v: &[Value]| -> Vec<String> {
            v.iter()
                .map(|c| c["name"].as_str().unwrap_or("").to_string())
                .collect()
        };
        if names(&gc) != names(&oc) {
            out.push(format!(
                "column names/order: go {:?}, ours {:?}",
                names(&gc),
                names(&oc)
            ));
        }
        for g in &gc {
            if let Some(o) = oc.iter().find(|o| o["name"] == g["name"]) {
                if g != o {
                    out.push(format!("column {}: go {g}, ours {o}", g["name"]));
                }
            }
        }
        for (k, gv) in gt.as_object().into_iter().flatten() {
            if k != "columns" && ot.get(k) != Some(gv) {
                out.push(format!(
                    "table {k}: go {gv}, ours {}",
                    ot.get(k).unwrap_or(&Value::Null)
                ));
            }
        }
        for k in ["mode", "protocol_version", "sdk_version"] {
            if go[k] != ours[k] {
                out.push(format!("schema {k}: go {}, ours {}", go[k], ours[k]));
            }
        }
        return out;
    }
    for k in [
        "harness_failure",
        "describe_instances",
        "end",
        "error",
        "bad_rows",
        "count",
    ] {
        let (go_k, ours_k) = match k {
            "error" => oracle::comparable_errors(&go[k], &ours[k]),
            _ => (go[k].clone(), ours[k].clone()),
        };
        if go_k != ours_k {
            out.push(format!("{k}: go {}, ours {}", go[k], ours[k]));
        }
    }
    out.extend(metadata_differences(go, ours, hydrates));
    if let Some(d) = go.get("digests") {
        let (gd, od) = (d.as_object().unwrap(), ours["digests"].as_object());
        let od = od.cloned().unwrap_or_default();
        for (id, g) in gd {
            match od.get(id) {
                None => out.push(format!("row {id}: missing from ours")),
                Some(o) if o != g => out.push(format!("row {id}: differs from the recording")),
                _ => {}
            }
        }
        for id in od.keys().filter(|id| !gd.contains_key(*id)) {
            out.push(format!("row {id}: ours only"));
        }
        return out;
    }
    let key = |r: &Value| -> String {
        match r.get("instance_id") {
            Some(v) => v[1].as_str().unwrap_or("").to_string(),
            None => r.to_string(),
        }
    };
    out.extend(oracle::row_differences(&go["rows"], &ours["rows"], key));
    out
}

/// An answer as recorded: times masked (whether `state_transition_time`
/// equals `launch_time` is kept), UUIDs (boto3's client tokens) masked; rows
/// as one digest per instance for large answers and `digest` cases.
fn recorded(answer: &Value, c: &Case) -> Value {
    let Some(rows) = answer.get("rows").and_then(Value::as_array) else {
        return answer.clone();
    };
    let mut rows: Vec<Value> = rows.iter().map(normalise_row).collect();
    rows.sort_by_key(|r| r.to_string());
    let mut out = answer.clone();
    if c.digest || rows.len() > FULL_ROWS_UP_TO {
        let digests: BTreeMap<String, Value> = rows
            .iter()
            .map(|r| {
                let id = r["instance_id"][1].as_str().unwrap_or("?").to_string();
                (
                    id,
                    json!(format!("{:016x}", fnv1a(r.to_string().as_bytes()))),
                )
            })
            .collect();
        out.as_object_mut().unwrap().remove("rows");
        out["digests"] = json!(digests);
    } else {
        out["rows"] = Value::Array(rows);
    }
    out
}

fn normalise_row(row: &Value) -> Value {
    let mut out = oracle::normalise_row(row);
    if let (Some(l), Some(s)) = (row.get("launch_time"), row.get("state_transition_time")) {
        out["(state_transition_time = launch_time)"] = json!(l == s);
    }
    out
}

#[test]
#[ignore = "needs turbot's Go plugin: run scripts/conformance.sh go-plugin"]
fn go_plugin_and_ours_answer_alike() {
    let go = go_plugin();
    let ours = our_plugin();
    let b = bed();
    let schema_case = case("schema", json!({"op": "get_schema", "connection": "aws"}));
    let go_schema = ask(&go, &schema_case);
    let columns = schema_columns(&go_schema["table"]);
    let cases = cases(&b.seeded, &columns);
    let mut diffs = BTreeMap::new();
    let mut recording = serde_json::Map::new();
    for c in &cases {
        let t = std::time::Instant::now();
        let g = if c.name == "schema" {
            go_schema.clone()
        } else {
            ask(&go, c)
        };
        let tg = t.elapsed();
        let o = ask(&ours, c);
        eprintln!(
            "{}: go {:.1} s, ours {:.1} s",
            c.name,
            tg.as_secs_f64(),
            (t.elapsed() - tg).as_secs_f64()
        );
        let d = differences(&g, &o, asked_hydrates(&go_schema["table"], c));
        if !d.is_empty() {
            diffs.insert(c.name.clone(), d);
        }
        recording.insert(c.name.clone(), recorded(&g, c));
    }
    let golden = json!({
        "_": "What turbot's Go AWS plugin answered; written by tests/oracle_go_plugin.rs (scripts/conformance.sh go-plugin), checked by its default test.",
        "go_plugin": "github.com/turbot/steampipe-plugin-aws v1.31.0 (scripts/conformance/go-plugin.sh)",
        "fleet": fleet_fingerprint(),
        "answers": recording,
    });
    std::fs::write(root().join(GOLDEN), golden_text(&golden)).unwrap();
    assert!(
        diffs.is_empty(),
        "the Go plugin and ours differ in {} of {} cases:{}",
        diffs.len(),
        cases.len(),
        report(&diffs)
    );
}

#[test]
fn ours_answers_as_the_recorded_go_plugin() {
    let text = std::fs::read_to_string(root().join(GOLDEN))
        .unwrap_or_else(|e| panic!("{GOLDEN}: {e}; {RERECORD}"));
    let golden: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        golden["fleet"],
        json!(fleet_fingerprint()),
        "{GOLDEN} was recorded on another fleet; {RERECORD}"
    );
    let answers = golden["answers"].as_object().unwrap();
    let b = bed();
    let columns = schema_columns(&answers["schema"]["table"]);
    let cases = cases(&b.seeded, &columns);
    let names: BTreeSet<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    let recorded_names: BTreeSet<&str> = answers.keys().map(String::as_str).collect();
    assert_eq!(
        names, recorded_names,
        "the recording has other cases than the test; {RERECORD}"
    );
    let mut diffs = BTreeMap::new();
    for c in &cases {
        let o = recorded(&ask(&our_plugin(), c), c);
        let d = differences(
            &answers[&c.name],
            &o,
            asked_hydrates(&answers["schema"]["table"], c),
        );
        if !d.is_empty() {
            diffs.insert(c.name.clone(), d);
        }
    }
    assert!(
        diffs.is_empty(),
        "ours differs from the recorded Go plugin in {} of {} cases:{}",
        diffs.len(),
        cases.len(),
        report(&diffs)
    );
}
