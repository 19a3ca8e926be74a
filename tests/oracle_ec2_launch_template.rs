//! turbot's Go AWS plugin as the oracle for `aws_ec2_launch_template` and
//! `aws_ec2_launch_template_version` (issue 13), through
//! `tests/common/oracle.rs`: one moto seeded with
//! `tests/fixtures/launch_templates.py` (templates with several versions,
//! MetadataOptions differing per version, a default version that is not the
//! latest, tags; in us-east-1 and eu-west-1, none in ap-southeast-2), the
//! same questions asked of both plugins: schema, every column of every row,
//! Get, each key column, the filters, `limit`, region quals, errors, and the
//! rows of upstream's `ec2_launch_template_default_version_uses_imdsv2`.
//!
//! - `go_plugin_and_ours_answer_alike_*` (ignored: they need turbot's plugin
//!   in `$GO_AWS_PLUGIN`, built by `scripts/conformance.sh go-plugin`)
//!   compare the two live and rewrite the recordings
//!   `tests/golden/oracle_ec2_launch_template*.json`.
//! - `ours_answers_as_the_recorded_go_plugin_*` (default run) ask our plugin
//!   the same questions and compare with the recordings.

mod common;

use std::sync::OnceLock;

use common::oracle::{self, eq, eq_bool, eq_int, in_list, scan, Bed, Case, Table};
use common::{qual, quals};
use serde_json::{json, Value};

const SEED: u64 = 20_261_208;
const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "ap-southeast-2"];

const TEMPLATE: Table = Table {
    name: "aws_ec2_launch_template",
    key: &["launch_template_id"],
    actions: &["DescribeLaunchTemplates"],
};
const VERSION: Table = Table {
    name: "aws_ec2_launch_template_version",
    key: &["launch_template_id", "version_number"],
    actions: &["DescribeLaunchTemplates", "DescribeLaunchTemplateVersions"],
};
const TEMPLATE_GOLDEN: &str = "tests/golden/oracle_ec2_launch_template.json";
const VERSION_GOLDEN: &str = "tests/golden/oracle_ec2_launch_template_version.json";

fn bed() -> &'static Bed {
    static BED: OnceLock<Bed> = OnceLock::new();
    BED.get_or_init(|| {
        Bed::start(SEED, &["tests/fixtures/launch_templates.py"], |m| {
            oracle::fixture(m, "launch_templates.py", &[])
        })
    })
}

/// The id of template `name` (seeded in us-east-1 or eu-west-1).
fn id_of(seeded: &Value, name: &str) -> String {
    for r in REGIONS {
        for t in seeded["regions"][r]["templates"].as_array().unwrap() {
            if t["LaunchTemplateName"] == name {
                return t["LaunchTemplateId"].as_str().unwrap().to_string();
            }
        }
    }
    panic!("no template {name} was seeded")
}

fn case(name: &str, step: Value) -> Case {
    Case::new(name, step).regions(&REGIONS)
}

fn throttled(action: &str) -> Value {
    json!([{"action": action, "code": "RequestLimitExceeded", "status": 503,
            "message": "Request limit exceeded.", "times": -1}])
}

fn denied(action: &str) -> Value {
    json!([{"action": action, "code": "UnauthorizedOperation", "status": 403, "times": -1,
            "message": "You are not authorized to perform this operation."}])
}

/// moto never pages: the proxy adds a `nextToken` to `action`'s answers,
/// to first pages only (then the second page repeats the first one's
/// items), or to every page (then the token comes back unchanged, where
/// upstream's paginators stop: StopOnDuplicateToken).
fn paged(action: &str, first_only: bool) -> Value {
    let mut rule = json!({"action": action, "rewrite": [[
        format!("(</{action}Response>)"), "<nextToken>page-2</nextToken>\\1"
    ]]});
    if first_only {
        rule["unless_param"] = json!("NextToken");
    }
    json!([rule])
}

fn names(columns: &[(String, bool)]) -> Vec<&str> {
    columns.iter().map(|c| c.0.as_str()).collect()
}

