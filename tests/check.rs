//! `steampipe-plugin-aws check`: the bundled control run by the binary itself
//! against the moto emulator, compared with the same control run on real
//! PostgreSQL over the plugin's rows; Powerpipe's outputs, exports, exit codes
//! and snapshot upload.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::moto::{FaultProxy, Moto};
use common::pg::Postgres;
use common::*;
use serde_json::{json, Value};

struct Fleet {
    _moto: Moto,
    proxy: FaultProxy,
    seeded: Value,
}

fn fleet() -> &'static Fleet {
    static F: OnceLock<Fleet> = OnceLock::new();
    F.get_or_init(|| {
        let moto = Moto::start();
        let seeded = moto.seed(&["--control-cases"]);
        let rules = json!([{"action": "DescribeInstances", "rewrite": [
            ["<state>applied</state>(\\s*<httpTokens>required</httpTokens>\\s*<httpPutResponseHopLimit>7</httpPutResponseHopLimit>)", "<state>pending</state>\\1"],
            ["<metadataOptions>\\s*<state>applied</state>\\s*<httpTokens>optional</httpTokens>\\s*<httpPutResponseHopLimit>9</httpPutResponseHopLimit>.*?</metadataOptions>", ""]
        ]}]);
        let proxy = FaultProxy::start(&moto.endpoint, rules);
        Fleet { _moto: moto, proxy, seeded }
    })
}

fn binary() -> std::path::PathBuf {
    target_dir().join("steampipe-plugin-aws")
}

fn check(dir: &Path, args: &[&str]) -> Output {
    let f = fleet();
    Command::new(binary())
        .current_dir(dir)
        .arg("check")
        .args([
            "--endpoint-url",
            &f.proxy.endpoint,
            "--default-region",
            "us-east-1",
            "--regions",
            "us-east-1,eu-west-1",
        ])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "AKIDCHECK")
        .env("AWS_SECRET_ACCESS_KEY", "check-secret")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("POWERPIPE_DISPLAY_WIDTH", "100")
        .env_remove("AWS_PROFILE")
        .env_remove("PP_VAR_common_dimensions")
        .env_remove("PP_VAR_tag_dimensions")
        .env_remove("PIPES_TOKEN")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn results_of(json: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for c in json["controls"].as_array().into_iter().flatten() {
        out.extend(c["results"].as_array().cloned().unwrap_or_default());
    }
    for g in json["groups"].as_array().into_iter().flatten() {
        out.extend(results_of(g));
    }
    out
}

