//! Every IMDS control of the bundled mod and the example queries over every
//! IMDS source, on the moto emulator seeded by `tests/fixtures/imds_sources.py`
//! (launch templates, launch configurations, instances launched from
//! templates, an AMI of the account's own):
//!
//! - on real PostgreSQL, as Powerpipe runs them: the plugin's rows of the five
//!   tables (through sphost, steampipe-plugin-sdk's client) loaded with the
//!   FDW's types, each control's SQL rendered from the mod's HCL, statuses
//!   and reasons compared with what the APIs returned;
//! - through `check`, which must give the same results as PostgreSQL;
//! - the example queries in `queries/` that join the sources.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::OnceLock;

use common::moto::Moto;
use common::pg::Postgres;
use common::*;
use serde_json::{json, Map, Value};
use steampipe_plugin_aws::check::powerpipe_mod::{ModDef, ResolvedMod, VarInputs};

const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];
const TABLES: [&str; 5] = [
    "aws_ec2_instance",
    "aws_ec2_launch_template",
    "aws_ec2_launch_template_version",
    "aws_ec2_launch_configuration",
    "aws_ec2_ami",
];

/// Each upstream IMDS query and the controls that run it (upstream's
/// controls for all four, as the mod carries them).
const CONTROLS: [(&str, &[&str]); 4] = [
    (
        "ec2_instance_uses_imdsv2",
        &[
            "foundational_security_ec2_8",
            "ec2_instance_uses_imdsv2",
            "cis_v200_5_6",
            "cis_v300_5_6",
            "cis_v400_5_7",
            "cis_v500_5_7",
            "cis_v600_6_7",
            "cis_compute_service_v100_2_8",
        ],
    ),
    (
        "ec2_launch_template_default_version_uses_imdsv2",
        &[
            "foundational_security_ec2_170",
            "ec2_launch_template_default_version_uses_imdsv2",
        ],
    ),
    (
        "autoscaling_launch_config_requires_imdsv2",
        &[
            "foundational_security_autoscaling_3",
            "autoscaling_launch_config_requires_imdsv2",
        ],
    ),
    (
        "autoscaling_launch_config_hop_limit",
        &[
            "foundational_security_autoscaling_4",
            "autoscaling_launch_config_hop_limit",
        ],
    ),
];

struct Setup {
    moto: Moto,
    seeded: Value,
    pg: Postgres,
}

fn config(endpoint: &str) -> String {
    format!(
        "access_key = \"AKIDIMDSCTL\"\ndefault_region = \"us-east-1\"\nendpoint_url = \"{endpoint}\"\nregions = [\"us-east-1\", \"eu-west-1\"]\nsecret_key = \"imds-controls-secret\"\n"
    )
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let moto = Moto::start();
        let seeded = common::oracle::fixture(&moto, "imds_sources.py", &[]);
        let conn = json!({"connection": "aws", "plugin": "aws", "pluginShortName": "aws",
                          "config": config(&moto.endpoint)});
        let mut sc = scenario(
            vec![conn],
            vec![json!({"op": "get_schema", "connection": "aws"})],
        );
        sc["plugin"] = json!(target_dir().join("steampipe-plugin-aws"));
        sc["env"] = json!({"AWS_EC2_METADATA_DISABLED": "true"});
        let ev = run(&sc);
        let schema = one(&ev, "schema", Some(0))["response"]["schema"]["schema"].clone();
        let mut steps = Vec::new();
        for t in TABLES {
            let columns: Vec<&str> = schema[t]["columns"]
                .as_array()
                .unwrap_or_else(|| panic!("the plugin serves no {t}"))
                .iter()
                .map(|c| c["name"].as_str().unwrap())
                .collect();
            steps.push(json!({"op": "execute",
                              "request": execute(t, "aws", &columns, json!({}), None)}));
        }
        sc["steps"] = json!(steps);
        let ev = run(&sc);
        let pg = Postgres::start();
        for (i, t) in TABLES.iter().enumerate() {
            let end = one(&ev, "execute_end", Some(i));
            assert_eq!(end["end"], "eof", "{t}: {end}");
            pg.load_table("aws", t, &schema[*t], &common::rows(&ev, i));
        }
        Setup { moto, seeded, pg }
    })
}

