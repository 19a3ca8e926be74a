//! `aws_ec2_launch_template` and `aws_ec2_launch_template_version` through
//! sphost (steampipe-plugin-sdk's client), against the moto emulator seeded
//! by `tests/fixtures/launch_templates.py`: every column of every seeded
//! template and version compared with what the EC2 API returned for it, the
//! statuses of upstream's `ec2_launch_template_default_version_uses_imdsv2`
//! on those rows, and the requests the plugin sent (names, ids, filters,
//! MaxResults, versions, regions) read from the emulator's request recorder.

mod common;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use common::moto::{Moto, Recorded};
use common::*;
use serde_json::{json, Value};

const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "ap-southeast-2"];

struct Bed {
    moto: Moto,
    seeded: Value,
}

fn bed() -> &'static Bed {
    static BED: OnceLock<Bed> = OnceLock::new();
    BED.get_or_init(|| {
        let moto = Moto::start();
        let seeded = common::oracle::fixture(&moto, "launch_templates.py", &[]);
        moto.start_recording();
        Bed { moto, seeded }
    })
}

/// The connection config, with an access key unique to the test so that its
/// requests can be told apart in the shared recording.
fn config(key: &str, regions: &[&str]) -> String {
    let regions: Vec<String> = regions.iter().map(|r| format!("\"{r}\"")).collect();
    format!(
        "access_key = \"{key}\"\ndefault_region = \"us-east-1\"\nendpoint_url = \"{}\"\nregions = [{}]\nsecret_key = \"test-secret-{key}\"\n",
        bed().moto.endpoint,
        regions.join(", ")
    )
}

/// Runs one scan of `table`; returns (rows as `{column: value}`, the end event).
fn scan(
    key: &str,
    regions: &[&str],
    table: &str,
    columns: &[&str],
    quals: Value,
    limit: Option<i64>,
) -> (Vec<Value>, Value) {
    let mut req = execute(table, "aws", columns, quals, limit);
    req["executeConnectionData"]["aws"]["cacheEnabled"] = json!(false);
    let ev = run(&json!({
        "plugin": target_dir().join("steampipe-plugin-aws"),
        "env": {"AWS_EC2_METADATA_DISABLED": "true", "STEAMPIPE_LOG_LEVEL": "WARN"},
        "connections": [aws_connection("aws", &config(key, regions))],
        "steps": [{"op": "execute", "request": req}],
    }));
    // The asked columns only (the SDK adds sp_connection_name, sp_ctx, _ctx).
    let rows = events(&ev, "row", Some(0))
        .into_iter()
        .map(|r| {
            let mut v = r["values"].clone();
            let cells = v.as_object_mut().unwrap();
            cells.retain(|k, _| columns.contains(&k.as_str()));
            v
        })
        .collect();
    (rows, one(&ev, "execute_end", Some(0)).clone())
}

fn requests(key: &str, action: &str) -> Vec<Recorded> {
    bed()
        .moto
        .recording()
        .into_iter()
        .filter(|r| r.access_key == key && r.action == action)
        .collect()
}

fn eq(column: &str, v: Value) -> Value {
    let value = match v {
        Value::Bool(b) => json!({ "boolValue": b }),
        Value::Number(n) => json!({ "int64Value": n.to_string() }),
        v => json!({ "stringValue": v }),
    };
    qual(column, "=", Some(value))
}

/// The seeded templates and versions of every region: (region, item).
fn seeded(kind: &str) -> Vec<(String, Value)> {
    REGIONS
        .iter()
        .flat_map(|r| {
            bed().seeded["regions"][r][kind]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| (r.to_string(), x.clone()))
        })
        .collect()
}

fn template_id(name: &str) -> String {
    seeded("templates")
        .into_iter()
        .find(|(_, t)| t["LaunchTemplateName"] == name)
        .map(|(_, t)| t["LaunchTemplateId"].as_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("no template {name} was seeded"))
}

fn tags_map(tags: &Value) -> Value {
    match tags.as_array() {
        None => Value::Null,
        Some(ts) => Value::Object(
            ts.iter()
                .map(|t| (t["Key"].as_str().unwrap().to_string(), t["Value"].clone()))
                .collect(),
        ),
    }
}

/// A timestamp to the second.
fn second(v: &Value) -> String {
    v.as_str().unwrap_or_default().chars().take(19).collect()
}

fn account() -> &'static str {
    bed().seeded["account_id"].as_str().unwrap()
}

