//! `steampipe-plugin-aws check merge`: the JSON and snapshot outputs of
//! `check` runs over two disjoint slices of the connections, merged, give what
//! one `check` run over all the connections gives, in every format (after the
//! goldens' normalisation of times and the tool's directory); Powerpipe's own
//! JSON outputs (the goldens) merge into Powerpipe's other formats; bad input
//! gets one line naming the file and exit code 250.

#[path = "common/check_golden.rs"]
mod check_golden;
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use check_golden::*;

/// Three connections over the fleet's regions: slice A has two (one region
/// each), slice B one (both regions); `all` lists them in that order.
fn write_configs(fleet: &Fleet, dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let conn = |name: &str, regions: &str| {
        format!(
            "connection \"{name}\" {{\n  plugin = \"aws\"\n  regions = [{regions}]\n  default_region = \"us-east-1\"\n  endpoint_url = \"{}\"\n}}\n",
            fleet.proxy.endpoint
        )
    };
    let a = conn("aws_a1", "\"us-east-1\"") + &conn("aws_a2", "\"eu-west-1\"");
    // Slice B as docs/scale.md writes a slice: its connection names a plugin
    // block (with Steampipe's limiter blocks) by reference.
    let b = "plugin \"aws_fleet\" {\n  source = \"aws\"\n  limiter \"ec2\" {\n    bucket_size = 50\n    fill_rate = 50\n    where = \"service = 'ec2'\"\n  }\n}\n".to_string()
        + &conn("aws_b1", "\"us-east-1\", \"eu-west-1\"")
            .replace("plugin = \"aws\"", "plugin = plugin.aws_fleet");
    let aggregator = "connection \"aws_all\" {\n  plugin = \"aws\"\n  type = \"aggregator\"\n  connections = [\"aws_*\"]\n}\n";
    let paths = (
        dir.join("slice_a.spc"),
        dir.join("slice_b.spc"),
        dir.join("all.spc"),
    );
    std::fs::write(&paths.0, &a).unwrap();
    std::fs::write(&paths.1, &b).unwrap();
    std::fs::write(&paths.2, format!("{a}{b}{aggregator}")).unwrap();
    paths
}

/// `check merge ARGS` in `dir`, as `run_check` runs `check`.
fn run_merge(dir: &Path, args: &[&str]) -> Output {
    Command::new(plugin_binary())
        .current_dir(dir)
        .args(["check", "merge"])
        .args(args)
        .env("POWERPIPE_DISPLAY_WIDTH", DISPLAY_WIDTH)
        .env_remove("PP_VAR_common_dimensions")
        .env_remove("PP_VAR_tag_dimensions")
        .output()
        .expect("run steampipe-plugin-aws check merge")
}

/// Runs one slice of `case` and exports its JSON and snapshot under `stem`.
fn run_slice(fleet: &Fleet, dir: &Path, case: &Case, spc: &Path, stem: &str) -> (PathBuf, PathBuf) {
    let json = dir.join(format!("{stem}.json"));
    let pps = dir.join(format!("{stem}.pps"));
    let extra = [
        "--config",
        spc.to_str().unwrap(),
        "--output",
        "none",
        "--export",
        json.to_str().unwrap(),
        "--export",
        pps.to_str().unwrap(),
    ];
    let o = run_check(fleet, dir, &case_args(case, &extra));
    assert_exit(&o, 1, &format!("{} slice {stem}", case.name));
    (json, pps)
}

/// The arguments `all_formats` passes, without the case's target and `--var`s
/// (a merge takes them from its files).
fn without_case_args<'a>(case: &Case, args: &[&'a str]) -> Vec<&'a str> {
    args[1 + 2 * case.vars.len()..].to_vec()
}

