//! `aws_ec2_launch_configuration` through sphost (steampipe-plugin-sdk's
//! client), against the moto Auto Scaling emulator seeded by
//! `tests/fixtures/launch_configurations.py`: every column of every launch
//! configuration compared with what DescribeLaunchConfigurations returned, the
//! two upstream IMDS queries run on PostgreSQL over the rows, and the requests
//! the plugin sent (MaxRecords, NextToken, LaunchConfigurationNames, regions)
//! read from the emulator's request recorder.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::Command;
use std::sync::OnceLock;

use common::moto::{python, FaultProxy, Moto, Recorded};
use common::pg::Postgres;
use common::*;
use serde_json::{json, Value};

const TABLE: &str = "aws_ec2_launch_configuration";
const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];
/// Launch configurations the fixture makes beyond its named cases, in us-east-1.
const BULK_COUNT: usize = 120;
const SHARED_NAME: &str = "lc-shared-name";

/// The mod's queries `autoscaling_launch_config_requires_imdsv2` and
/// `autoscaling_launch_config_hop_limit` (steampipe-mod-aws-compliance
/// v1.13.0, conformance_pack/autoscaling.pp), verbatim; the test puts the
/// mod's default dimensions (`, region, account_id`) in for
/// `${local.common_dimensions_sql}`.
pub const REQUIRES_IMDSV2: &str = r#"
      select
        launch_configuration_arn as resource,
        case
          when metadata_options_http_tokens = 'required' then 'ok'
          else 'alarm'
        end as status,
        case
          when metadata_options_http_tokens = 'required' then title || ' configured to use Instance Metadata Service Version 2 (IMDSv2).'
          else title || ' not configured to use Instance Metadata Service Version 2 (IMDSv2).'
        end as reason
        ${local.common_dimensions_sql}
      from
        aws_ec2_launch_configuration;
"#;

/// See [`REQUIRES_IMDSV2`].
pub const HOP_LIMIT: &str = r#"
      select
        launch_configuration_arn as resource,
        case
          when metadata_options_put_response_hop_limit is null then 'ok'
          when metadata_options_put_response_hop_limit > 1 then 'alarm'
          else 'ok'
        end as status,
        case
          --If you do not specify a value, the hop limit default is 1.
          when metadata_options_put_response_hop_limit is null then title || ' metadata response hop limit set to default.'
          else title || ' has a metadata response hop limit of ' || metadata_options_put_response_hop_limit || '.'
        end as reason
        ${local.common_dimensions_sql}
      from
        aws_ec2_launch_configuration;
"#;

fn rendered(sql: &str) -> String {
    sql.replace("${local.common_dimensions_sql}", ", region, account_id")
}

struct Bed {
    moto: Moto,
    seeded: Value,
}

/// Runs the fixture against `moto`; returns what it wrote.
fn seed(moto: &Moto) -> Value {
    let out = tempfile::NamedTempFile::new().unwrap();
    let status = Command::new(python())
        .arg(root().join("tests/fixtures/launch_configurations.py"))
        .arg(&moto.endpoint)
        .arg(out.path())
        .args(["--bulk-count", &BULK_COUNT.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "seeding the launch configurations failed");
    serde_json::from_slice(&std::fs::read(out.path()).unwrap()).unwrap()
}

/// One emulator for the whole test process, seeded once, recording from then on.
fn bed() -> &'static Bed {
    static BED: OnceLock<Bed> = OnceLock::new();
    BED.get_or_init(|| {
        let moto = Moto::start();
        let seeded = seed(&moto);
        moto.start_recording();
        Bed { moto, seeded }
    })
}

/// The connection config, with an access key unique to the test so that its
/// requests can be told apart in the shared recording.
fn config(moto: &Moto, key: &str, regions: &[&str]) -> String {
    config_at(&moto.endpoint, key, regions)
}

fn config_at(endpoint: &str, key: &str, regions: &[&str]) -> String {
    let regions: Vec<String> = regions.iter().map(|r| format!("\"{r}\"")).collect();
    format!(
        "access_key = \"{key}\"\ndefault_region = \"us-east-1\"\nendpoint_url = \"{endpoint}\"\nregions = [{}]\nsecret_key = \"test-secret-{key}\"\n",
        regions.join(", ")
    )
}

