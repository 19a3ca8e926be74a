//! turbot's Go AWS plugin as the oracle for `aws_ec2_launch_configuration`
//! (issue 13), through the harness of `tests/common/oracle.rs`: both plugins,
//! the same client (sphost), the same moto seeded by
//! `tests/fixtures/launch_configurations.py` (131 launch configurations in
//! two regions, every IMDS case, a name in both regions), the same questions:
//! the schema, every column of every row, Get (and a name two regions have),
//! IN, region quals, `limit`, AWS errors and the ignore rules. Then the mod's
//! two launch-configuration queries run on PostgreSQL over each plugin's rows.
//!
//! - `go_plugin_and_ours_answer_alike` and `the_imds_queries_give_the_go_plugins_statuses`
//!   (ignored: they need turbot's plugin in `$GO_AWS_PLUGIN`, built by
//!   `scripts/conformance.sh go-plugin`) compare the two live and record what
//!   the Go plugin answered in `tests/golden/oracle_ec2_launch_configuration*.json`.
//! - `ours_answers_as_the_recorded_go_plugin` and
//!   `the_imds_queries_give_the_recorded_statuses` (default run) check ours
//!   against those recordings.

mod common;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use common::oracle::{self, Bed, Case, Table};
use common::pg::Postgres;
use common::quals;
use serde_json::{json, Value};

const SEED: u64 = 20_261_208;
const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];
const GOLDEN: &str = "tests/golden/oracle_ec2_launch_configuration.json";
const GOLDEN_QUERIES: &str = "tests/golden/oracle_ec2_launch_configuration_queries.json";
const SHARED_NAME: &str = "lc-shared-name";

const TABLE: Table = Table {
    name: "aws_ec2_launch_configuration",
    key: &["region", "name"],
    actions: &["DescribeLaunchConfigurations"],
};

fn bed() -> &'static Bed {
    static BED: OnceLock<Bed> = OnceLock::new();
    BED.get_or_init(|| {
        Bed::start(SEED, &["tests/fixtures/launch_configurations.py"], |m| {
            oracle::fixture(m, "launch_configurations.py", &[])
        })
    })
}

/// The fault proxy rewrites moto's answers for four launch configurations
/// (`tests/fixtures/launch_configuration_rewrites.json`): PlacementTenancy,
/// which moto never returns; user data moto would refuse (not base64, not
/// UTF-8); members left out, so that `Default: false` and nil lists show.
fn rewrites() -> Value {
    let text =
        std::fs::read(common::root().join("tests/fixtures/launch_configuration_rewrites.json"));
    serde_json::from_slice(&text.unwrap()).unwrap()
}

/// The launch configurations [`rewrites`] changes.
const REWRITTEN: [&str; 4] = [
    "lc-optional-hop2",
    "lc-no-metadata-options",
    "lc-endpoint-disabled",
    "lc-tokens-only",
];

/// An awsQuery error from the fault proxy.
fn fault(code: &str, status: u16, region: Option<&str>, times: i64) -> Value {
    let mut r = json!({"action": "DescribeLaunchConfigurations", "code": code, "status": status,
                       "message": format!("{code} injected by the test proxy."), "times": times,
                       "protocol": "query"});
    if let Some(region) = region {
        r["region"] = json!(region);
    }
    json!([r])
}

fn scan(columns: &[&str], quals: Value, limit: Option<i64>) -> Value {
    oracle::scan(TABLE.name, columns, quals, limit)
}

