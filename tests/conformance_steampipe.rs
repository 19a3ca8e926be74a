//! The recorded run of `scripts/conformance/steampipe.sh` (issue 11 item 4):
//! Powerpipe's `control run` through the real Steampipe service (CLI v2.3.6,
//! steampipe-postgres-fdw v2.1.5, Debian's PostgreSQL 15) with this plugin
//! installed as turbot's `aws`, kept normalised in
//! tests/golden/conformance/steampipe.txt.
//!
//! The CLI and the FDW cannot be built in CI (their sources are not on the Go
//! module proxy), so this default test keeps the record true of today's
//! code: `check` over the same moto fleet must give, result by result, what
//! Powerpipe gave through the real service. Regenerate the record with
//! `scripts/conformance.sh steampipe`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use common::moto::Moto;
use common::*;
use serde_json::Value;

const TRANSCRIPT: &str = "tests/golden/conformance/steampipe.txt";
const POWERPIPE_BLOCK: &str =
    "## powerpipe control run aws_compliance.control.foundational_security_ec2_8 (results sorted)\n";

/// The recorded Powerpipe results (one line each) and its summary.
fn recorded() -> (BTreeSet<String>, Value) {
    let path = root().join(TRANSCRIPT);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run scripts/conformance.sh steampipe (needs the Steampipe CLI and FDW)",
            path.display()
        )
    });
    assert!(
        text.trim_end().ends_with("## result\nPASS"),
        "{TRANSCRIPT} records a failed run; rerun scripts/conformance.sh steampipe"
    );
    let block = text
        .split(POWERPIPE_BLOCK)
        .nth(1)
        .unwrap_or_else(|| panic!("{TRANSCRIPT} has no Powerpipe results block"));
    let mut lines = BTreeSet::new();
    for line in block.lines() {
        if let Some(summary) = line.strip_prefix("summary: ") {
            return (lines, serde_json::from_str(summary).expect("summary JSON"));
        }
        lines.insert(line.to_string());
    }
    panic!("{TRANSCRIPT}: the Powerpipe block has no summary line")
}

/// What the script calls each instance in the transcript: its fleet case, and
/// its Name tag where a case repeats.
fn aliases(seeded: &Value) -> BTreeMap<String, String> {
    let extra = seeded["extra"].as_object().expect("extra");
    let case = |iid: &str| extra[iid]["case"].as_str().unwrap().to_string();
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for v in extra.values() {
        *count.entry(v["case"].as_str().unwrap().into()).or_default() += 1;
    }
    let mut out = BTreeMap::new();
    for insts in seeded["regions"].as_object().unwrap().values() {
        for i in insts.as_array().unwrap() {
            let iid = i["InstanceId"].as_str().unwrap();
            let c = case(iid);
            let alias = if count[&c] > 1 {
                let name = i["Tags"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|t| t["Key"] == "Name")
                    .and_then(|t| t["Value"].as_str())
                    .unwrap_or("None");
                format!("<{c}:{name}>")
            } else {
                format!("<{c}>")
            };
            out.insert(iid.to_string(), alias);
        }
    }
    out
}

fn results_of(json: &Value, out: &mut Vec<Value>) {
    for c in json["controls"].as_array().into_iter().flatten() {
        out.extend(c["results"].as_array().cloned().unwrap_or_default());
    }
    for g in json["groups"].as_array().into_iter().flatten() {
        results_of(g, out);
    }
}

#[test]
fn check_gives_what_powerpipe_gave_through_the_real_steampipe_service() {
    let (want, want_summary) = recorded();
    let moto = Moto::start();
    let seeded = moto.seed(&[]);
    let alias = aliases(&seeded);
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(target_dir().join("steampipe-plugin-aws"))
        .current_dir(dir.path())
        .args([
            "check",
            "foundational_security_ec2_8",
            "--endpoint-url",
            &moto.endpoint,
            "--default-region",
            "us-east-1",
            "--regions",
            "us-east-1,eu-west-1",
            "--output",
            "json",
        ])
        .env("AWS_ACCESS_KEY_ID", "AKIDCONFORMANCE")
        .env("AWS_SECRET_ACCESS_KEY", "conformance-secret")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("PP_VAR_common_dimensions")
        .env_remove("PP_VAR_tag_dimensions")
        .env_remove("PIPES_TOKEN")
        .output()
        .unwrap();
    // Powerpipe exited 1 (alarms) in the recorded run.
    assert_eq!(
        out.status.code(),
        Some(1),
        "check: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).expect("check --output json");
    let mut results = Vec::new();
    results_of(&json, &mut results);
    let mut ids: Vec<&String> = alias.keys().collect();
    ids.sort_by_key(|k| std::cmp::Reverse(k.len()));
    let got: BTreeSet<String> = results
        .iter()
        .map(|r| {
            let dims: Vec<String> = r["dimensions"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|d| {
                    format!(
                        "{}={}",
                        d["key"].as_str().unwrap(),
                        d["value"].as_str().unwrap()
                    )
                })
                .collect();
            let mut line = format!(
                "{:5} {} : {} [{}]",
                r["status"].as_str().unwrap(),
                r["resource"].as_str().unwrap(),
                r["reason"].as_str().unwrap(),
                dims.join(",")
            );
            for id in &ids {
                line = line.replace(id.as_str(), &alias[id.as_str()]);
            }
            line
        })
        .collect();
    assert_eq!(
        got.iter().collect::<Vec<_>>(),
        want.iter().collect::<Vec<_>>(),
        "check (left) differs from Powerpipe through the real Steampipe service (right, {TRANSCRIPT})"
    );
    assert_eq!(json["summary"]["status"], want_summary, "summary");
}
