//! Real Powerpipe (v1.5.2, built from its Go module by
//! `scripts/conformance/powerpipe.sh`) runs the bundled mod from `mod/` over
//! the plugin's rows, and `steampipe-plugin-aws check` must match it format
//! by format.
//!
//! The rows: a moto fleet seeded with fixed random ids (tests/common/
//! check_golden.rs), read through the plugin by sphost (Steampipe's own
//! plugin client) and loaded into a temporary PostgreSQL with the FDW's
//! column types, in the schema `aws` that Powerpipe gets as its search path.
//! `check` reads the same fleet through the same proxy itself.
//!
//! Powerpipe's normalised outputs are written to tests/golden/ (the files
//! tests/output_golden.rs checks `check` against in every `cargo test`).
//! Run with `scripts/conformance.sh powerpipe` (it builds Powerpipe and sets
//! POWERPIPE_BIN); every test here is ignored in a plain `cargo test`.

#[path = "common/check_golden.rs"]
mod check_golden;
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use check_golden::*;
use common::pg::Postgres;
use common::*;
use serde_json::{json, Value};

/// The Powerpipe binary: `$POWERPIPE_BIN`.
fn powerpipe_bin() -> PathBuf {
    let p = std::env::var_os("POWERPIPE_BIN").map(PathBuf::from).expect(
        "POWERPIPE_BIN is not set: run scripts/conformance.sh powerpipe (it builds Powerpipe 1.5.2)",
    );
    assert!(p.exists(), "POWERPIPE_BIN={} does not exist", p.display());
    p
}

struct Setup {
    fleet: Fleet,
    pg: Postgres,
    /// Powerpipe's install dir and the directory of its connection config.
    pp_home: tempfile::TempDir,
    rows: usize,
}

/// The tables the mod's IMDS controls read.
const TABLES: [&str; 3] = [
    "aws_ec2_instance",
    "aws_ec2_launch_template_version",
    "aws_ec2_launch_configuration",
];

