//! `check` fetches the tables its controls' SQL names, each once, and no
//! other: counted at the moto emulator's request recorder.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::moto::Moto;
use common::*;
use serde_json::Value;

const MOD: &str = r#"
mod "tables_test" {
  title = "Tables test"
}

benchmark "all" {
  title    = "All"
  children = [control.no_table, control.tokens, control.hop_limit]
}

control "no_table" {
  title    = "Names no table"
  severity = "low"
  sql      = "select 'aws_ec2_instance' as resource, 'ok' as status, 'from nothing' as reason"
}

control "tokens" {
  title    = "Tokens"
  severity = "high"
  sql      = <<-EOQ
    select instance_id as resource,
      case when metadata_options ->> 'HttpTokens' = 'required' then 'ok' else 'alarm' end as status,
      instance_id || ' ' || coalesce(metadata_options ->> 'HttpTokens', 'none') as reason
    from aws_ec2_instance
  EOQ
}

control "hop_limit" {
  title    = "Hop limit"
  severity = "low"
  sql      = <<-EOQ
    select i.instance_id as resource, 'info' as status,
      cast(i.metadata_options ->> 'HttpPutResponseHopLimit' as text) as reason
    from AWS_EC2_INSTANCE as i
  EOQ
}
"#;

fn check(moto: &Moto, mod_dir: &Path, args: &[&str]) -> Output {
    Command::new(target_dir().join("steampipe-plugin-aws"))
        .current_dir(mod_dir)
        .arg("check")
        .args(["--mod-location", &mod_dir.display().to_string()])
        .args(["--endpoint-url", &moto.endpoint])
        .args(["--default-region", "us-east-1", "--regions", "us-east-1"])
        .args(["--output", "json", "--progress=false"])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "AKIDTABLES")
        .env("AWS_SECRET_ACCESS_KEY", "tables-secret")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap()
}

fn results(json: &Value, control: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for g in json["groups"].as_array().into_iter().flatten() {
        for c in g["controls"].as_array().into_iter().flatten() {
            if c["control_id"] == format!("control.{control}") {
                for r in c["results"].as_array().into_iter().flatten() {
                    out.push((
                        r["status"].as_str().unwrap().to_string(),
                        r["reason"].as_str().unwrap().to_string(),
                    ));
                }
            }
        }
    }
    out
}

fn describe_instances_calls(moto: &Moto) -> usize {
    moto.recording()
        .iter()
        .filter(|r| r.action == "DescribeInstances")
        .count()
}

#[test]
fn a_table_two_controls_name_is_fetched_once_and_a_control_naming_none_fetches_nothing() {
    let moto = Moto::start();
    let seeded = moto.seed(&["--no-main", "--big-region", "us-east-1", "--big-count", "4"]);
    let ids: Vec<&str> = seeded["regions"]["us-east-1"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["InstanceId"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 4);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mod.pp"), MOD).unwrap();

    // Two controls read aws_ec2_instance: one scan (one page) for both.
    moto.start_recording();
    let out = check(&moto, dir.path(), &["all"]);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(out.status.code(), Some(1), "{json}");
    assert_eq!(
        describe_instances_calls(&moto),
        1,
        "one scan for both controls"
    );
    let tokens = results(&json, "tokens");
    assert_eq!(tokens.len(), 4);
    for (status, reason) in &tokens {
        let expected = if reason.ends_with(" required") {
            "ok"
        } else {
            "alarm"
        };
        assert_eq!(status, expected, "{reason}");
    }
    assert!(tokens.iter().any(|t| t.0 == "ok") && tokens.iter().any(|t| t.0 == "alarm"));
    // Rows in one fixed order: by region, then instance id.
    let mut sorted: Vec<&str> = ids.clone();
    sorted.sort();
    let alarm_then_ok: Vec<String> = ["alarm", "ok"]
        .iter()
        .flat_map(|s| {
            sorted
                .iter()
                .filter(|id| tokens.iter().any(|t| t.0 == *s && t.1.starts_with(**id)))
                .map(|id| id.to_string())
        })
        .collect();
    let got: Vec<String> = tokens
        .iter()
        .map(|t| t.1.split(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(got, alarm_then_ok, "status order, then instance id order");
    assert_eq!(
        results(&json, "hop_limit").len(),
        4,
        "upper-case table name"
    );

    // A control that names no table (its name only in a string) fetches nothing.
    moto.start_recording();
    let out = check(&moto, dir.path(), &["no_table"]);
    assert_eq!(out.status.code(), Some(0));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let controls = json["controls"].as_array().unwrap();
    assert_eq!(controls[0]["results"][0]["reason"], "from nothing");
    assert_eq!(
        describe_instances_calls(&moto),
        0,
        "no table named, none fetched"
    );
}