/// Every question. `columns` are the schema's, in order.
fn cases(columns: &[(String, bool)]) -> Vec<Case> {
    let all: Vec<&str> = columns.iter().map(|c| c.0.as_str()).collect();
    let imds = [
        "name",
        "region",
        "launch_configuration_arn",
        "title",
        "metadata_options_http_endpoint",
        "metadata_options_put_response_hop_limit",
        "metadata_options_http_tokens",
    ];
    let named_us = [
        "lc-required-hop1",
        "lc-optional-hop2",
        "lc-required-hop64",
        "lc-no-metadata-options",
        "lc-endpoint-disabled",
        "lc-tokens-only",
        "lc-hop-only",
    ];
    let eq = oracle::eq;
    vec![
        Case::new("schema", oracle::schema_step()),
        Case::new("all columns, both regions", scan(&all, json!({}), None)).regions(&REGIONS),
        Case::new("all columns, eu-west-1", scan(&all, json!({}), None)).regions(&["eu-west-1"]),
        Case::new(
            "all columns, the named us-east-1 cases by name IN (...)",
            scan(&all, oracle::in_list("name", &named_us), None),
        ),
        Case::new("IMDS columns, both regions", scan(&imds, json!({}), None)).regions(&REGIONS),
        Case::new(
            "get: a name in eu-west-1",
            scan(&all, eq("name", "lc-eu-required"), None),
        )
        .regions(&REGIONS),
        Case::new(
            "get: an unknown name",
            scan(&imds, eq("name", "no-such-launch-configuration"), None),
        )
        .regions(&REGIONS),
        Case::new(
            "get: a name both regions have",
            scan(&imds, eq("name", SHARED_NAME), None),
        )
        .regions(&REGIONS),
        Case::new(
            "get: a name both regions have, region = eu-west-1",
            scan(
                &imds,
                quals(&[eq("name", SHARED_NAME), eq("region", "eu-west-1")]),
                None,
            ),
        )
        .regions(&REGIONS),
        Case::new(
            "list: region = eu-west-1",
            scan(&imds, eq("region", "eu-west-1"), None),
        )
        .regions(&REGIONS),
        Case::new(
            "list: region IN (us-east-1, eu-west-1)",
            scan(&imds, oracle::in_list("region", &REGIONS), None),
        )
        .regions(&REGIONS),
        Case::new(
            "all columns, answers rewritten with what moto leaves out",
            scan(&all, oracle::in_list("name", &REWRITTEN), None),
        )
        .rules(rewrites()),
        Case::new("limit 5", scan(&imds, json!({}), Some(5))),
        Case::new("limit 1", scan(&imds, json!({}), Some(1))),
        Case::new("limit 120", scan(&imds, json!({}), Some(120))),
        Case::new(
            "limit 150 over two regions",
            scan(&["name"], json!({}), Some(150)),
        )
        .regions(&REGIONS)
        .count_only(),
        Case::new(
            "throttled once, then answered",
            scan(&imds, eq("region", "eu-west-1"), None),
        )
        .regions(&REGIONS)
        .extra(oracle::FEW_RETRIES)
        .rules(fault("Throttling", 400, None, 1)),
        // One region: with two, the other region's call may or may not have
        // reached the emulator when the error ends the scan.
        Case::new("AccessDenied", scan(&imds, json!({}), None))
            .regions(&["eu-west-1"])
            .rules(fault("AccessDenied", 403, Some("eu-west-1"), -1)),
        Case::new(
            "AccessDenied in eu-west-1, ignore_error_codes",
            scan(&imds, json!({}), None),
        )
        .regions(&REGIONS)
        .extra("ignore_error_codes = [\"AccessDenied\"]\n")
        .rules(fault("AccessDenied", 403, Some("eu-west-1"), -1)),
        Case::new(
            "get: ValidationError is ignored",
            scan(&imds, eq("name", "lc-eu-required"), None),
        )
        .regions(&REGIONS)
        .rules(fault("ValidationError", 400, Some("eu-west-1"), -1)),
        Case::new(
            "get: ResourceNotFoundException is ignored",
            scan(&imds, eq("name", "lc-eu-required"), None),
        )
        .regions(&REGIONS)
        .rules(fault(
            "ResourceNotFoundException",
            400,
            Some("eu-west-1"),
            -1,
        )),
    ]
}

#[test]
#[ignore = "needs turbot's Go plugin: run scripts/conformance.sh go-plugin"]
fn go_plugin_and_ours_answer_alike() {
    oracle::compare_live(bed(), &TABLE, GOLDEN, cases);
}

#[test]
fn ours_answers_as_the_recorded_go_plugin() {
    oracle::compare_golden(bed(), &TABLE, GOLDEN, cases);
}

/// The mod's two launch-configuration queries (steampipe-mod-aws-compliance
/// v1.13.0, conformance_pack/autoscaling.pp), verbatim but for the mod's
/// default dimensions (`, region, account_id`) in place of
/// `${local.common_dimensions_sql}`.
const QUERIES: [(&str, &str); 2] = [
    (
        "autoscaling_launch_config_requires_imdsv2",
        r#"
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
        , region, account_id
      from
        aws_ec2_launch_configuration;
"#,
    ),
    (
        "autoscaling_launch_config_hop_limit",
        r#"
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
        , region, account_id
      from
        aws_ec2_launch_configuration;
"#,
    ),
];