fn aws_scenario(config: &str, steps: Vec<Value>) -> Value {
    json!({
        "plugin": target_dir().join("steampipe-plugin-aws"),
        "env": {"AWS_EC2_METADATA_DISABLED": "true", "STEAMPIPE_LOG_LEVEL": "WARN"},
        "connections": [aws_connection("aws", config)],
        "steps": steps,
    })
}

fn scan(columns: &[&str], quals: Value, limit: Option<i64>) -> Value {
    let mut req = execute(TABLE, "aws", columns, quals, limit);
    req["executeConnectionData"]["aws"]["cacheEnabled"] = json!(false);
    json!({"op": "execute", "request": req})
}

fn eq(column: &str, v: &str) -> Value {
    qual(column, "=", Some(json!({ "stringValue": v })))
}

/// The DescribeLaunchConfigurations calls made with access key `key`.
fn calls(key: &str) -> Vec<Recorded> {
    bed()
        .moto
        .recording()
        .into_iter()
        .filter(|r| r.access_key == key && r.action == "DescribeLaunchConfigurations")
        .collect()
}

fn schema() -> Value {
    let ev = run(&aws_scenario(
        "",
        vec![json!({"op": "get_schema", "connection": "aws"})],
    ));
    one(&ev, "schema", Some(0))["response"]["schema"]["schema"][TABLE].clone()
}

