//! `aws_ec2_ami` and `aws_ec2_ami_shared` through sphost (steampipe-plugin-sdk's
//! client): against moto seeded by `tests/fixtures/ami_fleet.py` (CreateImage
//! from an instance, RegisterImage, CopyImage into another region, launch
//! permissions for another account and for everyone, DisableImage), every
//! column compared with what the EC2 API returned and the requests read from
//! moto's recorder; and against the fast test endpoint
//! (`tests/fixtures/bench_images.py`), whose recorded answers carry what moto
//! cannot produce: `ImdsSupport`, TpmSupport, DeprecationTime, a foreign
//! owner without alias.

mod common;

use std::collections::HashMap;
use std::sync::OnceLock;

use common::moto::{FastEndpoint, Moto, Recorded};
use common::*;
use serde_json::{json, Value};

const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];

struct Fleet {
    moto: Moto,
    seeded: Value,
}

fn fleet() -> &'static Fleet {
    static FLEET: OnceLock<Fleet> = OnceLock::new();
    FLEET.get_or_init(|| {
        let moto = Moto::start();
        let seeded = common::oracle::fixture(&moto, "ami_fleet.py", &[]);
        moto.start_recording();
        Fleet { moto, seeded }
    })
}

fn fast() -> &'static FastEndpoint {
    static FAST: OnceLock<FastEndpoint> = OnceLock::new();
    FAST.get_or_init(|| FastEndpoint::start(1, 0, &["us-east-1"]))
}

/// A connection with an access key unique to the test (its requests can be
/// told apart in the shared recording).
fn config(endpoint: &str, key: &str, regions: &[&str]) -> String {
    let regions: Vec<String> = regions.iter().map(|r| format!("\"{r}\"")).collect();
    format!(
        "access_key = \"{key}\"\ndefault_region = \"us-east-1\"\nendpoint_url = \"{endpoint}\"\nregions = [{}]\nsecret_key = \"test-secret-{key}\"\n",
        regions.join(", ")
    )
}

fn scenario(config: &str, steps: Vec<Value>) -> Value {
    json!({
        "plugin": target_dir().join("steampipe-plugin-aws"),
        "env": {"AWS_EC2_METADATA_DISABLED": "true", "STEAMPIPE_LOG_LEVEL": "WARN"},
        "connections": [aws_connection("aws", config)],
        "steps": steps,
    })
}

fn scan(table: &str, columns: &[&str], quals: Value, limit: Option<i64>) -> Value {
    let mut req = execute(table, "aws", columns, quals, limit);
    req["executeConnectionData"]["aws"]["cacheEnabled"] = json!(false);
    json!({"op": "execute", "request": req})
}

fn eq(column: &str, v: &str) -> Value {
    qual(column, "=", Some(json!({ "stringValue": v })))
}

fn jsonb(column: &str, v: Value) -> Value {
    qual(column, "=", Some(json!({ "jsonbValue": v.to_string() })))
}

fn requests(key: &str, action: &str) -> Vec<Recorded> {
    (fleet().moto.recording().into_iter())
        .filter(|r| r.access_key == key && r.action == action)
        .collect()
}

/// The schema's columns of `table`.
fn schema(table: &str) -> Vec<Value> {
    let ev = run(&scenario(
        "",
        vec![json!({"op": "get_schema", "connection": "aws"})],
    ));
    one(&ev, "schema", Some(0))["response"]["schema"]["schema"][table]["columns"]
        .as_array()
        .unwrap()
        .clone()
}

fn names(cols: &[Value]) -> Vec<String> {
    (cols.iter())
        .map(|c| c["name"].as_str().unwrap().to_string())
        .filter(|n| !["sp_connection_name", "sp_ctx", "_ctx"].contains(&n.as_str()))
        .collect()
}

