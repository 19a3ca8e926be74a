//! The bundled mod renders as Powerpipe renders it: the control's SQL equals
//! section 3.3 of the specification, the dimension fragments equal upstream's
//! for every combination, and the named query file is the rendered SQL.

mod common;

use std::path::PathBuf;

use steampipe_plugin_aws::check::powerpipe_mod::{ModDef, ResolvedMod, VarInputs};

fn mod_dir() -> PathBuf {
    common::root().join("mod")
}

fn resolve(vars: &[&str]) -> ResolvedMod {
    let def = ModDef::load(&mod_dir()).unwrap();
    let mut inputs = VarInputs::default();
    for v in vars {
        inputs.from_arg(v).unwrap();
    }
    ResolvedMod::resolve(def, &inputs).unwrap()
}

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The exact SQL of section 3.3 of `aws-ec2-instance-and-mod.md`.
fn spec_sql() -> String {
    let fixture =
        std::fs::read_to_string(common::root().join("tests/fixtures/control_sql_spec.sql"))
            .unwrap();
    let spec_path = common::root().join("../shared/docs/aws-ec2-instance-and-mod.md");
    if let Ok(spec) = std::fs::read_to_string(&spec_path) {
        let section = &spec[spec.find("### 3.3").expect("section 3.3")..];
        let start = section.find("```sql\n").unwrap() + 7;
        let end = start + section[start..].find("```").unwrap();
        assert_eq!(
            &section[start..end],
            fixture,
            "tests/fixtures/control_sql_spec.sql no longer matches the specification"
        );
    } else {
        eprintln!(
            "note: {} not found; comparing with the fixture copied from it",
            spec_path.display()
        );
    }
    fixture
}

#[test]
fn the_control_sql_with_default_variables_is_the_specifications() {
    let m = resolve(&[]);
    let sql = m.control_sql("foundational_security_ec2_8").unwrap();
    let spec = spec_sql();
    assert_eq!(squash(&sql), squash(&spec), "drift from section 3.3");
    // Exact too: the heredoc's indentation stripping and the two-space line.
    assert_eq!(sql, spec);
    assert!(sql.ends_with(";\n"));
}

#[test]
fn dimension_fragments_match_upstream_for_every_combination() {
    let m = resolve(&[]);
    assert_eq!(
        m.locals["common_dimensions_sql"].as_str().unwrap(),
        ", region, account_id"
    );
    assert_eq!(m.locals["tag_dimensions_sql"].as_str().unwrap(), "");
    let m = resolve(&[
        r#"common_dimensions=["account_id","connection_name","region"]"#,
        r#"tag_dimensions=["Environment","Owner"]"#,
    ]);
    assert_eq!(
        m.locals["common_dimensions_sql"].as_str().unwrap(),
        ", _ctx ->> 'connection_name' as connection_name, region, account_id"
    );
    assert_eq!(
        m.locals["tag_dimensions_sql"].as_str().unwrap(),
        r#",  tags ->> 'Environment' as "Environment",  tags ->> 'Owner' as "Owner""#
    );
    // The template fixes the order, whatever the list's order; quotes are doubled.
    let dims = ["account_id", "connection_name", "region"];
    for mask in 0..8u8 {
        let chosen: Vec<&str> = dims
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, d)| *d)
            .collect();
        let arg = format!(
            "common_dimensions={}",
            serde_json::to_string(&chosen).unwrap()
        );
        let m = resolve(&[&arg, r#"tag_dimensions=["a\"b"]"#]);
        let mut want = String::new();
        if chosen.contains(&"connection_name") {
            want.push_str(", _ctx ->> 'connection_name' as connection_name");
        }
        if chosen.contains(&"region") {
            want.push_str(", region");
        }
        if chosen.contains(&"account_id") {
            want.push_str(", account_id");
        }
        assert_eq!(
            m.locals["common_dimensions_sql"].as_str().unwrap(),
            want,
            "{chosen:?}"
        );
        let global = want.replace(", region", "");
        assert_eq!(
            m.locals["common_dimensions_global_sql"].as_str().unwrap(),
            global
        );
        assert_eq!(
            m.locals["tag_dimensions_sql"].as_str().unwrap(),
            r#",  tags ->> 'a"b' as "a""b""#
        );
    }
}