fn template_cases(seeded: &Value, columns: &[(String, bool)]) -> Vec<Case> {
    let all = names(columns);
    let t = TEMPLATE.name;
    let web = id_of(seeded, "web");
    let few = ["launch_template_id", "launch_template_name", "region"];
    vec![
        case("schema", oracle::schema_step()),
        case("all columns, 3 regions", scan(t, &all, json!({}), None)),
        case(
            "launch_template_name = web",
            scan(t, &all, eq("launch_template_name", "web"), None),
        ),
        case(
            "launch_template_id = web's",
            scan(t, &few, eq("launch_template_id", &web), None),
        ),
        case(
            "launch_template_name = unknown",
            scan(t, &few, eq("launch_template_name", "no-such"), None),
        ),
        case(
            "launch_template_id = unknown",
            scan(
                t,
                &few,
                eq("launch_template_id", "lt-0123456789abcdef0"),
                None,
            ),
        ),
        case(
            "launch_template_id = malformed",
            scan(t, &few, eq("launch_template_id", "not-a-template"), None),
        ),
        case(
            "launch_template_name IN (web, hardened)",
            scan(
                t,
                &few,
                in_list("launch_template_name", &["web", "hardened"]),
                None,
            ),
        ),
        case(
            "launch_template_name and launch_template_id of web",
            scan(
                t,
                &few,
                quals(&[
                    eq("launch_template_name", "web"),
                    eq("launch_template_id", &web),
                ]),
                None,
            ),
        ),
        case(
            "title = web (not a key column)",
            scan(
                t,
                &["launch_template_id", "title"],
                eq("title", "web"),
                None,
            ),
        ),
        case("limit 2, us-east-1", scan(t, &few, json!({}), Some(2))).regions(&["us-east-1"]),
        case("limit 3, 3 regions", scan(t, &few, json!({}), Some(3))).count_only(),
        case(
            "region = eu-west-1",
            scan(t, &few, eq("region", "eu-west-1"), None),
        ),
        case(
            "regions [us-east-1, xx-nowhere-1]",
            scan(t, &few, json!({}), None),
        )
        .regions(&["us-east-1", "xx-nowhere-1"]),
        case(
            "throttled until retries run out",
            scan(t, &few, json!({}), None),
        )
        .regions(&["us-east-1"])
        .extra(oracle::FEW_RETRIES)
        .rules(throttled("DescribeLaunchTemplates")),
        case("access denied", scan(t, &few, json!({}), None))
            .regions(&["us-east-1"])
            .rules(denied("DescribeLaunchTemplates")),
        case("a second page", scan(t, &few, json!({}), None))
            .regions(&["us-east-1"])
            .rules(paged("DescribeLaunchTemplates", true)),
        case(
            "the same token again (stop on a duplicate token)",
            scan(t, &few, json!({}), None),
        )
        .regions(&["us-east-1"])
        .rules(paged("DescribeLaunchTemplates", false)),
    ]
}