#[test]
fn every_template_row_matches_the_api() {
    let (rows, end) = scan(
        "AKIDLTALL",
        &REGIONS,
        "aws_ec2_launch_template",
        &[
            "launch_template_name",
            "launch_template_id",
            "create_time",
            "created_by",
            "default_version_number",
            "latest_version_number",
            "tags_src",
            "title",
            "tags",
            "akas",
            "partition",
            "region",
            "account_id",
        ],
        json!({}),
        None,
    );
    assert!(end.get("error").is_none(), "{end}");
    let want = seeded("templates");
    assert_eq!(rows.len(), want.len(), "{rows:#?}");
    for (region, t) in &want {
        let id = t["LaunchTemplateId"].as_str().unwrap();
        let r = rows
            .iter()
            .find(|r| r["launch_template_id"] == id)
            .unwrap_or_else(|| panic!("no row for {id}"));
        let expect = [
            ("launch_template_name", t["LaunchTemplateName"].clone()),
            ("created_by", t["CreatedBy"].clone()),
            ("default_version_number", t["DefaultVersionNumber"].clone()),
            ("latest_version_number", t["LatestVersionNumber"].clone()),
            ("tags_src", t["Tags"].clone()),
            ("title", t["LaunchTemplateName"].clone()),
            ("tags", tags_map(&t["Tags"])),
            (
                "akas",
                json!([format!(
                    "arn:aws:ec2:{region}:{}:launch-template/{id}",
                    account()
                )]),
            ),
            ("partition", json!("aws")),
            ("region", json!(region)),
            ("account_id", json!(account())),
        ];
        for (col, v) in expect {
            assert_eq!(r[col], v, "{id} column {col}");
        }
        assert_eq!(second(&r["create_time"]), second(&t["CreateTime"]), "{id}");
    }
    // One call a region, 200 a page.
    let calls = requests("AKIDLTALL", "DescribeLaunchTemplates");
    let mut regions: Vec<&str> = calls.iter().map(|c| c.region.as_str()).collect();
    regions.sort();
    assert_eq!(regions, ["ap-southeast-2", "eu-west-1", "us-east-1"]);
    assert!(calls.iter().all(|c| c.param("MaxResults") == Some("200")));
}

#[test]
fn template_key_columns_become_names_and_ids() {
    let web = template_id("web");
    let (rows, _) = scan(
        "AKIDLTNAME",
        &["us-east-1", "eu-west-1"],
        "aws_ec2_launch_template",
        &["launch_template_id"],
        eq("launch_template_name", json!("web")),
        None,
    );
    assert_eq!(rows, [json!({ "launch_template_id": web })]);
    let calls = requests("AKIDLTNAME", "DescribeLaunchTemplates");
    assert_eq!(calls.len(), 2);
    assert!(calls
        .iter()
        .all(|c| c.param("LaunchTemplateName.1") == Some("web")));
    // A name that exists in no region: moto answers
    // InvalidLaunchTemplateName.NotFoundException, ignored.
    let (rows, end) = scan(
        "AKIDLTNONAME",
        &["us-east-1"],
        "aws_ec2_launch_template",
        &["launch_template_id"],
        eq("launch_template_name", json!("no-such")),
        None,
    );
    assert!(rows.is_empty() && end.get("error").is_none(), "{end}");
    let (rows, _) = scan(
        "AKIDLTID",
        &["us-east-1"],
        "aws_ec2_launch_template",
        &["launch_template_name"],
        eq("launch_template_id", json!(web)),
        None,
    );
    assert_eq!(rows, [json!({ "launch_template_name": "web" })]);
    let calls = requests("AKIDLTID", "DescribeLaunchTemplates");
    assert_eq!(calls[0].param("LaunchTemplateId.1"), Some(web.as_str()));
}

#[test]
fn a_limit_is_pushed_down_as_max_results() {
    let (rows, _) = scan(
        "AKIDLTLIMIT",
        &["us-east-1"],
        "aws_ec2_launch_template",
        &["launch_template_id"],
        json!({}),
        Some(2),
    );
    assert_eq!(rows.len(), 2);
    let calls = requests("AKIDLTLIMIT", "DescribeLaunchTemplates");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].param("MaxResults"), Some("2"));
    let web = template_id("web");
    let (rows, _) = scan(
        "AKIDLTVLIMIT",
        &["us-east-1"],
        "aws_ec2_launch_template_version",
        &["version_number"],
        eq("launch_template_id", json!(web)),
        Some(2),
    );
    assert_eq!(rows.len(), 2);
    let calls = requests("AKIDLTVLIMIT", "DescribeLaunchTemplateVersions");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].param("MaxResults"), Some("2"));
    assert_eq!(calls[0].param("LaunchTemplateId"), Some(web.as_str()));
}

