//! The generated JSON writers are what their generator makes from the
//! aws-sdk crates locked in Cargo.lock: `tools/gen_ec2_json.py` (and
//! `--crate autoscaling`), formatted by rustfmt, must reproduce
//! `src/aws/ec2_json.rs` and `src/aws/autoscaling_json.rs` byte for byte.
//! A crate upgrade that changes a type, or a hand edit of a generated file,
//! fails here until the file is regenerated.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

fn generated(args: &[&str]) -> String {
    let gen = Command::new("python3")
        .arg(common::root().join("tools/gen_ec2_json.py"))
        .args(args)
        .output()
        .expect("run python3 tools/gen_ec2_json.py");
    assert!(
        gen.status.success(),
        "tools/gen_ec2_json.py {args:?} failed: {}",
        String::from_utf8_lossy(&gen.stderr)
    );
    let mut fmt = Command::new("rustfmt")
        .args(["--edition", "2021", "--emit", "stdout"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run rustfmt (rustup component add rustfmt)");
    fmt.stdin.take().unwrap().write_all(&gen.stdout).unwrap();
    let out = fmt.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "rustfmt failed on the generator's output: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn assert_same(file: &str, args: &[&str]) {
    let want = generated(args);
    let have = std::fs::read_to_string(common::root().join(file)).unwrap();
    if want != have {
        let line = want
            .lines()
            .zip(have.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| want.lines().count().min(have.lines().count()));
        panic!(
            "{file} is not what tools/gen_ec2_json.py {} generates (first difference at line {}): \
             regenerate it with `tools/gen_ec2_json.py {} > {file} && cargo fmt`",
            args.join(" "),
            line + 1,
            args.join(" ")
        );
    }
}

#[test]
fn ec2_json_is_the_generators_output() {
    assert_same("src/aws/ec2_json.rs", &[]);
}

#[test]
fn autoscaling_json_is_the_generators_output() {
    assert_same("src/aws/autoscaling_json.rs", &["--crate", "autoscaling"]);
}