fn resolved() -> ResolvedMod {
    let def = ModDef::load(&root().join("mod")).unwrap();
    ResolvedMod::resolve(def, &VarInputs::default()).unwrap()
}

fn query_file(name: &str) -> String {
    std::fs::read_to_string(root().join("queries").join(name)).unwrap()
}

fn text(r: &Map<String, Value>, k: &str) -> String {
    r.get(k)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no {k} in {r:?}"))
        .to_string()
}

/// resource -> (status, reason, region) of a control's rows.
type Results = BTreeMap<String, (String, String, String)>;

fn pg_results(s: &Setup, sql: &str) -> Results {
    s.pg.query("aws, public", sql)
        .iter()
        .map(|r| {
            (
                text(r, "resource"),
                (text(r, "status"), text(r, "reason"), text(r, "region")),
            )
        })
        .collect()
}

fn expected_template_results(s: &Setup) -> Results {
    let mut want = Results::new();
    for region in REGIONS {
        let templates = &s.seeded["templates"][region];
        for v in templates["versions"].as_array().unwrap() {
            if v["DefaultVersion"] != true {
                continue;
            }
            let id = v["LaunchTemplateId"].as_str().unwrap();
            let t = templates["templates"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["LaunchTemplateId"] == id)
                .unwrap();
            // title: the template's name (the version table has no tags).
            let title = t["LaunchTemplateName"].as_str().unwrap();
            let ok = v["LaunchTemplateData"]["MetadataOptions"]["HttpTokens"] == "required";
            let reason = if ok {
                format!("{title} configured to use Instance Metadata Service Version 2 (IMDSv2).")
            } else {
                format!(
                    "{title} not configured to use Instance Metadata Service Version 2 (IMDSv2)."
                )
            };
            let status = if ok { "ok" } else { "alarm" };
            want.insert(id.into(), (status.into(), reason, region.into()));
        }
    }
    want
}

/// (requires IMDSv2, hop limit) per launch configuration.
fn expected_lc_results(s: &Setup) -> (Results, Results) {
    let (mut tokens, mut hops) = (Results::new(), Results::new());
    for region in REGIONS {
        for lc in s.seeded["launch_configurations"][region]
            .as_array()
            .unwrap()
        {
            let arn = lc["LaunchConfigurationARN"].as_str().unwrap().to_string();
            let title = lc["LaunchConfigurationName"].as_str().unwrap();
            let md = &lc["MetadataOptions"];
            let ok = md["HttpTokens"] == "required";
            tokens.insert(
                arn.clone(),
                (
                    if ok { "ok" } else { "alarm" }.into(),
                    if ok {
                        format!("{title} configured to use Instance Metadata Service Version 2 (IMDSv2).")
                    } else {
                        format!("{title} not configured to use Instance Metadata Service Version 2 (IMDSv2).")
                    },
                    region.into(),
                ),
            );
            let hop = md["HttpPutResponseHopLimit"].as_i64();
            hops.insert(
                arn,
                (
                    if hop.is_some_and(|h| h > 1) {
                        "alarm"
                    } else {
                        "ok"
                    }
                    .into(),
                    match hop {
                        None => format!("{title} metadata response hop limit set to default."),
                        Some(h) => format!("{title} has a metadata response hop limit of {h}."),
                    },
                    region.into(),
                ),
            );
        }
    }
    (tokens, hops)
}

fn expected_instance_results(s: &Setup) -> Results {
    let mut want = Results::new();
    for region in REGIONS {
        for i in s.seeded["instances"][region].as_array().unwrap() {
            let id = i["InstanceId"].as_str().unwrap();
            let md = &i["MetadataOptions"];
            let ok = md["HttpTokens"] == "required" && md["State"] == "applied";
            let status = if ok { "ok" } else { "alarm" };
            // No instance here has a Name tag: the title is the id.
            let reason = if ok {
                format!("{id} configured to use Instance Metadata Service Version 2 (IMDSv2).")
            } else {
                format!("{id} not configured to use Instance Metadata Service Version 2 (IMDSv2).")
            };
            let account = s.seeded["account_id"].as_str().unwrap();
            let arn = format!("arn:aws:ec2:{region}:{account}:instance/{id}");
            want.insert(arn, (status.into(), reason, region.into()));
        }
    }
    want
}

