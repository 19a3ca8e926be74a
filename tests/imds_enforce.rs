//! `steampipe-plugin-aws enforce` on the moto emulator (instances, CloudWatch
//! data seeded by `tests/fixtures/imds_readiness.py`) behind the fast test
//! endpoint (region defaults, CBOR GetMetricData), and the fault proxy for a
//! partial failure: the plan, the refusals, apply, an idempotent re-run, the
//! undo file and `--undo`. Every state is read back from moto itself.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::moto::{python, FastEndpoint, FaultProxy, Moto};
use common::*;
use serde_json::{json, Value};

const REGIONS: &str = "us-east-1,eu-west-1";

struct Bed {
    moto: Moto,
    front: FastEndpoint,
    seeded: Value,
}

fn bed() -> Bed {
    // us-east-1 never set; eu-west-1 optional with hop limit 1.
    bed_with(
        json!({"eu-west-1": {"HttpTokens": "optional", "HttpPutResponseHopLimit": 1, "ManagedBy": "account"}}),
    )
}

fn bed_with(defaults: Value) -> Bed {
    let moto = Moto::start();
    let seeded = common::oracle::fixture(&moto, "imds_readiness.py", &[]);
    let front = FastEndpoint::front(&moto.endpoint, &defaults);
    Bed {
        moto,
        front,
        seeded,
    }
}

fn enforce(endpoint: &str, dir: &Path, args: &[&str]) -> Output {
    Command::new(target_dir().join("steampipe-plugin-aws"))
        .current_dir(dir)
        .arg("enforce")
        .args([
            "--endpoint-url",
            endpoint,
            "--default-region",
            "us-east-1",
            "--regions",
            REGIONS,
        ])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "AKIDENFORCE")
        .env("AWS_SECRET_ACCESS_KEY", "secret")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn out(o: &Output) -> String {
    format!(
        "{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The MetadataOptions of every instance, read from moto.
fn state(b: &Bed) -> Value {
    let o = Command::new(python())
        .arg(root().join("tests/fixtures/imds_state.py"))
        .arg(&b.moto.endpoint)
        .args(REGIONS.split(','))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice::<Value>(&o.stdout).unwrap()["instances"].clone()
}

fn id(b: &Bed, case: &str) -> String {
    b.seeded["cases"][case]["id"].as_str().unwrap().to_string()
}

fn tokens(state: &Value, id: &str) -> String {
    state[id]["HttpTokens"].as_str().unwrap().to_string()
}

fn line_of<'a>(text: &'a str, id: &str) -> &'a str {
    text.lines()
        .find(|l| l.contains(id))
        .unwrap_or_else(|| panic!("no line for {id}:\n{text}"))
}

