//! An aggregator over connections in different accounts, with credentials
//! as users have them in an AWS config file (issue 12 part 3, issue 17):
//! one connection whose profile is a `credential_process`, two whose
//! profiles assume a role in another account (`role_arn` + `source_profile`,
//! one sourced from static keys, one from the `credential_process`). moto's
//! STS AssumeRole into account N returns credentials that act in account N,
//! so each connection sees its own account's instances and reports its own
//! `account_id`.
//!
//! Then, for each operator the SDK offers on connection key columns (`=`,
//! `<>`, `IN`, `LIKE`, `ILIKE`, `NOT LIKE`, `NOT ILIKE`), on `account_id`
//! and on `sp_connection_name`: the connections the qual excludes make no
//! AWS call at all (moto's request recording, read between scans by the
//! host), and the answer is the unpruned answer filtered by the qual. Each
//! connection queries its own region, so a recorded call names its
//! connection by its SigV4 region.

mod common;

use std::collections::BTreeSet;

use common::moto::{python, Moto, Recorded};
use common::*;
use serde_json::{json, Value};

/// (connection, profile, account, region, instances)
const CONNECTIONS: [(&str, &str, &str, &str, usize); 3] = [
    ("aws_proc", "proc", "123456789012", "us-east-1", 2),
    ("aws_role_keys", "role_keys", "111111111111", "eu-west-1", 3),
    (
        "aws_role_proc",
        "role_proc",
        "222222222222",
        "ap-southeast-2",
        1,
    ),
];

