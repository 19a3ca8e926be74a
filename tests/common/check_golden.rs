//! What the Powerpipe conformance test (`tests/conformance_powerpipe.rs`) and
//! the golden test (`tests/output_golden.rs`) share: the seeded moto fleet
//! both run over, the runs they compare (targets, variables, formats), how
//! `check` is invoked, and the one normalisation applied to Powerpipe's and
//! `check`'s outputs before they are compared or saved as golden files.
//!
//! Included by those two test files with `#[path = "common/check_golden.rs"]`
//! next to `mod common;`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use regex::Regex;
use serde_json::{json, Value};

use crate::common::moto::{FaultProxy, Moto};
use crate::common::{root, target_dir};

/// moto's `POST /moto-api/seed?a=N` seeds the random generator behind every
/// id it makes, so the same fleet seeded in the same order gets the same
/// instance ids in every run: the goldens name real instance ids.
pub const MOTO_SEED: u64 = 20261207;

/// The golden files' directory.
pub fn golden_dir() -> PathBuf {
    root().join("tests/golden/powerpipe")
}

/// A seeded fleet behind the fault proxy that turns two instances into what
/// moto cannot produce (a pending metadata change, no metadata options).
pub struct Fleet {
    pub moto: Moto,
    pub proxy: FaultProxy,
    pub seeded: Value,
}

/// The proxy's rewrites of DescribeInstances (same as tests/compliance_mod.rs).
pub fn rewrites() -> Value {
    json!([{"action": "DescribeInstances", "rewrite": [
        ["<state>applied</state>(\\s*<httpTokens>required</httpTokens>\\s*<httpPutResponseHopLimit>7</httpPutResponseHopLimit>)", "<state>pending</state>\\1"],
        ["<metadataOptions>\\s*<state>applied</state>\\s*<httpTokens>optional</httpTokens>\\s*<httpPutResponseHopLimit>9</httpPutResponseHopLimit>.*?</metadataOptions>", ""]
    ]}])
}

impl Fleet {
    /// Starts moto, seeds its random ids with [`MOTO_SEED`], seeds the fleet
    /// (tests/fixtures/ec2_fleet.py --control-cases), the launch templates
    /// and launch configurations the other IMDS controls read
    /// (launch_templates.py, launch_configurations.py without bulk ones), in
    /// that order (so that their ids are the same in every run), and starts
    /// the proxy.
    pub fn start() -> Fleet {
        let moto = Moto::start();
        moto.http("POST", &format!("/moto-api/seed?a={MOTO_SEED}"));
        let mut seeded = moto.seed(&["--control-cases"]);
        seeded["launch_templates"] =
            crate::common::oracle::fixture(&moto, "launch_templates.py", &[]);
        seeded["launch_configurations"] = crate::common::oracle::fixture(
            &moto,
            "launch_configurations.py",
            &["--bulk-count", "0"],
        );
        let proxy = FaultProxy::start(&moto.endpoint, rewrites());
        Fleet {
            moto,
            proxy,
            seeded,
        }
    }

    /// The instance ids, sorted: what makes two seeded fleets the same.
    pub fn instance_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.seeded["regions"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|l| l.as_array().unwrap().iter())
            .map(|i| i["InstanceId"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    }
}

/// The regions the fleet has instances in (the connection's `regions`).
pub const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];

/// One run compared format by format.
pub struct Case {
    /// the golden files' stem
    pub name: &'static str,
    /// the control or benchmark, as both tools take it
    pub target: &'static str,
    /// `--var` values
    pub vars: &'static [&'static str],
}

const DIMS: &[&str] = &[
    r#"common_dimensions=["account_id","connection_name","region"]"#,
    r#"tag_dimensions=["Environment","Owner"]"#,
];

/// The runs: the control and the benchmark, with the default variables and
/// with non-default dimensions.
pub const CASES: [Case; 4] = [
    Case {
        name: "control",
        target: "aws_compliance.control.foundational_security_ec2_8",
        vars: &[],
    },
    Case {
        name: "control-dims",
        target: "aws_compliance.control.foundational_security_ec2_8",
        vars: DIMS,
    },
    Case {
        name: "benchmark",
        target: "aws_compliance.benchmark.foundational_security",
        vars: &[],
    },
    Case {
        name: "benchmark-dims",
        target: "aws_compliance.benchmark.foundational_security",
        vars: DIMS,
    },
];