#[test]
fn merged_slices_equal_one_run_over_every_connection_in_every_format() {
    let fleet = Fleet::start();
    let work = tempfile::tempdir().unwrap();
    let (slice_a, slice_b, all) = write_configs(&fleet, work.path());
    let mut differences = Vec::new();
    // The default dimensions (rows of slice A and B look alike) and
    // connection_name among them (every row names its connection).
    for case in [&CASES[0], &CASES[3]] {
        let inputs = tempfile::tempdir().unwrap();
        let (a_json, a_pps) = run_slice(&fleet, inputs.path(), case, &slice_a, "a");
        let (b_json, b_pps) = run_slice(&fleet, inputs.path(), case, &slice_b, "b");

        let dir = tempfile::tempdir().unwrap();
        let all_arg = all.to_str().unwrap().to_string();
        let combined = all_formats(case, dir.path(), &mut |a| {
            let mut args = a.to_vec();
            args.extend(["--config", all_arg.as_str()]);
            run_check(&fleet, dir.path(), &args)
        });
        assert_eq!(combined.len(), FORMATS.len());
        // The slices really are slices: each has fewer rows than the whole.
        let rows = |p: &Path| {
            let v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
            let s = &v["summary"]["status"];
            ["alarm", "ok", "info", "skip", "error"]
                .iter()
                .map(|k| s[k].as_u64().unwrap())
                .sum::<u64>()
        };
        let (ra, rb) = (rows(&a_json), rows(&b_json));
        assert!(ra > 0 && rb > 0, "{}: empty slices {ra} {rb}", case.name);

        for (kind, files) in [("json", [&a_json, &b_json]), ("snapshot", [&a_pps, &b_pps])] {
            let dir = tempfile::tempdir().unwrap();
            let files: Vec<String> = files.iter().map(|f| f.to_str().unwrap().into()).collect();
            let merged = all_formats(case, dir.path(), &mut |a| {
                let mut args: Vec<&str> = files.iter().map(String::as_str).collect();
                args.extend(without_case_args(case, a));
                run_merge(dir.path(), &args)
            });
            for ((ext, want), (ext2, got)) in combined.iter().zip(&merged) {
                assert_eq!(ext, ext2);
                let (want, got) = (normalize(ext, want), normalize(ext, got));
                if want != got {
                    differences.push(first_difference(
                        &format!("{}: merge of the slices' {kind} files, {ext}", case.name),
                        &want,
                        &got,
                    ));
                }
            }
            // The merged JSON counts every row of both slices.
            let json = merged.iter().find(|(e, _)| *e == "json").unwrap();
            let v: serde_json::Value = serde_json::from_str(&json.1).unwrap();
            let s = &v["summary"]["status"];
            let total: u64 = ["alarm", "ok", "info", "skip", "error"]
                .iter()
                .map(|k| s[k].as_u64().unwrap())
                .sum();
            assert_eq!(total, ra + rb, "{} {kind}: merged rows", case.name);
        }
    }
    assert!(
        differences.is_empty(),
        "merge differs from the combined run:\n{}",
        differences.join("\n")
    );
}

