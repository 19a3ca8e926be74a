//! turbot's Go AWS plugin as the oracle for `aws_ec2_ami` and
//! `aws_ec2_ami_shared` (issue 13), on the harness of `tests/common/oracle.rs`:
//! moto seeded deterministically by `tests/fixtures/ami_fleet.py`, plus the
//! fast test endpoint's recorded answers (`tests/fixtures/bench_images.py`)
//! for what moto cannot produce (`imds_support`, TpmSupport, DeprecationTime,
//! a foreign owner without alias).
//!
//! - `go_plugin_and_ours_answer_alike_*` (ignored: they need turbot's plugin
//!   in `$GO_AWS_PLUGIN`, run by `scripts/conformance.sh go-plugin`) ask both
//!   plugins every case and rewrite `tests/golden/go_plugin_oracle_ec2_ami*.json`.
//! - `ours_answers_as_the_recorded_go_plugin_*` (default run) ask ours the
//!   same cases and compare with those recordings.

mod common;

use std::sync::OnceLock;

use common::moto::FastEndpoint;
use common::oracle::{self, eq, eq_bool, in_list, scan, schema_step, Bed, Case, Table};
use common::{qual, quals};
use serde_json::{json, Value};

const SEED: u64 = 20_261_208;
const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];
const AMI: Table = Table {
    name: "aws_ec2_ami",
    key: &["image_id"],
    actions: &["DescribeImages", "DescribeImageAttribute"],
};
const SHARED: Table = Table {
    name: "aws_ec2_ami_shared",
    key: &["image_id"],
    actions: &["DescribeImages"],
};
const GOLDEN_AMI: &str = "tests/golden/go_plugin_oracle_ec2_ami.json";
const GOLDEN_SHARED: &str = "tests/golden/go_plugin_oracle_ec2_ami_shared.json";

fn bed() -> &'static Bed {
    static BED: OnceLock<Bed> = OnceLock::new();
    BED.get_or_init(|| {
        Bed::start(
            SEED,
            &[
                "tests/fixtures/ami_fleet.py",
                "tests/fixtures/bench_images.py",
            ],
            |m| oracle::fixture(m, "ami_fleet.py", &[]),
        )
    })
}

fn fast() -> &'static FastEndpoint {
    static FAST: OnceLock<FastEndpoint> = OnceLock::new();
    FAST.get_or_init(|| FastEndpoint::start(1, 0, &["us-east-1"]))
}

fn jsonb(column: &str, v: Value) -> Value {
    qual(column, "=", Some(json!({ "jsonbValue": v.to_string() })))
}

fn names(columns: &[(String, bool)]) -> Vec<&str> {
    columns.iter().map(|c| c.0.as_str()).collect()
}

fn ids(seeded: &Value) -> (String, String, String) {
    let id = |k: &str| seeded["ids"][k].as_str().unwrap().to_string();
    (id("golden"), id("public"), id("disabled"))
}

fn ami_cases(seeded: &Value, columns: &[(String, bool)]) -> Vec<Case> {
    let all = names(columns);
    let t = AMI.name;
    let (golden, public, _) = ids(seeded);
    let mut out = vec![
        Case::new("schema", schema_step()),
        Case::new("all columns, 2 regions", scan(t, &all, json!({}), None)).regions(&REGIONS),
        Case::new(
            "get web-golden, all columns",
            scan(t, &all, eq("image_id", &golden), None),
        )
        .regions(&REGIONS),
        Case::new(
            "image_id IN (golden, public, unknown)",
            scan(
                t,
                &["image_id", "region", "name"],
                in_list("image_id", &[&golden, &public, "ami-0123456789abcdef0"]),
                None,
            ),
        )
        .regions(&REGIONS),
        Case::new(
            "state IN (available, disabled)",
            scan(
                t,
                &["image_id", "state"],
                in_list("state", &["available", "disabled"]),
                None,
            ),
        ),
        Case::new(
            "state and name IN lists (kept whole: filters without values)",
            scan(
                t,
                &["image_id", "state"],
                quals(&[
                    in_list("state", &["available", "disabled"]),
                    in_list("name", &["web-golden", "registered-public"]),
                ]),
                None,
            ),
        )
        .extra(oracle::FEW_RETRIES),
        Case::new(
            "public = true",
            scan(t, &["image_id", "public"], eq_bool("public", true), None),
        ),
        Case::new(
            "public <> true",
            scan(
                t,
                &["image_id", "public"],
                qual("public", "<>", Some(json!({"boolValue": true}))),
                None,
            ),
        ),
        Case::new(
            "ena_support = false",
            scan(t, &["image_id"], eq_bool("ena_support", false), None),
        )
        .extra(oracle::FEW_RETRIES),
        Case::new("limit 1", scan(t, &["image_id"], json!({}), Some(1))).count_only(),
        Case::new(
            "region = eu-west-1",
            scan(t, &["image_id", "region"], eq("region", "eu-west-1"), None),
        )
        .regions(&REGIONS),
        Case::new(
            "fast endpoint: imds_support and what moto lacks, all columns",
            scan(t, &all, json!({}), None),
        )
        .endpoint(&fast().endpoint),
    ];
    out.push(
        Case::new(
            "region = us-west-2 (not in the connection)",
            scan(t, &["image_id", "region"], eq("region", "us-west-2"), None),
        )
        .regions(&REGIONS),
    );
    let throttle = |action: &str| {
        json!([{"action": action, "code": "RequestLimitExceeded", "status": 503,
                "message": "Request limit exceeded.", "times": -1}])
    };
    out.push(
        Case::new(
            "DescribeImages throttled until retries run out",
            scan(t, &["image_id"], json!({}), None),
        )
        .extra("max_error_retry_attempts = 3\nmin_error_retry_delay = 10\n")
        .rules(throttle("DescribeImages")),
    );
    out.push(
        Case::new(
            "DescribeImageAttribute denied (launch_permissions)",
            scan(t, &["image_id", "launch_permissions"], json!({}), None),
        )
        .rules(
            json!([{"action": "DescribeImageAttribute", "code": "UnauthorizedOperation",
                       "status": 403, "times": -1,
                       "message": "You are not authorized to perform this operation."}]),
        ),
    );
    for (what, bad) in [
        ("unknown", "ami-0123456789abcdef0"),
        ("malformed", "not-an-ami"),
        ("empty", ""),
    ] {
        out.push(
            Case::new(
                &format!("get {what} image id"),
                scan(t, &["image_id"], eq("image_id", bad), None),
            )
            .regions(&REGIONS),
        );
    }
    for (col, v) in [
        ("architecture", "x86_64"),
        ("description", "from web-1"),
        ("hypervisor", "xen"),
        ("image_type", "machine"),
        ("kernel_id", "aki-00000000"),
        ("platform", "windows"),
        ("name", "web-golden"),
        ("ramdisk_id", "ari-00000000"),
        ("root_device_name", "/dev/sda1"),
        ("root_device_type", "standard"),
        ("state", "disabled"),
        ("sriov_net_support", "simple"),
        ("virtualization_type", "hvm"),
    ] {
        out.push(
            Case::new(
                &format!("filter {col} = {v}"),
                scan(t, &["image_id", col], eq(col, v), None),
            )
            .extra(oracle::FEW_RETRIES),
        );
    }
    out
}