/// How a format is produced.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Via {
    /// `--output NAME` (stdout)
    Output,
    /// `--export FILE` (a file named with the extension)
    Export,
}

/// Every output and export format: (format name, golden extension, how).
/// Exports are written under Powerpipe's default names
/// (`<target>.<YYYYMMDDTHHMMSS><extension>`), the extension being the golden's.
pub const FORMATS: [(&str, &str, Via); 10] = [
    ("text", "txt", Via::Output),
    ("brief", "brief.txt", Via::Output),
    ("snapshot", "snapshot.json", Via::Output),
    ("csv", "csv", Via::Export),
    ("json", "json", Via::Export),
    ("md", "md", Via::Export),
    ("html", "html", Via::Export),
    ("nunit3", "nunit3.xml", Via::Export),
    ("asff", "asff.json", Via::Export),
    ("snapshot", "pps", Via::Export),
];

/// `--output` formats whose stdout is the export file's content.
pub const OUTPUT_AND_EXPORT: [(&str, &str); 4] = [
    ("csv", "csv"),
    ("json", "json"),
    ("md", "md"),
    ("html", "html"),
];

/// The golden file of a case and format.
pub fn golden_path(case: &Case, ext: &str) -> PathBuf {
    golden_dir().join(format!("{}.{ext}", case.name))
}

/// The display width both tools render text at (`POWERPIPE_DISPLAY_WIDTH`).
pub const DISPLAY_WIDTH: &str = "100";

/// The plugin binary (`check` is one of its commands).
pub fn plugin_binary() -> PathBuf {
    target_dir().join("steampipe-plugin-aws")
}

/// Runs `steampipe-plugin-aws check ARGS` in `dir` against the fleet, with
/// the bundled mod and one connection `aws` over [`REGIONS`].
pub fn run_check(fleet: &Fleet, dir: &Path, args: &[&str]) -> Output {
    run_check_at_width(fleet, dir, args, DISPLAY_WIDTH)
}

/// [`run_check`] with `POWERPIPE_DISPLAY_WIDTH` set to `width`.
pub fn run_check_at_width(fleet: &Fleet, dir: &Path, args: &[&str], width: &str) -> Output {
    Command::new(plugin_binary())
        .current_dir(dir)
        .arg("check")
        .args([
            "--endpoint-url",
            &fleet.proxy.endpoint,
            "--default-region",
            "us-east-1",
            "--regions",
            &REGIONS.join(","),
        ])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "AKIDGOLDEN")
        .env("AWS_SECRET_ACCESS_KEY", "golden-secret")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("POWERPIPE_DISPLAY_WIDTH", width)
        .env_remove("AWS_PROFILE")
        .env_remove("PP_VAR_common_dimensions")
        .env_remove("PP_VAR_tag_dimensions")
        .env_remove("PIPES_TOKEN")
        .output()
        .expect("run steampipe-plugin-aws check")
}

/// The args that make one case's run: target, `--var`s, then `extra`.
pub fn case_args<'a>(case: &'a Case, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![case.target];
    for v in case.vars {
        a.push("--var");
        a.push(v);
    }
    a.extend_from_slice(extra);
    a
}

/// Every format of one case from one tool: `run(args)` runs the tool with
/// `args` in `dir` (an empty directory) and returns its output. Runs
/// `--output text`, `--output brief`, `--output snapshot`, and `--output
/// none` with every export by format name, then reads the exported files.
pub fn all_formats(
    case: &Case,
    dir: &Path,
    run: &mut dyn FnMut(&[&str]) -> Output,
) -> Vec<(&'static str, String)> {
    all_formats_exiting(case, dir, run, 1)
}