/// What each version column must hold, from the API's answer.
fn expected_version(v: &Value) -> Vec<(&'static str, Value)> {
    let d = &v["LaunchTemplateData"];
    let list = |x: &Value| -> Value {
        let items: Vec<&str> = x
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        json!(format!("[{}]", items.join(" ")))
    };
    let user_data = match d["UserData"].as_str() {
        None => json!(""),
        Some(b64) => {
            use base64::Engine;
            let text = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap();
            let text = String::from_utf8(text).unwrap();
            json!(text.chars().filter(|c| !c.is_control()).collect::<String>())
        }
    };
    vec![
        ("launch_template_name", v["LaunchTemplateName"].clone()),
        ("created_by", v["CreatedBy"].clone()),
        ("default_version", v["DefaultVersion"].clone()),
        ("disable_api_stop", d["DisableApiStop"].clone()),
        (
            "disable_api_termination",
            d["DisableApiTermination"].clone(),
        ),
        ("ebs_optimized", d["EbsOptimized"].clone()),
        ("image_id", d["ImageId"].clone()),
        (
            "instance_type",
            d.get("InstanceType").cloned().unwrap_or(json!("")),
        ),
        ("kernel_id", d["KernelId"].clone()),
        ("key_name", d["KeyName"].clone()),
        ("ram_disk_id", d["RamDiskId"].clone()),
        ("security_groups", list(&d["SecurityGroups"])),
        ("security_group_ids", list(&d["SecurityGroupIds"])),
        ("version_description", v["VersionDescription"].clone()),
        ("version_number", v["VersionNumber"].clone()),
        ("user_data", user_data),
        ("title", v["LaunchTemplateName"].clone()),
    ]
}

fn version_columns() -> Vec<&'static str> {
    let mut cols: Vec<&str> = expected_version(&json!({}))
        .into_iter()
        .map(|(c, _)| c)
        .collect();
    cols.extend([
        "launch_template_id",
        "create_time",
        "launch_template_data",
        "region",
    ]);
    cols
}

#[test]
fn every_version_row_matches_the_api() {
    let (rows, end) = scan(
        "AKIDLTVALL",
        &REGIONS,
        "aws_ec2_launch_template_version",
        &version_columns(),
        json!({}),
        None,
    );
    assert!(end.get("error").is_none(), "{end}");
    let want = seeded("versions");
    assert_eq!(rows.len(), want.len(), "{rows:#?}");
    for (region, v) in &want {
        let (id, n) = (&v["LaunchTemplateId"], &v["VersionNumber"]);
        let r = rows
            .iter()
            .find(|r| &r["launch_template_id"] == id && &r["version_number"] == n)
            .unwrap_or_else(|| panic!("no row for {id} version {n}"));
        for (col, want) in expected_version(v) {
            assert_eq!(r[col], want, "{id} v{n} column {col}");
        }
        assert_eq!(r["region"], json!(region));
        assert_eq!(second(&r["create_time"]), second(&v["CreateTime"]));
        go_json_matches(
            "launch_template_data",
            &r["launch_template_data"],
            &v["LaunchTemplateData"],
        )
        .unwrap_or_else(|e| panic!("{id} v{n}: {e}"));
    }
    // One DescribeLaunchTemplates a region, then one
    // DescribeLaunchTemplateVersions per template, by id, 200 a page.
    assert_eq!(requests("AKIDLTVALL", "DescribeLaunchTemplates").len(), 3);
    let calls = requests("AKIDLTVALL", "DescribeLaunchTemplateVersions");
    let mut ids: Vec<&str> = calls
        .iter()
        .filter_map(|c| c.param("LaunchTemplateId"))
        .collect();
    ids.sort();
    let mut want_ids: Vec<String> = seeded("templates")
        .iter()
        .map(|(_, t)| t["LaunchTemplateId"].as_str().unwrap().to_string())
        .collect();
    want_ids.sort();
    assert_eq!(ids, want_ids);
    assert!(calls.iter().all(|c| c.param("MaxResults") == Some("200")));
}