#[test]
fn names_titles_tags_and_hierarchy_are_upstreams() {
    let m = resolve(&[]);
    assert_eq!(m.def.name, "aws_compliance");
    assert_eq!(
        m.mod_text("title").unwrap().as_deref(),
        Some("AWS Compliance")
    );
    assert_eq!(
        m.def.required_plugins(),
        [("aws".to_string(), "1.28.0".to_string())]
    );
    assert_eq!(
        m.mod_value("database").unwrap().unwrap().as_str(),
        Some("postgres://steampipe@localhost:9193/steampipe")
    );
    assert_eq!(
        m.children("foundational_security").unwrap(),
        [
            (
                "benchmark".into(),
                "foundational_security_autoscaling".into()
            ),
            ("benchmark".into(), "foundational_security_ec2".into())
        ]
    );
    assert_eq!(
        m.children("foundational_security_ec2").unwrap(),
        [
            ("control".into(), "foundational_security_ec2_8".into()),
            ("control".into(), "foundational_security_ec2_170".into())
        ]
    );
    // Upstream's FedRAMP benchmarks take title and description from NIST's.
    for key in ["title", "description"] {
        let nist = m.benchmark_text("nist_800_53_rev_4_ac", key).unwrap();
        assert!(nist.is_some());
        assert_eq!(m.benchmark_text("fedramp_low_rev_4_ac", key).unwrap(), nist);
    }
    assert_eq!(
        m.benchmark_text("fedramp_low_rev_4_ac", "title")
            .unwrap()
            .as_deref(),
        Some("Access Control (AC)")
    );
    assert_eq!(
        m.benchmark_text("foundational_security", "title")
            .unwrap()
            .as_deref(),
        Some("AWS Foundational Security Best Practices")
    );
    assert_eq!(
        m.benchmark_text("foundational_security_ec2", "title")
            .unwrap()
            .as_deref(),
        Some("EC2")
    );
    let c = "foundational_security_ec2_8";
    assert_eq!(
        m.control_text(c, "title").unwrap().as_deref(),
        Some("8 EC2 instances should use IMDSv2")
    );
    assert_eq!(
        m.control_text(c, "severity").unwrap().as_deref(),
        Some("high")
    );
    assert_eq!(
        m.control_text(c, "description").unwrap().as_deref(),
        Some("This control checks whether your EC2 instance metadata version is configured with Instance Metadata Service Version 2 (IMDSv2). The control passes if HttpTokens is set to required for IMDSv2. The control fails if HttpTokens is set to optional.")
    );
    let tags: Vec<(String, String)> = m.tags("control", c).unwrap().into_iter().collect();
    let want: Vec<(String, String)> = [
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
    assert_eq!(tags, want);
    let bench_tags = m.tags("benchmark", "foundational_security").unwrap();
    assert_eq!(bench_tags["type"], "Benchmark");
    assert_eq!(bench_tags["service"], "AWS");
    assert_eq!(
        m.tags("benchmark", "foundational_security_ec2").unwrap()["service"],
        "AWS/EC2"
    );
    let doc = m.control_text(c, "documentation").unwrap().unwrap();
    // Upstream's documentation (tools/gen_mod.py copies it).
    for section in ["## Description", "## Remediation"] {
        assert!(
            doc.contains(section),
            "control documentation lacks {section}"
        );
    }
}

#[test]
fn the_named_query_file_is_the_rendered_control_sql() {
    let m = resolve(&[]);
    let file = std::fs::read_to_string(common::root().join("queries/ec2_instance_uses_imdsv2.sql"))
        .unwrap();
    let body: String = file
        .lines()
        .filter(|l| !l.starts_with("--"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(body, m.control_sql("foundational_security_ec2_8").unwrap());
}

#[test]
fn bad_variables_are_refused_with_the_variable_named() {
    let def = ModDef::load(&mod_dir()).unwrap();
    let mut inputs = VarInputs::default();
    inputs.from_arg("common_dimensions=\"region\"").unwrap();
    let e = ResolvedMod::resolve(def.clone(), &inputs).err().unwrap();
    assert!(
        e.to_string()
            .contains("variable common_dimensions: expected a value of type list(string)"),
        "{e}"
    );
    let mut inputs = VarInputs::default();
    inputs.from_arg("no_such_var=1").unwrap();
    let e = ResolvedMod::resolve(def.clone(), &inputs).err().unwrap();
    assert!(
        e.to_string()
            .contains("--var no_such_var: the mod aws_compliance has no variable no_such_var"),
        "{e}"
    );
    // PP_VAR_ values are read, and --var wins over them.
    let mut inputs = VarInputs::default();
    inputs
        .from_env(
            [(
                "PP_VAR_tag_dimensions".to_string(),
                r#"["Team"]"#.to_string(),
            )],
            &def,
        )
        .unwrap();
    let m = ResolvedMod::resolve(def.clone(), &inputs).unwrap();
    assert_eq!(
        m.locals["tag_dimensions_sql"].as_str().unwrap(),
        r#",  tags ->> 'Team' as "Team""#
    );
    inputs.from_arg(r#"tag_dimensions=[]"#).unwrap();
    let m = ResolvedMod::resolve(def, &inputs).unwrap();
    assert_eq!(m.locals["tag_dimensions_sql"].as_str().unwrap(), "");
}