/// [`all_formats`] of a run that exits with `code`.
pub fn all_formats_exiting(
    case: &Case,
    dir: &Path,
    run: &mut dyn FnMut(&[&str]) -> Output,
    code: i32,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for (name, ext, via) in FORMATS {
        if via == Via::Output {
            let o = run(&case_args(case, &["--output", name]));
            assert_exit(&o, code, &format!("{} --output {name}", case.target));
            out.push((ext, String::from_utf8(o.stdout).expect("utf-8 output")));
        }
    }
    let mut extra = vec!["--output", "none"];
    for (name, _, via) in FORMATS {
        if via == Via::Export {
            extra.extend(["--export", name]);
        }
    }
    let o = run(&case_args(case, &extra));
    assert_exit(&o, code, &format!("{} exports", case.target));
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    for (_, ext, via) in FORMATS {
        if via != Via::Export {
            continue;
        }
        let name_re = Regex::new(&format!(
            r"^{}\.\d{{8}}T\d{{6}}\.{}$",
            regex::escape(case.target),
            regex::escape(ext)
        ))
        .unwrap();
        let i = files
            .iter()
            .position(|f| name_re.is_match(f))
            .unwrap_or_else(|| panic!("no {ext} export named <target>.<time>.{ext} in {files:?}"));
        let f = files.remove(i);
        let p = dir.join(&f);
        out.push((ext, std::fs::read_to_string(&p).unwrap()));
        std::fs::remove_file(&p).unwrap();
    }
    assert!(files.is_empty(), "unexpected files: {files:?}");
    out
}

/// Fails with the tool's stderr unless it exited with `code`.
pub fn assert_exit(o: &Output, code: i32, what: &str) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "{what}: exit status {:?}\nstderr:\n{}\nstdout:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
}

/// A placeholder for what differs between runs or between the two tools.
fn mask(text: &str, re: &str, with: &str) -> String {
    Regex::new(re)
        .expect("normalisation pattern")
        .replace_all(text, with)
        .into_owned()
}