/// Upstream's `ec2_launch_template_default_version_uses_imdsv2`, evaluated
/// on our rows `where default_version` as Postgres would.
#[test]
fn the_imds_control_query_gives_upstreams_statuses() {
    let (rows, _) = scan(
        "AKIDLTIMDS",
        &REGIONS,
        "aws_ec2_launch_template_version",
        &[
            "launch_template_id",
            "launch_template_data",
            "title",
            "default_version",
        ],
        eq("default_version", json!(true)),
        None,
    );
    let got: BTreeMap<String, (String, String)> = rows
        .iter()
        .filter(|r| r["default_version"] == true)
        .map(|r| {
            let ok = r["launch_template_data"]["MetadataOptions"]["HttpTokens"] == "required";
            let title = r["title"].as_str().unwrap();
            (
                r["launch_template_id"].as_str().unwrap().to_string(),
                if ok {
                    ("ok".into(), format!("{title} configured to use Instance Metadata Service Version 2 (IMDSv2)."))
                } else {
                    ("alarm".into(), format!("{title} not configured to use Instance Metadata Service Version 2 (IMDSv2)."))
                },
            )
        })
        .collect();
    let status = |name: &str| got[&template_id(name)].0.clone();
    // web: default 2 requires IMDSv2, the later 3 has no MetadataOptions.
    assert_eq!(status("web"), "ok");
    // hardened: default 1 requires it, the later 2 allows IMDSv1.
    assert_eq!(status("hardened"), "ok");
    assert_eq!(status("legacy-v1"), "alarm");
    // bare: the endpoint disabled, HttpTokens absent.
    assert_eq!(status("bare"), "alarm");
    assert_eq!(status("eu-app"), "ok");
    assert_eq!(got.len(), 5);
    assert_eq!(
        got[&template_id("legacy-v1")].1,
        "legacy-v1 not configured to use Instance Metadata Service Version 2 (IMDSv2)."
    );
    // The qual went to the API as upstream sends it.
    let calls = requests("AKIDLTIMDS", "DescribeLaunchTemplateVersions");
    assert!(!calls.is_empty());
    for c in &calls {
        assert_eq!(
            c.filters(),
            [("is-default-version".to_string(), vec!["true".to_string()])]
        );
    }
}

#[test]
fn version_quals_become_filters_names_and_versions() {
    let hardened = template_id("hardened");
    let (rows, _) = scan(
        "AKIDLTVNAME",
        &["us-east-1"],
        "aws_ec2_launch_template_version",
        &["launch_template_id", "version_number"],
        quals(&[
            eq("launch_template_name", json!("hardened")),
            eq("instance_type", json!("c5.xlarge")),
            eq("ebs_optimized", json!(false)),
        ]),
        None,
    );
    assert_eq!(rows.len(), 0, "no hardened version says EbsOptimized=false");
    let calls = requests("AKIDLTVNAME", "DescribeLaunchTemplateVersions");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].param("LaunchTemplateName"), Some("hardened"));
    let mut filters = calls[0].filters();
    filters.sort();
    assert_eq!(
        filters,
        [
            ("ebs-optimized".to_string(), vec!["false".to_string()]),
            ("instance-type".to_string(), vec!["c5.xlarge".to_string()]),
        ]
    );
    let lt = requests("AKIDLTVNAME", "DescribeLaunchTemplates");
    assert_eq!(lt[0].param("LaunchTemplateName.1"), Some("hardened"));
    // Get: the id and the version number.
    let (rows, end) = scan(
        "AKIDLTVGET",
        &["us-east-1", "eu-west-1"],
        "aws_ec2_launch_template_version",
        &["version_number", "default_version", "region"],
        quals(&[
            eq("launch_template_id", json!(hardened)),
            eq("version_number", json!(2)),
        ]),
        None,
    );
    assert!(end.get("error").is_none(), "{end}");
    assert_eq!(
        rows,
        [json!({"version_number": 2, "default_version": false, "region": "us-east-1"})]
    );
    let calls = requests("AKIDLTVGET", "DescribeLaunchTemplateVersions");
    assert_eq!(calls.len(), 2, "one call a region");
    assert!(calls
        .iter()
        .all(|c| c.param("LaunchTemplateVersion.1") == Some("2")
            && c.param("LaunchTemplateId") == Some(hardened.as_str())));
}

#[test]
fn both_name_and_id_quals_of_one_template_are_upstreams_error() {
    let web = template_id("web");
    let (rows, end) = scan(
        "AKIDLTVBOTH",
        &["us-east-1"],
        "aws_ec2_launch_template_version",
        &["version_number"],
        quals(&[
            eq("launch_template_name", json!("web")),
            eq("launch_template_id", json!(web)),
        ]),
        None,
    );
    assert!(rows.is_empty());
    let error = end["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(
            "both 'LaunchtemplateName' and 'LaunchTemplateId' cannot be passed in the where clause"
        ),
        "{end}"
    );
    // Quals naming two different templates match none: no error, no call.
    let (rows, end) = scan(
        "AKIDLTVTWO",
        &["us-east-1"],
        "aws_ec2_launch_template_version",
        &["version_number"],
        quals(&[
            eq("launch_template_name", json!("hardened")),
            eq("launch_template_id", json!(web)),
        ]),
        None,
    );
    assert!(rows.is_empty() && end.get("error").is_none(), "{end}");
    assert!(requests("AKIDLTVTWO", "DescribeLaunchTemplateVersions").is_empty());
}