fn shared_cases(seeded: &Value, columns: &[(String, bool)]) -> Vec<Case> {
    let all = names(columns);
    let t = SHARED.name;
    let account = seeded["account_id"].as_str().unwrap();
    let (golden, public, _) = ids(seeded);
    vec![
        Case::new("schema", schema_step()),
        Case::new("no owner or image", scan(t, &["image_id"], json!({}), None)),
        Case::new(
            "owner_ids alone",
            scan(t, &["image_id"], jsonb("owner_ids", json!([account])), None),
        ),
        Case::new(
            "owner_id = the account, all columns, 2 regions",
            scan(t, &all, eq("owner_id", account), None),
        )
        .regions(&REGIONS),
        Case::new(
            "owner_id = amazon's account, limit 5",
            scan(
                t,
                &["image_id", "image_owner_alias", "public", "owner_id"],
                eq("owner_id", "137112412989"),
                Some(5),
            ),
        ),
        Case::new(
            "owner_id = amazon (an alias: no row has that owner_id)",
            scan(
                t,
                &["image_id", "owner_id"],
                eq("owner_id", "amazon"),
                Some(3),
            ),
        ),
        Case::new(
            "image_id = web-golden",
            scan(t, &all, eq("image_id", &golden), None),
        ),
        Case::new(
            "image_ids, owner_ids and owner_id",
            scan(
                t,
                &["image_id", "image_ids", "owner_ids", "owner_id"],
                quals(&[
                    jsonb("image_ids", json!([golden, public])),
                    jsonb("owner_ids", json!(["self"])),
                    eq("owner_id", account),
                ]),
                Some(10),
            ),
        ),
        Case::new(
            "owner_id = the account, region IN (us-east-1, eu-west-1)",
            scan(
                t,
                &["image_id", "region"],
                quals(&[
                    eq("owner_id", account),
                    in_list("region", &["us-east-1", "eu-west-1"]),
                ]),
                None,
            ),
        )
        .regions(&REGIONS),
        Case::new(
            "image_ids malformed",
            scan(t, &["image_id"], jsonb("image_ids", json!("ami-1")), None),
        ),
        Case::new(
            "image_id unknown",
            scan(
                t,
                &["image_id"],
                eq("image_id", "ami-0123456789abcdef0"),
                None,
            ),
        ),
        Case::new(
            "owner_id and filters",
            scan(
                t,
                &["image_id", "name", "public"],
                quals(&[
                    eq("owner_id", account),
                    eq("name", "registered-public"),
                    eq_bool("public", true),
                ]),
                None,
            ),
        ),
        Case::new(
            "fast endpoint: foreign owner without alias, imds_support",
            scan(t, &all, eq("owner_id", "999988887777"), None),
        )
        .endpoint(&fast().endpoint),
        Case::new(
            "fast endpoint: the account's images",
            scan(
                t,
                &[
                    "image_id",
                    "imds_support",
                    "image_owner_alias",
                    "deprecation_time",
                ],
                eq("owner_id", "123456789012"),
                None,
            ),
        )
        .endpoint(&fast().endpoint),
    ]
}

#[test]
#[ignore = "needs turbot's Go AWS plugin: run scripts/conformance.sh go-plugin"]
fn go_plugin_and_ours_answer_alike_ami() {
    oracle::compare_live(bed(), &AMI, GOLDEN_AMI, |c| ami_cases(&bed().seeded, c));
}

#[test]
#[ignore = "needs turbot's Go AWS plugin: run scripts/conformance.sh go-plugin"]
fn go_plugin_and_ours_answer_alike_ami_shared() {
    oracle::compare_live(bed(), &SHARED, GOLDEN_SHARED, |c| {
        shared_cases(&bed().seeded, c)
    });
}

#[test]
fn ours_answers_as_the_recorded_go_plugin_ami() {
    oracle::compare_golden(bed(), &AMI, GOLDEN_AMI, |c| ami_cases(&bed().seeded, c));
}

#[test]
fn ours_answers_as_the_recorded_go_plugin_ami_shared() {
    oracle::compare_golden(bed(), &SHARED, GOLDEN_SHARED, |c| {
        shared_cases(&bed().seeded, c)
    });
}