fn version_cases(seeded: &Value, columns: &[(String, bool)]) -> Vec<Case> {
    let all = names(columns);
    let t = VERSION.name;
    let (web, eu) = (id_of(seeded, "web"), id_of(seeded, "eu-app"));
    let few = [
        "launch_template_id",
        "version_number",
        "default_version",
        "region",
    ];
    let get =
        |id: &str, n: i64| quals(&[eq("launch_template_id", id), eq_int("version_number", n)]);
    let mut out =
        vec![
        case("schema", oracle::schema_step()),
        case("all columns, 3 regions", scan(t, &all, json!({}), None)),
        // What moto does not produce: MetadataOptions.State (AWS answers
        // pending or applied), through the fault proxy's rewrites.
        case(
            "all columns, MetadataOptions with State",
            scan(t, &all, json!({}), None),
        )
        .regions(&["us-east-1"])
        .rules(json!([{"action": "DescribeLaunchTemplateVersions", "rewrite": [
            ["<metadataOptions>", "<metadataOptions><state>applied</state>"],
            ["<state>applied</state>(\\s*<httpTokens>optional)", "<state>pending</state>\\1"]
        ]}])),
        case("get web 2", scan(t, &all, get(&web, 2), None)),
        case("get web 3", scan(t, &all, get(&web, 3), None)),
        case("get eu-app 1", scan(t, &all, get(&eu, 1), None)),
        case(
            "get web 9 (no such version)",
            scan(t, &few, get(&web, 9), None),
        ),
        case(
            "get unknown template",
            scan(t, &few, get("lt-0123456789abcdef0", 1), None),
        ),
        case(
            "launch_template_id = web's",
            scan(t, &few, eq("launch_template_id", &web), None),
        ),
        case(
            "launch_template_name = hardened",
            scan(t, &few, eq("launch_template_name", "hardened"), None),
        ),
        case(
            "launch_template_name = unknown",
            scan(t, &few, eq("launch_template_name", "no-such"), None),
        ),
        case(
            "launch_template_id = malformed",
            scan(t, &few, eq("launch_template_id", "not-a-template"), None),
        )
        .regions(&["us-east-1"])
        .extra(oracle::FEW_RETRIES),
        case(
            "launch_template_name and launch_template_id of web (an error upstream)",
            scan(
                t,
                &few,
                quals(&[
                    eq("launch_template_name", "web"),
                    eq("launch_template_id", &web),
                ]),
                None,
            ),
        )
        .regions(&["us-east-1"]),
        case(
            "launch_template_name hardened and launch_template_id of web",
            scan(
                t,
                &few,
                quals(&[
                    eq("launch_template_name", "hardened"),
                    eq("launch_template_id", &web),
                ]),
                None,
            ),
        )
        .regions(&["us-east-1"]),
        // moto does not apply DescribeLaunchTemplateVersions filters: the
        // calls show what is pushed down, the rows are compared as Postgres
        // keeps them.
        case(
            "default_version = true",
            scan(t, &few, eq_bool("default_version", true), None),
        )
        .postgres_filters(),
        case(
            "default_version = false",
            scan(t, &few, eq_bool("default_version", false), None),
        )
        .postgres_filters(),
        case(
            "default_version <> true (sent as is-default-version=false)",
            scan(
                t,
                &few,
                qual("default_version", "<>", Some(json!({"boolValue": true}))),
                None,
            ),
        )
        .postgres_filters(),
        case(
            "ebs_optimized = true",
            scan(
                t,
                &["launch_template_id", "version_number", "ebs_optimized"],
                eq_bool("ebs_optimized", true),
                None,
            ),
        )
        .postgres_filters(),
        case(
            "instance_type IN (t3.small, c5.xlarge)",
            scan(
                t,
                &["launch_template_id", "version_number", "instance_type"],
                in_list("instance_type", &["t3.small", "c5.xlarge"]),
                None,
            ),
        )
        .regions(&["us-east-1"])
        .postgres_filters(),
    ];
    for (col, v) in [
        ("image_id", "ami-0abcdef1234567890"),
        ("instance_type", "t3.nano"),
        ("kernel_id", "aki-00000001"),
        ("ram_disk_id", "ari-00000001"),
    ] {
        out.push(
            case(
                &format!("{col} = {v}"),
                scan(
                    t,
                    &["launch_template_id", "version_number", col],
                    eq(col, v),
                    None,
                ),
            )
            .postgres_filters(),
        );
    }
    out.extend([
        case(
            "limit 2, web's versions",
            scan(t, &few, eq("launch_template_id", &web), Some(2)),
        )
        .regions(&["us-east-1"]),
        case("limit 1, us-east-1", scan(t, &few, json!({}), Some(1)))
            .regions(&["us-east-1"])
            .count_only()
            .any_calls(),
        case(
            "region = eu-west-1",
            scan(t, &few, eq("region", "eu-west-1"), None),
        ),
        // Upstream's ec2_launch_template_default_version_uses_imdsv2: its
        // columns, `where default_version`.
        case(
            "ec2_launch_template_default_version_uses_imdsv2",
            scan(
                t,
                &[
                    "launch_template_id",
                    "launch_template_data",
                    "title",
                    "default_version",
                    "region",
                    "account_id",
                    "_ctx",
                ],
                eq_bool("default_version", true),
                None,
            ),
        )
        .postgres_filters(),
        case(
            "versions throttled until retries run out",
            scan(t, &few, json!({}), None),
        )
        .regions(&["us-east-1"])
        .extra(oracle::FEW_RETRIES)
        .rules(throttled("DescribeLaunchTemplateVersions")),
        case(
            "access denied on DescribeLaunchTemplates",
            scan(t, &few, json!({}), None),
        )
        .regions(&["us-east-1"])
        .rules(denied("DescribeLaunchTemplates")),
        case("a second page of versions", scan(t, &few, json!({}), None))
            .regions(&["us-east-1"])
            .rules(paged("DescribeLaunchTemplateVersions", true)),
        case(
            "the same versions token again (stop on a duplicate token)",
            scan(t, &few, json!({}), None),
        )
        .regions(&["us-east-1"])
        .rules(paged("DescribeLaunchTemplateVersions", false)),
        case("a second page of templates", scan(t, &few, json!({}), None))
            .regions(&["us-east-1"])
            .rules(paged("DescribeLaunchTemplates", true)),
    ]);
    out
}