/// The rows of one scan, by image id.
fn scan_rows(config: &str, step: Value) -> (Value, HashMap<String, Value>) {
    let ev = run(&scenario(config, vec![step]));
    let end = one(&ev, "execute_end", Some(0)).clone();
    let rows = (rows(&ev, 0).into_iter())
        .map(|r| {
            let id = r["values"]["image_id"].as_str().unwrap_or("?").to_string();
            (id, r["values"].clone())
        })
        .collect();
    (end, rows)
}

/// A Go value enum: `""` when absent.
fn e(v: &Value) -> Value {
    if v.is_null() {
        json!("")
    } else {
        v.clone()
    }
}

/// Seconds precision text of a timestamp (row: RFC 3339; API: ISO 8601).
fn secs(v: &Value) -> Option<String> {
    v.as_str().map(|s| s.chars().take(19).collect())
}

#[test]
fn every_column_of_every_own_image_is_what_the_api_returned() {
    let f = fleet();
    let cols = names(&schema("aws_ec2_ami"));
    assert_eq!(cols.len(), 38);
    let all: Vec<&str> = cols.iter().map(String::as_str).collect();
    let key = "AKIDAMIEVERY";
    let (end, rows) = scan_rows(
        &config(&f.moto.endpoint, key, &REGIONS),
        scan("aws_ec2_ami", &all, json!({}), None),
    );
    assert_eq!(end["end"], "eof", "{end}");
    let account = f.seeded["account_id"].as_str().unwrap();
    let mut seen = 0;
    for region in REGIONS {
        for i in f.seeded["regions"][region].as_array().unwrap() {
            let id = i["ImageId"].as_str().unwrap();
            let r = rows.get(id).unwrap_or_else(|| panic!("no row for {id}"));
            seen += 1;
            let tags = i.get("Tags").cloned().unwrap_or(Value::Null);
            let tag_map = tags.as_array().map(|ts| {
                Value::Object(
                    (ts.iter())
                        .map(|t| (t["Key"].as_str().unwrap().into(), t["Value"].clone()))
                        .collect(),
                )
            });
            let expect = [
                ("name", i["Name"].clone()),
                ("state", e(&i["State"])),
                ("image_type", e(&i["ImageType"])),
                ("image_location", i["ImageLocation"].clone()),
                ("boot_mode", e(&i["BootMode"])),
                ("source_instance_id", i["SourceInstanceId"].clone()),
                ("tpm_support", e(&i["TpmSupport"])),
                ("architecture", e(&i["Architecture"])),
                ("description", i["Description"].clone()),
                ("ena_support", i["EnaSupport"].clone()),
                ("hypervisor", e(&i["Hypervisor"])),
                ("image_owner_alias", json!("self")),
                ("imds_support", json!("")),
                ("kernel_id", i["KernelId"].clone()),
                ("owner_id", json!(account)),
                ("platform", i["Platform"].clone()),
                ("public", i["Public"].clone()),
                ("root_device_name", i["RootDeviceName"].clone()),
                ("root_device_type", e(&i["RootDeviceType"])),
                ("virtualization_type", e(&i["VirtualizationType"])),
                ("product_codes", i["ProductCodes"].clone()),
                ("title", i["Name"].clone()),
                ("tags", tag_map.unwrap_or(Value::Null)),
                (
                    "launch_permissions",
                    json!(f.seeded["launch_permissions"][id]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|p| json!({
                            "Group": e(&p["Group"]),
                            "UserId": p["UserId"],
                            "OrganizationArn": null,
                            "OrganizationalUnitArn": null,
                        }))
                        .collect::<Vec<_>>()),
                ),
                (
                    "akas",
                    json!([format!("arn:aws:ec2:{region}:{account}:image/{id}")]),
                ),
                ("region", json!(region)),
                ("account_id", json!(account)),
                ("partition", json!("aws")),
            ];
            for (col, want) in expect {
                assert_eq!(r[col], want, "{id} column {col}");
            }
            assert_eq!(secs(&r["creation_date"]), secs(&i["CreationDate"]), "{id}");
            assert_eq!(r["deprecation_time"], Value::Null, "{id}");
            let bdm = &r["block_device_mappings"][0];
            let api = &i["BlockDeviceMappings"][0];
            assert_eq!(bdm["DeviceName"], api["DeviceName"], "{id}");
            assert_eq!(bdm["Ebs"]["SnapshotId"], api["Ebs"]["SnapshotId"], "{id}");
            assert_eq!(bdm["Ebs"]["VolumeSize"], api["Ebs"]["VolumeSize"], "{id}");
            assert_eq!(bdm["Ebs"]["Iops"], Value::Null, "nil pointers are null");
            assert_eq!(bdm["Ebs"]["VolumeType"], api["Ebs"]["VolumeType"]);
            assert!(
                bdm["Ebs"].get("EbsCardIndex").is_none(),
                "not in Go's ec2 v1.236.0"
            );
            assert_eq!(r["tags_src"], tags, "{id}");
        }
    }
    assert_eq!(seen, rows.len(), "no row beyond the account's images");
    assert_eq!(
        rows.len(),
        4,
        "3 images in us-east-1 (one disabled), 1 copied to eu-west-1"
    );
    // One DescribeImages per region, the account's own, IncludeDisabled false.
    let calls = requests(key, "DescribeImages");
    assert_eq!(calls.len(), 2, "{calls:?}");
    for c in &calls {
        assert_eq!(c.param("Owner.1"), Some(account));
        assert_eq!(c.param("IncludeDisabled"), Some("false"));
        assert_eq!(
            c.param("MaxResults"),
            None,
            "upstream reads one unpaged call"
        );
    }
    assert_eq!(requests(key, "DescribeImageAttribute").len(), 4);
}

