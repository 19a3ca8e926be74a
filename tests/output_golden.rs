//! `steampipe-plugin-aws check`'s real output, format by format, against
//! Powerpipe's own output for the same run: the golden files in
//! `tests/golden/powerpipe/` are what Powerpipe v1.5.2 printed and exported
//! for the same seeded moto fleet (same instance ids), normalised by
//! `tests/common/check_golden.rs` (times, durations, the tool's name and
//! directory; docs/compatibility.md, Powerpipe section, lists each rule).
//!
//! Regenerate the goldens with real Powerpipe (builds it, about 7 min the
//! first time; then seconds):
//!
//! ```sh
//! scripts/conformance.sh powerpipe
//! ```
//!
//! This test needs no Powerpipe: it starts moto with the same random seed,
//! seeds the same fleet, runs `check` for each case and compares.

#[path = "common/check_golden.rs"]
mod check_golden;
mod common;

use check_golden::*;

#[test]
fn check_prints_and_exports_what_powerpipe_does() {
    let fleet = Fleet::start();
    let mut differences = Vec::new();
    for case in &CASES {
        let dir = tempfile::tempdir().unwrap();
        let outputs = all_formats(case, dir.path(), &mut |a| run_check(&fleet, dir.path(), a));
        assert_eq!(outputs.len(), FORMATS.len());
        for (ext, text) in &outputs {
            if let Err(e) = compare_with_golden(&golden_path(case, ext), &normalize(ext, text)) {
                differences.push(e);
            }
        }
        // `--output X` prints what `--export X` writes.
        for (name, ext) in OUTPUT_AND_EXPORT {
            let o = run_check(&fleet, dir.path(), &case_args(case, &["--output", name]));
            assert_exit(&o, 1, name);
            let text = String::from_utf8(o.stdout).unwrap();
            if let Err(e) = compare_with_golden(&golden_path(case, ext), &normalize(ext, &text)) {
                differences.push(format!("--output {name}: {e}"));
            }
        }
    }
    assert!(
        differences.is_empty(),
        "check differs from Powerpipe's outputs:\n{}",
        differences.join("\n")
    );
}

#[test]
fn the_goldens_are_powerpipes_outputs_of_this_fleet() {
    // What makes them Powerpipe's and not check's: Powerpipe's own marks.
    let text = std::fs::read_to_string(golden_path(&CASES[2], "asff.json")).unwrap();
    assert!(text.contains("\"GeneratorId\": \"powerpipe-foundational_security_ec2_8\""));
    let csv = std::fs::read_to_string(golden_path(&CASES[3], "csv")).unwrap();
    assert!(
        csv.contains(",<nil>,"),
        "Powerpipe writes <nil> for a NULL tag dimension"
    );
    // Every instance of the fleet is in the goldens, by id.
    let fleet = Fleet::start();
    let ids = fleet.instance_ids();
    assert_eq!(ids.len(), 13);
    for case in &CASES {
        // The formats that name each result's resource.
        for ext in ["csv", "json", "html", "asff.json", "pps", "snapshot.json"] {
            let text = std::fs::read_to_string(golden_path(case, ext)).unwrap();
            for id in &ids {
                assert!(
                    text.contains(id.as_str()),
                    "{}.{ext} lacks {id}: the fleet's ids changed (moto seed?); regenerate with scripts/conformance.sh powerpipe",
                    case.name
                );
            }
        }
    }
}