fn expected(s: &Setup, query: &str) -> Results {
    match query {
        "ec2_instance_uses_imdsv2" => expected_instance_results(s),
        "ec2_launch_template_default_version_uses_imdsv2" => expected_template_results(s),
        "autoscaling_launch_config_requires_imdsv2" => expected_lc_results(s).0,
        "autoscaling_launch_config_hop_limit" => expected_lc_results(s).1,
        _ => unreachable!(),
    }
}

#[test]
fn every_imds_control_gives_upstreams_statuses_on_postgres() {
    let s = setup();
    let m = resolved();
    for (query, controls) in CONTROLS {
        let sql = m.query_sql(query).unwrap();
        for c in controls {
            assert_eq!(
                m.control_sql(c).unwrap(),
                sql,
                "control {c} runs query.{query}"
            );
        }
        let got = pg_results(s, &sql);
        let want = expected(s, query);
        assert_eq!(got, want, "query.{query}");
        let statuses: BTreeSet<&str> = got.values().map(|v| v.0.as_str()).collect();
        assert_eq!(
            statuses,
            BTreeSet::from(["alarm", "ok"]),
            "query.{query}: the fleet has both outcomes"
        );
    }
    // Upstream's quirks: only default versions are evaluated (hardened's
    // version 2 allows IMDSv1, its default does not), a NULL hop limit is ok.
    let templates = pg_results(s, &m.query_sql(CONTROLS[1].0).unwrap());
    assert_eq!(templates.len(), 5);
    let hops = pg_results(s, &m.query_sql(CONTROLS[3].0).unwrap());
    assert!(hops
        .values()
        .any(|v| v.0 == "ok" && v.1.ends_with("hop limit set to default.")));
}