#[test]
fn get_filters_and_the_disabled_state_make_upstreams_calls() {
    let f = fleet();
    let golden = f.seeded["ids"]["golden"].as_str().unwrap();
    let account = f.seeded["account_id"].as_str().unwrap();
    let key = "AKIDAMIGET";
    let cfg = config(&f.moto.endpoint, key, &REGIONS);
    let (end, rows) = scan_rows(
        &cfg,
        scan(
            "aws_ec2_ami",
            &["image_id", "region", "title"],
            eq("image_id", golden),
            None,
        ),
    );
    assert_eq!(end["end"], "eof");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[golden]["region"], "us-east-1");
    for bad in ["ami-0123456789abcdef0", "not-an-ami", ""] {
        let (end, rows) = scan_rows(
            &cfg,
            scan("aws_ec2_ami", &["image_id"], eq("image_id", bad), None),
        );
        assert_eq!(end["end"], "eof", "{bad}: InvalidAMIID.* is ignored: {end}");
        assert!(rows.is_empty(), "{bad}");
    }
    let gets = requests(key, "DescribeImages");
    assert!(gets
        .iter()
        .all(|c| c.param("Owner.1") == Some(account) && c.param("ImageId.1").is_some()));
    // Filters, one per key column qual; `state = 'disabled'` includes disabled images.
    let key = "AKIDAMIFILTER";
    let cfg = config(&f.moto.endpoint, key, &["us-east-1"]);
    let (_, rows) = scan_rows(
        &cfg,
        scan(
            "aws_ec2_ami",
            &["image_id", "state", "public"],
            quals(&[
                eq("state", "disabled"),
                qual("public", "<>", Some(json!({"boolValue": true}))),
            ]),
            None,
        ),
    );
    let disabled = f.seeded["ids"]["disabled"].as_str().unwrap();
    assert_eq!(rows.keys().collect::<Vec<_>>(), [disabled]);
    let c = &requests(key, "DescribeImages")[0];
    assert_eq!(c.param("IncludeDisabled"), Some("true"));
    let mut filters = c.filters();
    filters.sort();
    assert_eq!(
        filters,
        [
            ("is-public".to_string(), vec!["false".to_string()]),
            ("state".to_string(), vec!["disabled".to_string()]),
        ]
    );
}

