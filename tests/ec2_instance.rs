//! `aws_ec2_instance` through sphost (steampipe-plugin-sdk's client), against the moto
//! EC2/STS emulator: every column of every seeded instance compared with what
//! the EC2 API returned for it, and the requests the plugin sent (filters,
//! MaxResults, InstanceIds, hydrate calls, regions) read from the emulator's
//! request recorder.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::OnceLock;

use common::moto::{Moto, Recorded};
use common::*;
use serde_json::{json, Value};

const BIG_REGION: &str = "ap-southeast-2";
const BIG_COUNT: usize = 1050;
const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", BIG_REGION];

struct Fleet {
    moto: Moto,
    seeded: Value,
}

/// One emulator for the whole test process, seeded once, recording from then on.
fn fleet() -> &'static Fleet {
    static FLEET: OnceLock<Fleet> = OnceLock::new();
    FLEET.get_or_init(|| {
        let moto = Moto::start();
        let seeded = moto.seed(&[
            "--big-region",
            BIG_REGION,
            "--big-count",
            &BIG_COUNT.to_string(),
        ]);
        moto.start_recording();
        Fleet { moto, seeded }
    })
}

/// The connection config, with an access key unique to the test so that its
/// requests can be told apart in the shared recording.
fn config(moto: &Moto, key: &str, regions: &[&str]) -> String {
    let regions: Vec<String> = regions.iter().map(|r| format!("\"{r}\"")).collect();
    format!(
        "access_key = \"{key}\"\ndefault_region = \"us-east-1\"\nendpoint_url = \"{}\"\nregions = [{}]\nsecret_key = \"test-secret-{key}\"\n",
        moto.endpoint,
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
    json!({"op": "execute", "request": execute("aws_ec2_instance", "aws", columns, quals, limit)})
}

fn requests(key: &str) -> Vec<Recorded> {
    fleet()
        .moto
        .recording()
        .into_iter()
        .filter(|r| r.access_key == key)
        .collect()
}

fn region_list(regions: &[&str]) -> Value {
    let values: Vec<Value> = regions.iter().map(|r| json!({"stringValue": r})).collect();
    qual(
        "region",
        "=",
        Some(json!({"listValue": {"values": values}})),
    )
}

fn schema_columns() -> Vec<String> {
    let ev = run(&aws_scenario(
        "",
        vec![json!({"op": "get_schema", "connection": "aws"})],
    ));
    one(&ev, "schema", Some(0))["response"]["schema"]["schema"]["aws_ec2_instance"]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

fn s(v: &Value) -> Value {
    if v.is_null() {
        Value::Null
    } else {
        v.clone()
    }
}

/// A Go value enum: `""` when absent.
fn e(v: &Value) -> Value {
    if v.is_null() {
        json!("")
    } else {
        v.clone()
    }
}

fn clean_user_data(b64: &str) -> Option<String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    match String::from_utf8(bytes) {
        Ok(t) => Some(t.chars().filter(|c| !c.is_control()).collect()),
        Err(_) => Some(b64.to_string()),
    }
}

fn transition_time(i: &Value) -> Value {
    let state = i["State"]["Name"].as_str().unwrap_or("");
    let reason = i["StateTransitionReason"].as_str().unwrap_or("");
    if !reason.is_empty() && ["shutting-down", "stopped", "stopping", "terminated"].contains(&state)
    {
        if let (Some(a), Some(b)) = (reason.find('('), reason.find(')')) {
            let inner = reason[a + 1..b].trim_end();
            // AWS writes GMT, moto UTC: both are Z.
            return json!(inner
                .replacen(' ', "T", 1)
                .replace(" GMT", "Z")
                .replace(" UTC", "Z"));
        }
    }
    i["LaunchTime"].clone()
}

/// What each column must hold for instance `i` of `region`, from the API's answers.
fn expected(i: &Value, region: &str, seeded: &Value) -> Vec<(&'static str, Value, bool)> {
    let id = i["InstanceId"].as_str().unwrap();
    let account = seeded["account_id"].as_str().unwrap();
    let partition = seeded["caller_arn"]
        .as_str()
        .unwrap()
        .split(':')
        .nth(1)
        .unwrap();
    let arn = format!("arn:{partition}:ec2:{region}:{account}:instance/{id}");
    let h = &seeded["hydrate"][id];
    let attr = |name: &str, member: &str| h[name][member]["Value"].clone();
    let tags = i.get("Tags").cloned().unwrap_or(Value::Null);
    let name_tag = tags.as_array().and_then(|ts| {
        ts.iter()
            .rev()
            .find(|t| t["Key"] == "Name")
            .map(|t| t["Value"].clone())
    });
    let tag_map = tags.as_array().map(|ts| {
        Value::Object(
            ts.iter()
                .map(|t| (t["Key"].as_str().unwrap().to_string(), t["Value"].clone()))
                .collect(),
        )
    });
    let placement = &i["Placement"];
    // (column, value, is_json)
    vec![
        ("instance_id", json!(id), false),
        ("arn", json!(arn), false),
        ("instance_type", e(&i["InstanceType"]), false),
        ("instance_state", s(&i["State"]["Name"]), false),
        ("monitoring_state", s(&i["Monitoring"]["State"]), false),
        (
            "disable_api_termination",
            json!(attr("disableApiTermination", "DisableApiTermination")
                .as_bool()
                .unwrap_or(false)),
            false,
        ),
        ("ami_launch_index", s(&i["AmiLaunchIndex"]), false),
        ("architecture", e(&i["Architecture"]), false),
        ("boot_mode", e(&i["BootMode"]), false),
        (
            "current_instance_boot_mode",
            e(&i["CurrentInstanceBootMode"]),
            false,
        ),
        ("ipv6_address", s(&i["Ipv6Address"]), false),
        (
            "capacity_reservation_id",
            s(&i["CapacityReservationId"]),
            false,
        ),
        (
            "capacity_reservation_specification",
            s(&i["CapacityReservationSpecification"]),
            true,
        ),
        ("client_token", s(&i["ClientToken"]), false),
        (
            "cpu_options_core_count",
            s(&i["CpuOptions"]["CoreCount"]),
            false,
        ),
        (
            "cpu_options_threads_per_core",
            s(&i["CpuOptions"]["ThreadsPerCore"]),
            false,
        ),
        ("ebs_optimized", s(&i["EbsOptimized"]), false),
        ("ena_support", s(&i["EnaSupport"]), false),
        ("hypervisor", e(&i["Hypervisor"]), false),
        (
            "iam_instance_profile_arn",
            s(&i["IamInstanceProfile"]["Arn"]),
            false,
        ),
        (
            "iam_instance_profile_id",
            s(&i["IamInstanceProfile"]["Id"]),
            false,
        ),
        ("image_id", s(&i["ImageId"]), false),
        (
            "instance_initiated_shutdown_behavior",
            attr(
                "instanceInitiatedShutdownBehavior",
                "InstanceInitiatedShutdownBehavior",
            ),
            false,
        ),
        ("instance_lifecycle", e(&i["InstanceLifecycle"]), false),
        ("kernel_id", attr("kernel", "KernelId"), false),
        ("key_name", s(&i["KeyName"]), false),
        ("launch_time", s(&i["LaunchTime"]), false),
        ("outpost_arn", s(&i["OutpostArn"]), false),
        ("placement_affinity", s(&placement["Affinity"]), false),
        (
            "placement_availability_zone",
            s(&placement["AvailabilityZone"]),
            false,
        ),
        ("placement_group_id", s(&placement["GroupId"]), false),
        ("placement_group_name", s(&placement["GroupName"]), false),
        ("placement_host_id", s(&placement["HostId"]), false),
        (
            "placement_host_resource_group_arn",
            s(&placement["HostResourceGroupArn"]),
            false,
        ),
        (
            "placement_partition_number",
            s(&placement["PartitionNumber"]),
            false,
        ),
        (
            "placement_tenancy",
            if placement.is_null() {
                Value::Null
            } else {
                e(&placement["Tenancy"])
            },
            false,
        ),
        ("platform", e(&i["Platform"]), false),
        ("platform_details", s(&i["PlatformDetails"]), false),
        ("private_ip_address", s(&i["PrivateIpAddress"]), false),
        ("private_dns_name", s(&i["PrivateDnsName"]), false),
        ("public_dns_name", s(&i["PublicDnsName"]), false),
        ("public_ip_address", s(&i["PublicIpAddress"]), false),
        ("ram_disk_id", attr("ramdisk", "RamdiskId"), false),
        ("root_device_name", s(&i["RootDeviceName"]), false),
        ("root_device_type", e(&i["RootDeviceType"]), false),
        ("source_dest_check", s(&i["SourceDestCheck"]), false),
        (
            "spot_instance_request_id",
            s(&i["SpotInstanceRequestId"]),
            false,
        ),
        (
            "sriov_net_support",
            attr("sriovNetSupport", "SriovNetSupport"),
            false,
        ),
        ("state_code", s(&i["State"]["Code"]), false),
        (
            "state_transition_reason",
            s(&i["StateTransitionReason"]),
            false,
        ),
        ("state_transition_time", transition_time(i), false),
        ("subnet_id", s(&i["SubnetId"]), false),
        ("tpm_support", s(&i["TpmSupport"]), false),
        ("usage_operation", s(&i["UsageOperation"]), false),
        (
            "usage_operation_update_time",
            s(&i["UsageOperationUpdateTime"]),
            false,
        ),
        (
            "user_data",
            // No user data reads as "", as the Go plugin's transform runs on
            // the absent value too (tests/oracle_go_plugin.rs).
            clean_user_data(attr("userData", "UserData").as_str().unwrap_or(""))
                .map(Value::String)
                .unwrap_or(Value::Null),
            false,
        ),
        ("virtualization_type", e(&i["VirtualizationType"]), false),
        ("vpc_id", s(&i["VpcId"]), false),
        ("block_device_mappings", s(&i["BlockDeviceMappings"]), true),
        (
            "elastic_gpu_associations",
            s(&i["ElasticGpuAssociations"]),
            true,
        ),
        (
            "elastic_inference_accelerator_associations",
            s(&i["ElasticInferenceAcceleratorAssociations"]),
            true,
        ),
        ("enclave_options", s(&i["EnclaveOptions"]), true),
        ("hibernation_options", s(&i["HibernationOptions"]), true),
        ("state_reason", s(&i["StateReason"]), true),
        (
            "launch_template_data",
            h["launch_template_data"].clone(),
            true,
        ),
        ("licenses", s(&i["Licenses"]), true),
        ("maintenance_options", s(&i["MaintenanceOptions"]), true),
        ("metadata_options", s(&i["MetadataOptions"]), true),
        ("network_interfaces", s(&i["NetworkInterfaces"]), true),
        (
            "private_dns_name_options",
            s(&i["PrivateDnsNameOptions"]),
            true,
        ),
        ("product_codes", s(&i["ProductCodes"]), true),
        ("security_groups", s(&i["SecurityGroups"]), true),
        (
            "instance_status",
            h["status"].get(0).cloned().unwrap_or(Value::Null),
            true,
        ),
        ("tags_src", tags.clone(), true),
        ("title", name_tag.unwrap_or(json!(id)), false),
        ("tags", tag_map.unwrap_or(Value::Null), true),
        ("akas", json!([arn]), true),
        ("partition", json!(partition), false),
        ("region", json!(region), false),
        ("account_id", json!(account), false),
    ]
}

#[test]
fn every_column_of_every_seeded_instance_matches_what_the_ec2_api_returned() {
    let f = fleet();
    let columns = schema_columns();
    assert_eq!(columns.len(), 83);
    let table_columns: Vec<&str> = columns[..80].iter().map(String::as_str).collect();
    let key = "AKIDEVERYCOLUMN";
    let ev = run(&aws_scenario(
        &config(&f.moto, key, &REGIONS),
        vec![scan(
            &table_columns,
            region_list(&["us-east-1", "eu-west-1"]),
            None,
        )],
    ));
    assert_eq!(one(&ev, "execute_end", Some(0))["end"], "eof", "{ev:?}");
    let rows: HashMap<String, Value> = rows(&ev, 0)
        .into_iter()
        .map(|r| (r["values"]["instance_id"].as_str().unwrap().to_string(), r))
        .collect();
    let mut checked = 0;
    let mut failures = Vec::new();
    for region in ["us-east-1", "eu-west-1"] {
        for inst in f.seeded["regions"][region].as_array().unwrap() {
            let id = inst["InstanceId"].as_str().unwrap();
            let row = rows.get(id).unwrap_or_else(|| panic!("no row for {id}"));
            let expect = expected(inst, region, &f.seeded);
            assert_eq!(expect.len(), 80, "the test covers all 80 columns");
            for (col, want, is_json) in expect {
                let got = &row["values"][col];
                let ok = if is_json {
                    if want.is_null() {
                        if got.is_null() {
                            Ok(())
                        } else {
                            Err(format!("{col}: {got}, API has none"))
                        }
                    } else {
                        go_json_matches(col, got, &want)
                    }
                } else if got == &want || (got.as_f64().is_some() && got.as_f64() == want.as_f64())
                {
                    Ok(())
                } else {
                    Err(format!("{col}: plugin {got}, expected {want}"))
                };
                if let Err(e) = ok {
                    failures.push(format!("{id} ({}): {e}", f.seeded["extra"][id]["case"]));
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
    assert_eq!(
        rows.len(),
        11,
        "8 instances in us-east-1, 3 in eu-west-1, none from the pruned region"
    );
    assert_eq!(checked, 11 * 80);
    // Region pruning: no call at all went to the third region.
    let reqs = requests(key);
    assert!(reqs.iter().all(|r| r.region != BIG_REGION), "{reqs:?}");
}

#[test]
fn imds_cases_read_as_the_compliance_control_reads_them() {
    let f = fleet();
    let ev = run(&aws_scenario(
        &config(&f.moto, "AKIDIMDS", &REGIONS),
        vec![scan(
            &["instance_id", "metadata_options", "title", "tags"],
            qual("region", "=", Some(json!({"stringValue": "us-east-1"}))),
            None,
        )],
    ));
    let by_case: HashMap<String, Value> = rows(&ev, 0)
        .into_iter()
        .map(|r| {
            let id = r["values"]["instance_id"].as_str().unwrap();
            (
                f.seeded["extra"][id]["case"].as_str().unwrap().to_string(),
                r["values"].clone(),
            )
        })
        .collect();
    let mo = |case: &str| by_case[case]["metadata_options"].clone();
    assert_eq!(
        mo("imds-required-hop2-ipv6-tags"),
        json!({"HttpEndpoint": "enabled", "HttpProtocolIpv6": "enabled", "HttpPutResponseHopLimit": 2,
               "HttpTokens": "required", "InstanceMetadataTags": "enabled", "State": "applied"})
    );
    assert_eq!(mo("imds-default-optional")["HttpTokens"], "optional");
    assert_eq!(mo("no-tags-endpoint-disabled")["HttpEndpoint"], "disabled");
    // moto drops members on a partial modify: absent enums are "" as in Go.
    let partial = mo("metadata-members-missing");
    assert_eq!(partial["HttpTokens"], "required");
    assert_eq!(partial["HttpEndpoint"], "");
    assert_eq!(partial["InstanceMetadataTags"], "");
    assert_eq!(by_case["no-tags-endpoint-disabled"]["tags"], Value::Null);
    assert_eq!(by_case["empty-name-tag"]["title"], "");
    assert_eq!(
        by_case["imds-default-optional"]["tags"],
        json!({"Name": "web-1", "env": "prod", "team": "blue"})
    );
}

#[test]
fn pages_turn_past_1000_instances_in_a_region() {
    let f = fleet();
    let key = "AKIDPAGES";
    let ev = run(&aws_scenario(
        &config(&f.moto, key, &REGIONS),
        vec![json!({"op": "execute", "quiet": true,
                    "request": execute("aws_ec2_instance", "aws", &["instance_id", "region"], qual("region", "=", Some(json!({"stringValue": BIG_REGION}))), None)})],
    ));
    let end = one(&ev, "execute_end", Some(0));
    assert_eq!(end["end"], "eof");
    assert_eq!(end["rows"], BIG_COUNT);
    let calls: Vec<Recorded> = requests(key)
        .into_iter()
        .filter(|r| r.action == "DescribeInstances")
        .collect();
    assert!(
        calls.len() >= 2,
        "expected the paginator to turn pages: {calls:?}"
    );
    assert!(calls
        .iter()
        .all(|c| c.region == BIG_REGION && c.param("MaxResults") == Some("1000")));
    assert!(calls[1..].iter().all(|c| c.param("NextToken").is_some()));
}

#[test]
fn list_key_column_quals_become_describe_instances_filters() {
    let f = fleet();
    let key = "AKIDFILTERS";
    let types = json!({"listValue": {"values": [{"stringValue": "t3.micro"}, {"stringValue": "m5.large"}]}});
    let ev = run(&aws_scenario(
        &config(&f.moto, key, &["us-east-1"]),
        vec![
            scan(
                &["instance_id", "instance_state"],
                qual(
                    "instance_state",
                    "=",
                    Some(json!({"stringValue": "stopped"})),
                ),
                None,
            ),
            scan(
                &["instance_id", "instance_type"],
                qual("instance_type", "=", Some(types)),
                None,
            ),
            // <> is not a key-column operator: no filter, Postgres filters.
            scan(
                &["instance_id"],
                qual(
                    "instance_type",
                    "<>",
                    Some(json!({"stringValue": "t3.micro"})),
                ),
                None,
            ),
        ],
    ));
    let stopped = column(&ev, 0, "instance_state");
    assert_eq!(stopped, [json!("stopped")]);
    let mut kinds: Vec<String> = column(&ev, 1, "instance_type")
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["m5.large", "t3.micro"]);
    let calls: Vec<Recorded> = requests(key)
        .into_iter()
        .filter(|r| r.action == "DescribeInstances")
        .collect();
    let filter_sets: BTreeSet<Vec<(String, Vec<String>)>> =
        calls.iter().map(|c| c.filters()).collect();
    let want: BTreeSet<Vec<(String, Vec<String>)>> = [
        vec![(
            "instance-state-name".to_string(),
            vec!["stopped".to_string()],
        )],
        vec![("instance-type".to_string(), vec!["t3.micro".to_string()])],
        vec![("instance-type".to_string(), vec!["m5.large".to_string()])],
        vec![],
    ]
    .into_iter()
    .collect();
    assert_eq!(filter_sets, want, "one call per IN value, none for <>");
    assert_eq!(calls.len(), 4);
}

#[test]
fn a_pushed_down_limit_sets_max_results_and_stops_paging() {
    let f = fleet();
    let key = "AKIDLIMIT";
    let ev = run(&aws_scenario(
        &config(&f.moto, key, &[BIG_REGION]),
        vec![
            scan(&["instance_id"], json!({}), Some(3)),
            scan(&["instance_id"], json!({}), Some(40)),
        ],
    ));
    assert_eq!(rows(&ev, 0).len(), 3);
    assert_eq!(rows(&ev, 1).len(), 40);
    let calls: Vec<Recorded> = requests(key)
        .into_iter()
        .filter(|r| r.action == "DescribeInstances")
        .collect();
    let sizes: Vec<&str> = calls.iter().filter_map(|c| c.param("MaxResults")).collect();
    assert_eq!(
        sizes,
        ["5", "40"],
        "limit 3 is clamped up to 5; one page each, no page beyond the limit"
    );
}

#[test]
fn get_by_instance_id_and_in_list_across_regions() {
    let f = fleet();
    let key = "AKIDGET";
    let eu_id = f.seeded["regions"]["eu-west-1"][0]["InstanceId"]
        .as_str()
        .unwrap()
        .to_string();
    let us_id = f.seeded["regions"]["us-east-1"][1]["InstanceId"]
        .as_str()
        .unwrap()
        .to_string();
    let ids = json!({"listValue": {"values": [{"stringValue": eu_id}, {"stringValue": us_id}, {"stringValue": "i-0123456789abcdef0"}]}});
    let ev = run(&aws_scenario(
        &config(&f.moto, key, &["us-east-1", "eu-west-1"]),
        vec![
            scan(
                &["instance_id", "region"],
                qual("instance_id", "=", Some(json!({"stringValue": eu_id}))),
                None,
            ),
            scan(
                &["instance_id", "region"],
                qual("instance_id", "=", Some(ids)),
                None,
            ),
        ],
    ));
    assert_eq!(column(&ev, 0, "region"), [json!("eu-west-1")]);
    let mut got: Vec<String> = column(&ev, 1, "instance_id")
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    got.sort();
    let mut want = vec![eu_id.clone(), us_id.clone()];
    want.sort();
    assert_eq!(got, want, "the unknown id gives no row and no error");
    let calls: Vec<Recorded> = requests(key)
        .into_iter()
        .filter(|r| r.action == "DescribeInstances")
        .collect();
    assert_eq!(calls.len(), 2 + 3 * 2, "each Get asks both regions");
    assert!(calls.iter().all(|c| c.param("InstanceId.1").is_some()
        && c.param("MaxResults").is_none()
        && c.filters().is_empty()));
}

#[test]
fn hydrate_calls_are_made_only_for_the_columns_that_need_them() {
    let f = fleet();
    let (plain, hydrated) = ("AKIDNOHYDRATE", "AKIDHYDRATE");
    let us = qual("region", "=", Some(json!({"stringValue": "us-east-1"})));
    run(&aws_scenario(
        &config(&f.moto, plain, &REGIONS),
        vec![scan(
            &["instance_id", "metadata_options", "tags", "arn"],
            us.clone(),
            None,
        )],
    ));
    run(&aws_scenario(
        &config(&f.moto, hydrated, &REGIONS),
        vec![scan(&["instance_id", "user_data"], us, None)],
    ));
    let actions =
        |key: &str| -> Vec<String> { requests(key).into_iter().map(|r| r.action).collect() };
    let a = actions(plain);
    assert!(
        a.iter().all(|x| x == "DescribeInstances"
            || x == "GetCallerIdentity"
            || x == "DescribeRegions"),
        "{a:?}"
    );
    let attr_calls: Vec<Recorded> = requests(hydrated)
        .into_iter()
        .filter(|r| r.action == "DescribeInstanceAttribute")
        .collect();
    assert_eq!(attr_calls.len(), 8, "one per us-east-1 instance");
    assert!(attr_calls
        .iter()
        .all(|c| c.param("Attribute") == Some("userData")));
    assert!(!actions(hydrated)
        .iter()
        .any(|x| x == "GetLaunchTemplateData" || x == "DescribeInstanceStatus"));
}

#[test]
fn region_wildcards_use_the_accounts_enabled_regions() {
    let f = fleet();
    let key = "AKIDWILDCARD";
    let ev = run(&aws_scenario(
        &config(&f.moto, key, &["eu-*"]),
        vec![scan(&["instance_id", "region"], json!({}), None)],
    ));
    let regions: BTreeSet<String> = column(&ev, 0, "region")
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(regions, BTreeSet::from(["eu-west-1".to_string()]));
    let reqs = requests(key);
    assert_eq!(
        reqs.iter()
            .filter(|r| r.action == "DescribeRegions")
            .count(),
        1
    );
    let called: BTreeSet<&str> = reqs
        .iter()
        .filter(|r| r.action == "DescribeInstances")
        .map(|r| r.region.as_str())
        .collect();
    assert!(called.iter().all(|r| r.starts_with("eu-")), "{called:?}");
    assert!(
        called.contains("eu-west-1") && called.len() > 1,
        "{called:?}"
    );
}

#[test]
fn bad_connection_config_is_a_clear_error() {
    let cases = [
        (
            "regions = \"us-east-1\"\n",
            "connection 'aws': attribute 'regions': expected a list of strings, got a string",
        ),
        (
            "min_error_retry_delay = \"fast\"\n",
            "connection 'aws': attribute 'min_error_retry_delay': expected a number, got a string",
        ),
        (
            "region = \"us-east-1\"\n",
            "connection 'aws': attribute 'region': unsupported argument",
        ),
    ];
    for (hcl, want) in cases {
        let ev = run(&aws_scenario(hcl, vec![]));
        let set_all = events(&ev, "init", None)
            .into_iter()
            .find(|e| e["rpc"] == "SetAllConnectionConfigs")
            .unwrap();
        let msg = set_all["message"].as_str().unwrap_or_default();
        assert!(msg.contains(want), "{hcl:?}: {set_all}");
    }
}

#[test]
fn a_value_turbot_checks_at_query_time_fails_only_that_connections_scans() {
    // turbot's plugin accepts `regions = []` and retry values below 1 when the
    // config is set and fails the queries of that connection; the other
    // connections keep answering (measured through the real Steampipe
    // service, docs/compatibility.md).
    let f = fleet();
    let good = config(&f.moto, "AKIDGOOD", &["us-east-1"]);
    for (bad_extra, want) in [
        (
            "regions = []\n",
            "connection bad has invalid value for \"regions\", it must contain at least 1 region.",
        ),
        (
            "max_error_retry_attempts = 0\n",
            "connection config has invalid value for \"max_error_retry_attempts\", it must be greater than or equal to 1",
        ),
    ] {
        let bad = format!("access_key = \"AKIDBAD\"\nendpoint_url = \"{}\"\n{bad_extra}secret_key = \"x\"\n", f.moto.endpoint);
        let mut sc = aws_scenario(
            &good,
            vec![
                json!({"op": "execute", "request": execute("aws_ec2_instance", "bad", &["instance_id"], json!({}), None)}),
                scan(&["instance_id"], json!({}), None),
            ],
        );
        sc["connections"]
            .as_array_mut()
            .unwrap()
            .push(aws_connection("bad", &bad));
        let ev = run(&sc);
        let set_all = events(&ev, "init", None)
            .into_iter()
            .find(|e| e["rpc"] == "SetAllConnectionConfigs")
            .unwrap();
        assert!(set_all.get("error").is_none(), "{set_all}");
        assert_eq!(set_all["response"]["failed_connections"], json!({}));
        let bad_end = one(&ev, "execute_end", Some(0));
        assert_eq!(bad_end["end"], "error", "{bad_end}");
        assert!(
            bad_end["message"].as_str().unwrap().ends_with(want),
            "{bad_end}"
        );
        let good_end = one(&ev, "execute_end", Some(1));
        assert_eq!(good_end["end"], "eof", "{good_end}");
        assert!(good_end["rows"].as_i64().unwrap() > 0, "{good_end}");
        assert!(requests("AKIDBAD").is_empty(), "the bad connection calls nothing");
    }
}

#[test]
fn an_unreachable_endpoint_fails_the_scan_naming_connection_region_and_operation() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = format!(
        "access_key = \"AKIDDOWN\"\ndefault_region = \"eu-west-1\"\nendpoint_url = \"http://127.0.0.1:{port}\"\nmax_error_retry_attempts = 2\nsecret_key = \"x\"\n"
    );
    let ev = run(&aws_scenario(
        &cfg,
        vec![scan(&["instance_id"], json!({}), None)],
    ));
    let end = one(&ev, "execute_end", Some(0));
    assert_eq!(end["end"], "error");
    let msg = end["message"].as_str().unwrap();
    assert_eq!(
        msg,
        format!("aws: GetCallerIdentity in eu-west-1: could not connect to http://127.0.0.1:{port} (connection refused), 2 attempts")
    );
    assert!(
        !msg.contains("test-secret") && !msg.contains("secret_key"),
        "{msg}"
    );
}

fn proxied_config(endpoint: &str, extra: &str) -> String {
    format!(
        "access_key = \"AKIDPROXY\"\ndefault_region = \"us-east-1\"\nendpoint_url = \"{endpoint}\"\n{extra}regions = [\"us-east-1\"]\nsecret_key = \"proxy-secret\"\n"
    )
}

#[test]
fn throttled_calls_are_retried_with_backoff_until_they_succeed() {
    let f = fleet();
    let proxy = common::moto::FaultProxy::start(
        &f.moto.endpoint,
        json!([{"action": "DescribeInstances", "code": "RequestLimitExceeded", "status": 503, "times": 3}]),
    );
    let cfg = proxied_config(
        &proxy.endpoint,
        "max_error_retry_attempts = 5\nmin_error_retry_delay = 40\n",
    );
    let ev = run(&aws_scenario(
        &cfg,
        vec![scan(&["instance_id"], json!({}), None)],
    ));
    let end = one(&ev, "execute_end", Some(0));
    assert_eq!(end["end"], "eof", "{end}");
    assert_eq!(end["rows"], 8, "every row arrives after the throttling");
    let calls: Vec<_> = proxy
        .entries()
        .into_iter()
        .filter(|e| e.action == "DescribeInstances")
        .collect();
    assert_eq!(
        calls.iter().map(|c| c.faulted).collect::<Vec<_>>(),
        [true, true, true, false]
    );
    let waited = calls[3].t - calls[0].t;
    assert!(waited > 0.0, "retries are spaced by the backoff");
}

#[test]
fn exhausted_retries_fail_the_scan_with_connection_region_operation_and_code() {
    let f = fleet();
    let proxy = common::moto::FaultProxy::start(
        &f.moto.endpoint,
        json!([{"action": "DescribeInstances", "code": "Throttling", "status": 400, "message": "Rate exceeded", "times": -1}]),
    );
    let cfg = proxied_config(
        &proxy.endpoint,
        "max_error_retry_attempts = 3\nmin_error_retry_delay = 10\n",
    );
    let ev = run(&aws_scenario(
        &cfg,
        vec![scan(&["instance_id"], json!({}), None)],
    ));
    let end = one(&ev, "execute_end", Some(0));
    assert_eq!(end["end"], "error");
    assert_eq!(end["code"], "Unknown");
    assert_eq!(
        end["message"],
        format!("aws: DescribeInstances in us-east-1: Throttling: Rate exceeded (HTTP 400 from {}, 3 attempts); AWS throttled every try: raise max_error_retry_attempts or min_error_retry_delay in the connection config", proxy.endpoint)
    );
    assert_eq!(end["rows"], 0, "no partial result");
    let tries = proxy
        .entries()
        .iter()
        .filter(|e| e.action == "DescribeInstances")
        .count();
    assert_eq!(tries, 3, "max_error_retry_attempts counts every try");
}

#[test]
fn ignore_error_codes_and_messages_turn_matching_errors_into_empty_results() {
    let f = fleet();
    for extra in [
        "ignore_error_codes = [\"Unauthorized*\"]\n",
        "ignore_error_messages = [\"^You are not authorized\"]\n",
    ] {
        let proxy = common::moto::FaultProxy::start(
            &f.moto.endpoint,
            json!([{"action": "DescribeInstances", "code": "UnauthorizedOperation", "status": 403,
                    "message": "You are not authorized to perform this operation.", "times": -1}]),
        );
        let ev = run(&aws_scenario(
            &proxied_config(&proxy.endpoint, extra),
            vec![scan(&["instance_id"], json!({}), None)],
        ));
        let end = one(&ev, "execute_end", Some(0));
        assert_eq!(end["end"], "eof", "{extra}: {end}");
        assert_eq!(end["rows"], 0);
    }
    // Without an ignore rule the same error fails the query.
    let proxy = common::moto::FaultProxy::start(
        &f.moto.endpoint,
        json!([{"action": "DescribeInstances", "code": "UnauthorizedOperation", "status": 403, "times": -1}]),
    );
    let ev = run(&aws_scenario(
        &proxied_config(&proxy.endpoint, ""),
        vec![scan(&["instance_id"], json!({}), None)],
    ));
    assert_eq!(one(&ev, "execute_end", Some(0))["end"], "error");
}

#[test]
fn secrets_never_reach_logs_or_errors_even_at_trace() {
    let f = fleet();
    let (key, secret, token) = ("AKIDSECRETPROBE7Q", "sEcReT/value+9z", "ToKeN-session-42x");
    let cfg = format!(
        "access_key = \"{key}\"\ndefault_region = \"us-east-1\"\nendpoint_url = \"{}\"\nregions = [\"us-east-1\"]\nsecret_key = \"{secret}\"\nsession_token = \"{token}\"\n",
        f.moto.endpoint
    );
    let bad = cfg.replace("regions = [\"us-east-1\"]", "regions = [\"us east\"]");
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut sc = aws_scenario(
        &cfg,
        vec![
            scan(&["instance_id", "user_data", "arn"], json!({}), None),
            scan(
                &["instance_id"],
                qual(
                    "instance_id",
                    "=",
                    Some(json!({"stringValue": "i-0123456789abcdef0"})),
                ),
                None,
            ),
            json!({"op": "rpc", "method": "UpdateConnectionConfigs", "request": {"changed": [{"connection": "aws", "config": bad}]}}),
        ],
    );
    sc["env"]["STEAMPIPE_LOG_LEVEL"] = json!("TRACE");
    sc["stderr_file"] = json!(log.path());
    let ev = run(&sc);
    assert_eq!(one(&ev, "execute_end", Some(0))["end"], "eof");
    let stderr = std::fs::read_to_string(log.path()).unwrap();
    assert!(
        stderr.lines().count() > 5,
        "TRACE logging produced little: {stderr}"
    );
    let events = serde_json::to_string(&ev).unwrap();
    let update = one(&ev, "rpc", Some(2));
    assert!(update["response"]["failed_connections"]["aws"]
        .as_str()
        .unwrap()
        .contains("'us east'"));
    for value in [secret, token] {
        assert!(!stderr.contains(value), "{value} in stderr");
        assert!(
            !events.replace(&bad, "").replace(&cfg, "").contains(value),
            "{value} in an RPC answer"
        );
    }
    // The access key id is not secret to AWS, but it is not ours to log either.
    assert!(!stderr.contains(key), "access key id in stderr");
}
