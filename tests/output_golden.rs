//! Every output format of `check`, byte for byte against golden files in
//! `tests/golden/`, for a fixed run (times fixed, so nothing needs masking
//! beyond them). `UPDATE_GOLDEN=1 cargo test --test output_golden` rewrites the
//! files after a deliberate change; review the diff.

use std::collections::BTreeMap;
use std::time::Duration;

use steampipe_plugin_aws::check::model::*;
use steampipe_plugin_aws::check::output::{default_export_name, render, Format};

fn row(status: Status, title: &str, n: u32, region: &str) -> ResultRow {
    let verb = if status == Status::Ok {
        "configured"
    } else {
        "not configured"
    };
    ResultRow {
        reason: format!("{title} {verb} to use Instance Metadata Service Version 2 (IMDSv2)."),
        resource: format!("arn:aws:ec2:{region}:123456789012:instance/i-0000000000000000{n}"),
        status,
        dimensions: vec![
            ("region".into(), region.into()),
            ("account_id".into(), "123456789012".into()),
        ],
    }
}

fn fixed_run() -> CheckRun {
    let tags: BTreeMap<String, String> = [
        ("aws_foundational_security", "true"),
        ("category", "Compliance"),
        ("foundational_security_category", "network_security"),
        ("foundational_security_item_id", "ec2_8"),
        ("plugin", "aws"),
        ("service", "AWS/EC2"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let results = vec![
        row(Status::Alarm, "web-1", 1, "us-east-1"),
        row(Status::Alarm, "legacy \"db\", primary", 2, "eu-west-1"),
        row(Status::Ok, "imdsv2", 3, "us-east-1"),
        row(Status::Ok, "batch <worker> & co", 4, "eu-west-1"),
    ];
    let mut summary = StatusSummary::default();
    results.iter().for_each(|r| summary.count(r.status));
    let control = ControlRun {
        full_name: "aws_compliance.control.foundational_security_ec2_8".into(),
        short_name: "foundational_security_ec2_8".into(),
        title: "8 EC2 instances should use IMDSv2".into(),
        description: "This control checks whether your EC2 instance metadata version is configured with Instance Metadata Service Version 2 (IMDSv2). The control passes if HttpTokens is set to required for IMDSv2. The control fails if HttpTokens is set to optional.".into(),
        documentation: Some("## Description\n\nIMDSv2.\n".into()),
        severity: "high".into(),
        tags: tags.clone(),
        dimension_columns: vec!["region".into(), "account_id".into()],
        results,
        summary,
        run_status: RunStatus::Complete,
        run_error: None,
        duration: Duration::from_millis(120),
    };
    let mut group_tags = tags;
    group_tags.retain(|k, _| {
        ["aws_foundational_security", "category", "plugin", "service"].contains(&k.as_str())
    });
    group_tags.insert("type".into(), "Benchmark".into());
    let ec2 = GroupRun {
        full_name: "aws_compliance.benchmark.foundational_security_ec2".into(),
        short_name: "foundational_security_ec2".into(),
        title: "EC2".into(),
        description: String::new(),
        documentation: None,
        tags: group_tags.clone(),
        children: vec![Node::Control(control)],
    };
    let mut top_tags = group_tags;
    top_tags.insert("service".into(), "AWS".into());
    CheckRun {
        root: Node::Group(GroupRun {
            full_name: "aws_compliance.benchmark.foundational_security".into(),
            short_name: "foundational_security".into(),
            title: "AWS Foundational Security Best Practices".into(),
            description: "The AWS Foundational Security Best Practices standard is a set of controls that detect when your deployed accounts and resources deviate from security best practices.".into(),
            documentation: None,
            tags: top_tags,
            children: vec![Node::Group(ec2)],
        }),
        mod_name: "aws_compliance".into(),
        start_time: "2026-01-01T12:00:00Z".into(),
        end_time: "2026-01-01T12:00:01.5Z".into(),
        variables: BTreeMap::new(),
    }
}

fn golden(name: &str, actual: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 creates it)", path.display()));
    if want != actual {
        let line = want
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        panic!(
            "{name} differs from the golden file at line {}:\n  golden: {:?}\n  actual: {:?}",
            line + 1,
            want.lines().nth(line),
            actual.lines().nth(line)
        );
    }
}

#[test]
fn every_format_matches_its_golden_file() {
    let run = fixed_run();
    for (format, file) in [
        (Format::Text, "benchmark.txt"),
        (Format::Brief, "benchmark.brief.txt"),
        (Format::Csv, "benchmark.csv"),
        (Format::Json, "benchmark.json"),
        (Format::Md, "benchmark.md"),
        (Format::Html, "benchmark.html"),
        (Format::Nunit3, "benchmark.nunit3.xml"),
        (Format::Asff, "benchmark.asff.json"),
        (Format::Snapshot, "benchmark.pps"),
    ] {
        golden(file, &render(&run, format, 100, false));
    }
    assert_eq!(render(&run, Format::None, 100, false), "");
}

#[test]
fn default_export_names_carry_the_target_and_start_time() {
    let run = fixed_run();
    assert_eq!(
        default_export_name(&run, Format::Snapshot),
        "aws_compliance.benchmark.foundational_security.20260101T120000.pps"
    );
    assert_eq!(
        default_export_name(&run, Format::Nunit3),
        "aws_compliance.benchmark.foundational_security.20260101T120000.nunit3.xml"
    );
    assert_eq!(
        default_export_name(&run, Format::Asff),
        "aws_compliance.benchmark.foundational_security.20260101T120000.asff.json"
    );
}