#[test]
fn shared_images_need_an_owner_or_an_image_and_page_by_the_limit() {
    let f = fleet();
    let account = f.seeded["account_id"].as_str().unwrap();
    let golden = f.seeded["ids"]["golden"].as_str().unwrap();
    let public = f.seeded["ids"]["public"].as_str().unwrap();
    let key = "AKIDAMISHARED";
    let cfg = config(&f.moto.endpoint, key, &["us-east-1"]);
    let cols = names(&schema("aws_ec2_ami_shared"));
    assert_eq!(cols.len(), 39);
    let all: Vec<&str> = cols.iter().map(String::as_str).collect();
    // No owner or image qual: upstream's error (owner_ids alone too).
    for q in [json!({}), jsonb("owner_ids", json!([account]))] {
        let (end, _) = scan_rows(&cfg, scan("aws_ec2_ami_shared", &["image_id"], q, None));
        assert!(
            end["error"]
                .as_str()
                .unwrap_or("")
                .contains("please provide either owner_id, image_id or image_ids"),
            "{end}"
        );
    }
    // The account's own images: image_owner_alias is "self".
    let (end, rows) = scan_rows(
        &cfg,
        scan("aws_ec2_ami_shared", &all, eq("owner_id", account), None),
    );
    assert_eq!(end["end"], "eof", "{end}");
    assert_eq!(rows.len(), 3);
    assert!(rows.values().all(|r| r["image_owner_alias"] == "self"));
    assert!(rows
        .values()
        .all(|r| r["image_ids"].is_null() && r["owner_ids"].is_null()));
    // Amazon's public images (moto's defaults): the alias, paged by the limit.
    // (`owner_id = 'amazon'` is sent as Owners=[amazon] too: the rows come
    // back as AWS matched them, as the Go plugin sends them, though no row
    // has that owner_id; Postgres drops them.)
    let (_, rows) = scan_rows(
        &cfg,
        scan(
            "aws_ec2_ami_shared",
            &["image_id", "image_owner_alias", "public"],
            eq("owner_id", "137112412989"),
            Some(5),
        ),
    );
    assert_eq!(rows.len(), 5);
    assert!(rows
        .values()
        .all(|r| r["image_owner_alias"] == "amazon" && r["public"] == true));
    let (_, rows) = scan_rows(
        &cfg,
        scan(
            "aws_ec2_ami_shared",
            &["image_id", "owner_id"],
            eq("owner_id", "amazon"),
            Some(2),
        ),
    );
    assert_eq!(rows.len(), 2);
    assert!(rows.values().all(|r| r["owner_id"] != "amazon"));
    // image_ids: ImageIds, no MaxResults, echoed; owner_ids override owner_id.
    let ids = json!([golden, public]);
    let (_, rows) = scan_rows(
        &cfg,
        scan(
            "aws_ec2_ami_shared",
            &["image_id", "image_ids", "owner_ids"],
            quals(&[
                jsonb("image_ids", ids.clone()),
                jsonb("owner_ids", json!(["self"])),
                eq("owner_id", account),
            ]),
            Some(10),
        ),
    );
    assert_eq!(rows.len(), 2);
    assert!(rows
        .values()
        .all(|r| r["image_ids"] == ids && r["owner_ids"] == json!(["self"])));
    let calls = requests(key, "DescribeImages");
    let paged: Vec<_> = calls
        .iter()
        .filter(|c| c.param("Owner.1") == Some("137112412989"))
        .collect();
    assert_eq!(paged[0].param("MaxResults"), Some("5"));
    let by_ids: Vec<_> = calls
        .iter()
        .filter(|c| c.param("ImageId.1").is_some())
        .collect();
    assert_eq!(by_ids.len(), 1);
    assert_eq!(by_ids[0].param("ImageId.2"), Some(public));
    assert_eq!(by_ids[0].param("Owner.1"), Some("self"));
    assert_eq!(by_ids[0].param("Owner.2"), None);
    assert_eq!(by_ids[0].param("MaxResults"), None);
    // Malformed JSON in image_ids: upstream's message.
    let (end, _) = scan_rows(
        &cfg,
        scan(
            "aws_ec2_ami_shared",
            &["image_id"],
            jsonb("image_ids", json!("ami-1")),
            None,
        ),
    );
    assert!(
        end["error"]
            .as_str()
            .unwrap_or("")
            .contains("unable to parse the 'image_ids' query parameter"),
        "{end}"
    );
    // An unknown image id ends quietly (InvalidAMIID.NotFound is ignored).
    let (end, rows) = scan_rows(
        &cfg,
        scan(
            "aws_ec2_ami_shared",
            &["image_id"],
            eq("image_id", "ami-0123456789abcdef0"),
            None,
        ),
    );
    assert_eq!(end["end"], "eof", "{end}");
    assert!(rows.is_empty());
}