#[test]
fn check_gives_the_same_results_as_the_control_on_postgres() {
    let f = fleet();
    let dir = tempfile::tempdir().unwrap();
    let out = check(
        dir.path(),
        &["foundational_security_ec2_8", "--output", "json"],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "alarms give exit code 1: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let from_check: BTreeSet<(String, String, String, String)> = results_of(&json)
        .iter()
        .map(|r| {
            let dims: Vec<String> = r["dimensions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| {
                    format!(
                        "{}={}",
                        d["key"].as_str().unwrap(),
                        d["value"].as_str().unwrap()
                    )
                })
                .collect();
            (
                r["resource"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
                r["reason"].as_str().unwrap().to_string(),
                dims.join(","),
            )
        })
        .collect();

    // The same control, Powerpipe-style, on PostgreSQL over the plugin's rows.
    let config = format!(
        "access_key = \"AKIDCHECKPG\"\ndefault_region = \"us-east-1\"\nendpoint_url = \"{}\"\nregions = [\"us-east-1\", \"eu-west-1\"]\nsecret_key = \"x\"\n",
        f.proxy.endpoint
    );
    let mut sc = scenario(
        vec![
            json!({"connection": "aws", "plugin": "aws", "pluginShortName": "aws", "config": config}),
        ],
        vec![json!({"op": "get_schema", "connection": "aws"})],
    );
    sc["plugin"] = json!(binary());
    sc["env"] = json!({"AWS_EC2_METADATA_DISABLED": "true"});
    let ev = run(&sc);
    let table =
        one(&ev, "schema", Some(0))["response"]["schema"]["schema"]["aws_ec2_instance"].clone();
    let cols: Vec<String> = table["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    let cols: Vec<&str> = cols.iter().map(String::as_str).collect();
    sc["steps"] = json!([{"op": "execute", "request": execute("aws_ec2_instance", "aws", &cols, json!({}), None)}]);
    let ev = run(&sc);
    let pg = Postgres::start();
    pg.load_table("aws", "aws_ec2_instance", &table, &rows(&ev, 0));
    let sql = std::fs::read_to_string(root().join("queries/ec2_instance_uses_imdsv2.sql")).unwrap();
    let from_pg: BTreeSet<(String, String, String, String)> = pg
        .query("aws, public", &sql)
        .iter()
        .map(|r| {
            let dims = format!(
                "region={},account_id={}",
                r["region"].as_str().unwrap(),
                r["account_id"].as_str().unwrap()
            );
            (
                r["resource"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
                r["reason"].as_str().unwrap().to_string(),
                dims,
            )
        })
        .collect();
    assert_eq!(
        from_check, from_pg,
        "SQLite in `check` and PostgreSQL agree row for row"
    );
    let instances: usize = f.seeded["regions"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_array().unwrap().len())
        .sum();
    assert_eq!(from_check.len(), instances);
    assert!(from_check.iter().any(|r| r.1 == "ok") && from_check.iter().any(|r| r.1 == "alarm"));
    // Powerpipe's JSON shape and order (alarms before oks).
    let control = &json["controls"][0];
    assert_eq!(control["control_id"], "control.foundational_security_ec2_8");
    assert_eq!(control["severity"], "high");
    let statuses: Vec<&str> = control["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    let mut sorted = statuses.clone();
    sorted.sort_by_key(|s| {
        ["error", "alarm", "info", "ok", "skip"]
            .iter()
            .position(|x| x == s)
    });
    assert_eq!(statuses, sorted);
}

#[test]
fn the_whole_benchmark_runs_by_default_with_text_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = check(dir.path(), &["--progress=false"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("AWS Foundational Security Best Practices"),
        "{text}"
    );
    assert!(text.contains("8 EC2 instances should use IMDSv2"), "{text}");
    assert!(
        text.contains("ALARM: web-1 not configured") && text.contains("OK   : imdsv2 configured"),
        "{text}"
    );
    assert!(
        text.contains("HIGH 8 / 13") || text.contains("8 / 13"),
        "{text}"
    );
    assert!(text.contains("Summary"), "{text}");
    let brief = stdout(&check(dir.path(), &["--output", "brief"]));
    assert!(
        brief.contains("ALARM:") && !brief.contains("OK: "),
        "{brief}"
    );
}

#[test]
fn dimensions_follow_var_and_several_connections_each_become_one() {
    let f = fleet();
    let dir = tempfile::tempdir().unwrap();
    let spc = dir.path().join("aws.spc");
    std::fs::write(
        &spc,
        format!(
            "connection \"aws_a\" {{\n  plugin = \"aws\"\n  regions = [\"us-east-1\"]\n  endpoint_url = \"{0}\"\n  access_key = \"AKIDA\"\n  secret_key = \"a\"\n}}\n\
             connection \"aws_b\" {{\n  plugin = \"aws\"\n  regions = [\"eu-west-1\"]\n  endpoint_url = \"{0}\"\n  access_key = \"AKIDB\"\n  secret_key = \"b\"\n}}\n\
             connection \"all\" {{\n  plugin = \"aws\"\n  type = \"aggregator\"\n  connections = [\"aws_*\"]\n}}\n",
            f.proxy.endpoint
        ),
    )
    .unwrap();
    let out = Command::new(binary())
        .current_dir(dir.path())
        .args([
            "check",
            "control.foundational_security_ec2_8",
            "--output",
            "json",
            "--config",
        ])
        .arg(&spc)
        .args([
            "--var",
            r#"common_dimensions=["account_id","connection_name","region"]"#,
            "--var",
            r#"tag_dimensions=["Environment","Owner"]"#,
        ])
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let results = results_of(&json);
    let keys: Vec<&str> = results[0]["dimensions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "Environment",
            "Owner",
            "connection_name",
            "region",
            "account_id"
        ]
    );
    let pairs: BTreeSet<(String, String)> = results
        .iter()
        .map(|r| {
            let d = r["dimensions"].as_array().unwrap();
            let get = |k: &str| {
                d.iter().find(|x| x["key"] == k).unwrap()["value"]
                    .as_str()
                    .unwrap()
                    .to_string()
            };
            (get("connection_name"), get("region"))
        })
        .collect();
    assert_eq!(
        pairs,
        BTreeSet::from([
            ("aws_a".to_string(), "us-east-1".to_string()),
            ("aws_b".to_string(), "eu-west-1".to_string())
        ])
    );
    assert!(results.iter().any(|r| r["dimensions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["key"] == "Owner" && d["value"] == "alice")));
}

#[test]
fn exports_go_to_powerpipes_default_file_names_and_named_files() {
    let dir = tempfile::tempdir().unwrap();
    // Exports by format name get Powerpipe's default file names.
    let out = check(
        dir.path(),
        &[
            "foundational_security_ec2_8",
            "--output",
            "none",
            "--export",
            "csv",
            "--export",
            "snapshot",
            "--export",
            "asff",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).is_empty(), "--output none prints nothing");
    // Exports by file name: the last extension picks the format, as in
    // Powerpipe (so `.asff.json` is json); names and formats do not mix.
    let named = [
        "--export",
        "report.md",
        "--export",
        "findings.asff.json",
        "--export",
        "results.xml",
    ];
    let mut args = vec!["foundational_security_ec2_8", "--output", "none"];
    args.extend(named);
    assert_eq!(check(dir.path(), &args).status.code(), Some(1));
    args.extend(["--export", "csv"]);
    let mixed = check(dir.path(), &args);
    assert_eq!(mixed.status.code(), Some(250));
    assert!(
        String::from_utf8_lossy(&mixed.stderr).contains("combination of named and unnamed exports")
    );
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let csv = names
        .iter()
        .find(|n| {
            n.starts_with("aws_compliance.control.foundational_security_ec2_8.")
                && n.ends_with(".csv")
        })
        .unwrap_or_else(|| panic!("{names:?}"));
    let stamp = csv
        .trim_start_matches("aws_compliance.control.foundational_security_ec2_8.")
        .trim_end_matches(".csv");
    assert_eq!(stamp.len(), 15, "YYYYMMDDTHHMMSS: {stamp}");
    assert!(names.iter().any(|n| n.ends_with(".pps")));
    let csv_text = std::fs::read_to_string(dir.path().join(csv)).unwrap();
    assert!(csv_text.starts_with("group_id,title,description,control_id,control_title,control_description,reason,resource,status,severity"), "{csv_text}");
    let pps = names.iter().find(|n| n.ends_with(".pps")).unwrap();
    let snap: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(pps)).unwrap()).unwrap();
    let keys: Vec<&String> = snap.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "end_time",
            "inputs",
            "layout",
            "panels",
            "schema_version",
            "start_time",
            "variables"
        ]
    );
    let panel = &snap["panels"]["aws_compliance.control.foundational_security_ec2_8"];
    assert_eq!(panel["panel_type"], "control");
    assert!(panel.get("sql").is_none());
    assert!(std::fs::read_to_string(dir.path().join("report.md"))
        .unwrap()
        .contains("IMDSv2"));
    let asff_name = names
        .iter()
        .find(|n| n.starts_with("aws_compliance.control.") && n.ends_with(".asff.json"))
        .unwrap();
    let asff: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(asff_name)).unwrap())
            .unwrap();
    assert!(asff
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["Compliance"]["Status"] == "FAILED"));
    let json: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("findings.asff.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        json["group_id"], "root_result_group",
        "x.asff.json is written as json"
    );
    assert!(std::fs::read_to_string(dir.path().join("results.xml"))
        .unwrap()
        .contains("<test-run"));
}