/// Orders rows as `check` does (runner::TableSink): by region, then the
/// table's get key columns, as text ("" for a value that is not a string).
/// Real Steampipe hands Powerpipe rows in arrival order, which varies from
/// run to run (regions are scanned concurrently, rows built concurrently);
/// both tools here use this one order.
fn check_row_order(table: &Value, rows: &mut [Value]) {
    let mut order = vec!["region".to_string()];
    for k in table["getCallKeyColumnList"]
        .as_array()
        .into_iter()
        .flatten()
    {
        order.push(k["name"].as_str().unwrap().to_string());
    }
    let columns: Vec<&str> = table["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    order.retain(|c| columns.contains(&c.as_str()));
    rows.sort_by_key(|r| {
        order
            .iter()
            .map(|c| r["values"][c].as_str().unwrap_or("").to_string())
            .collect::<Vec<_>>()
    });
}

fn setup() -> &'static Setup {
    static S: OnceLock<Setup> = OnceLock::new();
    S.get_or_init(|| {
        let fleet = Fleet::start();
        let config = format!(
            "access_key = \"AKIDPOWERPIPE\"\ndefault_region = \"us-east-1\"\nendpoint_url = \"{}\"\nregions = [{}]\nsecret_key = \"powerpipe-secret\"\n",
            fleet.proxy.endpoint,
            REGIONS.map(|r| format!("\"{r}\"")).join(", ")
        );
        let conn = json!({"connection": "aws", "plugin": "aws", "pluginShortName": "aws", "config": config});
        let mut sc = scenario(vec![conn], vec![json!({"op": "get_schema", "connection": "aws"})]);
        sc["plugin"] = json!(plugin_binary());
        sc["env"] = json!({"AWS_EC2_METADATA_DISABLED": "true"});
        let ev = run(&sc);
        let schema = one(&ev, "schema", Some(0))["response"]["schema"]["schema"].clone();
        // Every table the mod's IMDS controls read, all columns, in check's
        // row order, into the schema `aws`.
        let pg = Postgres::start();
        let mut rows = 0;
        for t in TABLES {
            let table = &schema[t];
            let cols: Vec<&str> = table["columns"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
            sc["steps"] = json!([{"op": "execute", "request": execute(t, "aws", &cols, json!({}), None)}]);
            let ev = run(&sc);
            assert_eq!(one(&ev, "execute_end", Some(0))["end"], "eof", "{t}");
            let mut got = common::rows(&ev, 0);
            check_row_order(table, &mut got);
            if t == "aws_ec2_instance" {
                assert_eq!(got.len(), fleet.instance_ids().len(), "one row per instance");
                rows = got.len();
            }
            assert!(!got.is_empty(), "{t}: no rows");
            pg.load_table("aws", t, table, &got);
        }
        let port = pg.psql("show port").unwrap();
        let port = port.lines().rfind(|l| l.trim().parse::<u16>().is_ok()).unwrap().trim().to_string();
        let pp_home = tempfile::Builder::new().prefix("powerpipe-home-").tempdir().unwrap();
        std::fs::create_dir_all(pp_home.path().join("config")).unwrap();
        // The new way to select a database: a connection in a .ppc file and
        // the mod's `database` variable (the --database flag is deprecated).
        std::fs::write(
            pp_home.path().join("config/fleet.ppc"),
            format!("connection \"steampipe\" \"fleet\" {{\n  host     = \"127.0.0.1\"\n  port     = {port}\n  db       = \"postgres\"\n  username = \"postgres\"\n}}\n"),
        )
        .unwrap();
        Setup { fleet, pg, pp_home, rows }
    })
}

/// Runs Powerpipe in `cwd` (the repository's `mod/` unless a test gives another).
fn powerpipe_in(cwd: &Path, args: &[&str]) -> Output {
    powerpipe_in_at_width(cwd, args, DISPLAY_WIDTH)
}

/// [`powerpipe_in`] with `POWERPIPE_DISPLAY_WIDTH` set to `width`.
fn powerpipe_in_at_width(cwd: &Path, args: &[&str], width: &str) -> Output {
    let s = setup();
    let home = s.pp_home.path();
    Command::new(powerpipe_bin())
        .current_dir(cwd)
        .args(args)
        .args([
            "--install-dir",
            home.to_str().unwrap(),
            "--config-path",
            home.join("config").to_str().unwrap(),
            "--mod-install=false",
            "--var",
            "database=connection.steampipe.fleet",
            "--search-path",
            "aws",
        ])
        .env("POWERPIPE_UPDATE_CHECK", "false")
        .env("POWERPIPE_TELEMETRY", "none")
        .env("POWERPIPE_DISPLAY_WIDTH", width)
        .env_remove("POWERPIPE_DATABASE")
        .env_remove("PIPES_TOKEN")
        .env_remove("PP_VAR_common_dimensions")
        .env_remove("PP_VAR_tag_dimensions")
        .output()
        .expect("run powerpipe")
}

/// `powerpipe control run X` / `powerpipe benchmark run X` in `cwd`, with
/// the repository's `mod/` as the mod location.
fn powerpipe(cwd: &Path, args: &[&str]) -> Output {
    powerpipe_at(&root().join("mod"), cwd, args)
}

/// The same, with the mod in `mod_dir`.
fn powerpipe_at(mod_dir: &Path, cwd: &Path, args: &[&str]) -> Output {
    let kind = if args[0].contains(".benchmark.") {
        "benchmark"
    } else {
        "control"
    };
    let mut a = vec![kind, "run"];
    a.extend_from_slice(args);
    a.extend(["--mod-location", mod_dir.to_str().unwrap()]);
    powerpipe_in(cwd, &a)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The warning Powerpipe gives for the mod's `require { plugin "aws" }` on
/// any plain PostgreSQL database (it has no steampipe_internal tables).
fn plugin_requirement_warning() -> Regex {
    Regex::new(r"^Warning: PostgreSQL backend 'postgres(ql)?://postgres@127\.0\.0\.1:\d+/postgres' does not provide a plugin which satisfies requirement 'aws@1\.28\.0' - required by 'aws_compliance'$").unwrap()
}

use regex::Regex;

#[test]
#[ignore = "needs Powerpipe: run scripts/conformance.sh powerpipe"]
fn the_mod_loads_and_the_require_block_only_warns() {
    let s = setup();
    let cwd = tempfile::tempdir().unwrap();
    for case in &CASES {
        let o = powerpipe(cwd.path(), &case_args(case, &["--output", "none"]));
        assert_exit(&o, 1, case.target);
        let err = stderr(&o);
        let warn = plugin_requirement_warning();
        assert!(
            !err.trim().is_empty(),
            "the require block gives its warning"
        );
        for line in err.lines().filter(|l| !l.is_empty()) {
            assert!(
                warn.is_match(line),
                "{}: unexpected stderr line {line:?}",
                case.name
            );
        }
    }
    // The deprecated `--database postgres://...` gives the same results and,
    // besides the same warning, only its own deprecation notice.
    let port = s.pg.psql("show port").unwrap();
    let port = port
        .lines()
        .rfind(|l| l.trim().parse::<u16>().is_ok())
        .unwrap()
        .trim()
        .to_string();
    let o = Command::new(powerpipe_bin())
        .current_dir(cwd.path())
        .args([
            "control",
            "run",
            CASES[0].target,
            "--output",
            "csv",
            "--mod-location",
        ])
        .arg(root().join("mod"))
        .arg("--install-dir")
        .arg(s.pp_home.path())
        .args(["--mod-install=false", "--search-path", "aws", "--database"])
        .arg(format!("postgres://postgres@127.0.0.1:{port}/postgres"))
        .env("POWERPIPE_UPDATE_CHECK", "false")
        .env("POWERPIPE_TELEMETRY", "none")
        .output()
        .unwrap();
    assert_exit(&o, 1, "--database");
    assert_eq!(
        normalize("csv", &String::from_utf8(o.stdout.clone()).unwrap()),
        std::fs::read_to_string(golden_path(&CASES[0], "csv")).unwrap()
    );
    for line in stderr(&o).lines().filter(|l| !l.is_empty()) {
        assert!(
            plugin_requirement_warning().is_match(line)
                || line.starts_with("Flag --database has been deprecated"),
            "--database: unexpected stderr line {line:?}"
        );
    }
    // The mod's resources as Powerpipe lists them: the ones `check` knows.
    let o = Command::new(powerpipe_bin())
        .current_dir(cwd.path())
        .args(["benchmark", "list", "--output", "json", "--mod-location"])
        .arg(root().join("mod"))
        .arg("--install-dir")
        .arg(s.pp_home.path())
        .env("POWERPIPE_UPDATE_CHECK", "false")
        .env("POWERPIPE_TELEMETRY", "none")
        .output()
        .unwrap();
    assert_exit(&o, 0, "benchmark list");
    let list: Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["qualified_name"].as_str().unwrap())
        .collect();
    names.sort();
    let def =
        steampipe_plugin_aws::check::powerpipe_mod::ModDef::load(&root().join("mod")).unwrap();
    let ours: Vec<String> = def
        .benchmarks
        .keys()
        .map(|b| format!("aws_compliance.benchmark.{b}"))
        .collect();
    assert_eq!(names, ours);
    assert_eq!(
        names.len(),
        103,
        "upstream's benchmarks that lead to the IMDS controls"
    );
    assert!(s.rows > 10);
}

#[test]
#[ignore = "needs Powerpipe: run scripts/conformance.sh powerpipe"]
fn check_matches_powerpipe_format_by_format_and_the_goldens_are_powerpipes() {
    let s = setup();
    let work = tempfile::tempdir().unwrap();
    // check's normalised outputs, under the goldens' names, for `diff -r`.
    let check_out = root().join("target/conformance/powerpipe/check");
    std::fs::create_dir_all(&check_out).unwrap();
    std::fs::create_dir_all(golden_dir()).unwrap();
    let mut differences = Vec::new();
    for case in &CASES {
        let pp_dir = work.path().join(format!("pp-{}", case.name));
        let ck_dir = work.path().join(format!("check-{}", case.name));
        std::fs::create_dir_all(&pp_dir).unwrap();
        std::fs::create_dir_all(&ck_dir).unwrap();
        let from_pp = all_formats(case, &pp_dir, &mut |a| powerpipe(&pp_dir, a));
        let from_check = all_formats(case, &ck_dir, &mut |a| run_check(&s.fleet, &ck_dir, a));
        for ((ext, pp), (ext2, ck)) in from_pp.iter().zip(&from_check) {
            assert_eq!(ext, ext2);
            let pp = normalize(ext, pp);
            let ck = normalize(ext, ck);
            // The golden file is Powerpipe's own output.
            std::fs::write(golden_path(case, ext), &pp).unwrap();
            std::fs::write(check_out.join(format!("{}.{ext}", case.name)), &ck).unwrap();
            if pp != ck {
                differences.push(first_difference(&format!("{}.{ext}", case.name), &pp, &ck));
            }
        }
        // --output X and --export X agree, in both tools.
        for (name, ext) in OUTPUT_AND_EXPORT {
            let golden = std::fs::read_to_string(golden_path(case, ext)).unwrap();
            let pp = powerpipe(&pp_dir, &case_args(case, &["--output", name]));
            assert_exit(&pp, 1, name);
            let ck = run_check(&s.fleet, &ck_dir, &case_args(case, &["--output", name]));
            assert_exit(&ck, 1, name);
            for (tool, o) in [("powerpipe", pp), ("check", ck)] {
                let got = normalize(ext, &String::from_utf8(o.stdout).unwrap());
                if got != golden {
                    differences.push(first_difference(
                        &format!("{tool} --output {name} vs the {}.{ext} export", case.name),
                        &golden,
                        &got,
                    ));
                }
            }
        }
    }
    assert!(
        differences.is_empty(),
        "check differs from Powerpipe (diff -r {} {}):\n{}",
        golden_dir().display(),
        check_out.display(),
        differences.join("\n")
    );
}

/// A copy of `mod/` with `edit` applied to one file.
fn mod_copy(dir: &Path, file: &str, edit: &dyn Fn(&str) -> String) -> PathBuf {
    let dst = dir.join("mod");
    std::fs::create_dir_all(dir).unwrap();
    let status = Command::new("cp")
        .arg("-r")
        .arg(root().join("mod"))
        .arg(&dst)
        .status()
        .unwrap();
    assert!(status.success());
    let p = dst.join(file);
    let text = std::fs::read_to_string(&p).unwrap();
    let edited = edit(&text);
    assert_ne!(edited, text, "the edit of {file} changed nothing");
    std::fs::write(&p, edited).unwrap();
    dst
}

#[test]
#[ignore = "needs Powerpipe: run scripts/conformance.sh powerpipe"]
fn exit_codes_agree() {
    let s = setup();
    let control = "aws_compliance.control.foundational_security_ec2_8";
    let both = |mod_dir: Option<&Path>, args: &[&str]| -> (Option<i32>, Option<i32>, String) {
        let dir = tempfile::tempdir().unwrap();
        let pp = match mod_dir {
            Some(m) => powerpipe_at(m, dir.path(), args),
            None => powerpipe(dir.path(), args),
        };
        let mut a: Vec<&str> = args.to_vec();
        let m;
        if let Some(d) = mod_dir {
            m = d.to_str().unwrap().to_string();
            a.extend(["--mod-location", &m]);
        }
        let ck = run_check(&s.fleet, dir.path(), &a);
        (
            pp.status.code(),
            ck.status.code(),
            format!("powerpipe: {}\ncheck: {}", stderr(&pp), stderr(&ck)),
        )
    };
    let work = tempfile::tempdir().unwrap();
    let only_ok = mod_copy(&work.path().join("ok"), "conformance_pack/ec2.pp", &|t| {
        t.replace(
            "aws_ec2_instance;",
            "aws_ec2_instance where metadata_options ->> 'HttpTokens' = 'required' and metadata_options ->> 'State' = 'applied';",
        )
    });
    let failing = mod_copy(&work.path().join("fail"), "conformance_pack/ec2.pp", &|t| {
        t.replace("arn as resource", "no_such_column as resource")
    });
    let broken = mod_copy(&work.path().join("broken"), "mod.pp", &|t| {
        t.replacen("title", "title = = ", 1)
    });
    let cases: Vec<(&str, Option<&Path>, Vec<&str>, i32)> = vec![
        ("alarms", None, vec![control, "--output", "none"], 1),
        ("ok", Some(&only_ok), vec![control, "--output", "none"], 0),
        (
            "a control whose query fails",
            Some(&failing),
            vec![control, "--output", "none"],
            2,
        ),
        (
            "a mod that fails to load",
            Some(&broken),
            vec![control, "--output", "none"],
            250,
        ),
        // Flags the command line rejects: 255.
        (
            "a bad --output",
            None,
            vec![control, "--output", "bogus"],
            255,
        ),
        (
            "an unknown flag",
            None,
            vec![control, "--no-such-flag"],
            255,
        ),
        // What the workspace load and the export check reject: 250.
        (
            "a bad --export",
            None,
            vec![control, "--export", "bogus"],
            250,
        ),
        (
            "named and unnamed exports",
            None,
            vec![
                control, "--output", "none", "--export", "csv", "--export", "x.json",
            ],
            250,
        ),
        (
            "an unknown control",
            None,
            vec!["aws_compliance.control.no_such_control"],
            250,
        ),
        (
            "a variable of the wrong type",
            None,
            vec![control, "--var", "common_dimensions=3"],
            250,
        ),
        (
            "an undeclared variable",
            None,
            vec![control, "--var", "no_such_var=1"],
            250,
        ),
        // Turbot Pipes without a token: 254.
        (
            "--snapshot without a token",
            None,
            vec![control, "--output", "none", "--snapshot"],
            254,
        ),
    ];
    let mut wrong = Vec::new();
    for (what, m, args, want) in cases {
        let (pp, ck, err) = both(m, &args);
        if pp != Some(want) || ck != Some(want) {
            wrong.push(format!(
                "{what}: powerpipe {pp:?}, check {ck:?}, expected {want}\n{err}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
#[ignore = "needs Powerpipe: run scripts/conformance.sh powerpipe"]
fn snapshots_written_to_a_local_snapshot_location_are_equal() {
    let stamp = Regex::new(r"\.\d{8}T\d{6}\.pps$").unwrap();
    let s = setup();
    for case in CASES
        .iter()
        .filter(|c| c.name == "benchmark" || c.name == "control-dims")
    {
        let pp_dir = tempfile::tempdir().unwrap();
        let ck_dir = tempfile::tempdir().unwrap();
        let pp_loc = pp_dir.path().join("snaps");
        let ck_loc = ck_dir.path().join("snaps");
        std::fs::create_dir_all(&pp_loc).unwrap();
        std::fs::create_dir_all(&ck_loc).unwrap();
        let pp = powerpipe(
            pp_dir.path(),
            &case_args(
                case,
                &[
                    "--output",
                    "none",
                    "--snapshot",
                    "--snapshot-location",
                    pp_loc.to_str().unwrap(),
                ],
            ),
        );
        assert_exit(&pp, 1, "powerpipe --snapshot-location");
        let ck = run_check(
            &s.fleet,
            ck_dir.path(),
            &case_args(
                case,
                &[
                    "--output",
                    "none",
                    "--snapshot",
                    "--snapshot-location",
                    ck_loc.to_str().unwrap(),
                ],
            ),
        );
        assert_exit(&ck, 1, "check --snapshot-location");
        let one_file = |d: &Path| -> (String, String) {
            let files: Vec<_> = std::fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            assert_eq!(files.len(), 1, "one snapshot in {}: {files:?}", d.display());
            let name = files[0].file_name().unwrap().to_str().unwrap().to_string();
            (name, std::fs::read_to_string(&files[0]).unwrap())
        };
        let (pp_name, pp_text) = one_file(&pp_loc);
        let (ck_name, ck_text) = one_file(&ck_loc);
        assert_eq!(
            stamp.replace(&ck_name, ".<TIME>.pps"),
            stamp.replace(&pp_name, ".<TIME>.pps")
        );
        // Both are the run's export (.pps), equal once normalised.
        let (pp_snap, ck_snap) = (normalize("pps", &pp_text), normalize("pps", &ck_text));
        assert!(pp_snap.contains("\"panel_type\":\"control\""), "{pp_snap}");
        if pp_snap != ck_snap {
            panic!(
                "{}",
                first_difference("check's snapshot file", &pp_snap, &ck_snap)
            );
        }
    }
}

#[test]
#[ignore = "needs Powerpipe: run scripts/conformance.sh powerpipe"]
fn a_control_whose_query_fails_is_reported_alike() {
    let s = setup();
    let work = tempfile::tempdir().unwrap();
    let failing = mod_copy(&work.path().join("fail"), "conformance_pack/ec2.pp", &|t| {
        t.replace("arn as resource", "no_such_column as resource")
    });
    let case = &CASES[2];
    let pp_dir = work.path().join("pp");
    let ck_dir = work.path().join("check");
    std::fs::create_dir_all(&pp_dir).unwrap();
    std::fs::create_dir_all(&ck_dir).unwrap();
    let from_pp = all_formats_exiting(
        case,
        &pp_dir,
        &mut |a| powerpipe_at(&failing, &pp_dir, a),
        2,
    );
    let mod_arg = failing.to_str().unwrap().to_string();
    let from_check = all_formats_exiting(
        case,
        &ck_dir,
        &mut |a| {
            let mut a = a.to_vec();
            a.extend(["--mod-location", &mod_arg]);
            run_check(&s.fleet, &ck_dir, &a)
        },
        2,
    );
    // The databases word the error differently (PostgreSQL, SQLite): the
    // message is masked, and the text line that shows it (cut to the width).
    let pg = r#"column "no_such_column" does not exist (SQLSTATE 42703)"#;
    let sqlite = "no such column: no_such_column";
    let error_line = Regex::new(r"(?m)^(\s*)ERROR: .*$").unwrap();
    let mut differences = Vec::new();
    for ((ext, pp), (_, ck)) in from_pp.iter().zip(&from_check) {
        let mask = |t: &str| {
            let t = t
                .replace(&format!("\"{}\"", pg.replace('"', "\"\"")), "<ERROR>")
                .replace(pg, "<ERROR>")
                .replace(&go_escaped(pg), "<ERROR>")
                .replace(sqlite, "<ERROR>");
            let t = error_line
                .replace_all(&t, "${1}ERROR: <ERROR>")
                .into_owned();
            normalize(ext, &t)
        };
        let (pp, ck) = (mask(pp), mask(ck));
        let out = root().join("target/conformance/powerpipe/failing");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join(format!("powerpipe.{ext}")), &pp).unwrap();
        std::fs::write(out.join(format!("check.{ext}")), &ck).unwrap();
        assert!(
            pp.contains("<ERROR>") || ["asff.json", "nunit3.xml"].contains(ext),
            "{ext}: {pp}"
        );
        if pp != ck {
            differences.push(first_difference(&format!("failing {ext}"), &pp, &ck));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

/// `s` as Go's JSON encoder writes it inside a string.
fn go_escaped(s: &str) -> String {
    let q = serde_json::to_string(s).unwrap();
    q[1..q.len() - 1].to_string()
}

#[test]
#[ignore = "needs Powerpipe: run scripts/conformance.sh powerpipe"]
fn text_is_laid_out_alike_at_every_width() {
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    let mut differences = Vec::new();
    // 0 is what a non-terminal gets: the tree's minimum; 300 is cut to 200.
    for width in ["0", "40", "61", "80", "150", "300"] {
        for case in [&CASES[1], &CASES[3]] {
            for output in ["text", "brief"] {
                let kind = if case.target.contains(".benchmark.") {
                    "benchmark"
                } else {
                    "control"
                };
                let mut a = vec![kind, "run"];
                a.extend(case_args(case, &["--output", output, "--mod-location"]));
                let m = root().join("mod");
                a.push(m.to_str().unwrap());
                let pp = powerpipe_in_at_width(dir.path(), &a, width);
                let ck = run_check_at_width(
                    &s.fleet,
                    dir.path(),
                    &case_args(case, &["--output", output]),
                    width,
                );
                assert_exit(&pp, 1, "powerpipe");
                assert_exit(&ck, 1, "check");
                let (pp, ck) = (
                    normalize("txt", &String::from_utf8(pp.stdout).unwrap()),
                    normalize("txt", &String::from_utf8(ck.stdout).unwrap()),
                );
                if pp != ck {
                    differences.push(first_difference(
                        &format!("{} --output {output} at width {width}", case.name),
                        &pp,
                        &ck,
                    ));
                }
            }
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

#[test]
#[ignore = "needs Powerpipe: run scripts/conformance.sh powerpipe"]
fn several_targets_run_one_after_another_or_merged_for_a_named_export() {
    let s = setup();
    let targets = [
        "aws_compliance.benchmark.foundational_security",
        "aws_compliance.benchmark.foundational_security_ec2",
    ];
    let pp_dir = tempfile::tempdir().unwrap();
    let ck_dir = tempfile::tempdir().unwrap();
    let both = |extra: &[&str]| {
        let mut a = targets.to_vec();
        a.extend_from_slice(extra);
        let pp = powerpipe(pp_dir.path(), &a);
        let ck = run_check(&s.fleet, ck_dir.path(), &a);
        assert_exit(&pp, 1, "powerpipe, two targets");
        assert_exit(&ck, 1, "check, two targets");
        (
            String::from_utf8(pp.stdout).unwrap(),
            String::from_utf8(ck.stdout).unwrap(),
        )
    };
    let mut differences = Vec::new();
    // Each target is shown in turn.
    for (output, ext) in [("text", "txt"), ("csv", "csv"), ("json", "json")] {
        let (pp, ck) = both(&["--output", output]);
        if normalize(ext, &pp) != normalize(ext, &ck) {
            differences.push(first_difference(&format!("--output {output}"), &pp, &ck));
        }
    }
    // Unnamed exports: one file per target, under its own name.
    let (_, _) = both(&["--output", "none", "--export", "csv", "--export", "md"]);
    // A named export merges the targets into one run, `check.aws_compliance`.
    let (_, _) = both(&["--output", "none", "--export", "all.csv"]);
    let list = |d: &Path| -> Vec<(String, String)> {
        let stamp = Regex::new(r"\.\d{8}T\d{6}\.").unwrap();
        let mut v: Vec<(String, String)> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| {
                let name = p.file_name().unwrap().to_str().unwrap().to_string();
                let ext = if name.ends_with(".csv") { "csv" } else { "md" };
                let text = normalize(ext, &std::fs::read_to_string(&p).unwrap());
                (stamp.replace(&name, ".<TIME>.").into_owned(), text)
            })
            .collect();
        v.sort();
        v
    };
    let (pp_files, ck_files) = (list(pp_dir.path()), list(ck_dir.path()));
    assert_eq!(
        pp_files.len(),
        5,
        "{:?}",
        pp_files.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    for ((pn, pt), (cn, ct)) in pp_files.iter().zip(&ck_files) {
        assert_eq!(pn, cn);
        if pt != ct {
            differences.push(first_difference(pn, pt, ct));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

#[test]
#[ignore = "needs Powerpipe: run scripts/conformance.sh powerpipe"]
fn csv_separator_and_header_flags_agree() {
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    let mut differences = Vec::new();
    for extra in [
        &["--output", "csv", "--header=false"][..],
        &["--output", "csv", "--separator", "|"][..],
        &["--output", "csv", "--separator", ";", "--header=false"][..],
    ] {
        for case in [&CASES[0], &CASES[3]] {
            let pp = powerpipe(dir.path(), &case_args(case, extra));
            let ck = run_check(&s.fleet, dir.path(), &case_args(case, extra));
            assert_exit(&pp, 1, "powerpipe");
            assert_exit(&ck, 1, "check");
            let (pp, ck) = (
                String::from_utf8(pp.stdout).unwrap(),
                String::from_utf8(ck.stdout).unwrap(),
            );
            let (pp, ck) = (normalize("csv", &pp), normalize("csv", &ck));
            if pp != ck {
                differences.push(first_difference(
                    &format!("{} {extra:?}", case.name),
                    &pp,
                    &ck,
                ));
            }
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}
