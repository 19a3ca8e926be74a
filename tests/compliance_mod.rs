//! The bundled `aws_compliance` mod's control `foundational_security_ec2_8`,
//! run as Powerpipe runs it: the plugin's rows (from the moto emulator, through
//! sphost (steampipe-plugin-sdk's client)) loaded into real PostgreSQL with the FDW's
//! types, the control's SQL rendered from the mod's HCL, run with the
//! connection schema on the search path.

mod common;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use common::moto::{FaultProxy, Moto};
use common::pg::Postgres;
use common::*;
use serde_json::{json, Map, Value};
use steampipe_plugin_aws::check::powerpipe_mod::{ModDef, ResolvedMod, VarInputs};

struct Setup {
    _moto: Moto,
    _proxy: FaultProxy,
    seeded: Value,
    table_schema: Value,
    rows: Vec<Value>,
}

/// moto cannot report a pending change or an instance without metadata
/// options, so the proxy rewrites its answers for two marked instances.
fn rewrites() -> Value {
    json!([{"action": "DescribeInstances", "rewrite": [
        ["<state>applied</state>(\\s*<httpTokens>required</httpTokens>\\s*<httpPutResponseHopLimit>7</httpPutResponseHopLimit>)", "<state>pending</state>\\1"],
        ["<metadataOptions>\\s*<state>applied</state>\\s*<httpTokens>optional</httpTokens>\\s*<httpPutResponseHopLimit>9</httpPutResponseHopLimit>.*?</metadataOptions>", ""]
    ]}])
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let moto = Moto::start();
        let seeded = moto.seed(&["--control-cases"]);
        let proxy = FaultProxy::start(&moto.endpoint, rewrites());
        let config = format!(
            "access_key = \"AKIDMOD\"\ndefault_region = \"us-east-1\"\nendpoint_url = \"{}\"\nregions = [\"us-east-1\", \"eu-west-1\"]\nsecret_key = \"mod-secret\"\n",
            proxy.endpoint
        );
        let conn = json!({"connection": "aws", "plugin": "aws", "pluginShortName": "aws", "config": config});
        let mut sc = scenario(vec![conn.clone()], vec![json!({"op": "get_schema", "connection": "aws"})]);
        sc["plugin"] = json!(target_dir().join("steampipe-plugin-aws"));
        sc["env"] = json!({"AWS_EC2_METADATA_DISABLED": "true"});
        let ev = run(&sc);
        let table_schema = one(&ev, "schema", Some(0))["response"]["schema"]["schema"]["aws_ec2_instance"].clone();
        let columns: Vec<String> = table_schema["columns"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_string()).collect();
        let cols: Vec<&str> = columns.iter().map(String::as_str).collect();
        sc["steps"] = json!([{"op": "execute", "request": execute("aws_ec2_instance", "aws", &cols, json!({}), None)}]);
        let ev = run(&sc);
        assert_eq!(one(&ev, "execute_end", Some(0))["end"], "eof");
        let rows = common::rows(&ev, 0);
        Setup { _moto: moto, _proxy: proxy, seeded, table_schema, rows }
    })
}

/// The instances as the EC2 API describes them (after the proxy's rewrites).
struct ApiInstance {
    id: String,
    region: String,
    title: String,
    state: String,
    tags: Map<String, Value>,
    metadata: Option<Map<String, Value>>,
}

fn api_view(s: &Setup) -> Vec<ApiInstance> {
    let mut out = Vec::new();
    for (region, list) in s.seeded["regions"].as_object().unwrap() {
        for i in list.as_array().unwrap() {
            let id = i["InstanceId"].as_str().unwrap().to_string();
            let tags: Map<String, Value> = i["Tags"]
                .as_array()
                .map(|ts| {
                    ts.iter()
                        .map(|t| (t["Key"].as_str().unwrap().to_string(), t["Value"].clone()))
                        .collect()
                })
                .unwrap_or_default();
            let mut metadata = i["MetadataOptions"].as_object().cloned();
            match s.seeded["extra"][&id]["case"].as_str() {
                Some("state-pending") => {
                    metadata
                        .as_mut()
                        .unwrap()
                        .insert("State".into(), json!("pending"));
                }
                Some("no-metadata-options") => metadata = None,
                _ => {}
            }
            out.push(ApiInstance {
                title: tags
                    .get("Name")
                    .and_then(|v| v.as_str())
                    .unwrap_or(&id)
                    .to_string(),
                id,
                region: region.clone(),
                state: i["State"]["Name"].as_str().unwrap().to_string(),
                tags,
                metadata,
            });
        }
    }
    out
}

fn loaded() -> (Postgres, &'static Setup) {
    let s = setup();
    let pg = Postgres::start();
    pg.load_table("aws", "aws_ec2_instance", &s.table_schema, &s.rows);
    (pg, s)
}