#[test]
fn powerpipes_own_json_merges_into_powerpipes_other_formats() {
    // A merge of one file is that run again: Powerpipe's JSON output (the
    // goldens) read back gives what Powerpipe printed and exported.
    let mut differences = Vec::new();
    for case in &CASES {
        let dir = tempfile::tempdir().unwrap();
        let json = golden_path(case, "json");
        let file = json.to_str().unwrap().to_string();
        let outputs = all_formats(case, dir.path(), &mut |a| {
            let mut args = vec![file.as_str()];
            args.extend(without_case_args(case, a));
            run_merge(dir.path(), &args)
        });
        for (ext, text) in &outputs {
            if let Err(e) = compare_with_golden(&golden_path(case, ext), &normalize(ext, text)) {
                differences.push(format!("{}: {e}", case.name));
            }
        }
        // And Powerpipe's snapshot: the same counts and rows as its JSON.
        let from_pps = run_merge(
            dir.path(),
            &[
                golden_path(case, "pps").to_str().unwrap(),
                "--output",
                "csv",
            ],
        );
        assert_exit(&from_pps, 1, "merge of Powerpipe's snapshot");
        let want = std::fs::read_to_string(golden_path(case, "csv")).unwrap();
        assert_eq!(
            normalize("csv", &String::from_utf8(from_pps.stdout).unwrap()),
            want,
            "{}: csv from Powerpipe's snapshot",
            case.name
        );
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

/// Runs a merge that must be refused: exit `code`, one line on stderr
/// containing every part of `want`, nothing on stdout.
fn refused(dir: &Path, args: &[&str], code: i32, want: &[&str]) {
    let o = run_merge(dir, args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(code), "{args:?}: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    if code != 255 {
        assert_eq!(lines.len(), 1, "{args:?}: one line, got {err:?}");
        assert!(o.stdout.is_empty(), "{args:?}: stdout {:?}", o.stdout);
    }
    for w in want {
        assert!(err.contains(w), "{args:?}: {err:?} lacks {w:?}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn bad_input_is_refused_with_one_line_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let golden = |ext: &str| golden_path(&CASES[0], ext).to_str().unwrap().to_string();
    let json = golden("json");
    let write = |name: &str, body: &str| {
        let p = d.join(name);
        std::fs::write(&p, body).unwrap();
        p.to_str().unwrap().to_string()
    };
    let original = std::fs::read_to_string(&json).unwrap();
    let other_mod = write(
        "other.json",
        &std::fs::read_to_string(golden_path(&CASES[2], "json"))
            .unwrap()
            .replace("aws_compliance.", "other_mod."),
    );
    let truncated = write("truncated.json", &original[..original.len() / 2]);
    let empty = write("empty.json", "");
    let unrelated = write("unrelated.json", r#"{"instances": []}"#);
    let unfinished = write(
        "unfinished.json",
        &original.replace("\"run_status\": 4", "\"run_status\": 2"),
    );
    let bad_status = write(
        "bad_status.json",
        &original.replacen("\"status\": \"alarm\"", "\"status\": \"red\"", 1),
    );
    let other_dims = write(
        "dims.json",
        &std::fs::read_to_string(golden_path(&CASES[1], "json")).unwrap(),
    );
    let dashboard = write(
        "dashboard.pps",
        r#"{"layout":{"name":"m.dashboard.d","panel_type":"dashboard"},"panels":{"m.dashboard.d":{"name":"m.dashboard.d"}},"schema_version":"20240607"}"#,
    );
    let csv = golden("csv");
    let missing = d.join("missing.json").to_str().unwrap().to_string();

    refused(d, &[&csv], 250, &[&csv, "not JSON"]);
    refused(
        d,
        &[&json, &other_mod],
        250,
        &[&other_mod, "mod other_mod, not aws_compliance"],
    );
    refused(d, &[&truncated], 250, &[&truncated, "not JSON"]);
    refused(d, &[&empty], 250, &[&empty, "empty"]);
    refused(d, &[&unrelated], 250, &[&unrelated, "neither"]);
    refused(d, &[&unfinished], 250, &[&unfinished, "run_status 2"]);
    refused(d, &[&bad_status], 250, &[&bad_status, "status 'red'"]);
    refused(
        d,
        &[&json, &other_dims],
        250,
        &[&other_dims, "dimensions", "same variables"],
    );
    refused(d, &[&dashboard], 250, &[&dashboard, "dashboard"]);
    refused(d, &[&json, &missing], 250, &[&missing, "no such file"]);
    refused(d, &[&json, &json], 250, &[&json, "given twice"]);
    refused(d, &[&json, "--export", "bogus"], 250, &["'bogus'"]);
    refused(
        d,
        &[&json, "--output", "nunit3"],
        255,
        &["invalid output format 'nunit3'"],
    );
    refused(d, &[], 255, &["<FILE>"]);
    assert!(std::fs::read_dir(d).unwrap().all(|e| {
        let n = e.unwrap().file_name();
        !n.to_string_lossy().starts_with("aws_compliance.")
    }));
}

#[test]
fn merge_exits_as_check_does() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let original = std::fs::read_to_string(golden_path(&CASES[0], "json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&original).unwrap();
    // Only the ok rows: exit 0.
    let mut ok = v.clone();
    let c = &mut ok["controls"][0];
    let rows: Vec<serde_json::Value> = c["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "ok")
        .cloned()
        .collect();
    assert!(!rows.is_empty());
    c["results"] = serde_json::Value::Array(rows);
    let ok_file = d.join("ok.json");
    std::fs::write(&ok_file, ok.to_string()).unwrap();
    let o = run_merge(d, &[ok_file.to_str().unwrap(), "--output", "none"]);
    assert_exit(&o, 0, "only ok rows");
    // A slice whose control could not run: the merged control is an error
    // (as one run whose fetch failed), exit 2.
    let mut failed = v.clone();
    let c = &mut failed["controls"][0];
    c["results"] = serde_json::Value::Null;
    c["run_status"] = 8.into();
    c["run_error"] = "connection 'aws_b1': could not connect".into();
    let failed_file = d.join("failed.json");
    std::fs::write(&failed_file, failed.to_string()).unwrap();
    let o = run_merge(
        d,
        &[
            ok_file.to_str().unwrap(),
            failed_file.to_str().unwrap(),
            "--output",
            "json",
        ],
    );
    assert_exit(&o, 2, "one slice failed");
    let merged: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(merged["controls"][0]["run_status"], 8);
    assert_eq!(
        merged["controls"][0]["run_error"],
        "connection 'aws_b1': could not connect"
    );
    assert_eq!(merged["summary"]["status"]["error"], 1);
}

#[test]
fn runs_over_several_targets_merge_under_one_root() {
    // `check control benchmark --export FILE` is one run with a root over both
    // targets (`check.aws_compliance`); the slices' runs merge into the
    // combined run's, from JSON and from snapshots.
    let fleet = Fleet::start();
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    let (slice_a, slice_b, all) = write_configs(&fleet, d);
    let run = |spc: &Path, stem: &str| {
        let (json, pps) = (format!("{stem}.json"), format!("{stem}.pps"));
        let o = run_check(
            &fleet,
            d,
            &[
                "control.foundational_security_ec2_8",
                "benchmark.foundational_security",
                "--config",
                spc.to_str().unwrap(),
                "--output",
                "none",
                "--export",
                &json,
                "--export",
                &pps,
            ],
        );
        assert_exit(&o, 1, stem);
        (json, pps)
    };
    let (a_json, a_pps) = run(&slice_a, "a");
    let (b_json, b_pps) = run(&slice_b, "b");
    let (all_json, all_pps) = run(&all, "all");
    let want_json = std::fs::read_to_string(d.join(&all_json)).unwrap();
    let want_pps = normalize("pps", &std::fs::read_to_string(d.join(&all_pps)).unwrap());
    let v: serde_json::Value = serde_json::from_str(&want_json).unwrap();
    assert_eq!(
        v["title"], "AWS Compliance",
        "a root over both targets: {v}"
    );
    for files in [[&a_json, &b_json], [&a_pps, &b_pps]] {
        let o = run_merge(
            d,
            &[files[0].as_str(), files[1].as_str(), "--output", "json"],
        );
        assert_exit(&o, 1, "merge, json");
        let got = String::from_utf8(o.stdout).unwrap();
        assert!(
            got == want_json,
            "{}",
            first_difference(&format!("merge of {files:?}, json"), &want_json, &got)
        );
        let o = run_merge(
            d,
            &[
                files[0].as_str(),
                files[1].as_str(),
                "--output",
                "none",
                "--export",
                "m.pps",
            ],
        );
        assert_exit(&o, 1, "merge, pps");
        let got = normalize("pps", &std::fs::read_to_string(d.join("m.pps")).unwrap());
        if files[0].ends_with(".pps") {
            assert!(
                got == want_pps,
                "{}",
                first_difference(&format!("merge of {files:?}, snapshot"), &want_pps, &got)
            );
        } else {
            // Powerpipe's JSON lists a root's benchmarks before its controls,
            // whatever the targets' order: from JSON, the snapshot's layout
            // does too. Its panels are the combined run's.
            let panels =
                |t: &str| serde_json::from_str::<serde_json::Value>(t).unwrap()["panels"].clone();
            assert_eq!(
                panels(&got),
                panels(&want_pps),
                "merge of {files:?}, snapshot panels"
            );
        }
    }
}