#[test]
fn an_exact_key_column_is_not_served_by_a_looser_cached_scan() {
    let f = fleet();
    let account = f.seeded["account_id"].as_str().unwrap();
    let golden = f.seeded["ids"]["golden"].as_str().unwrap();
    let cached = |q: Value| json!({"op": "execute", "request": execute("aws_ec2_ami_shared", "aws", &["image_id", "image_ids"], q, None)});
    let key = "AKIDAMICACHE";
    let ev = run(&scenario(
        &config(&f.moto.endpoint, key, &["us-east-1"]),
        vec![
            cached(eq("owner_id", account)),
            cached(quals(&[
                eq("owner_id", account),
                jsonb("image_ids", json!([golden])),
            ])),
            cached(eq("owner_id", account)),
        ],
    ));
    let second = rows(&ev, 1);
    assert_eq!(second.len(), 1, "{ev:?}");
    assert_eq!(second[0]["values"]["image_ids"], json!([golden]));
    assert_eq!(rows(&ev, 2).len(), 3);
    // The third scan was the first's, served from the cache; the second was not.
    assert_eq!(requests(key, "DescribeImages").len(), 2);
}

#[test]
fn imds_support_and_what_moto_lacks_come_from_recorded_answers() {
    let fe = fast();
    let cfg = config(&fe.endpoint, "AKIDAMIFAST", &["us-east-1"]);
    let cols = names(&schema("aws_ec2_ami"));
    let all: Vec<&str> = cols.iter().map(String::as_str).collect();
    let (end, rows) = scan_rows(&cfg, scan("aws_ec2_ami", &all, json!({}), None));
    assert_eq!(end["end"], "eof", "{end}");
    assert_eq!(rows.len(), 2, "the account's two images");
    let v2 = &rows["ami-0000000000000a001"];
    assert_eq!(v2["imds_support"], "v2.0");
    assert_eq!(v2["tpm_support"], "v2.0");
    assert_eq!(v2["deprecation_time"], "2027-06-01T00:00:00Z");
    assert_eq!(v2["usage_operation"], "RunInstances");
    assert_eq!(v2["platform_details"], "Linux/UNIX");
    assert_eq!(v2["ena_support"], true);
    assert_eq!(v2["sriov_net_support"], "simple");
    assert_eq!(v2["launch_permissions"], json!([]));
    assert_eq!(rows["ami-0000000000000a002"]["imds_support"], "");
    // The shared table: a foreign owner without alias is named by its account;
    // an empty DeprecationTime is NULL (NullIfZero).
    let (_, rows) = scan_rows(
        &cfg,
        scan(
            "aws_ec2_ami_shared",
            &[
                "image_id",
                "imds_support",
                "image_owner_alias",
                "deprecation_time",
            ],
            eq("image_id", "ami-0000000000000a003"),
            None,
        ),
    );
    let r = &rows["ami-0000000000000a003"];
    assert_eq!(r["imds_support"], "v2.0");
    assert_eq!(r["image_owner_alias"], "999988887777");
    assert_eq!(r["deprecation_time"], Value::Null);
}