/// The results of every control under `node` (a check JSON group tree).
fn check_controls(node: &Value, out: &mut BTreeMap<String, Results>) {
    for c in node["controls"].as_array().into_iter().flatten() {
        let id = c["control_id"]
            .as_str()
            .unwrap()
            .trim_start_matches("aws_compliance.control.")
            .trim_start_matches("control.")
            .to_string();
        let mut results = Results::new();
        for r in c["results"].as_array().into_iter().flatten() {
            let region = r["dimensions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|d| d["key"] == "region")
                .and_then(|d| d["value"].as_str())
                .unwrap_or_default();
            results.insert(
                r["resource"].as_str().unwrap().to_string(),
                (
                    r["status"].as_str().unwrap().to_string(),
                    r["reason"].as_str().unwrap().to_string(),
                    region.to_string(),
                ),
            );
        }
        out.insert(id, results);
    }
    for g in node["groups"].as_array().into_iter().flatten() {
        check_controls(g, out);
    }
}

#[test]
fn check_gives_the_same_results_as_postgres_for_every_imds_control() {
    let s = setup();
    let m = resolved();
    let dir = tempfile::tempdir().unwrap();
    // The FSBP benchmark holds the four controls we have.
    let out = Command::new(target_dir().join("steampipe-plugin-aws"))
        .current_dir(dir.path())
        .args(["check", "foundational_security", "--output", "json"])
        .args(["--progress=false", "--endpoint-url", &s.moto.endpoint])
        .args([
            "--default-region",
            "us-east-1",
            "--regions",
            "us-east-1,eu-west-1",
        ])
        .env("AWS_ACCESS_KEY_ID", "AKIDIMDSCHECK")
        .env("AWS_SECRET_ACCESS_KEY", "imds-check-secret")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let json: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {stderr}\n{}", String::from_utf8_lossy(&out.stdout)));
    // Alarms: Powerpipe's exit code 1.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let mut got = BTreeMap::new();
    check_controls(&json, &mut got);
    let fsbp = [
        ("foundational_security_ec2_8", CONTROLS[0].0),
        ("foundational_security_ec2_170", CONTROLS[1].0),
        ("foundational_security_autoscaling_3", CONTROLS[2].0),
        ("foundational_security_autoscaling_4", CONTROLS[3].0),
    ];
    assert_eq!(
        got.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        fsbp.iter().map(|f| f.0).collect::<BTreeSet<_>>()
    );
    for (control, query) in fsbp {
        let want = pg_results(s, &m.query_sql(query).unwrap());
        assert!(!want.is_empty());
        assert_eq!(got[control], want, "{control}: check vs PostgreSQL");
    }
}

#[test]
fn the_example_queries_join_the_imds_sources() {
    let s = setup();
    let account = s.seeded["account_id"].as_str().unwrap();

    // Instances launched from a template version that allows IMDSv1.
    let rows = s.pg.query(
        "aws, public",
        &query_file("instances_from_imdsv1_launch_templates.sql"),
    );
    let mut want = Vec::new();
    for region in REGIONS {
        let versions = s.seeded["templates"][region]["versions"]
            .as_array()
            .unwrap();
        for i in s.seeded["instances"][region].as_array().unwrap() {
            let tag = |k: &str| {
                i["Tags"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|t| t["Key"] == k)
                    .and_then(|t| t["Value"].as_str())
                    .map(str::to_string)
            };
            let (Some(id), Some(version)) = (
                tag("aws:ec2launchtemplate:id"),
                tag("aws:ec2launchtemplate:version"),
            ) else {
                continue;
            };
            let v = versions
                .iter()
                .find(|v| {
                    v["LaunchTemplateId"] == id
                        && v["VersionNumber"].as_i64().map(|n| n.to_string())
                            == Some(version.clone())
                })
                .unwrap();
            let tokens = v["LaunchTemplateData"]["MetadataOptions"]["HttpTokens"].as_str();
            if tokens != Some("required") && i["State"]["Name"] != "terminated" {
                want.push((
                    i["InstanceId"].as_str().unwrap().to_string(),
                    tokens.unwrap_or("not set").to_string(),
                ));
            }
        }
    }
    want.sort();
    let mut got: Vec<(String, String)> = rows
        .iter()
        .map(|r| (text(r, "instance_id"), text(r, "template_http_tokens")))
        .collect();
    got.sort();
    assert_eq!(got, want);
    // legacy-v1 twice, bare's default (no HttpTokens), hardened's version 2.
    assert_eq!(want.len(), 4, "{want:?}");
    assert!(want.iter().any(|w| w.1 == "not set"));
    assert!(rows.iter().all(|r| r["account_id"] == account));

    // AMIs without ImdsSupport v2.0 (moto never sets it) and their live
    // instances: golden runs one (its other instance is terminated).
    let rows = s.pg.query(
        "aws, public",
        &query_file("amis_without_imdsv2_support.sql"),
    );
    let images = s.seeded["images"]["us-east-1"].as_array().unwrap();
    let id_of = |name: &str| {
        images.iter().find(|i| i["Name"] == name).unwrap()["ImageId"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let got: Vec<(String, String)> = rows
        .iter()
        .map(|r| (text(r, "image_id"), text(r, "live_instances")))
        .collect();
    assert_eq!(
        got,
        [
            (id_of("golden"), "1".to_string()),
            (id_of("registered-unused"), "0".to_string())
        ]
    );

    // The posture by account: each source counted on its own.
    let rows =
        s.pg.query("aws, public", &query_file("imds_posture_by_account.sql"));
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(r["account_id"], account);
    let live: Vec<&Value> = REGIONS
        .iter()
        .flat_map(|region| s.seeded["instances"][region].as_array().unwrap())
        .filter(|i| i["State"]["Name"] != "terminated")
        .collect();
    let required = live
        .iter()
        .filter(|i| i["MetadataOptions"]["HttpTokens"] == "required")
        .count();
    assert_eq!(
        text(r, "instances_imdsv2"),
        format!("{required} / {}", live.len())
    );
    let templates = expected_template_results(s);
    let ok = templates.values().filter(|v| v.0 == "ok").count();
    assert_eq!(
        text(r, "default_template_versions_imdsv2"),
        format!("{ok} / {}", templates.len())
    );
    let (lcs, _) = expected_lc_results(s);
    let ok = lcs.values().filter(|v| v.0 == "ok").count();
    assert_eq!(
        text(r, "launch_configurations_imdsv2"),
        format!("{ok} / {}", lcs.len())
    );
    assert_eq!(text(r, "amis_imdsv2"), "0 / 2");
}