/// Each query's rows (as text lines, sorted) over `plugin`'s rows of every
/// column in both regions, loaded into PostgreSQL with the FDW's types.
fn query_answers(plugin: &std::path::Path) -> Value {
    let b = bed();
    let schema = oracle::ask(
        b,
        plugin,
        &TABLE,
        &Case::new("schema", oracle::schema_step()),
    );
    let columns: Vec<String> = oracle::schema_columns(&schema)
        .into_iter()
        .map(|c| c.0)
        .collect();
    let cols: Vec<&str> = columns.iter().map(String::as_str).collect();
    let c = Case::new("all", scan(&cols, json!({}), None)).regions(&REGIONS);
    let answer = oracle::ask(b, plugin, &TABLE, &c);
    assert_eq!(answer["end"], "eof", "{answer}");
    // Host row events again ({values: {column: value}}) for the loader.
    let rows: Vec<Value> = answer["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let values: serde_json::Map<String, Value> = r
                .as_object()
                .unwrap()
                .iter()
                .filter(|(k, _)| !k.starts_with('('))
                .map(|(k, v)| (k.clone(), v[1].clone()))
                .collect();
            json!({ "values": values })
        })
        .collect();
    let pg = Postgres::start();
    pg.load_table("aws", TABLE.name, &schema["table"], &rows);
    let mut out = BTreeMap::new();
    for (name, sql) in QUERIES {
        let mut lines: Vec<String> = pg
            .query("aws", sql)
            .into_iter()
            .map(|r| {
                let cell = |k: &str| r[k].as_str().unwrap_or("NULL").to_string();
                [
                    cell("resource"),
                    cell("status"),
                    cell("reason"),
                    cell("region"),
                ]
                .join(" | ")
            })
            .collect();
        lines.sort();
        out.insert(name.to_string(), json!(lines));
    }
    json!(out)
}

/// The query answers, one line per row, as a readable recording.
fn write_query_golden(answers: &Value) {
    let v = json!({
        "_": "What the mod's two launch-configuration queries answer over turbot's Go AWS plugin's rows; written by tests/oracle_ec2_launch_configuration.rs (scripts/conformance.sh go-plugin), checked by its default test.",
        "go_plugin": oracle::GO_PLUGIN_VERSION,
        "fleet": bed().fingerprint,
        "answers": answers,
    });
    std::fs::write(
        common::root().join(GOLDEN_QUERIES),
        serde_json::to_string_pretty(&v).unwrap() + "\n",
    )
    .unwrap();
}

fn query_differences(go: &Value, ours: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for (name, _) in QUERIES {
        let lines = |v: &Value| -> Vec<String> {
            v[name]
                .as_array()
                .into_iter()
                .flatten()
                .map(|l| l.as_str().unwrap().to_string())
                .collect()
        };
        let (g, o) = (lines(go), lines(ours));
        if g.is_empty() {
            out.push(format!("{name}: no rows from the Go plugin"));
        }
        out.extend(
            g.iter()
                .filter(|l| !o.contains(l))
                .map(|l| format!("{name}: go only: {l}")),
        );
        out.extend(
            o.iter()
                .filter(|l| !g.contains(l))
                .map(|l| format!("{name}: ours only: {l}")),
        );
    }
    out
}

#[test]
#[ignore = "needs turbot's Go plugin: run scripts/conformance.sh go-plugin"]
fn the_imds_queries_give_the_go_plugins_statuses() {
    let go = query_answers(&oracle::go_plugin());
    write_query_golden(&go);
    let ours = query_answers(&oracle::our_plugin());
    let d = query_differences(&go, &ours);
    assert!(d.is_empty(), "{}", d.join("\n"));
}

#[test]
fn the_imds_queries_give_the_recorded_statuses() {
    let text = std::fs::read_to_string(common::root().join(GOLDEN_QUERIES))
        .unwrap_or_else(|e| panic!("{GOLDEN_QUERIES}: {e}; {}", oracle::RERECORD));
    let recorded: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        recorded["fleet"],
        json!(bed().fingerprint),
        "{GOLDEN_QUERIES} was recorded on another seeding; {}",
        oracle::RERECORD
    );
    let ours = query_answers(&oracle::our_plugin());
    let d = query_differences(&recorded["answers"], &ours);
    assert!(d.is_empty(), "{}", d.join("\n"));
}