#[test]
fn exit_codes_are_powerpipes() {
    let dir = tempfile::tempdir().unwrap();
    // 255: flags the command line rejects.
    assert_eq!(
        check(dir.path(), &["--output", "bogus"]).status.code(),
        Some(255)
    );
    assert_eq!(
        check(dir.path(), &["--no-such-flag"]).status.code(),
        Some(255)
    );
    // 250: targets, variables and exports Powerpipe's workspace load rejects.
    assert_eq!(
        check(dir.path(), &["no_such_control"]).status.code(),
        Some(250)
    );
    assert_eq!(
        check(dir.path(), &["--var", "common_dimensions=3"])
            .status
            .code(),
        Some(250)
    );
    assert_eq!(
        check(dir.path(), &["--export", "bogus"]).status.code(),
        Some(250)
    );
    // 254: Turbot Pipes without a token.
    assert_eq!(check(dir.path(), &["--snapshot"]).status.code(), Some(254));
    // 250: the mod cannot be loaded.
    let out = check(dir.path(), &["--mod-location", "/nonexistent/mod"]);
    assert_eq!(out.status.code(), Some(250));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/mod"));
    // 2: the data cannot be fetched; the control reports the error.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new(binary())
        .current_dir(dir.path())
        .args([
            "check",
            "--output",
            "json",
            "--endpoint-url",
            &format!("http://127.0.0.1:{port}"),
            "--default-region",
            "eu-west-1",
        ])
        .env("AWS_ACCESS_KEY_ID", "AKIDX")
        .env("AWS_SECRET_ACCESS_KEY", "x")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    assert!(text.contains("GetCallerIdentity in eu-west-1"), "{text}");
    // 0: no alarms (a region with no instances).
    let out = Command::new(binary())
        .current_dir(dir.path())
        .args([
            "check",
            "--output",
            "json",
            "--endpoint-url",
            &fleet().proxy.endpoint,
            "--default-region",
            "us-east-1",
            "--regions",
            "ap-south-1",
        ])
        .env("AWS_ACCESS_KEY_ID", "AKIDZERO")
        .env("AWS_SECRET_ACCESS_KEY", "x")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "no instances, no alarms: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn snapshots_upload_to_the_pipes_api_with_the_token() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for answer in [404, 200] {
            let (mut s, _) = listener.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            let mut headers = Vec::new();
            let mut len = 0;
            loop {
                let mut h = String::new();
                r.read_line(&mut h).unwrap();
                if h.trim().is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
                headers.push(h.trim().to_string());
            }
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            seen.push((
                line.trim().to_string(),
                headers,
                String::from_utf8(body).unwrap(),
            ));
            let payload = if answer == 200 {
                r#"{"id":"snap_42","state":"available"}"#
            } else {
                r#"{"error":"not found"}"#
            };
            write!(s, "HTTP/1.1 {answer} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{payload}", payload.len()).unwrap();
        }
        seen
    });
    let dir = tempfile::tempdir().unwrap();
    let out = check(
        dir.path(),
        &[
            "foundational_security_ec2_8",
            "--output",
            "none",
            "--share",
            "--snapshot-location",
            "acme/prod",
            "--snapshot-tag",
            "env=test",
            "--pipes-host",
            &format!("http://127.0.0.1:{port}"),
            "--pipes-token",
            "tpt_secret_token",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "Snapshot uploaded to http://127.0.0.1:{port}/org/acme/workspace/prod/snapshot/snap_42"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("tpt_secret_token"));
    let seen = server.join().unwrap();
    assert_eq!(
        seen[0].0,
        "POST /api/v0/user/acme/workspace/prod/snapshot HTTP/1.1"
    );
    assert_eq!(
        seen[1].0,
        "POST /api/v0/org/acme/workspace/prod/snapshot HTTP/1.1"
    );
    assert!(
        seen[1]
            .1
            .iter()
            .any(|h| h == "authorization: Bearer tpt_secret_token"
                || h == "Authorization: Bearer tpt_secret_token"),
        "{:?}",
        seen[1].1
    );
    let body: Value = serde_json::from_str(&seen[1].2).unwrap();
    assert_eq!(body["visibility"], "anyone_with_link");
    assert_eq!(body["tags"], json!({"env": "test"}));
    assert_eq!(body["title"], "8 EC2 instances should use IMDSv2");
    assert_eq!(
        body["data"]["layout"]["name"],
        "aws_compliance.control.foundational_security_ec2_8"
    );
    // Without a token: refused before anything runs.
    let out = check(
        dir.path(),
        &["--snapshot", "--snapshot-location", "acme/prod"],
    );
    assert_eq!(out.status.code(), Some(254));
}

#[test]
fn a_progress_line_shows_on_a_terminal_and_not_otherwise() {
    let f = fleet();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("tty.log");
    // util-linux `script` gives the command a pseudo-terminal, as a user's shell would.
    let cmd = format!(
        "{} check foundational_security_ec2_8 --output none --endpoint-url {} --default-region us-east-1 --regions us-east-1",
        binary().display(),
        f.proxy.endpoint
    );
    let st = Command::new("script")
        .args(["-q", "-e", "-c", &cmd])
        .arg(&log)
        .env("AWS_ACCESS_KEY_ID", "AKIDTTY")
        .env("AWS_SECRET_ACCESS_KEY", "x")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("util-linux script (bsdutils) is needed for this test");
    let typed =
        std::fs::read_to_string(&log).unwrap_or_default() + &String::from_utf8_lossy(&st.stdout);
    assert!(
        typed.contains("Running 1 control"),
        "no progress line on a terminal: {typed:?}"
    );
    // Not a terminal: nothing but the result on stderr.
    let out = check(
        dir.path(),
        &["foundational_security_ec2_8", "--output", "none"],
    );
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("Running"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