fn column_names(schema: &Value) -> Vec<String> {
    schema["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

/// The plugin's JSON matches the API's as the Go plugin marshals it: every
/// member the API returned, equal; members the API left out are `null`.
fn go_json_matches(path: &str, plugin: &Value, api: &Value) -> Result<(), String> {
    match (plugin, api) {
        (Value::Object(p), Value::Object(a)) => {
            for (k, av) in a {
                let pv = p
                    .get(k)
                    .ok_or_else(|| format!("{path}.{k}: missing (API has {av})"))?;
                go_json_matches(&format!("{path}.{k}"), pv, av)?;
            }
            for (k, pv) in p {
                if !(a.contains_key(k) || pv.is_null()) {
                    return Err(format!("{path}.{k}: {pv} but the API left it out"));
                }
            }
            Ok(())
        }
        (Value::Array(p), Value::Array(a)) => {
            if p.len() != a.len() {
                return Err(format!("{path}: {} items, API has {}", p.len(), a.len()));
            }
            for (i, (pv, av)) in p.iter().zip(a).enumerate() {
                go_json_matches(&format!("{path}[{i}]"), pv, av)?;
            }
            Ok(())
        }
        (p, a) if p == a => Ok(()),
        (p, a) => Err(format!("{path}: plugin {p}, API {a}")),
    }
}

/// `user_data` as the Go plugin gives it: base64-decoded, control characters
/// dropped; no user data is "".
fn clean_user_data(b64: &str) -> Value {
    use base64::Engine;
    match base64::engine::general_purpose::STANDARD.decode(b64) {
        Err(_) => Value::Null,
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(t) => json!(t.chars().filter(|c| !c.is_control()).collect::<String>()),
            Err(_) => json!(b64),
        },
    }
}

/// What each column must hold for launch configuration `lc` of `region`, from
/// the API's answer: (column, value, compared as Go-marshalled JSON).
fn expected(lc: &Value, region: &str, seeded: &Value) -> Vec<(&'static str, Value, bool)> {
    let account = seeded["account_id"].as_str().unwrap();
    let partition = seeded["caller_arn"]
        .as_str()
        .unwrap()
        .split(':')
        .nth(1)
        .unwrap();
    let or_null = |v: &Value| v.clone();
    let or_false = |v: &Value| if v.is_null() { json!(false) } else { v.clone() };
    let mo = &lc["MetadataOptions"];
    // Inside MetadataOptions an absent enum is "" (a Go value type); without
    // MetadataOptions every metadata column is NULL.
    let enum_in_mo = |k: &str| {
        if mo.is_null() {
            Value::Null
        } else if mo[k].is_null() {
            json!("")
        } else {
            mo[k].clone()
        }
    };
    vec![
        ("name", or_null(&lc["LaunchConfigurationName"]), false),
        (
            "launch_configuration_arn",
            or_null(&lc["LaunchConfigurationARN"]),
            false,
        ),
        ("created_time", or_null(&lc["CreatedTime"]), false),
        ("image_id", or_null(&lc["ImageId"]), false),
        ("instance_type", or_null(&lc["InstanceType"]), false),
        (
            "associate_public_ip_address",
            or_false(&lc["AssociatePublicIpAddress"]),
            false,
        ),
        ("kernel_id", or_null(&lc["KernelId"]), false),
        ("key_name", or_null(&lc["KeyName"]), false),
        // The Go plugin's FromGo looks for a field RamdiskID: always NULL.
        ("ramdisk_id", Value::Null, false),
        ("ebs_optimized", or_false(&lc["EbsOptimized"]), false),
        (
            "classic_link_vpc_id",
            or_null(&lc["ClassicLinkVPCId"]),
            false,
        ),
        ("spot_price", or_null(&lc["SpotPrice"]), false),
        (
            "user_data",
            clean_user_data(lc["UserData"].as_str().unwrap_or("")),
            false,
        ),
        ("placement_tenancy", or_null(&lc["PlacementTenancy"]), false),
        (
            "iam_instance_profile",
            or_null(&lc["IamInstanceProfile"]),
            false,
        ),
        (
            "instance_monitoring_enabled",
            or_false(&lc["InstanceMonitoring"]["Enabled"]),
            false,
        ),
        (
            "metadata_options_http_endpoint",
            enum_in_mo("HttpEndpoint"),
            false,
        ),
        (
            "metadata_options_put_response_hop_limit",
            mo["HttpPutResponseHopLimit"].clone(),
            false,
        ),
        (
            "metadata_options_http_tokens",
            enum_in_mo("HttpTokens"),
            false,
        ),
        (
            "block_device_mappings",
            or_null(&lc["BlockDeviceMappings"]),
            true,
        ),
        (
            "classic_link_vpc_security_groups",
            or_null(&lc["ClassicLinkVPCSecurityGroups"]),
            true,
        ),
        ("security_groups", or_null(&lc["SecurityGroups"]), true),
        ("title", or_null(&lc["LaunchConfigurationName"]), false),
        ("akas", json!([lc["LaunchConfigurationARN"]]), true),
        ("partition", json!(partition), false),
        ("region", json!(region), false),
        ("account_id", json!(account), false),
    ]
}

/// The rows of `step`, by (region, name).
fn by_region_and_name(ev: &[Value], step: usize) -> BTreeMap<(String, String), Value> {
    rows(ev, step)
        .into_iter()
        .map(|r| {
            let v = &r["values"];
            let key = (
                v["region"].as_str().unwrap_or("").to_string(),
                v["name"].as_str().unwrap_or("").to_string(),
            );
            (key, r)
        })
        .collect()
}

#[test]
fn every_column_of_every_seeded_launch_configuration_matches_what_the_api_returned() {
    let b = bed();
    let columns = column_names(&schema());
    assert_eq!(columns.len(), 30, "27 of the table, 3 the SDK adds");
    let table_columns: Vec<&str> = columns[..27].iter().map(String::as_str).collect();
    let ev = run(&aws_scenario(
        &config(&b.moto, "AKIDLCEVERY", &REGIONS),
        vec![scan(&table_columns, json!({}), None)],
    ));
    assert_eq!(one(&ev, "execute_end", Some(0))["end"], "eof", "{ev:?}");
    let rows = by_region_and_name(&ev, 0);
    let mut failures = Vec::new();
    let mut checked = 0;
    let mut seen = 0;
    for region in REGIONS {
        for lc in b.seeded["regions"][region].as_array().unwrap() {
            seen += 1;
            let name = lc["LaunchConfigurationName"].as_str().unwrap();
            let Some(row) = rows.get(&(region.to_string(), name.to_string())) else {
                failures.push(format!("{region}/{name}: no row"));
                continue;
            };
            let expect = expected(lc, region, &b.seeded);
            assert_eq!(expect.len(), 27, "the test covers all 27 columns");
            for (col, want, is_json) in expect {
                let got = &row["values"][col];
                let ok = if is_json && !want.is_null() {
                    go_json_matches(col, got, &want)
                } else if got == &want {
                    // JSON columns: an absent list is JSON null, not SQL NULL.
                    if is_json && row["kinds"][col] != "json_value" {
                        Err(format!(
                            "{col}: {} where Go gives JSON null",
                            row["kinds"][col]
                        ))
                    } else {
                        Ok(())
                    }
                } else {
                    Err(format!("{col}: plugin {got}, expected {want}"))
                };
                if let Err(e) = ok {
                    let case = &b.seeded["cases"][format!("{region}/{name}")];
                    failures.push(format!("{region}/{name} ({case}): {e}"));
                }
                checked += 1;
            }
            assert_eq!(row["values"]["sp_connection_name"], "aws");
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(seen, 8 + BULK_COUNT + 3);
    assert_eq!(rows.len(), seen, "no row the API does not have");
    assert_eq!(checked, seen * 27);
    // The case with every member set really has them (the columns were not
    // compared with nothing), and the API's RamdiskId is there to be dropped.
    let full = &rows[&("us-east-1".to_string(), "lc-required-hop1".to_string())]["values"];
    assert_eq!(full["user_data"], "#!/bin/bashecho 'hello lc'done");
    assert_eq!(full["block_device_mappings"][0]["Ebs"]["Iops"], 3000);
    assert_eq!(full["security_groups"], json!(["sg-0a1b2c3d", "web"]));
    assert_eq!(full["instance_monitoring_enabled"], true);
    let api_full = &b.seeded["regions"]["us-east-1"][0];
    assert_eq!(api_full["RamdiskId"], "ari-12345678");
    assert_eq!(full["ramdisk_id"], Value::Null);
}

#[test]
fn imds_columns_read_as_the_upstream_queries_read_them() {
    let b = bed();
    let sch = schema();
    let columns = column_names(&sch);
    let cols: Vec<&str> = columns[..27].iter().map(String::as_str).collect();
    let ev = run(&aws_scenario(
        &config(&b.moto, "AKIDLCIMDS", &REGIONS),
        vec![scan(&cols, json!({}), None)],
    ));
    assert_eq!(one(&ev, "execute_end", Some(0))["end"], "eof");
    let pg = Postgres::start();
    pg.load_table("aws", TABLE, &sch, &common::rows(&ev, 0));
    let status = |sql: &str| -> HashMap<(String, String), (String, String)> {
        pg.query("aws", &rendered(sql))
            .into_iter()
            .map(|r| {
                let arn = r["resource"].as_str().unwrap();
                let name = arn.rsplit('/').next().unwrap().to_string();
                let region = r["region"].as_str().unwrap().to_string();
                let s = r["status"].as_str().unwrap().to_string();
                let reason = r["reason"].as_str().unwrap().to_string();
                ((region, name), (s, reason))
            })
            .collect()
    };
    let tokens = status(REQUIRES_IMDSV2);
    let hops = status(HOP_LIMIT);
    assert_eq!(tokens.len(), 8 + BULK_COUNT + 3);
    assert_eq!(hops.len(), tokens.len());
    let us = |n: &str| ("us-east-1".to_string(), n.to_string());
    let eu = |n: &str| ("eu-west-1".to_string(), n.to_string());
    let t = |k: (String, String)| tokens[&k].0.clone();
    let h = |k: (String, String)| hops[&k].clone();
    assert_eq!(t(us("lc-required-hop1")), "ok");
    assert_eq!(t(us("lc-tokens-only")), "ok");
    assert_eq!(t(us("lc-optional-hop2")), "alarm");
    assert_eq!(
        t(us("lc-no-metadata-options")),
        "alarm",
        "NULL is not 'required'"
    );
    assert_eq!(t(us("lc-hop-only")), "alarm", "'' is not 'required'");
    assert_eq!(t(us("lc-endpoint-disabled")), "alarm");
    assert_eq!(t(us(SHARED_NAME)), "ok");
    assert_eq!(t(eu(SHARED_NAME)), "alarm");
    assert_eq!(
        tokens[&us("lc-optional-hop2")].1,
        "lc-optional-hop2 not configured to use Instance Metadata Service Version 2 (IMDSv2)."
    );
    assert_eq!(
        h(us("lc-required-hop1")),
        (
            "ok".into(),
            "lc-required-hop1 has a metadata response hop limit of 1.".into()
        )
    );
    assert_eq!(h(us("lc-optional-hop2")).0, "alarm");
    assert_eq!(
        h(us("lc-required-hop64")),
        (
            "alarm".into(),
            "lc-required-hop64 has a metadata response hop limit of 64.".into()
        )
    );
    assert_eq!(
        h(us("lc-no-metadata-options")),
        (
            "ok".into(),
            "lc-no-metadata-options metadata response hop limit set to default.".into()
        )
    );
    assert_eq!(h(us("lc-tokens-only")).0, "ok", "a NULL hop limit is ok");
    assert_eq!(h(us("lc-hop-only")).0, "alarm");
    // Every status equals what the API's answer implies, case by case.
    for region in REGIONS {
        for lc in b.seeded["regions"][region].as_array().unwrap() {
            let key = (
                region.to_string(),
                lc["LaunchConfigurationName"].as_str().unwrap().to_string(),
            );
            let mo = &lc["MetadataOptions"];
            let want_tokens = if mo["HttpTokens"] == "required" {
                "ok"
            } else {
                "alarm"
            };
            let want_hops = match mo["HttpPutResponseHopLimit"].as_i64() {
                Some(n) if n > 1 => "alarm",
                _ => "ok",
            };
            assert_eq!(tokens[&key].0, want_tokens, "{key:?}");
            assert_eq!(hops[&key].0, want_hops, "{key:?}");
        }
    }
}

#[test]
fn every_example_of_the_docs_page_runs_on_postgres_over_the_rows() {
    let b = bed();
    let sch = schema();
    let columns = column_names(&sch);
    let cols: Vec<&str> = columns[..27].iter().map(String::as_str).collect();
    let ev = run(&aws_scenario(
        &config(&b.moto, "AKIDLCDOCS", &REGIONS),
        vec![scan(&cols, json!({}), None)],
    ));
    let pg = Postgres::start();
    pg.load_table("aws", TABLE, &sch, &common::rows(&ev, 0));
    let doc = std::fs::read_to_string(root().join("docs/tables/aws_ec2_launch_configuration.md"))
        .unwrap();
    let examples: Vec<&str> = doc
        .split("```sql")
        .skip(1)
        .map(|s| s.split("```").next().unwrap())
        .collect();
    assert_eq!(examples.len(), 5);
    let mut answers = Vec::new();
    for sql in &examples {
        // Counted in SQL: jsonb_pretty answers span lines.
        let sql = sql.replace("'web-lc'", "'lc-required-hop1'");
        let counted = format!(
            "select count(*) as n from ({}) q",
            sql.trim().trim_end_matches(';')
        );
        let n = pg.query("aws", &counted)[0]["n"]
            .as_str()
            .unwrap()
            .parse::<usize>();
        answers.push(n.unwrap());
    }
    // Not asking for IMDSv2: 4 named cases, the eu shared name, the eu LC
    // without options, and the bulk ones without required tokens (80 of 120).
    assert_eq!(answers[0], 4 + 2 + 80);
    // Hop limits 2, 64 and 3 in us-east-1, 2 in eu-west-1, and the bulk ones
    // with options whose hop limit (1 + n % 4) is over 1: 60.
    assert_eq!(answers[1], 3 + 1 + 60);
    assert!(answers[2] >= 6, "a row per region, tokens and endpoint");
    assert_eq!(answers[3], 1);
    assert_eq!(answers[4], 1, "only lc-required-hop1 asks for a public IP");
}

#[test]
fn members_moto_leaves_out_read_as_the_go_plugin_reads_them() {
    // The proxy adds PlacementTenancy and user data moto would refuse, and
    // drops members the Go plugin defaults (see the rewrites file).
    let b = bed();
    let rules = std::fs::read(root().join("tests/fixtures/launch_configuration_rewrites.json"));
    let proxy = FaultProxy::start(
        &b.moto.endpoint,
        serde_json::from_slice(&rules.unwrap()).unwrap(),
    );
    let cols = [
        "name",
        "region",
        "placement_tenancy",
        "user_data",
        "security_groups",
        "instance_monitoring_enabled",
        "ebs_optimized",
        "associate_public_ip_address",
    ];
    let ev = run(&aws_scenario(
        &config_at(&proxy.endpoint, "AKIDLCREWRITE", &["us-east-1"]),
        vec![scan(&cols, json!({}), None)],
    ));
    let rows = by_region_and_name(&ev, 0);
    let row = |n: &str| rows[&("us-east-1".to_string(), n.to_string())].clone();
    assert_eq!(
        row("lc-optional-hop2")["values"]["placement_tenancy"],
        "dedicated"
    );
    assert_eq!(
        row("lc-no-metadata-options")["values"]["user_data"],
        Value::Null,
        "not base64"
    );
    assert_eq!(
        row("lc-endpoint-disabled")["values"]["user_data"],
        "//4A",
        "not UTF-8: as sent"
    );
    let bare = row("lc-tokens-only");
    assert_eq!(bare["values"]["security_groups"], Value::Null);
    assert_eq!(
        bare["kinds"]["security_groups"], "json_value",
        "JSON null, not SQL NULL"
    );
    for c in [
        "instance_monitoring_enabled",
        "ebs_optimized",
        "associate_public_ip_address",
    ] {
        assert_eq!(bare["values"][c], false, "{c}: Default false");
    }
    assert_eq!(
        row("lc-required-hop1")["values"]["placement_tenancy"],
        Value::Null
    );
}

#[test]
fn pages_turn_at_100_records_and_a_limit_sets_max_records() {
    let b = bed();
    let (all, limited) = ("AKIDLCPAGES", "AKIDLCLIMIT");
    let ev = run(&aws_scenario(
        &config(&b.moto, all, &["us-east-1"]),
        vec![scan(&["name"], json!({}), None)],
    ));
    let end = one(&ev, "execute_end", Some(0));
    assert_eq!(end["end"], "eof");
    assert_eq!(end["rows"], 8 + BULK_COUNT);
    let pages = calls(all);
    let max: Vec<Option<&str>> = pages.iter().map(|c| c.param("MaxRecords")).collect();
    assert_eq!(max, [Some("100"), Some("100")], "two pages of up to 100");
    assert_eq!(pages[0].param("NextToken"), None);
    assert!(pages[1].param("NextToken").is_some(), "{:?}", pages[1]);
    let ev = run(&aws_scenario(
        &config(&b.moto, limited, &["us-east-1"]),
        vec![
            scan(&["name"], json!({}), Some(5)),
            scan(&["name"], json!({}), Some(1)),
        ],
    ));
    assert_eq!(rows(&ev, 0).len(), 5);
    assert_eq!(rows(&ev, 1).len(), 1);
    let limited_calls = calls(limited);
    let max: Vec<Option<&str>> = limited_calls
        .iter()
        .map(|c| c.param("MaxRecords"))
        .collect();
    assert_eq!(max, [Some("5"), Some("1")], "one page of the limit each");
}

#[test]
fn get_by_name_asks_every_region_and_a_name_in_two_regions_is_an_error() {
    let b = bed();
    let key = "AKIDLCGET";
    let ev = run(&aws_scenario(
        &config(&b.moto, key, &REGIONS),
        vec![
            scan(&["name", "region"], eq("name", "lc-eu-required"), None),
            scan(&["name", "region"], eq("name", "no-such-lc"), None),
            scan(&["name", "region"], eq("name", SHARED_NAME), None),
            scan(
                &["name", "region", "metadata_options_http_tokens"],
                quals(&[eq("name", SHARED_NAME), eq("region", "eu-west-1")]),
                None,
            ),
        ],
    ));
    assert_eq!(column(&ev, 0, "region"), [json!("eu-west-1")]);
    assert!(rows(&ev, 1).is_empty());
    assert_eq!(one(&ev, "execute_end", Some(1))["end"], "eof");
    let shared = one(&ev, "execute_end", Some(2));
    assert_eq!(shared["end"], "error");
    assert!(
        shared["error"]
            .as_str()
            .unwrap()
            .ends_with("get call returned 2 results - the key column is not globally unique"),
        "{shared}"
    );
    assert_eq!(
        column(&ev, 3, "metadata_options_http_tokens"),
        [json!("optional")],
        "a region qual picks one of the two"
    );
    let gets = calls(key);
    assert_eq!(
        gets.len(),
        2 + 2 + 2 + 1,
        "each Get asks every region in scope"
    );
    assert!(gets.iter().all(|c| c.param("MaxRecords").is_none()
        && c.param("LaunchConfigurationNames.member.1").is_some()));
    let regions: BTreeSet<&str> = gets.iter().map(|c| c.region.as_str()).collect();
    assert_eq!(regions, BTreeSet::from(REGIONS));
}

#[test]
fn a_region_qual_calls_only_that_region() {
    let b = bed();
    let key = "AKIDLCREGION";
    let ev = run(&aws_scenario(
        &config(&b.moto, key, &REGIONS),
        vec![scan(&["name", "region"], eq("region", "eu-west-1"), None)],
    ));
    let names: BTreeSet<String> = column(&ev, 0, "name")
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let want: BTreeSet<String> = ["lc-eu-required", "lc-eu-no-metadata-options", SHARED_NAME]
        .map(String::from)
        .into();
    assert_eq!(names, want);
    let made = calls(key);
    assert_eq!(made.len(), 1);
    assert_eq!(made[0].region, "eu-west-1");
}