/// The AWS config file: a base profile with keys, a `credential_process`
/// profile, and two profiles that assume roles in other accounts.
fn aws_config(dir: &std::path::Path) -> std::path::PathBuf {
    let process = dir.join("credentials.sh");
    std::fs::write(
        &process,
        "#!/bin/sh\necho '{\"Version\": 1, \"AccessKeyId\": \"AKIDPROCESS\", \"SecretAccessKey\": \"process-secret\"}'\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&process, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = dir.join("config");
    std::fs::write(
        &config,
        format!(
            "[profile base]\naws_access_key_id = AKIDBASEKEYS\naws_secret_access_key = base-secret\n\n\
             [profile proc]\ncredential_process = {}\n\n\
             [profile role_keys]\nrole_arn = arn:aws:iam::111111111111:role/steampipe\nsource_profile = base\n\n\
             [profile role_proc]\nrole_arn = arn:aws:iam::222222222222:role/steampipe\nsource_profile = proc\nrole_session_name = steampipe-test\n",
            process.display()
        ),
    )
    .unwrap();
    config
}

/// Seeds each account's instances (with AssumeRole credentials for the
/// other accounts); returns (account, instance ids).
fn seed(moto: &Moto) -> Vec<(String, BTreeSet<String>)> {
    let out = tempfile::NamedTempFile::new().unwrap();
    let specs: Vec<String> = CONNECTIONS
        .iter()
        .map(|(_, _, account, region, n)| format!("{account}:{region}:{n}"))
        .collect();
    let status = std::process::Command::new(python())
        .arg(root().join("tests/fixtures/accounts.py"))
        .arg(&moto.endpoint)
        .arg(out.path())
        .args(&specs)
        .status()
        .unwrap();
    assert!(status.success(), "seeding the accounts failed");
    let seeded: Value = serde_json::from_slice(&std::fs::read(out.path()).unwrap()).unwrap();
    CONNECTIONS
        .iter()
        .map(|(_, _, account, ..)| {
            let ids = seeded[account]["instances"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect();
            (account.to_string(), ids)
        })
        .collect()
}

/// A scan of the aggregator, cache off, with `quals`.
fn scan(quals: Value) -> Value {
    let mut req = execute(
        "aws_ec2_instance",
        "aws_all",
        &["instance_id", "account_id", "sp_connection_name"],
        quals,
        None,
    );
    let data: serde_json::Map<String, Value> = CONNECTIONS
        .iter()
        .map(|c| (c.0.to_string(), json!({"cacheEnabled": false})))
        .collect();
    req["executeConnectionData"] = Value::Object(data);
    json!({"op": "execute", "request": req})
}

/// Postgres's LIKE (`%`, `_`, no escapes), case-insensitive for ILIKE.
fn like(pattern: &str, value: &str, insensitive: bool) -> bool {
    let mut re = String::from("^");
    for c in pattern.chars() {
        match c {
            '%' => re.push_str(".*"),
            '_' => re.push('.'),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    regex::RegexBuilder::new(&re)
        .case_insensitive(insensitive)
        .build()
        .unwrap()
        .is_match(value)
}

/// Whether a value passes `op value` as Postgres evaluates it.
fn passes(op: &str, arg: &Value, v: &str) -> bool {
    match (op, arg) {
        ("=", Value::Array(list)) => list.iter().any(|x| x == v),
        ("=", x) => x == v,
        ("<>", x) => x != v,
        ("~~", x) => like(x.as_str().unwrap(), v, false),
        ("~~*", x) => like(x.as_str().unwrap(), v, true),
        ("!~~", x) => !like(x.as_str().unwrap(), v, false),
        ("!~~*", x) => !like(x.as_str().unwrap(), v, true),
        _ => panic!("operator {op}"),
    }
}

fn qual_of(column: &str, op: &str, arg: &Value) -> Value {
    let value = match arg {
        Value::Array(list) => {
            let values: Vec<Value> = list.iter().map(|v| json!({"stringValue": v})).collect();
            json!({"listValue": {"values": values}})
        }
        v => json!({ "stringValue": v }),
    };
    qual(column, op, Some(value))
}

/// (instance id, account id, connection) of each row of a step, sorted.
fn answer(ev: &[Value], step: usize) -> Vec<(String, String, String)> {
    let end = one(ev, "execute_end", Some(step));
    assert_eq!(end["end"], "eof", "{end}");
    let mut rows: Vec<(String, String, String)> = rows(ev, step)
        .iter()
        .map(|r| {
            let s = |c: &str| r["values"][c].as_str().unwrap_or("").to_string();
            (s("instance_id"), s("account_id"), s("sp_connection_name"))
        })
        .collect();
    rows.sort();
    rows
}

/// The requests recorded in an `http` step's download.
fn recorded(ev: &[Value], step: usize) -> Vec<Recorded> {
    let e = one(ev, "http", Some(step));
    assert_eq!(e["status"], 200, "{e}");
    Recorded::from_recording(e["body"].as_str().unwrap()).expect("a complete recording")
}

fn recording_steps(moto: &Moto) -> [Value; 2] {
    [
        json!({"op": "http", "method": "POST", "url": moto.api_url("/moto-api/recorder/reset-recording")}),
        json!({"op": "http", "method": "POST", "url": moto.api_url("/moto-api/recorder/start-recording")}),
    ]
}

#[test]
fn an_aggregator_of_assumed_role_accounts_prunes_connections_by_account_and_name() {
    let moto = Moto::start();
    let seeded = seed(&moto);
    let dir = tempfile::tempdir().unwrap();
    let config = aws_config(dir.path());

    let mut connections: Vec<Value> = CONNECTIONS
        .iter()
        .map(|(name, profile, _, region, _)| {
            aws_connection(
                name,
                &format!(
                    "profile = \"{profile}\"\nendpoint_url = \"{}\"\ndefault_region = \"{region}\"\nregions = [\"{region}\"]\n",
                    moto.endpoint
                ),
            )
        })
        .collect();
    let mut agg = aggregator("aws_all", &CONNECTIONS.map(|c| c.0));
    agg["plugin"] = json!("hub.steampipe.io/plugins/turbot/aws@latest");
    connections.push(agg);

    let an = |s: &str| json!(s);
    let list = |v: &[&str]| json!(v);
    let cases: Vec<(&str, &str, Value)> = vec![
        ("account_id", "=", an("111111111111")),
        ("account_id", "<>", an("111111111111")),
        ("account_id", "=", list(&["123456789012", "222222222222"])),
        ("account_id", "~~", an("1111%")),
        ("account_id", "~~*", an("%2222_")),
        ("account_id", "!~~", an("1%")),
        ("account_id", "!~~*", an("2%")),
        ("sp_connection_name", "=", an("aws_role_proc")),
        ("sp_connection_name", "<>", an("aws_role_proc")),
        (
            "sp_connection_name",
            "=",
            list(&["aws_proc", "aws_role_keys"]),
        ),
        ("sp_connection_name", "~~", an("aws_role%")),
        ("sp_connection_name", "~~*", an("AWS_PROC")),
        ("sp_connection_name", "!~~", an("%keys")),
        ("sp_connection_name", "!~~*", an("AWS_ROLE_%")),
    ];

    // Step 0-1: recording on; 2: the unpruned scan (it also learns each
    // connection's account); 3: its recording. Then per case: reset, start,
    // the pruned scan, the download.
    let download = json!({"op": "http", "method": "GET", "url": moto.api_url("/moto-api/recorder/download-recording")});
    let mut steps: Vec<Value> = recording_steps(&moto).into();
    steps.push(scan(json!({})));
    steps.push(download.clone());
    for (column, op, arg) in &cases {
        steps.extend(recording_steps(&moto));
        steps.push(scan(qual_of(column, op, arg)));
        steps.push(download.clone());
    }
    let sc = json!({
        "plugin": target_dir().join("steampipe-plugin-aws"),
        "env": {
            "AWS_CONFIG_FILE": config,
            "AWS_SHARED_CREDENTIALS_FILE": dir.path().join("no-credentials"),
            "AWS_ACCESS_KEY_ID": "",
            "AWS_SECRET_ACCESS_KEY": "",
            "AWS_EC2_METADATA_DISABLED": "true",
        },
        "connections": connections,
        "steps": steps,
    });
    let ev = run(&sc);
    let cold_ev = run(&cold_scenario(&sc, &moto));

    // Each connection reports its own account, with that account's instances.
    let all = answer(&ev, 2);
    for ((name, _, account, ..), (seeded_account, ids)) in CONNECTIONS.iter().zip(&seeded) {
        assert_eq!(account, seeded_account);
        let got: BTreeSet<String> = all
            .iter()
            .filter(|r| r.2 == *name)
            .map(|r| {
                assert_eq!(&r.1, account, "{name} reports {r:?}");
                r.0.clone()
            })
            .collect();
        assert_eq!(&got, ids, "{name}: the instances of account {account}");
    }
    assert_eq!(all.len(), 2 + 3 + 1);
    // The roles were assumed at the emulator, each with its source
    // profile's credentials: static keys, and the credential_process's.
    let calls = recorded(&ev, 3);
    let assumed: BTreeSet<(String, String)> = calls
        .iter()
        .filter(|r| r.action == "AssumeRole")
        .map(|r| {
            (
                r.param("RoleArn").unwrap_or("").to_string(),
                r.access_key.clone(),
            )
        })
        .collect();
    assert_eq!(
        assumed,
        BTreeSet::from([
            (
                "arn:aws:iam::111111111111:role/steampipe".to_string(),
                "AKIDBASEKEYS".to_string()
            ),
            (
                "arn:aws:iam::222222222222:role/steampipe".to_string(),
                "AKIDPROCESS".to_string()
            ),
        ]),
        "{calls:?}"
    );

    for (i, (column, op, arg)) in cases.iter().enumerate() {
        let step = 4 + i * 4 + 2;
        let what = format!("{column} {op} {arg}");
        let kept: BTreeSet<&str> = CONNECTIONS
            .iter()
            .filter(|(name, _, account, ..)| {
                let v = if *column == "account_id" {
                    account
                } else {
                    name
                };
                passes(op, arg, v)
            })
            .map(|c| c.0)
            .collect();
        assert!(
            !kept.is_empty() && kept.len() < CONNECTIONS.len(),
            "{what}: a case must keep some connections and exclude others"
        );
        let want: Vec<_> = all
            .iter()
            .filter(|r| {
                let v = if *column == "account_id" { &r.1 } else { &r.2 };
                passes(op, arg, v)
            })
            .cloned()
            .collect();
        assert_eq!(
            answer(&ev, step),
            want,
            "{what}: the unpruned answer, filtered"
        );
        // The scan metadata: one entry per scanned connection, none for
        // the excluded ones.
        let end = one(&ev, "execute_end", Some(step));
        let scanned: BTreeSet<&str> = end["metadata"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, m)| m["rows_fetched"].as_i64() > Some(0))
            .map(|(c, _)| c.as_str())
            .collect();
        assert_eq!(scanned, kept, "{what}: scan metadata {}", end["metadata"]);
        let calls = recorded(&ev, step + 1);
        for (name, _, _, region, _) in CONNECTIONS {
            let made: Vec<&str> = calls
                .iter()
                .filter(|r| r.region == region)
                .map(|r| r.action.as_str())
                .collect();
            if kept.contains(name) {
                assert!(
                    made.contains(&"DescribeInstances"),
                    "{what}: {name} was scanned: {made:?}"
                );
            } else {
                assert!(
                    made.is_empty(),
                    "{what}: {name} is excluded but called {made:?}"
                );
            }
        }
    }

    // A fresh plugin, `account_id = '111111111111'` first: the accounts of
    // the role connections are read from their role ARNs, so the excluded
    // role connection makes no call at all; the credential_process one,
    // whose account only STS knows, makes one GetCallerIdentity and no scan.
    let want: Vec<_> = all
        .iter()
        .filter(|r| r.1 == "111111111111")
        .cloned()
        .collect();
    assert_eq!(answer(&cold_ev, 2), want, "cold: the filtered answer");
    let calls = recorded(&cold_ev, 3);
    let made = |region: &str| -> Vec<&str> {
        calls
            .iter()
            .filter(|r| r.region == region)
            .map(|r| r.action.as_str())
            .collect()
    };
    assert!(
        made("eu-west-1").contains(&"DescribeInstances"),
        "{calls:?}"
    );
    assert_eq!(made("ap-southeast-2"), Vec::<&str>::new(), "{calls:?}");
    assert_eq!(made("us-east-1"), ["GetCallerIdentity"], "{calls:?}");
}

/// The same plugin setup, fresh: recording on, one pruned scan by account,
/// the recording.
fn cold_scenario(warm: &Value, moto: &Moto) -> Value {
    let mut sc = warm.clone();
    let mut steps: Vec<Value> = recording_steps(moto).into();
    steps.push(scan(qual_of("account_id", "=", &json!("111111111111"))));
    steps.push(json!({"op": "http", "method": "GET", "url": moto.api_url("/moto-api/recorder/download-recording")}));
    sc["steps"] = json!(steps);
    sc
}