#[test]
fn plan_apply_rerun_and_undo() {
    let b = bed();
    let dir = tempfile::tempdir().unwrap();
    let before = state(&b);
    let safe = ["safe", "safe_hop2", "safe_eu"];
    let left = ["inuse", "nodata", "partial"];

    // The dry run: the plan, nothing changed.
    let o = enforce(&b.front.endpoint, dir.path(), &[]);
    let text = out(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    for c in safe {
        let l = line_of(&text, &id(&b, c));
        assert!(l.trim_start().starts_with("SWITCH"), "{c}: {l}");
        assert!(
            l.contains("safe: 0 IMDSv1 calls, data on each of the 14 days"),
            "{l}"
        );
    }
    let inuse = line_of(&text, &id(&b, "inuse"));
    assert!(inuse.trim_start().starts_with("leave"), "{inuse}");
    assert!(
        inuse.contains("in use: 5 IMDSv1 calls in 14 days, last on "),
        "{inuse}"
    );
    assert!(inuse.contains("name it with --include"), "{inuse}");
    assert!(line_of(&text, &id(&b, "nodata")).contains("no MetadataNoToken data"));
    assert!(line_of(&text, &id(&b, "partial")).contains("data on only 5 of 14 days"));
    assert!(line_of(&text, &id(&b, "required")).contains("already requires IMDSv2"));
    assert!(
        text.contains(
            "leave   us-east-1: http_tokens not set, hop limit not set (--set-defaults would set"
        ),
        "{text}"
    );
    assert!(text.contains("Plan: switch 3 instances to HttpTokens=required, set 0 region defaults; leave 4 instances"), "{text}");
    assert!(text.contains("Dry run: nothing was changed."), "{text}");
    // Templates: what the default would change, what needs fixing.
    let t = |name: &str| b.seeded["templates"][name].as_str().unwrap().to_string();
    assert!(
        line_of(&text, &t("lt-optional")).contains("fix     ")
            && line_of(&text, &t("lt-optional")).contains("allows IMDSv1 (HttpTokens optional)"),
        "{text}"
    );
    assert!(
        line_of(&text, &t("lt-inherits"))
            .contains("sets no HttpTokens and the region default does not require IMDSv2"),
        "{text}"
    );
    assert!(
        line_of(&text, &t("lt-required-eu")).contains("ok      "),
        "{text}"
    );
    let o = enforce(&b.front.endpoint, dir.path(), &["--set-defaults"]);
    let plan = out(&o);
    assert!(
        line_of(&plan, &t("lt-inherits")).contains("CHANGES ")
            && line_of(&plan, &t("lt-inherits"))
                .contains("will require IMDSv2 once the region default is set"),
        "{plan}"
    );
    assert!(
        plan.contains(
            "SET     us-east-1: http_tokens not set, hop limit not set -> http_tokens required"
        ),
        "{plan}"
    );
    assert_eq!(state(&b), before, "a dry run changes nothing");

    // --include puts an instance in the plan, marked as such.
    let o = enforce(
        &b.front.endpoint,
        dir.path(),
        &["--include", &id(&b, "inuse")],
    );
    let l = line_of(&String::from_utf8_lossy(&o.stdout), &id(&b, "inuse")).to_string();
    assert!(
        l.trim_start().starts_with("SWITCH") && l.contains("INCLUDED BY --include"),
        "{l}"
    );
    // An unknown --include is refused, in one line, before anything.
    let o = enforce(
        &b.front.endpoint,
        dir.path(),
        &["--include", "i-0000000000000dead", "--apply", "--yes"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("--include i-0000000000000dead: no such instance"),
        "{err}"
    );
    // --apply without --yes and no terminal to ask on: refused.
    let o = enforce(&b.front.endpoint, dir.path(), &["--apply"]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("add --yes"),
        "{}",
        out(&o)
    );
    assert_eq!(state(&b), before);

    // Apply, with the region defaults and hop limit 2.
    let undo = dir.path().join("undo.json");
    let undo_s = undo.display().to_string();
    let o = enforce(
        &b.front.endpoint,
        dir.path(),
        &[
            "--apply",
            "--yes",
            "--set-defaults",
            "--hop-limit",
            "2",
            "--undo-file",
            &undo_s,
        ],
    );
    let text = out(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(text.contains(&format!("Undo file: {undo_s}")), "{text}");
    for c in safe {
        let i = id(&b, c);
        let region = b.seeded["cases"][c]["region"].as_str().unwrap();
        assert!(
            text.contains(&format!(
                "  ok      {i} ({region}): HttpTokens optional -> required"
            )),
            "{c}: {text}"
        );
    }
    assert!(
        text.contains(
            "  ok      default of us-east-1: http_tokens not set -> required, hop limit 2"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "  ok      default of eu-west-1: http_tokens optional -> required, hop limit 2"
        ),
        "{text}"
    );
    assert!(text.contains("Summary: 5 changed, 0 failed."), "{text}");
    let after = state(&b);
    for c in safe {
        assert_eq!(tokens(&after, &id(&b, c)), "required", "{c}");
    }
    // Its other settings kept.
    assert_eq!(after[id(&b, "safe_hop2")]["HttpPutResponseHopLimit"], 2);
    assert_eq!(
        after[id(&b, "safe_hop2")]["InstanceMetadataTags"],
        "enabled"
    );
    for c in left {
        assert_eq!(
            tokens(&after, &id(&b, c)),
            "optional",
            "{c} is never touched"
        );
    }
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&undo).unwrap()).unwrap();
    let changes = file["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 5);
    let hop2 = changes
        .iter()
        .find(|c| c["instance_id"] == id(&b, "safe_hop2"))
        .unwrap();
    assert_eq!(
        hop2["previous"],
        json!({"http_tokens": "optional", "hop_limit": 2, "http_endpoint": "enabled",
               "instance_metadata_tags": "enabled", "http_protocol_ipv6": "disabled"})
    );
    let us = changes
        .iter()
        .find(|c| c["kind"] == "region_default" && c["region"] == "us-east-1")
        .unwrap();
    assert_eq!(
        us["previous"],
        json!({"http_tokens": null, "hop_limit": null})
    );

    // Idempotent: a second run has nothing to do and writes no undo file.
    let again = tempfile::tempdir().unwrap();
    let o = enforce(
        &b.front.endpoint,
        again.path(),
        &["--apply", "--yes", "--set-defaults", "--hop-limit", "2"],
    );
    let text = out(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(
        text.contains("Plan: switch 0 instances to HttpTokens=required, set 0 region defaults"),
        "{text}"
    );
    assert!(text.contains("Nothing to change."), "{text}");
    assert!(
        text.contains(
            "leave   us-east-1: http_tokens required, hop limit 2: already requires IMDSv2"
        ),
        "{text}"
    );
    assert_eq!(
        std::fs::read_dir(again.path()).unwrap().count(),
        0,
        "no undo file"
    );
    assert_eq!(state(&b), after);

    // Undo: every previous setting back.
    let o = enforce(&b.front.endpoint, dir.path(), &["--undo", &undo_s]);
    let text = out(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(text.contains("Summary: 5 changed, 0 failed."), "{text}");
    assert_eq!(state(&b), before, "undo restores every instance as it was");
    let o = enforce(&b.front.endpoint, dir.path(), &[]);
    let text = out(&o);
    assert!(
        text.contains("leave   us-east-1: http_tokens not set, hop limit not set"),
        "{text}"
    );
    assert!(
        text.contains("leave   eu-west-1: http_tokens optional, hop limit 1"),
        "{text}"
    );

    // A file that is not an undo file: one readable line.
    std::fs::write(dir.path().join("bad.json"), "{}").unwrap();
    let o = enforce(&b.front.endpoint, dir.path(), &["--undo", "bad.json"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("bad.json is not an enforce undo file"),
        "{err}"
    );
}

#[test]
fn one_failed_change_leaves_the_others_done_and_the_exit_code_non_zero() {
    let b = bed();
    let proxy = FaultProxy::start(
        &b.front.endpoint,
        json!([{"action": "ModifyInstanceMetadataOptions", "code": "UnauthorizedOperation",
                "status": 403, "message": "You are not authorized to perform this operation.", "nth": 1}]),
    );
    let dir = tempfile::tempdir().unwrap();
    let o = enforce(
        &proxy.endpoint,
        dir.path(),
        &["--apply", "--yes", "--concurrency", "2"],
    );
    let text = out(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    // Result lines (the plan's template lines say "ok" too).
    assert_eq!(text.matches("  ok      i-").count(), 2, "{text}");
    assert_eq!(text.matches("  FAILED  i-").count(), 1, "{text}");
    assert!(text.contains("Summary: 2 changed, 1 failed."), "{text}");
    assert!(text.contains("UnauthorizedOperation"), "{text}");
    let after = state(&b);
    let switched = ["safe", "safe_hop2", "safe_eu"]
        .iter()
        .filter(|c| tokens(&after, &id(&b, c)) == "required")
        .count();
    assert_eq!(switched, 2);
    assert_eq!(proxy.calls("ModifyInstanceMetadataOptions").len(), 3);
    // The undo file still lists all three: undoing the failed one is a no-op.
    let undo = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("enforce-undo-")
        })
        .expect("an undo file in the current directory");
    let file: Value = serde_json::from_str(&std::fs::read_to_string(undo).unwrap()).unwrap();
    assert_eq!(file["changes"].as_array().unwrap().len(), 3);
}

#[test]
fn changes_wait_on_the_rate_limit() {
    let b = bed();
    let proxy = FaultProxy::start(&b.front.endpoint, json!([]));
    let dir = tempfile::tempdir().unwrap();
    let o = enforce(
        &proxy.endpoint,
        dir.path(),
        &["--apply", "--yes", "--rate", "1", "--concurrency", "8"],
    );
    let text = out(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(text.contains("Summary: 3 changed, 0 failed."), "{text}");
    // One token a second per region, a bucket of one: the two changes in
    // us-east-1 are a second apart; eu-west-1's has its own bucket.
    let mut east: Vec<f64> = proxy
        .calls("ModifyInstanceMetadataOptions")
        .iter()
        .filter(|c| c.region == "us-east-1")
        .map(|c| c.t)
        .collect();
    east.sort_by(f64::total_cmp);
    assert_eq!(east.len(), 2);
    let gap = east[1] - east[0];
    assert!(
        gap >= 0.9,
        "the second change came {gap:.3} s after the first"
    );
    // A bad rate is refused by the command line.
    let o = enforce(&proxy.endpoint, dir.path(), &["--rate", "0"]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
}

#[test]
fn a_default_a_declarative_policy_owns_is_left_alone() {
    let b = bed_with(
        json!({"eu-west-1": {"HttpTokens": "optional", "ManagedBy": "declarative-policy",
                                          "ManagedExceptionMessage": "Owned by the org policy."}}),
    );
    let dir = tempfile::tempdir().unwrap();
    let o = enforce(
        &b.front.endpoint,
        dir.path(),
        &["--apply", "--yes", "--set-defaults"],
    );
    let text = out(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(
        text.contains("leave   eu-west-1: http_tokens optional, hop limit not set: set by a declarative policy (change the policy)"),
        "{text}"
    );
    assert!(
        text.contains("  ok      default of us-east-1: http_tokens not set -> required"),
        "{text}"
    );
    let modified: Vec<String> = b
        .front
        .calls()
        .iter()
        .filter(|c| c["action"] == "ModifyInstanceMetadataDefaults")
        .map(|c| c["region"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(modified, ["us-east-1"]);
}