fn render(vars: &[&str]) -> String {
    let def = ModDef::load(&root().join("mod")).unwrap();
    let mut inputs = VarInputs::default();
    for v in vars {
        inputs.from_arg(v).unwrap();
    }
    ResolvedMod::resolve(def, &inputs)
        .unwrap()
        .control_sql("foundational_security_ec2_8")
        .unwrap()
}

fn case_of(s: &Setup, id: &str) -> String {
    s.seeded["extra"][id]["case"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[test]
fn the_control_gives_ok_and_alarm_instance_by_instance() {
    let (pg, s) = loaded();
    let results = pg.query("aws, public", &render(&[]));
    let api = api_view(s);
    assert_eq!(
        results.len(),
        api.len(),
        "one result per instance, terminated included"
    );
    let header: Vec<&String> = results[0].keys().collect();
    let mut want_cols = vec!["account_id", "reason", "region", "resource", "status"];
    want_cols.sort();
    assert_eq!(header, want_cols);
    let account = s.seeded["account_id"].as_str().unwrap();
    let by_resource: BTreeMap<String, &Map<String, Value>> = results
        .iter()
        .map(|r| (r["resource"].as_str().unwrap().to_string(), r))
        .collect();
    let mut seen_cases = BTreeMap::new();
    for inst in &api {
        let arn = format!("arn:aws:ec2:{}:{account}:instance/{}", inst.region, inst.id);
        let r = by_resource
            .get(&arn)
            .unwrap_or_else(|| panic!("no result for {arn}"));
        let md = inst.metadata.as_ref();
        let ok = md.is_some_and(|m| {
            m.get("HttpTokens") == Some(&json!("required"))
                && m.get("State") == Some(&json!("applied"))
        });
        let (status, reason) = if ok {
            (
                "ok",
                format!(
                    "{} configured to use Instance Metadata Service Version 2 (IMDSv2).",
                    inst.title
                ),
            )
        } else {
            (
                "alarm",
                format!(
                    "{} not configured to use Instance Metadata Service Version 2 (IMDSv2).",
                    inst.title
                ),
            )
        };
        assert_eq!(
            r["status"],
            status,
            "{} ({})",
            inst.id,
            case_of(s, &inst.id)
        );
        assert_eq!(r["reason"], reason.as_str());
        assert_eq!(r["region"], inst.region.as_str());
        assert_eq!(r["account_id"], account);
        seen_cases.insert(case_of(s, &inst.id), status);
    }
    // The cases the specification names, by what made them.
    assert_eq!(
        seen_cases["imds-required-hop2-ipv6-tags"], "ok",
        "tokens required, state applied"
    );
    assert_eq!(
        seen_cases["imds-default-optional"], "alarm",
        "tokens optional"
    );
    assert_eq!(seen_cases["state-pending"], "alarm", "state pending");
    assert_eq!(
        seen_cases["no-metadata-options"], "alarm",
        "no metadata options"
    );
    assert_eq!(
        seen_cases["terminated"], "alarm",
        "terminated instances are not excluded"
    );
    assert_eq!(seen_cases["stopped"], "ok");
    let pending = api
        .iter()
        .find(|i| case_of(s, &i.id) == "state-pending")
        .unwrap();
    let row = s
        .rows
        .iter()
        .find(|r| r["values"]["instance_id"] == pending.id.as_str())
        .unwrap();
    assert_eq!(
        row["values"]["metadata_options"]["State"], "pending",
        "the rewrite reached the plugin"
    );
    let none = api
        .iter()
        .find(|i| case_of(s, &i.id) == "no-metadata-options")
        .unwrap();
    let row = s
        .rows
        .iter()
        .find(|r| r["values"]["instance_id"] == none.id.as_str())
        .unwrap();
    assert!(row["values"]["metadata_options"].is_null());
    let empty = api
        .iter()
        .find(|i| case_of(s, &i.id) == "empty-name-tag")
        .unwrap();
    let arn = format!("arn:aws:ec2:us-east-1:{account}:instance/{}", empty.id);
    assert_eq!(
        by_resource[&arn]["reason"],
        " not configured to use Instance Metadata Service Version 2 (IMDSv2)."
    );
}

#[test]
fn dimensions_follow_the_variables() {
    let (pg, s) = loaded();
    let sql = render(&[
        r#"common_dimensions=["account_id","connection_name","region"]"#,
        r#"tag_dimensions=["Environment","Owner"]"#,
    ]);
    // Column order as Powerpipe shows dimensions.
    let text = pg
        .psql(&format!("set search_path to aws, public;\n{sql}"))
        .unwrap();
    let header = text.lines().find(|l| l.contains("resource")).unwrap();
    assert_eq!(
        header.split('\u{1f}').collect::<Vec<_>>(),
        [
            "resource",
            "status",
            "reason",
            "Environment",
            "Owner",
            "connection_name",
            "region",
            "account_id"
        ]
    );
    let results = pg.query("aws, public", &sql);
    let api = api_view(s);
    for r in &results {
        let id = r["resource"].as_str().unwrap().rsplit('/').next().unwrap();
        let inst = api.iter().find(|i| i.id == id).unwrap();
        assert_eq!(r["connection_name"], "aws");
        assert_eq!(r["region"], inst.region.as_str());
        assert_eq!(
            r["Environment"],
            inst.tags.get("Environment").cloned().unwrap_or(Value::Null)
        );
        assert_eq!(
            r["Owner"],
            inst.tags.get("Owner").cloned().unwrap_or(Value::Null)
        );
    }
    assert!(results.iter().any(|r| r["Owner"] == "alice"));
}

fn query_file(name: &str) -> String {
    std::fs::read_to_string(root().join("queries").join(name)).unwrap()
}

fn ids(rows: &[Map<String, Value>]) -> Vec<String> {
    rows.iter()
        .map(|r| r["instance_id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn every_example_query_runs_and_answers_its_question() {
    let (pg, s) = loaded();
    let api = api_view(s);
    let live: Vec<&ApiInstance> = api.iter().filter(|i| i.state != "terminated").collect();
    let md = |i: &ApiInstance, k: &str| {
        i.metadata
            .as_ref()
            .and_then(|m| m.get(k).cloned())
            .unwrap_or(Value::Null)
    };
    let account = s.seeded["account_id"].as_str().unwrap();

    // IMDSv1 by account and region.
    let rows = pg.query(
        "aws, public",
        &query_file("imdsv1_instances_by_account_region.sql"),
    );
    let mut want: BTreeMap<String, usize> = BTreeMap::new();
    for i in &live {
        if md(i, "HttpTokens") == "optional" {
            *want.entry(i.region.clone()).or_default() += 1;
        }
    }
    let got: BTreeMap<String, usize> = rows
        .iter()
        .map(|r| {
            assert_eq!(r["account_id"], account);
            (
                r["region"].as_str().unwrap().to_string(),
                r["imdsv1_instances"].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, want);
    assert!(want.values().sum::<usize>() >= 4);

    // Hop limit above 1, highest first.
    let rows = pg.query("aws, public", &query_file("imds_hop_limit_above_one.sql"));
    let mut want: Vec<(i64, String)> = api
        .iter()
        .filter_map(|i| {
            md(i, "HttpPutResponseHopLimit")
                .as_i64()
                .filter(|h| *h > 1)
                .map(|h| (h, i.id.clone()))
        })
        .collect();
    want.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    assert_eq!(
        ids(&rows),
        want.iter().map(|w| w.1.clone()).collect::<Vec<_>>()
    );
    assert_eq!(rows[0]["hop_limit"], "7");

    // Endpoint disabled.
    let rows = pg.query("aws, public", &query_file("imds_endpoint_disabled.sql"));
    let want: Vec<String> = api
        .iter()
        .filter(|i| md(i, "HttpEndpoint") == "disabled")
        .map(|i| i.id.clone())
        .collect();
    assert_eq!(ids(&rows), want);
    assert_eq!(want.len(), 1);

    // Instance metadata tags exposed.
    let rows = pg.query(
        "aws, public",
        &query_file("imds_instance_metadata_tags_enabled.sql"),
    );
    let want: Vec<String> = api
        .iter()
        .filter(|i| md(i, "InstanceMetadataTags") == "enabled")
        .map(|i| i.id.clone())
        .collect();
    assert_eq!(ids(&rows), want);
    assert_eq!(rows[0]["title"], "imdsv2");

    // Pending changes.
    let rows = pg.query("aws, public", &query_file("imdsv2_pending_changes.sql"));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["title"], "pending-case");

    // Fleet summary.
    let rows = pg.query("aws, public", &query_file("imds_fleet_summary.sql"));
    assert_eq!(rows.len(), 2);
    for r in &rows {
        let region = r["region"].as_str().unwrap();
        let mine: Vec<&&ApiInstance> = live.iter().filter(|i| i.region == region).collect();
        let count =
            |f: &dyn Fn(&ApiInstance) -> bool| mine.iter().filter(|i| f(i)).count().to_string();
        assert_eq!(r["instances"], count(&|_| true).as_str());
        assert_eq!(
            r["imdsv2_required"],
            count(&|i| md(i, "HttpTokens") == "required" && md(i, "State") == "applied").as_str()
        );
        assert_eq!(
            r["imdsv1_allowed"],
            count(&|i| md(i, "HttpTokens") == "optional").as_str()
        );
        assert_eq!(
            r["change_pending"],
            count(&|i| md(i, "State") == "pending").as_str()
        );
        assert_eq!(
            r["endpoint_disabled"],
            count(&|i| md(i, "HttpEndpoint") == "disabled").as_str()
        );
        assert_eq!(
            r["no_metadata_options"],
            count(&|i| i.metadata.is_none()).as_str()
        );
    }

    // The control's named query is the control's SQL.
    let rows = pg.query("aws, public", &query_file("ec2_instance_uses_imdsv2.sql"));
    assert_eq!(rows.len(), api.len());
}