/// The statuses upstream's `ec2_launch_template_default_version_uses_imdsv2`
/// gives for the rows of an answer: `{launch_template_id: (status, reason)}`.
fn imds_statuses(answer: &Value) -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = answer["rows"]
        .as_array()
        .expect("the answer has rows")
        .iter()
        .filter(|r| r["default_version"][1] == json!(true))
        .map(|r| {
            let data: Value = match &r["launch_template_data"][1] {
                Value::String(s) => serde_json::from_str(s).unwrap_or(Value::Null),
                v => v.clone(),
            };
            let ok = data["MetadataOptions"]["HttpTokens"] == "required";
            let title = r["title"][1].as_str().unwrap_or_default();
            let reason = if ok {
                format!("{title} configured to use Instance Metadata Service Version 2 (IMDSv2).")
            } else {
                format!(
                    "{title} not configured to use Instance Metadata Service Version 2 (IMDSv2)."
                )
            };
            (
                r["launch_template_id"][1]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                if ok { "ok" } else { "alarm" }.to_string(),
                reason,
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
#[ignore = "needs turbot's Go plugin: run scripts/conformance.sh go-plugin"]
fn go_plugin_and_ours_answer_alike_aws_ec2_launch_template() {
    let b = bed();
    oracle::compare_live(b, &TEMPLATE, TEMPLATE_GOLDEN, |c| {
        template_cases(&b.seeded, c)
    });
}

#[test]
#[ignore = "needs turbot's Go plugin: run scripts/conformance.sh go-plugin"]
fn go_plugin_and_ours_answer_alike_aws_ec2_launch_template_version() {
    let b = bed();
    oracle::compare_live(b, &VERSION, VERSION_GOLDEN, |c| version_cases(&b.seeded, c));
}

#[test]
fn ours_answers_as_the_recorded_go_plugin_aws_ec2_launch_template() {
    let b = bed();
    oracle::compare_golden(b, &TEMPLATE, TEMPLATE_GOLDEN, |c| {
        template_cases(&b.seeded, c)
    });
}

#[test]
fn ours_answers_as_the_recorded_go_plugin_aws_ec2_launch_template_version() {
    let b = bed();
    oracle::compare_golden(b, &VERSION, VERSION_GOLDEN, |c| version_cases(&b.seeded, c));
}

/// The recorded Go plugin's rows give upstream's IMDS control the statuses
/// the seeding implies: a default version requiring IMDSv2 is ok even when
/// a later version does not (hardened), and a required later version does
/// not help a default that allows IMDSv1; no MetadataOptions is an alarm.
#[test]
fn the_recorded_imds_rows_give_upstreams_statuses() {
    let answers = oracle::read_golden(VERSION_GOLDEN, &bed().fingerprint);
    let got = imds_statuses(&answers["ec2_launch_template_default_version_uses_imdsv2"]);
    let s = &bed().seeded;
    let want: Vec<(String, &str)> = vec![
        (id_of(s, "web"), "ok"),
        (id_of(s, "legacy-v1"), "alarm"),
        (id_of(s, "hardened"), "ok"),
        (id_of(s, "bare"), "alarm"),
        (id_of(s, "eu-app"), "ok"),
    ];
    let mut want: Vec<(String, String)> = want
        .into_iter()
        .map(|(i, st)| (i, st.to_string()))
        .collect();
    want.sort();
    let got_status: Vec<(String, String)> = got
        .iter()
        .map(|(i, st, _)| (i.clone(), st.clone()))
        .collect();
    assert_eq!(got_status, want, "{got:#?}");
    // Ours gives the same rows, hence the same statuses and reasons.
    let ours = oracle::ask(
        bed(),
        &oracle::our_plugin(),
        &VERSION,
        &version_cases(s, &[])
            .into_iter()
            .find(|c| c.name == "ec2_launch_template_default_version_uses_imdsv2")
            .unwrap(),
    );
    assert_eq!(imds_statuses(&ours), got);
}

/// Upstream's query `ec2_launch_template_default_version_uses_imdsv2`
/// verbatim (aws_compliance v1.13.0, conformance_pack/ec2.pp), its
/// `${local.common_dimensions_sql}` rendered with all three dimensions.
const IMDS_QUERY: &str = "select
    launch_template_id as resource,
    case
      when launch_template_data -> 'MetadataOptions' ->> 'HttpTokens' = 'required' then 'ok'
      else 'alarm'
    end as status,
    case
      when launch_template_data -> 'MetadataOptions' ->> 'HttpTokens' = 'required' then title || ' configured to use Instance Metadata Service Version 2 (IMDSv2).'
      else title || ' not configured to use Instance Metadata Service Version 2 (IMDSv2).'
    end as reason
    , _ctx ->> 'connection_name' as connection_name, region, account_id
  from
    aws_ec2_launch_template_version
  where
    default_version
  order by resource;";

/// The query on PostgreSQL over the Go plugin's recorded rows and over our
/// live rows (every column, 3 regions, loaded with the FDW's types) gives
/// the same resources, statuses, reasons and dimensions.
#[test]
fn upstreams_imds_query_on_postgres_gives_the_go_plugins_answers() {
    use common::pg::Postgres;
    let answers = oracle::read_golden(VERSION_GOLDEN, &bed().fingerprint);
    let schema = &answers["schema"]["table"];
    let used = [
        "launch_template_id",
        "launch_template_data",
        "title",
        "default_version",
        "region",
        "account_id",
        "_ctx",
    ];
    let columns: Vec<Value> = schema["columns"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| used.contains(&c["name"].as_str().unwrap()))
        .cloned()
        .collect();
    assert_eq!(
        columns.len(),
        used.len(),
        "the recorded schema lacks a column"
    );
    let table_schema = json!({ "columns": columns });
    let as_rows = |answer: &Value| -> Vec<Value> {
        answer["rows"]
            .as_array()
            .expect("an answer with rows")
            .iter()
            .map(|r| {
                let values: serde_json::Map<String, Value> = used
                    .iter()
                    .map(|c| (c.to_string(), r[*c][1].clone()))
                    .collect();
                json!({ "values": values })
            })
            .collect()
    };
    let case = version_cases(&bed().seeded, &oracle::schema_columns(&answers["schema"]))
        .into_iter()
        .find(|c| c.name == "all columns, 3 regions")
        .unwrap();
    let ours = oracle::ask(bed(), &oracle::our_plugin(), &VERSION, &case);
    let pg = Postgres::start();
    pg.load_table(
        "go",
        VERSION.name,
        &table_schema,
        &as_rows(&answers["all columns, 3 regions"]),
    );
    pg.load_table("ours", VERSION.name, &table_schema, &as_rows(&ours));
    let go = pg.query("go", IMDS_QUERY);
    let ours = pg.query("ours", IMDS_QUERY);
    assert_eq!(ours, go);
    assert_eq!(go.len(), 5, "{go:#?}");
    let statuses: Vec<&str> = go.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert!(
        statuses.contains(&"ok") && statuses.contains(&"alarm"),
        "{go:#?}"
    );
}