/// The one normalisation of both tools' outputs, by golden extension: what
/// changes from run to run (times, durations), and what names the tool or its
/// working directory (docs/compatibility.md, Powerpipe section, lists each).
pub fn normalize(ext: &str, text: &str) -> String {
    let t = text.to_string();
    match ext {
        "md" => mask(
            &t,
            r"_Report run at `[^`]*` using \[`[^`]*`\]\([^)]*\) in dir `[^`]*`\._",
            "_Report run at `<TIME>` using [`<TOOL VERSION>`](<TOOL URL>) in dir `<DIR>`._",
        ),
        "html" => {
            let t = unescape_markup(&t);
            let t = mask(&t, r"(?s)<style>.*?</style>", "<style><STYLE></style>");
            let t = mask(&t, r#"href='data:[^']*'"#, "href='<FAVICON>'");
            let t = mask(&t, r#"src="data:[^"]*""#, r#"src="<LOGO>""#);
            mask(
                &t,
                r#"(?s)<footer>.*?</footer>"#,
                "<footer><TIME TOOL VERSION DIR></footer>",
            )
        }
        "nunit3.xml" => {
            unescape_markup(&mask(&t, r#"duration="[^"]*""#, r#"duration="<DURATION>""#))
        }
        "csv" => control_blocks_in_order_csv(&t),
        "txt" | "brief.txt" => mask(
            &t,
            r"(?m)^(CRITICAL|HIGH) [. ]*\d+ / +\d+ \[[= ]*\]$",
            "$1 <SEVERITY SUMMARY>",
        ),
        "asff.json" => {
            let t = control_blocks_in_order_asff(&t);
            let t = mask(
                &t,
                r#""(UpdatedAt|CreatedAt)": "[^"]*""#,
                r#""$1": "<TIME>""#,
            );
            mask(
                &t,
                r#""ProviderName": "[^"]*",(\s*)"ProviderVersion": "[^"]*""#,
                r#""ProviderName": "<TOOL>",$1"ProviderVersion": "<VERSION>""#,
            )
        }
        "pps" | "snapshot.json" => {
            let t = mask(
                &t,
                r#""(start_time|end_time)":( ?)"[^"]*""#,
                r#""$1":$2"<TIME>""#,
            );
            sort_dimension_columns(&t)
        }
        _ => t,
    }
}

/// Powerpipe writes the csv and asff exports control by control in the order
/// of a Go map (`ExecutionTree.ControlRuns`), so with several controls the
/// order changes from run to run; `check` writes them in tree order. Both
/// are compared with each control's rows put in control id order (a stable
/// sort: the rows of a control keep theirs).
fn control_blocks_in_order_csv(text: &str) -> String {
    let re = Regex::new(r"(?:^|[,;|])control\.([A-Za-z0-9_]+)").expect("control id pattern");
    let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
    let header = usize::from(lines.first().is_some_and(|l| l.starts_with("group_id")));
    lines[header..].sort_by_key(|l| re.captures(l).map(|c| c[1].to_string()));
    lines.concat()
}

/// [`control_blocks_in_order_csv`] for the asff export: a JSON array whose
/// findings start with `{` and end with `}` or `},` at column 0.
fn control_blocks_in_order_asff(text: &str) -> String {
    let Some(body) = text
        .strip_prefix("[\n")
        .and_then(|b| b.trim_end().strip_suffix(']'))
    else {
        return text.to_string();
    };
    let mut blocks: Vec<String> = Vec::new();
    let mut current = String::new();
    for line in body.split_inclusive('\n') {
        if line == "}\n" || line == "},\n" || line == "}" || line == "}," {
            current.push_str("}\n");
            blocks.push(std::mem::take(&mut current));
        } else {
            current.push_str(line);
        }
    }
    if !current.trim().is_empty() {
        return text.to_string();
    }
    let generator = Regex::new(r#""GeneratorId": "([^"]*)""#).expect("generator pattern");
    blocks.sort_by_key(|b| generator.captures(b).map(|c| c[1].to_string()));
    let n = blocks.len();
    let mut out = String::from("[\n");
    for (i, b) in blocks.into_iter().enumerate() {
        if i + 1 < n {
            out.push_str(&b[..b.len() - 1]);
            out.push_str(",\n");
        } else {
            out.push_str(&b);
        }
    }
    out.push_str("]\n");
    out
}

/// Powerpipe's html and nunit3 templates write text raw (a NULL dimension,
/// `<nil>`, becomes an unclosed tag); `check` escapes it. Compared unescaped.
fn unescape_markup(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

/// Powerpipe lists a control's dimension columns in a snapshot's
/// `data.columns` in Go map order, which changes from run to run (a rotation
/// of the query's order): the columns after reason, resource and status are
/// sorted here, in both tools' snapshots.
fn sort_dimension_columns(text: &str) -> String {
    let columns = Regex::new(r#""columns": ?\[(?s:(.*?))\]"#).unwrap();
    let object = Regex::new(r"\{[^{}]*\}").unwrap();
    columns
        .replace_all(text, |c: &regex::Captures| {
            let body = &c[1];
            let objs: Vec<regex::Match> = object.find_iter(body).collect();
            if objs.len() <= 4 {
                return c[0].to_string();
            }
            let mut dims: Vec<&str> = objs[3..].iter().map(|m| m.as_str()).collect();
            dims.sort();
            let mut out = c[0][..c[0].len() - body.len() - 1].to_string();
            let mut last = 0;
            for (i, m) in objs.iter().enumerate() {
                out.push_str(&body[last..m.start()]);
                out.push_str(if i < 3 { m.as_str() } else { dims[i - 3] });
                last = m.end();
            }
            out.push_str(&body[last..]);
            out.push(']');
            out
        })
        .into_owned()
}

/// Compares `actual` with the golden file at `path` (already normalised);
/// the message names the first differing line.
pub fn compare_with_golden(path: &Path, actual: &str) -> Result<(), String> {
    let want = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "{}: {e}: regenerate the goldens with scripts/conformance.sh powerpipe",
            path.display()
        )
    })?;
    if want == actual {
        return Ok(());
    }
    Err(first_difference(&path.display().to_string(), &want, actual))
}

/// `what differs at line N: want ... got ...`.
pub fn first_difference(what: &str, want: &str, got: &str) -> String {
    let (w, g): (Vec<&str>, Vec<&str>) = (want.split('\n').collect(), got.split('\n').collect());
    let n = (0..w.len().max(g.len()))
        .find(|&i| w.get(i) != g.get(i))
        .unwrap_or(0);
    format!(
        "{what} differs at line {}:\n  want: {:?}\n  got:  {:?}",
        n + 1,
        w.get(n),
        g.get(n)
    )
}
