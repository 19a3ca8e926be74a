//! Renders a control run ([`CheckRun`]) in Powerpipe's `--output` and
//! `--export` formats: text, brief, csv, json, md, html, nunit3, asff and
//! snapshot (`.pps`), plus the default export file names and the stderr
//! progress line.
//!
//! The layouts follow Powerpipe (turbot/powerpipe `internal/controldisplay`)
//! as described in the project's upstream notes (§4.3, §4.4). Where those
//! notes are silent the code does what Powerpipe visibly does, and says so.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;

use super::model::{
    CheckRun, ControlRun, GroupRun, Node, ResultRow, RunStatus, Status, StatusSummary,
};

/// The `group_id` of the result group Powerpipe wraps every run in.
pub const ROOT_GROUP_ID: &str = "root_result_group";

/// `SteampipeSnapshotSchemaVersion` in pipe-fittings.
pub const SNAPSHOT_SCHEMA_VERSION: &str = "20240607";

/// An output or export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// the default terminal report
    Text,
    /// the terminal report with only alarm and error rows
    Brief,
    /// one line per result row
    Csv,
    /// Powerpipe's JSON result tree
    Json,
    /// a markdown report
    Md,
    /// a self-contained HTML report
    Html,
    /// NUnit 3 XML
    Nunit3,
    /// AWS Security Finding Format (a JSON array of findings)
    Asff,
    /// a Powerpipe snapshot (`.pps`)
    Snapshot,
    /// nothing
    None,
}

const OUTPUT_VALUES: &str = "text, brief, csv, html, json, md, snapshot, pps, none";
const EXPORT_VALUES: &str =
    "csv, html, json, md, nunit3 (or nunit3.xml), asff (or asff.json), snapshot (or pps)";
const EXPORT_EXTENSIONS: &str = ".csv, .html, .json, .md, .nunit3.xml, .xml, .asff.json, .pps";

impl Format {
    /// `--output` values: text|brief|csv|json|md|snapshot|pps|none (pps =
    /// snapshot). `html` is accepted too, as Powerpipe's `--output` flag lists
    /// it (§4.3). Others -> Err(message listing the valid ones).
    pub fn parse_output(s: &str) -> Result<Format, String> {
        Ok(match s.trim() {
            "text" => Format::Text,
            "brief" => Format::Brief,
            "csv" => Format::Csv,
            "json" => Format::Json,
            "md" => Format::Md,
            "html" => Format::Html,
            "snapshot" | "pps" => Format::Snapshot,
            "none" => Format::None,
            other => {
                return Err(format!(
                    "invalid output format '{other}': valid values are {OUTPUT_VALUES}"
                ))
            }
        })
    }

    /// A bare export format name or alias.
    fn export_name(s: &str) -> Option<Format> {
        Some(match s {
            "csv" => Format::Csv,
            "json" => Format::Json,
            "md" => Format::Md,
            "html" => Format::Html,
            "nunit3" | "nunit3.xml" => Format::Nunit3,
            "asff" | "asff.json" => Format::Asff,
            "snapshot" | "pps" => Format::Snapshot,
            _ => return None,
        })
    }

    /// `--export` value: a format name (csv, json, md, html, nunit3 (alias
    /// nunit3.xml), asff (alias asff.json), snapshot or pps) or a file name
    /// whose extension picks the format (.csv, .json, .md, .html, .nunit3.xml
    /// or .xml -> nunit3, .asff.json -> asff, .pps -> snapshot). Returns
    /// (format, Some(path)) for a file name, (format, None) for a bare format.
    /// Unknown -> Err naming the value and the valid formats.
    pub fn parse_export(s: &str) -> Result<(Format, Option<PathBuf>), String> {
        if let Some(f) = Format::export_name(s.trim()) {
            return Ok((f, None));
        }
        // Longest extensions first, so `x.asff.json` is asff and not json.
        // Extensions match case-insensitively (`OUT.JSON` is json).
        const BY_EXTENSION: [(&str, Format); 8] = [
            (".asff.json", Format::Asff),
            (".nunit3.xml", Format::Nunit3),
            (".xml", Format::Nunit3),
            (".json", Format::Json),
            (".csv", Format::Csv),
            (".html", Format::Html),
            (".md", Format::Md),
            (".pps", Format::Snapshot),
        ];
        let lower = s.to_ascii_lowercase();
        for (ext, format) in BY_EXTENSION {
            if lower.len() > ext.len() && lower.ends_with(ext) {
                return Ok((format, Some(PathBuf::from(s))));
            }
        }
        Err(format!(
            "invalid export '{s}': give a format ({EXPORT_VALUES}) or a file name ending in one of {EXPORT_EXTENSIONS}"
        ))
    }

    /// The extension Powerpipe gives default export files: .csv .json .md
    /// .html .nunit3.xml .asff.json .pps (text/brief, which are not export
    /// formats, get .txt; none gets nothing).
    pub fn extension(self) -> &'static str {
        match self {
            Format::Text | Format::Brief => ".txt",
            Format::Csv => ".csv",
            Format::Json => ".json",
            Format::Md => ".md",
            Format::Html => ".html",
            Format::Nunit3 => ".nunit3.xml",
            Format::Asff => ".asff.json",
            Format::Snapshot => ".pps",
            Format::None => "",
        }
    }

    /// The format's name, as `--output` / `--export` spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Brief => "brief",
            Format::Csv => "csv",
            Format::Json => "json",
            Format::Md => "md",
            Format::Html => "html",
            Format::Nunit3 => "nunit3",
            Format::Asff => "asff",
            Format::Snapshot => "snapshot",
            Format::None => "none",
        }
    }
}

/// Renders `run` in `format`. `width` is the text display width
/// (POWERPIPE_DISPLAY_WIDTH, default 100 when not a terminal). `color` turns
/// ANSI colours on for text/brief (off for files and non-terminals).
pub fn render(run: &CheckRun, format: Format, width: usize, color: bool) -> String {
    match format {
        Format::Text => render_text(run, false, width, color),
        Format::Brief => render_text(run, true, width, color),
        Format::Csv => render_csv(run, ',', true),
        Format::Json => render_json(run),
        Format::Md => render_md(run),
        Format::Html => render_html(run),
        Format::Nunit3 => render_nunit3(run),
        Format::Asff => render_asff(run),
        Format::Snapshot => render_snapshot(run),
        Format::None => String::new(),
    }
}

/// Powerpipe's default export file name: `<target full name>.<YYYYMMDDTHHMMSS><ext>`
/// for the run's start time, in UTC (Powerpipe uses local time). An
/// unparsable start time falls back to the current time.
pub fn default_export_name(run: &CheckRun, format: Format) -> String {
    let secs = parse_rfc3339(&run.start_time)
        .map(|(s, _)| s)
        .unwrap_or_else(now_unix);
    let (y, mo, d, h, mi, s) = civil(secs);
    format!(
        "{}.{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}{}",
        run.root.full_name(),
        format.extension()
    )
}

/// The stderr progress display, approximately as Powerpipe shows it:
/// `Running 1 control. (1 complete, 0 running, 0 pending, 0 errors): foundational_security_ec2_8`.
/// With only `done` and `total` known, one control counts as running while
/// any remain, and no errors are counted (see [`progress_status`]).
pub fn progress_line(done: usize, total: usize, label: &str) -> String {
    let done = done.min(total);
    let running = usize::from(done < total);
    progress_status(total, done, running, 0, label)
}

/// The progress line with every count given: `pending` is what is neither
/// complete nor running.
pub fn progress_status(
    total: usize,
    complete: usize,
    running: usize,
    errors: usize,
    label: &str,
) -> String {
    let pending = total.saturating_sub(complete + running);
    let mut s = format!(
        "Running {total} {}. ({complete} complete, {running} running, {pending} pending, {errors} {})",
        plural("control", total),
        plural("error", errors)
    );
    if !label.is_empty() {
        s.push_str(": ");
        s.push_str(label);
    }
    s
}

fn plural(word: &str, n: usize) -> String {
    if n == 1 {
        word.to_string()
    } else {
        format!("{word}s")
    }
}

// ---------------------------------------------------------------------------
// The tree as Powerpipe's result groups see it.

/// A synthetic root (several targets merged under `check.<mod>`) rather than
/// a benchmark: its children are the run's top-level items.
fn is_synthetic_root(g: &GroupRun) -> bool {
    g.full_name == ROOT_GROUP_ID || !g.full_name.contains(".benchmark.")
}

/// The root result group: Powerpipe titles it after its single target and
/// gives it no description and no tags (expected_check_json_multiple_parents.json).
struct RootGroup<'a> {
    title: &'a str,
    groups: Vec<&'a GroupRun>,
    controls: Vec<&'a ControlRun>,
}

fn root_group(run: &CheckRun) -> RootGroup<'_> {
    match &run.root {
        Node::Control(c) => RootGroup {
            title: &c.title,
            groups: vec![],
            controls: vec![c],
        },
        Node::Group(g) if is_synthetic_root(g) => {
            let mut groups = Vec::new();
            let mut controls = Vec::new();
            for ch in &g.children {
                match ch {
                    Node::Group(cg) => groups.push(cg),
                    Node::Control(c) => controls.push(c),
                }
            }
            RootGroup {
                title: &g.title,
                groups,
                controls,
            }
        }
        Node::Group(g) => RootGroup {
            title: &g.title,
            groups: vec![g],
            controls: vec![],
        },
    }
}

fn group_summary(g: &GroupRun) -> StatusSummary {
    let mut s = StatusSummary::default();
    for ch in &g.children {
        s.add(&ch.summary());
    }
    s
}

/// `control.<short>` for the mod's own controls, else the full name.
fn control_id(run: &CheckRun, c: &ControlRun) -> String {
    let own = format!("{}.control.", run.mod_name);
    if !run.mod_name.is_empty() && c.full_name.starts_with(&own) {
        format!("control.{}", &c.full_name[own.len()..])
    } else {
        c.full_name.clone()
    }
}

fn status_upper(s: Status) -> &'static str {
    match s {
        Status::Ok => "OK",
        Status::Alarm => "ALARM",
        Status::Info => "INFO",
        Status::Skip => "SKIP",
        Status::Error => "ERROR",
    }
}

/// Severities in the order the text summary lists them; others follow sorted.
const SEVERITY_ORDER: [&str; 5] = ["critical", "high", "medium", "low", "info"];

fn severity_rank(s: &str) -> (usize, String) {
    let l = s.to_ascii_lowercase();
    let r = SEVERITY_ORDER
        .iter()
        .position(|x| *x == l)
        .unwrap_or(SEVERITY_ORDER.len());
    (r, l)
}

// ---------------------------------------------------------------------------
// text / brief

mod ansi {
    pub const BOLD: &str = "1";
    pub const GREY: &str = "90";
    pub const RED: &str = "31";
    pub const BOLD_RED: &str = "1;31";
    pub const GREEN: &str = "32";
    pub const YELLOW: &str = "33";
    pub const CYAN: &str = "36";
    /// dimension values cycle through these, as Powerpipe colours each
    /// dimension differently
    pub const DIMENSIONS: [&str; 6] = ["36", "35", "34", "33", "32", "96"];
}

fn status_style(s: Status) -> &'static str {
    match s {
        Status::Ok => ansi::GREEN,
        Status::Alarm => ansi::BOLD_RED,
        Status::Error => ansi::RED,
        Status::Info => ansi::CYAN,
        Status::Skip => ansi::GREY,
    }
}

fn severity_style(sev: &str) -> &'static str {
    match sev.to_ascii_lowercase().as_str() {
        "critical" => ansi::BOLD_RED,
        "high" => ansi::RED,
        "medium" => ansi::YELLOW,
        _ => "",
    }
}

/// A piece of a text line and its ANSI style ("" for none).
type Seg = (String, &'static str);

fn seg(text: impl Into<String>, style: &'static str) -> Seg {
    (text.into(), style)
}

fn paint(out: &mut String, text: &str, style: &str, color: bool) {
    if color && !style.is_empty() && !text.is_empty() {
        let _ = write!(out, "\x1b[{style}m{text}\x1b[0m");
    } else {
        out.push_str(text);
    }
}

fn one_line(s: &str) -> String {
    s.replace(['\r', '\n', '\t'], " ")
}

const BAR_WIDTH: u64 = 10;
const MIN_DOTS: usize = 3;

fn segments(n: u64, scale: u64) -> u64 {
    if scale == 0 || n == 0 {
        0
    } else {
        (n * BAR_WIDTH).div_ceil(scale).min(BAR_WIDTH)
    }
}

/// Powerpipe's counter graph: `[` failed segments (red) then passed ones
/// (green) `]`, ten wide, scaled against the largest count shown alongside
/// (so without colour it shows relative size, like Powerpipe's).
fn counter_bar(failed: u64, total: u64, scale: u64) -> Vec<Seg> {
    let all = segments(total, scale);
    let fail = segments(failed, scale).min(all);
    vec![
        seg("[", ""),
        seg("=".repeat(fail as usize), ansi::RED),
        seg("=".repeat((all - fail) as usize), ansi::GREEN),
        seg(" ".repeat((BAR_WIDTH - all) as usize), ""),
        seg("]", ""),
    ]
}

fn counts(s: &StatusSummary, scale: u64) -> Vec<Seg> {
    let failed = s.failed();
    let mut v = vec![
        seg(
            failed.to_string(),
            if failed > 0 {
                ansi::BOLD_RED
            } else {
                ansi::GREEN
            },
        ),
        seg(format!(" / {} ", s.total()), ""),
    ];
    v.extend(counter_bar(failed, s.total(), scale));
    v
}

struct TextRenderer {
    width: usize,
    color: bool,
    brief: bool,
    /// the largest control total: control bars scale against it
    control_scale: u64,
    /// the run's total: group and summary bars scale against it
    total_scale: u64,
    out: String,
}

impl TextRenderer {
    /// `<prefix><left> ..... <right>`, `width` wide: dots fill the gap and the
    /// last left piece is cut (with `…`) when it does not fit.
    fn dotted(&mut self, prefix: &str, mut left: Vec<Seg>, right: Vec<Seg>) {
        let len = |v: &[Seg]| v.iter().map(|s| s.0.chars().count()).sum::<usize>();
        let (plen, llen, rlen) = (prefix.chars().count(), len(&left), len(&right));
        let fixed = plen + llen + 1 + rlen + usize::from(rlen > 0);
        let mut dots = self.width.saturating_sub(fixed);
        if dots < MIN_DOTS {
            let need = (fixed + MIN_DOTS).saturating_sub(self.width);
            if let Some(last) = left.last_mut() {
                let n = last.0.chars().count();
                if n > need + 1 {
                    last.0 = last.0.chars().take(n - need - 1).collect::<String>() + "…";
                }
            }
            dots = MIN_DOTS;
        }
        let color = self.color;
        let out = &mut self.out;
        out.push_str(prefix);
        for (text, style) in &left {
            paint(out, text, style, color);
        }
        out.push(' ');
        paint(out, &".".repeat(dots), ansi::GREY, color);
        if rlen > 0 {
            out.push(' ');
            for (text, style) in &right {
                paint(out, text, style, color);
            }
        }
        out.push('\n');
    }

    fn plain(&mut self, s: &str) {
        self.out.push_str(s.trim_end());
        self.out.push('\n');
    }

    fn node(&mut self, node: &Node, prefix: &str) {
        match node {
            Node::Group(g) => self.group(g, prefix),
            Node::Control(c) => self.control(c, prefix),
        }
    }

    fn group(&mut self, g: &GroupRun, prefix: &str) {
        let s = group_summary(g);
        let left = vec![seg("+ ", ""), seg(one_line(&g.title), ansi::BOLD)];
        let right = counts(&s, self.total_scale);
        self.dotted(prefix, left, right);
        self.plain(&format!("{prefix}|"));
        let child = format!("{prefix}| ");
        for ch in &g.children {
            self.node(ch, &child);
        }
        self.plain(prefix);
    }

    fn control(&mut self, c: &ControlRun, prefix: &str) {
        let left = vec![seg("+ ", ""), seg(one_line(&c.title), ansi::BOLD)];
        let mut right = Vec::new();
        if !c.severity.is_empty() {
            right.push(seg(c.severity.to_uppercase(), severity_style(&c.severity)));
            right.push(seg(" ", ""));
        }
        right.extend(counts(&c.summary, self.control_scale));
        self.dotted(prefix, left, right);

        let rows: Vec<&ResultRow> = c
            .results
            .iter()
            .filter(|r| !self.brief || matches!(r.status, Status::Alarm | Status::Error))
            .collect();
        let body = format!("{prefix}  ");
        if c.run_error.is_some() || !rows.is_empty() {
            self.plain(&format!("{body}|"));
        }
        if let Some(e) = &c.run_error {
            let left = vec![seg("ERROR", ansi::RED), seg(": ", ""), seg(one_line(e), "")];
            self.dotted(&body, left, vec![]);
        }
        for r in rows {
            // Powerpipe pads the status to five characters: `OK   : …`.
            let left = vec![
                seg(status_upper(r.status), status_style(r.status)),
                seg(
                    format!("{}: ", " ".repeat(5 - status_upper(r.status).len())),
                    "",
                ),
                seg(one_line(&r.reason), ""),
            ];
            let mut right = Vec::new();
            for (i, (_, v)) in r.dimensions.iter().enumerate() {
                if i > 0 {
                    right.push(seg(" ", ""));
                }
                right.push(seg(
                    one_line(v),
                    ansi::DIMENSIONS[i % ansi::DIMENSIONS.len()],
                ));
            }
            self.dotted(&body, left, right);
        }
        self.plain(prefix);
    }

    fn summary(&mut self, run: &CheckRun) {
        let total = run.root.summary();
        let scale = total.total();
        self.out.push_str("Summary\n\n");
        for (status, n) in [
            (Status::Ok, total.ok),
            (Status::Skip, total.skip),
            (Status::Info, total.info),
            (Status::Alarm, total.alarm),
            (Status::Error, total.error),
        ] {
            let style = status_style(status);
            let all = segments(n, scale);
            let right = vec![
                seg(n.to_string(), style),
                seg(" [", ""),
                seg("=".repeat(all as usize), style),
                seg(" ".repeat((BAR_WIDTH - all) as usize), ""),
                seg("]", ""),
            ];
            self.dotted("", vec![seg(status_upper(status), style)], right);
        }
        self.out.push('\n');

        // Per-severity lines, for the severities the run's controls carry.
        let mut by_severity: BTreeMap<(usize, String), StatusSummary> = BTreeMap::new();
        for c in run.root.controls() {
            if !c.severity.is_empty() {
                by_severity
                    .entry(severity_rank(&c.severity))
                    .or_default()
                    .add(&c.summary);
            }
        }
        if !by_severity.is_empty() {
            for ((_, sev), s) in &by_severity {
                let left = vec![seg(sev.to_uppercase(), severity_style(sev))];
                self.dotted("", left, counts(s, scale));
            }
            self.out.push('\n');
        }
        self.dotted("", vec![seg("TOTAL", ansi::BOLD)], counts(&total, scale));
    }
}

fn render_text(run: &CheckRun, brief: bool, width: usize, color: bool) -> String {
    let control_scale = run
        .root
        .controls()
        .iter()
        .map(|c| c.summary.total())
        .max()
        .unwrap_or(0);
    let mut r = TextRenderer {
        width,
        color,
        brief,
        control_scale,
        total_scale: run.root.summary().total(),
        out: String::from("\n"),
    };
    match &run.root {
        // Several targets: each is printed as its own tree.
        Node::Group(g) if is_synthetic_root(g) => {
            for ch in &g.children {
                r.node(ch, "");
            }
        }
        n => r.node(n, ""),
    }
    r.summary(run);
    r.out
}

// ---------------------------------------------------------------------------
// csv

fn csv_field(s: &str, sep: char) -> String {
    // As Go's encoding/csv: quote when the field holds the separator, a
    // quote, a line break, or starts with a space or tab.
    let needs = s.contains(sep) || s.contains(['"', '\n', '\r']) || s.starts_with([' ', '\t']);
    if needs {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn csv_line(out: &mut String, fields: &[&str], sep: char) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(sep);
        }
        out.push_str(&csv_field(f, sep));
    }
    out.push('\n');
}

/// Every control with its parent result group's id, title and description.
fn controls_with_parents(run: &CheckRun) -> Vec<(&ControlRun, String, String, String)> {
    fn walk<'a>(g: &'a GroupRun, out: &mut Vec<(&'a ControlRun, String, String, String)>) {
        for ch in &g.children {
            match ch {
                Node::Control(c) => out.push((
                    c,
                    g.full_name.clone(),
                    g.title.clone(),
                    g.description.clone(),
                )),
                Node::Group(cg) => walk(cg, out),
            }
        }
    }
    let root = root_group(run);
    let mut out = Vec::new();
    for c in &root.controls {
        out.push((
            *c,
            ROOT_GROUP_ID.to_string(),
            root.title.to_string(),
            String::new(),
        ));
    }
    for g in &root.groups {
        walk(g, &mut out);
    }
    out
}

/// CSV with a chosen separator and an optional header line (`--separator`,
/// `--header`). Dimension and tag columns are the sorted union of every
/// control's keys. A control that could not run has no result rows and so no
/// lines, as in Powerpipe's template.
pub fn render_csv(run: &CheckRun, separator: char, header: bool) -> String {
    let controls = controls_with_parents(run);
    let mut dim_keys = BTreeSet::new();
    let mut tag_keys = BTreeSet::new();
    for (c, ..) in &controls {
        for r in &c.results {
            dim_keys.extend(r.dimensions.iter().map(|(k, _)| k.as_str()));
        }
        tag_keys.extend(c.tags.keys().map(String::as_str));
    }
    let mut out = String::new();
    if header {
        let mut h = vec![
            "group_id",
            "title",
            "description",
            "control_id",
            "control_title",
            "control_description",
            "reason",
            "resource",
            "status",
            "severity",
        ];
        h.extend(dim_keys.iter().copied());
        h.extend(tag_keys.iter().copied());
        csv_line(&mut out, &h, separator);
    }
    for (c, gid, gtitle, gdesc) in &controls {
        let cid = control_id(run, c);
        for r in &c.results {
            let mut f: Vec<&str> = vec![
                gid,
                gtitle,
                gdesc,
                &cid,
                &c.title,
                &c.description,
                &r.reason,
                &r.resource,
                r.status.as_str(),
                &c.severity,
            ];
            for k in &dim_keys {
                f.push(
                    r.dimensions
                        .iter()
                        .find(|(dk, _)| dk == k)
                        .map(|(_, v)| v.as_str())
                        .unwrap_or(""),
                );
            }
            for k in &tag_keys {
                f.push(c.tags.get(*k).map(String::as_str).unwrap_or(""));
            }
            csv_line(&mut out, &f, separator);
        }
    }
    out
}

// ---------------------------------------------------------------------------
// An ordered JSON value, for formats whose key order is a template's.

enum J {
    Null,
    Num(u64),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(&'static str, J)>),
    /// an object with data-driven keys (tags)
    Map(Vec<(String, J)>),
}

fn js(s: impl Into<String>) -> J {
    J::Str(s.into())
}

fn json_str(out: &mut String, s: &str) {
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string()));
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

fn write_json(out: &mut String, j: &J, depth: usize) {
    fn entries<'a>(out: &mut String, it: impl Iterator<Item = (&'a str, &'a J)>, depth: usize) {
        let mut any = false;
        out.push('{');
        for (k, v) in it {
            out.push_str(if any { ",\n" } else { "\n" });
            any = true;
            indent(out, depth + 1);
            json_str(out, k);
            out.push_str(": ");
            write_json(out, v, depth + 1);
        }
        if any {
            out.push('\n');
            indent(out, depth);
        }
        out.push('}');
    }
    match j {
        J::Null => out.push_str("null"),
        J::Num(n) => {
            let _ = write!(out, "{n}");
        }
        J::Str(s) => json_str(out, s),
        J::Arr(v) if v.is_empty() => out.push_str("[]"),
        J::Arr(v) => {
            out.push('[');
            for (i, x) in v.iter().enumerate() {
                out.push_str(if i > 0 { ",\n" } else { "\n" });
                indent(out, depth + 1);
                write_json(out, x, depth + 1);
            }
            out.push('\n');
            indent(out, depth);
            out.push(']');
        }
        J::Obj(v) => entries(out, v.iter().map(|(k, v)| (*k, v)), depth),
        J::Map(v) => entries(out, v.iter().map(|(k, v)| (k.as_str(), v)), depth),
    }
}

fn to_json_text(j: &J) -> String {
    let mut out = String::new();
    write_json(&mut out, j, 0);
    out.push('\n');
    out
}

// ---------------------------------------------------------------------------
// json

fn json_tags(tags: &BTreeMap<String, String>) -> J {
    J::Map(
        tags.iter()
            .map(|(k, v)| (k.clone(), js(v.clone())))
            .collect(),
    )
}

fn json_counts(s: &StatusSummary) -> J {
    J::Obj(vec![
        ("alarm", J::Num(s.alarm)),
        ("ok", J::Num(s.ok)),
        ("info", J::Num(s.info)),
        ("skip", J::Num(s.skip)),
        ("error", J::Num(s.error)),
    ])
}

fn json_control(run: &CheckRun, c: &ControlRun) -> J {
    let results = if c.results.is_empty() {
        J::Null
    } else {
        J::Arr(
            c.results
                .iter()
                .map(|r| {
                    J::Obj(vec![
                        ("reason", js(r.reason.clone())),
                        ("resource", js(r.resource.clone())),
                        ("status", js(r.status.as_str())),
                        (
                            "dimensions",
                            J::Arr(
                                r.dimensions
                                    .iter()
                                    .map(|(k, v)| {
                                        J::Obj(vec![
                                            ("key", js(k.clone())),
                                            ("value", js(v.clone())),
                                        ])
                                    })
                                    .collect(),
                            ),
                        ),
                    ])
                })
                .collect(),
        )
    };
    J::Obj(vec![
        ("summary", json_counts(&c.summary)),
        ("results", results),
        ("control_id", js(control_id(run, c))),
        ("description", js(c.description.clone())),
        ("severity", js(c.severity.clone())),
        ("tags", json_tags(&c.tags)),
        ("title", js(c.title.clone())),
        ("run_status", J::Num(run_status_code(c.run_status))),
        ("run_error", js(c.run_error.clone().unwrap_or_default())),
    ])
}

/// The JSON template's run status numbers: complete → 4, error → 8.
fn run_status_code(s: RunStatus) -> u64 {
    match s {
        RunStatus::Complete => 4,
        RunStatus::Error => 8,
    }
}

/// A result group: `groups` is `[]` when empty but `controls` is `null`, as
/// Powerpipe's template prints them.
fn json_group(
    run: &CheckRun,
    head: [&str; 3],
    tags: J,
    summary: &StatusSummary,
    groups: &[&GroupRun],
    controls: &[&ControlRun],
) -> J {
    let [id, title, description] = head;
    let controls = if controls.is_empty() {
        J::Null
    } else {
        J::Arr(controls.iter().map(|c| json_control(run, c)).collect())
    };
    J::Obj(vec![
        ("group_id", js(id)),
        ("title", js(title)),
        ("description", js(description)),
        ("tags", tags),
        ("summary", J::Obj(vec![("status", json_counts(summary))])),
        (
            "groups",
            J::Arr(groups.iter().map(|g| json_benchmark(run, g)).collect()),
        ),
        ("controls", controls),
    ])
}

fn json_benchmark(run: &CheckRun, g: &GroupRun) -> J {
    let mut groups = Vec::new();
    let mut controls = Vec::new();
    for ch in &g.children {
        match ch {
            Node::Group(cg) => groups.push(cg),
            Node::Control(c) => controls.push(c),
        }
    }
    json_group(
        run,
        [&g.full_name, &g.title, &g.description],
        json_tags(&g.tags),
        &group_summary(g),
        &groups,
        &controls,
    )
}

fn render_json(run: &CheckRun) -> String {
    let root = root_group(run);
    let j = json_group(
        run,
        [ROOT_GROUP_ID, root.title, ""],
        J::Map(vec![]),
        &run.root.summary(),
        &root.groups,
        &root.controls,
    );
    to_json_text(&j)
}

// ---------------------------------------------------------------------------
// markdown

fn md_cell(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace("\r\n", "<br>")
        .replace(['\n', '\r'], "<br>")
}

fn md_text(s: &str) -> String {
    one_line(s).replace('<', "&lt;").replace('>', "&gt;")
}

fn dims_text(r: &ResultRow) -> String {
    r.dimensions
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn summary_text(s: &StatusSummary) -> String {
    format!(
        "{} / {} failed (ok {}, alarm {}, error {}, info {}, skip {})",
        s.failed(),
        s.total(),
        s.ok,
        s.alarm,
        s.error,
        s.info,
        s.skip
    )
}

fn md_node(out: &mut String, node: &Node, level: usize) {
    let hashes = "#".repeat(level.min(6));
    match node {
        Node::Group(g) => {
            let _ = writeln!(out, "{hashes} {}\n", md_text(&g.title));
            if !g.description.is_empty() {
                let _ = writeln!(out, "{}\n", md_text(&g.description));
            }
            let _ = writeln!(out, "{}\n", summary_text(&group_summary(g)));
            for ch in &g.children {
                md_node(out, ch, level + 1);
            }
        }
        Node::Control(c) => {
            let _ = writeln!(out, "{hashes} {}\n", md_text(&c.title));
            if !c.description.is_empty() {
                let _ = writeln!(out, "{}\n", md_text(&c.description));
            }
            let sev = if c.severity.is_empty() {
                String::new()
            } else {
                format!("**{}** · ", c.severity.to_uppercase())
            };
            let _ = writeln!(out, "{sev}{}\n", summary_text(&c.summary));
            if let Some(e) = &c.run_error {
                let _ = writeln!(out, "> **Error:** {}\n", md_text(e));
            }
            if !c.results.is_empty() {
                out.push_str("| Status | Reason | Resource | Dimensions |\n|--------|--------|----------|------------|\n");
                for r in &c.results {
                    let _ = writeln!(
                        out,
                        "| {} | {} | {} | {} |",
                        status_upper(r.status),
                        md_cell(&r.reason),
                        md_cell(&r.resource),
                        md_cell(&dims_text(r))
                    );
                }
                out.push('\n');
            }
        }
    }
}

fn render_md(run: &CheckRun) -> String {
    let s = run.root.summary();
    let mut out = String::new();
    let _ = writeln!(out, "# {}\n", md_text(run.root.title()));
    let _ = writeln!(out, "Run from {} to {}.\n", run.start_time, run.end_time);
    out.push_str("## Summary\n\n| Status | Count |\n|--------|------:|\n");
    for (st, n) in [
        (Status::Ok, s.ok),
        (Status::Skip, s.skip),
        (Status::Info, s.info),
        (Status::Alarm, s.alarm),
        (Status::Error, s.error),
    ] {
        let _ = writeln!(out, "| {} | {n} |", status_upper(st));
    }
    let _ = writeln!(out, "| **TOTAL** | **{} / {}** |\n", s.failed(), s.total());
    md_node(&mut out, &run.root, 2);
    out
}

// ---------------------------------------------------------------------------
// html

/// Escapes text for HTML and XML (text and attribute values), dropping the
/// control characters XML 1.0 does not allow.
fn escape_markup(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(ch),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}

fn html_summary(out: &mut String, s: &StatusSummary) {
    let _ = writeln!(
        out,
        "<p class=\"counts\"><span class=\"failed\">{} / {} failed</span> \
         <span class=\"ok\">OK {}</span> <span class=\"alarm\">ALARM {}</span> \
         <span class=\"error\">ERROR {}</span> <span class=\"info\">INFO {}</span> \
         <span class=\"skip\">SKIP {}</span></p>",
        s.failed(),
        s.total(),
        s.ok,
        s.alarm,
        s.error,
        s.info,
        s.skip
    );
}

fn html_node(out: &mut String, node: &Node, level: usize) {
    let h = level.min(6);
    match node {
        Node::Group(g) => {
            out.push_str("<section class=\"group\">\n");
            let _ = writeln!(out, "<h{h}>{}</h{h}>", escape_markup(&g.title));
            if !g.description.is_empty() {
                let _ = writeln!(out, "<p>{}</p>", escape_markup(&g.description));
            }
            html_summary(out, &group_summary(g));
            for ch in &g.children {
                html_node(out, ch, level + 1);
            }
            out.push_str("</section>\n");
        }
        Node::Control(c) => {
            out.push_str("<section class=\"control\">\n");
            let sev = if c.severity.is_empty() {
                String::new()
            } else {
                format!(
                    " <span class=\"severity\">{}</span>",
                    escape_markup(&c.severity.to_uppercase())
                )
            };
            let _ = writeln!(out, "<h{h}>{}{sev}</h{h}>", escape_markup(&c.title));
            if !c.description.is_empty() {
                let _ = writeln!(out, "<p>{}</p>", escape_markup(&c.description));
            }
            html_summary(out, &c.summary);
            if let Some(e) = &c.run_error {
                let _ = writeln!(out, "<p class=\"error\">Error: {}</p>", escape_markup(e));
            }
            if !c.results.is_empty() {
                out.push_str(
                    "<table>\n<thead><tr><th>Status</th><th>Reason</th><th>Resource</th><th>Dimensions</th></tr></thead>\n<tbody>\n",
                );
                for r in &c.results {
                    let _ = writeln!(
                        out,
                        "<tr><td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                        r.status.as_str(),
                        status_upper(r.status),
                        escape_markup(&r.reason),
                        escape_markup(&r.resource),
                        escape_markup(&dims_text(r))
                    );
                }
                out.push_str("</tbody>\n</table>\n");
            }
            out.push_str("</section>\n");
        }
    }
}

const HTML_STYLE: &str = "body{font-family:-apple-system,BlinkMacSystemFont,\"Segoe UI\",Helvetica,Arial,sans-serif;margin:2em;color:#24292f}\
table{border-collapse:collapse;margin:0.5em 0 1.5em}th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}\
th{background:#f6f8fa}section.group{margin-left:1em}.ok{color:#1a7f37}.alarm,.error,.failed{color:#cf222e}.info{color:#0969da}\
.skip{color:#6e7781}.severity{font-size:0.7em;color:#9a6700}.counts span{margin-right:1em}";

fn render_html(run: &CheckRun) -> String {
    let s = run.root.summary();
    let title = escape_markup(run.root.title());
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{title}</title>\n<style>{HTML_STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n<p>Run from {} to {}.</p>\n<h2>Summary</h2>\n<table>\n<thead><tr><th>Status</th><th>Count</th></tr></thead>\n<tbody>\n",
        escape_markup(&run.start_time),
        escape_markup(&run.end_time)
    );
    for (st, n) in [
        (Status::Ok, s.ok),
        (Status::Skip, s.skip),
        (Status::Info, s.info),
        (Status::Alarm, s.alarm),
        (Status::Error, s.error),
    ] {
        let _ = writeln!(
            out,
            "<tr><td class=\"{}\">{}</td><td>{n}</td></tr>",
            st.as_str(),
            status_upper(st)
        );
    }
    let _ = writeln!(
        out,
        "<tr><th>TOTAL</th><th>{} / {}</th></tr>\n</tbody>\n</table>",
        s.failed(),
        s.total()
    );
    html_node(&mut out, &run.root, 2);
    out.push_str("</body>\n</html>\n");
    out
}

// ---------------------------------------------------------------------------
// nunit3

/// Test-case counts of a subtree: every result row is a test case.
#[derive(Default, Clone, Copy)]
struct CaseCounts {
    total: u64,
    passed: u64,
    failed: u64,
    skipped: u64,
    /// controls that could not run
    run_errors: u64,
}

impl CaseCounts {
    fn of(node: &Node) -> CaseCounts {
        let mut n = CaseCounts::default();
        for c in node.controls() {
            for r in &c.results {
                n.total += 1;
                match r.status {
                    Status::Ok | Status::Info => n.passed += 1,
                    Status::Alarm | Status::Error => n.failed += 1,
                    Status::Skip => n.skipped += 1,
                }
            }
            if c.run_status == RunStatus::Error {
                n.run_errors += 1;
            }
        }
        n
    }
    fn result(&self) -> &'static str {
        if self.failed > 0 || self.run_errors > 0 {
            "Failed"
        } else if self.total > 0 && self.skipped == self.total {
            "Skipped"
        } else {
            "Passed"
        }
    }
    fn attrs(&self) -> String {
        format!(
            "testcasecount=\"{t}\" result=\"{}\" total=\"{t}\" passed=\"{}\" failed=\"{}\" warnings=\"0\" inconclusive=\"0\" skipped=\"{}\" asserts=\"0\"",
            self.result(),
            self.passed,
            self.failed,
            self.skipped,
            t = self.total
        )
    }
}

fn xml_properties(out: &mut String, pad: &str, props: &[(String, String)]) {
    if props.is_empty() {
        return;
    }
    let _ = writeln!(out, "{pad}<properties>");
    for (k, v) in props {
        let _ = writeln!(
            out,
            "{pad}  <property name=\"{}\" value=\"{}\" />",
            escape_markup(k),
            escape_markup(v)
        );
    }
    let _ = writeln!(out, "{pad}</properties>");
}

fn nunit_node(out: &mut String, node: &Node, depth: usize, next_id: &mut u64) {
    let pad = "  ".repeat(depth);
    let id = *next_id;
    *next_id += 1;
    let counts = CaseCounts::of(node);
    match node {
        Node::Group(g) => {
            let _ = writeln!(
                out,
                "{pad}<test-suite type=\"TestSuite\" id=\"{id}\" name=\"{}\" fullname=\"{}\" {}>",
                escape_markup(&g.title),
                escape_markup(&g.full_name),
                counts.attrs()
            );
            let mut props = vec![("description".to_string(), g.description.clone())];
            props.extend(g.tags.iter().map(|(k, v)| (format!("tag:{k}"), v.clone())));
            xml_properties(out, &format!("{pad}  "), &props);
            for ch in &g.children {
                nunit_node(out, ch, depth + 1, next_id);
            }
            let _ = writeln!(out, "{pad}</test-suite>");
        }
        Node::Control(c) => {
            let label = if c.run_status == RunStatus::Error {
                " label=\"Error\""
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "{pad}<test-suite type=\"TestFixture\" id=\"{id}\" name=\"{}\" fullname=\"{}\" classname=\"{}\" {}{label}>",
                escape_markup(&c.title),
                escape_markup(&c.full_name),
                escape_markup(&c.full_name),
                counts.attrs()
            );
            let mut props = vec![
                ("description".to_string(), c.description.clone()),
                ("severity".to_string(), c.severity.clone()),
            ];
            props.extend(c.tags.iter().map(|(k, v)| (format!("tag:{k}"), v.clone())));
            xml_properties(out, &format!("{pad}  "), &props);
            if let Some(e) = &c.run_error {
                let _ = writeln!(
                    out,
                    "{pad}  <failure>\n{pad}    <message>{}</message>\n{pad}  </failure>",
                    escape_markup(e)
                );
            }
            for (i, r) in c.results.iter().enumerate() {
                let (result, label) = match r.status {
                    Status::Ok | Status::Info => ("Passed", ""),
                    Status::Alarm => ("Failed", ""),
                    Status::Error => ("Failed", " label=\"Error\""),
                    Status::Skip => ("Skipped", ""),
                };
                let name = if r.resource.is_empty() {
                    &r.reason
                } else {
                    &r.resource
                };
                let _ = writeln!(
                    out,
                    "{pad}  <test-case id=\"{id}-{}\" name=\"{}\" fullname=\"{}.{}\" classname=\"{}\" result=\"{result}\"{label} asserts=\"0\">",
                    i + 1,
                    escape_markup(name),
                    escape_markup(&c.full_name),
                    escape_markup(name),
                    escape_markup(&c.full_name),
                );
                let mut props = vec![("status".to_string(), r.status.as_str().to_string())];
                props.extend(
                    r.dimensions
                        .iter()
                        .map(|(k, v)| (format!("dimension:{k}"), v.clone())),
                );
                xml_properties(out, &format!("{pad}    "), &props);
                let msg = escape_markup(&r.reason);
                match r.status {
                    Status::Alarm | Status::Error => {
                        let _ = writeln!(out, "{pad}    <failure>\n{pad}      <message>{msg}</message>\n{pad}    </failure>");
                    }
                    Status::Skip => {
                        let _ = writeln!(out, "{pad}    <reason>\n{pad}      <message>{msg}</message>\n{pad}    </reason>");
                    }
                    Status::Ok | Status::Info => {
                        let _ = writeln!(out, "{pad}    <output>{msg}</output>");
                    }
                }
                let _ = writeln!(out, "{pad}  </test-case>");
            }
            let _ = writeln!(out, "{pad}</test-suite>");
        }
    }
}

/// NUnit 3: `test-run` > a `TestSuite` per benchmark > a `TestFixture` per
/// control > a `test-case` per result row (ok/info passed, skip skipped,
/// alarm/error failed with the reason as failure message).
fn render_nunit3(run: &CheckRun) -> String {
    let counts = CaseCounts::of(&run.root);
    let duration = match (parse_rfc3339(&run.start_time), parse_rfc3339(&run.end_time)) {
        (Some((s0, n0)), Some((s1, n1))) => {
            ((s1 - s0) as f64 + (f64::from(n1) - f64::from(n0)) / 1e9).max(0.0)
        }
        _ => 0.0,
    };
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"utf-8\" standalone=\"no\"?>\n");
    let _ = writeln!(
        out,
        "<test-run id=\"0\" name=\"{}\" fullname=\"{}\" {} engine-version=\"3.0.0\" start-time=\"{}\" end-time=\"{}\" duration=\"{duration:.6}\">",
        escape_markup(run.root.title()),
        escape_markup(run.root.full_name()),
        counts.attrs(),
        escape_markup(&run.start_time),
        escape_markup(&run.end_time),
    );
    let mut next_id = 1;
    nunit_node(&mut out, &run.root, 1, &mut next_id);
    out.push_str("</test-run>\n");
    out
}

// ---------------------------------------------------------------------------
// asff

fn asff_severity(sev: &str) -> &'static str {
    match sev.to_ascii_lowercase().as_str() {
        "critical" => "CRITICAL",
        "high" => "HIGH",
        "medium" => "MEDIUM",
        "low" => "LOW",
        _ => "INFORMATIONAL",
    }
}

fn asff_compliance(s: Status) -> &'static str {
    match s {
        Status::Ok => "PASSED",
        Status::Alarm => "FAILED",
        Status::Error => "WARNING",
        Status::Skip | Status::Info => "NOT_AVAILABLE",
    }
}

fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        s.chars().take(max.saturating_sub(1)).collect::<String>() + "…"
    }
}

/// ASFF findings for every result row of controls tagged `plugin = "aws"`.
/// Rows without `region` / `account_id` dimensions are still emitted (with
/// empty values), as Powerpipe's template does. Title and Description are
/// cut to Security Hub's limits (256 / 1024 characters). CreatedAt and
/// UpdatedAt are the run's end time in UTC.
fn render_asff(run: &CheckRun) -> String {
    let at = parse_rfc3339(&run.end_time)
        .or_else(|| parse_rfc3339(&run.start_time))
        .map(|(s, n)| iso_utc(s, n))
        .unwrap_or_else(|| run.end_time.clone());
    let mut findings = Vec::new();
    for c in run.root.controls() {
        if c.tags.get("plugin").map(String::as_str) != Some("aws") {
            continue;
        }
        for r in &c.results {
            let dim = |k: &str| {
                r.dimensions
                    .iter()
                    .find(|(dk, _)| dk == k)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            };
            let (region, account) = (dim("region"), dim("account_id"));
            findings.push(J::Obj(vec![
                ("SchemaVersion", js("2018-10-08")),
                ("Id", js(format!("{}/{}", c.full_name, r.resource))),
                (
                    "ProductArn",
                    js(format!(
                        "arn:aws:securityhub:{region}:{account}:product/{account}/default"
                    )),
                ),
                ("GeneratorId", js(c.full_name.clone())),
                ("AwsAccountId", js(account.clone())),
                (
                    "Types",
                    J::Arr(vec![js(
                        "Software and Configuration Checks/Industry and Regulatory Standards",
                    )]),
                ),
                ("CreatedAt", js(at.clone())),
                ("UpdatedAt", js(at.clone())),
                ("Title", js(truncate_chars(&c.title, 256))),
                ("Description", js(truncate_chars(&c.description, 1024))),
                (
                    "Severity",
                    J::Obj(vec![("Label", js(asff_severity(&c.severity)))]),
                ),
                (
                    "Resources",
                    J::Arr(vec![J::Obj(vec![
                        ("Type", js("Other")),
                        ("Id", js(r.resource.clone())),
                    ])]),
                ),
                (
                    "Compliance",
                    J::Obj(vec![("Status", js(asff_compliance(r.status)))]),
                ),
            ]));
        }
    }
    to_json_text(&J::Arr(findings))
}

// ---------------------------------------------------------------------------
// snapshot

use serde_json::{json, Map, Value};

/// Rebuilds every object with its keys inserted in sorted order, so the
/// output is sorted whether or not serde_json preserves insertion order.
fn sorted(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(String, Value)> = m.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(sorted).collect()),
        other => other,
    }
}

fn snapshot_tags(tags: &BTreeMap<String, String>) -> Value {
    Value::Object(
        tags.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

fn snapshot_counts(s: &StatusSummary) -> Value {
    json!({"alarm": s.alarm, "error": s.error, "info": s.info, "ok": s.ok, "skip": s.skip})
}

fn snapshot_layout(node: &Node) -> Value {
    match node {
        Node::Control(c) => json!({"name": c.full_name, "panel_type": "control"}),
        Node::Group(g) => json!({
            "name": g.full_name,
            "panel_type": "benchmark",
            "children": g.children.iter().map(snapshot_layout).collect::<Vec<_>>(),
        }),
    }
}

fn snapshot_panels(node: &Node, panels: &mut Map<String, Value>) {
    match node {
        Node::Control(c) => {
            let mut p = Map::new();
            p.insert("name".into(), json!(c.full_name));
            p.insert("title".into(), json!(c.title));
            p.insert("description".into(), json!(c.description));
            if !c.tags.is_empty() {
                p.insert("tags".into(), snapshot_tags(&c.tags));
            }
            p.insert("panel_type".into(), json!("control"));
            let mut props = Map::new();
            props.insert("name".into(), json!(c.short_name));
            if !c.severity.is_empty() {
                props.insert("severity".into(), json!(c.severity));
            }
            p.insert("properties".into(), Value::Object(props));
            p.insert("summary".into(), snapshot_counts(&c.summary));
            p.insert("status".into(), json!(c.run_status.as_str()));
            // A control whose query could not start has no columns to show,
            // so its panel carries no data (only the error).
            if c.run_status == RunStatus::Complete || !c.results.is_empty() {
                let mut columns = vec![
                    json!({"name": "reason", "data_type": "TEXT"}),
                    json!({"name": "resource", "data_type": "TEXT"}),
                    json!({"name": "status", "data_type": "TEXT"}),
                ];
                let mut dim_names: Vec<&str> =
                    c.dimension_columns.iter().map(String::as_str).collect();
                for r in &c.results {
                    for (k, _) in &r.dimensions {
                        if !dim_names.contains(&k.as_str()) {
                            dim_names.push(k);
                        }
                    }
                }
                columns.extend(
                    dim_names
                        .iter()
                        .map(|d| json!({"name": d, "data_type": "TEXT"})),
                );
                let rows: Vec<Value> = c
                    .results
                    .iter()
                    .map(|r| {
                        let mut row = Map::new();
                        row.insert("reason".into(), json!(r.reason));
                        row.insert("resource".into(), json!(r.resource));
                        row.insert("status".into(), json!(r.status.as_str()));
                        for (k, v) in &r.dimensions {
                            row.insert(k.clone(), json!(v));
                        }
                        Value::Object(row)
                    })
                    .collect();
                p.insert("data".into(), json!({"columns": columns, "rows": rows}));
            }
            if let Some(e) = &c.run_error {
                p.insert("error".into(), json!(e));
            }
            panels.insert(c.full_name.clone(), Value::Object(p));
        }
        Node::Group(g) => {
            let mut p = Map::new();
            p.insert("name".into(), json!(g.full_name));
            p.insert("title".into(), json!(g.title));
            p.insert("description".into(), json!(g.description));
            if !g.tags.is_empty() {
                p.insert("tags".into(), snapshot_tags(&g.tags));
            }
            p.insert("panel_type".into(), json!("benchmark"));
            p.insert(
                "children".into(),
                Value::Array(g.children.iter().map(|ch| json!(ch.full_name())).collect()),
            );
            p.insert(
                "summary".into(),
                json!({"status": snapshot_counts(&group_summary(g))}),
            );
            panels.insert(g.full_name.clone(), Value::Object(p));
            for ch in &g.children {
                snapshot_panels(ch, panels);
            }
        }
    }
}

/// The snapshot as a JSON value (§4.4): sorted keys, no `sql`,
/// `source_definition`, `search_path` or `documentation`.
pub fn snapshot_value(run: &CheckRun) -> Value {
    let mut panels = Map::new();
    snapshot_panels(&run.root, &mut panels);
    let variables: Map<String, Value> = run
        .variables
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    sorted(json!({
        "end_time": run.end_time,
        "inputs": {},
        "layout": snapshot_layout(&run.root),
        "panels": panels,
        "schema_version": SNAPSHOT_SCHEMA_VERSION,
        "start_time": run.start_time,
        "variables": variables,
    }))
}

fn render_snapshot(run: &CheckRun) -> String {
    let mut s = serde_json::to_string_pretty(&snapshot_value(run)).unwrap_or_default();
    s.push('\n');
    s
}

// ---------------------------------------------------------------------------
// time

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day, hour, minute, second) in UTC for Unix seconds.
fn civil(secs: i64) -> (i64, i64, i64, i64, i64, i64) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Parses an RFC 3339 time (`2026-01-01T12:00:00Z`,
/// `2022-12-15T20:12:43.270226+05:30`) to Unix seconds and nanoseconds.
/// A missing offset is taken as UTC.
fn parse_rfc3339(s: &str) -> Option<(i64, u32)> {
    let b = s.trim().as_bytes();
    let num = |from: usize, to: usize| -> Option<i64> {
        let part = b.get(from..to)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (h, mi, sec) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0u32;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        let mut digits: String = String::from_utf8_lossy(&b[start..i.min(start + 9)]).into_owned();
        while digits.len() < 9 {
            digits.push('0');
        }
        nanos = digits.parse().ok()?;
    }
    let offset = match b.get(i) {
        None => 0,
        Some(b'Z' | b'z') => {
            i += 1;
            0
        }
        Some(&sign @ (b'+' | b'-')) => {
            if b.get(i + 3) != Some(&b':') {
                return None;
            }
            let o = num(i + 1, i + 3)? * 3600 + num(i + 4, i + 6)? * 60;
            i += 6;
            if sign == b'-' {
                -o
            } else {
                o
            }
        }
        Some(_) => return None,
    };
    if i != b.len() {
        return None;
    }
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset;
    Some((secs, nanos))
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn iso_utc(secs: i64, nanos: u32) -> String {
    let (y, mo, d, h, mi, s) = civil(secs);
    format!(
        "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:03}Z",
        nanos / 1_000_000
    )
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn row(status: Status, reason: &str, resource: &str) -> ResultRow {
        ResultRow {
            reason: reason.into(),
            resource: resource.into(),
            status,
            dimensions: vec![
                ("region".into(), "us-east-1".into()),
                ("account_id".into(), "123456789012".into()),
            ],
        }
    }

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn control() -> ControlRun {
        let results = vec![
            row(
                Status::Error,
                "query failed: boom",
                "arn:aws:ec2:us-east-1:123456789012:instance/i-4",
            ),
            row(
                Status::Alarm,
                "web-1 not configured to use IMDSv2.",
                "arn:aws:ec2:us-east-1:123456789012:instance/i-1",
            ),
            row(
                Status::Alarm,
                "web-2 not configured to use IMDSv2.",
                "arn:aws:ec2:us-east-1:123456789012:instance/i-2",
            ),
            row(
                Status::Ok,
                "web-3 configured to use IMDSv2.",
                "arn:aws:ec2:us-east-1:123456789012:instance/i-3",
            ),
        ];
        let mut summary = StatusSummary::default();
        for r in &results {
            summary.count(r.status);
        }
        ControlRun {
            full_name: "aws_compliance.control.foundational_security_ec2_8".into(),
            short_name: "foundational_security_ec2_8".into(),
            title: "8 EC2 instances should use IMDSv2".into(),
            description: "This control checks whether your EC2 instance metadata version is configured with IMDSv2.".into(),
            documentation: Some("## Description\n".into()),
            severity: "high".into(),
            tags: tags(&[("category", "Compliance"), ("plugin", "aws"), ("service", "AWS/EC2")]),
            dimension_columns: vec!["region".into(), "account_id".into()],
            results,
            summary,
            run_status: RunStatus::Complete,
            run_error: None,
            duration: Duration::from_millis(5),
        }
    }

    fn benchmark_run() -> CheckRun {
        CheckRun {
            root: Node::Group(GroupRun {
                full_name: "aws_compliance.benchmark.foundational_security_ec2".into(),
                short_name: "foundational_security_ec2".into(),
                title: "EC2".into(),
                description: "EC2 controls".into(),
                documentation: Some("doc".into()),
                tags: tags(&[("plugin", "aws"), ("type", "Benchmark")]),
                children: vec![Node::Control(control())],
            }),
            mod_name: "aws_compliance".into(),
            start_time: "2026-01-01T12:00:00Z".into(),
            end_time: "2026-01-01T12:00:01.500Z".into(),
            variables: BTreeMap::new(),
        }
    }

    fn control_run() -> CheckRun {
        CheckRun {
            root: Node::Control(control()),
            ..benchmark_run()
        }
    }

    #[test]
    fn csv_header_and_rows() {
        let csv = render(&benchmark_run(), Format::Csv, 100, false);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines[0],
            "group_id,title,description,control_id,control_title,control_description,reason,resource,status,severity,account_id,region,category,plugin,service"
        );
        assert_eq!(lines.len(), 5);
        assert_eq!(
            lines[2],
            "aws_compliance.benchmark.foundational_security_ec2,EC2,EC2 controls,control.foundational_security_ec2_8,\
             8 EC2 instances should use IMDSv2,This control checks whether your EC2 instance metadata version is configured with IMDSv2.,\
             web-1 not configured to use IMDSv2.,arn:aws:ec2:us-east-1:123456789012:instance/i-1,alarm,high,123456789012,us-east-1,Compliance,aws,AWS/EC2"
        );
        // A single control's parent is the root result group.
        let csv = render(&control_run(), Format::Csv, 100, false);
        assert!(csv.lines().nth(1).unwrap().starts_with("root_result_group,8 EC2 instances should use IMDSv2,,control.foundational_security_ec2_8,"));
    }

    #[test]
    fn csv_quoting() {
        assert_eq!(csv_field("a,b", ','), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\"", ','), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines", ','), "\"two\nlines\"");
        assert_eq!(csv_field(" lead", ','), "\" lead\"");
        assert_eq!(csv_field("plain", ','), "plain");
        assert_eq!(csv_field("a;b", ';'), "\"a;b\"");
        let out = render_csv(&benchmark_run(), ';', false);
        assert_eq!(out.lines().count(), 4);
        assert!(out.starts_with("aws_compliance.benchmark.foundational_security_ec2;EC2;"));
    }

    #[test]
    fn json_structure_and_counts() {
        let text = render(&benchmark_run(), Format::Json, 100, false);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["group_id"], "root_result_group");
        assert_eq!(v["title"], "EC2");
        assert_eq!(v["description"], "");
        assert_eq!(v["tags"], json!({}));
        assert_eq!(
            v["summary"]["status"],
            json!({"alarm": 2, "ok": 1, "info": 0, "skip": 0, "error": 1})
        );
        assert!(v["controls"].is_null());
        let g = &v["groups"][0];
        assert_eq!(
            g["group_id"],
            "aws_compliance.benchmark.foundational_security_ec2"
        );
        assert_eq!(g["groups"], json!([]));
        assert_eq!(g["summary"]["status"]["alarm"], 2);
        let c = &g["controls"][0];
        assert_eq!(c["control_id"], "control.foundational_security_ec2_8");
        assert_eq!(
            c["summary"],
            json!({"alarm": 2, "ok": 1, "info": 0, "skip": 0, "error": 1})
        );
        assert_eq!(c["run_status"], 4);
        assert_eq!(c["run_error"], "");
        assert_eq!(c["severity"], "high");
        assert_eq!(c["tags"]["plugin"], "aws");
        assert_eq!(c["results"].as_array().unwrap().len(), 4);
        assert_eq!(c["results"][1]["status"], "alarm");
        assert_eq!(
            c["results"][1]["dimensions"],
            json!([{"key": "region", "value": "us-east-1"}, {"key": "account_id", "value": "123456789012"}])
        );
        // The template's key order is kept.
        let keys = [
            "\"summary\"",
            "\"results\"",
            "\"control_id\"",
            "\"description\"",
            "\"severity\"",
            "\"tags\"",
            "\"title\"",
            "\"run_status\"",
            "\"run_error\"",
        ];
        let ctrl_at = text.find("\"controls\": [").unwrap();
        let pos: Vec<usize> = keys
            .iter()
            .map(|k| ctrl_at + text[ctrl_at..].find(k).unwrap())
            .collect();
        assert!(pos.windows(2).all(|w| w[0] < w[1]), "{pos:?}");

        // A single control: groups [] and the control at the root; an errored
        // control has null results and run_status 8.
        let mut run = control_run();
        if let Node::Control(c) = &mut run.root {
            c.results.clear();
            c.summary = StatusSummary {
                error: 1,
                ..Default::default()
            };
            c.run_status = RunStatus::Error;
            c.run_error = Some("no such table".into());
        }
        let v: Value = serde_json::from_str(&render(&run, Format::Json, 100, false)).unwrap();
        assert_eq!(v["title"], "8 EC2 instances should use IMDSv2");
        assert_eq!(v["groups"], json!([]));
        assert!(v["controls"][0]["results"].is_null());
        assert_eq!(v["controls"][0]["run_status"], 8);
        assert_eq!(v["controls"][0]["run_error"], "no such table");
    }

    #[test]
    fn snapshot_layout_and_panels() {
        let text = render(&benchmark_run(), Format::Snapshot, 100, false);
        let v: Value = serde_json::from_str(&text).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
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
        // Sorted in the file too, not only after parsing.
        let order: Vec<usize> = keys
            .iter()
            .map(|k| text.find(&format!("\"{k}\"")).unwrap())
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(v["schema_version"], "20240607");
        assert_eq!(v["inputs"], json!({}));
        assert_eq!(v["variables"], json!({}));
        assert_eq!(
            v["layout"],
            json!({
                "name": "aws_compliance.benchmark.foundational_security_ec2",
                "panel_type": "benchmark",
                "children": [{"name": "aws_compliance.control.foundational_security_ec2_8", "panel_type": "control"}]
            })
        );
        let p = &v["panels"]["aws_compliance.control.foundational_security_ec2_8"];
        let pk: Vec<&str> = p.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            pk,
            [
                "data",
                "description",
                "name",
                "panel_type",
                "properties",
                "status",
                "summary",
                "tags",
                "title"
            ]
        );
        for banned in [
            "sql",
            "source_definition",
            "search_path",
            "search_path_prefix",
            "documentation",
        ] {
            assert!(!text.contains(&format!("\"{banned}\"")), "{banned}");
        }
        assert_eq!(
            p["properties"],
            json!({"name": "foundational_security_ec2_8", "severity": "high"})
        );
        assert_eq!(
            p["summary"],
            json!({"alarm": 2, "error": 1, "info": 0, "ok": 1, "skip": 0})
        );
        assert_eq!(p["status"], "complete");
        let cols: Vec<&str> = p["data"]["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            cols,
            ["reason", "resource", "status", "region", "account_id"]
        );
        assert!(p["data"]["columns"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["data_type"] == "TEXT"));
        assert_eq!(p["data"]["rows"][3]["status"], "ok");
        assert_eq!(p["data"]["rows"][3]["region"], "us-east-1");
        let b = &v["panels"]["aws_compliance.benchmark.foundational_security_ec2"];
        assert_eq!(b["panel_type"], "benchmark");
        assert_eq!(
            b["children"],
            json!(["aws_compliance.control.foundational_security_ec2_8"])
        );
        assert!(b.get("documentation").is_none());

        // A control run: the layout is just the control.
        let v = snapshot_value(&control_run());
        assert_eq!(
            v["layout"],
            json!({"name": "aws_compliance.control.foundational_security_ec2_8", "panel_type": "control"})
        );
        assert_eq!(v["panels"].as_object().unwrap().len(), 1);
    }

    #[test]
    fn asff_only_aws_with_mapping() {
        let mut run = benchmark_run();
        if let Node::Group(g) = &mut run.root {
            let mut other = control();
            other.full_name = "gcp_compliance.control.x".into();
            other.tags = tags(&[("plugin", "gcp")]);
            g.children.push(Node::Control(other));
        }
        let v: Value = serde_json::from_str(&render(&run, Format::Asff, 100, false)).unwrap();
        let findings = v.as_array().unwrap();
        assert_eq!(findings.len(), 4);
        let statuses: Vec<&str> = findings
            .iter()
            .map(|f| f["Compliance"]["Status"].as_str().unwrap())
            .collect();
        assert_eq!(statuses, ["WARNING", "FAILED", "FAILED", "PASSED"]);
        let f = &findings[1];
        assert_eq!(
            f["ProductArn"],
            "arn:aws:securityhub:us-east-1:123456789012:product/123456789012/default"
        );
        assert_eq!(f["AwsAccountId"], "123456789012");
        assert_eq!(
            f["GeneratorId"],
            "aws_compliance.control.foundational_security_ec2_8"
        );
        assert_eq!(f["Severity"]["Label"], "HIGH");
        assert_eq!(f["SchemaVersion"], "2018-10-08");
        assert_eq!(
            f["Resources"],
            json!([{"Type": "Other", "Id": "arn:aws:ec2:us-east-1:123456789012:instance/i-1"}])
        );
        assert_eq!(
            f["Types"],
            json!(["Software and Configuration Checks/Industry and Regulatory Standards"])
        );
        assert_eq!(f["CreatedAt"], "2026-01-01T12:00:01.500Z");
        assert_eq!(f["Title"], "8 EC2 instances should use IMDSv2");
        assert_eq!(asff_compliance(Status::Skip), "NOT_AVAILABLE");
        assert_eq!(asff_compliance(Status::Info), "NOT_AVAILABLE");
        assert_eq!(asff_severity(""), "INFORMATIONAL");
        assert_eq!(asff_severity("critical"), "CRITICAL");
    }

    /// A small well-formedness check: tags balance, attributes are quoted and
    /// text holds no raw `<` or stray `&`.
    fn assert_well_formed(xml: &str) {
        let mut stack: Vec<String> = Vec::new();
        let mut rest = xml;
        while let Some(lt) = rest.find('<') {
            let text = &rest[..lt];
            assert!(!text.contains('>'), "stray > in {text:?}");
            for (i, _) in text.match_indices('&') {
                let ent = &text[i..];
                assert!(
                    ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"]
                        .iter()
                        .any(|e| ent.starts_with(e)),
                    "bad entity in {text:?}"
                );
            }
            let gt = rest[lt..].find('>').expect("unclosed tag") + lt;
            let tag = &rest[lt + 1..gt];
            assert_eq!(tag.matches('"').count() % 2, 0, "{tag}");
            if tag.starts_with('?') {
                assert!(tag.ends_with('?'));
            } else if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(
                    stack.pop().as_deref(),
                    Some(name.trim()),
                    "mismatched </{name}>"
                );
            } else if !tag.ends_with('/') {
                stack.push(tag.split_whitespace().next().unwrap().to_string());
            }
            rest = &rest[gt + 1..];
        }
        assert!(rest.trim().is_empty());
        assert!(stack.is_empty(), "unclosed {stack:?}");
    }

    #[test]
    fn nunit3_well_formed() {
        let mut run = benchmark_run();
        if let Node::Group(g) = &mut run.root {
            g.title = "EC2 <&> \"checks\"".into();
        }
        let xml = render(&run, Format::Nunit3, 100, false);
        assert_well_formed(&xml);
        assert!(xml.starts_with("<?xml"));
        assert_eq!(xml.matches("<test-case ").count(), 4);
        let failed_cases = xml
            .lines()
            .filter(|l| l.contains("<test-case ") && l.contains("result=\"Failed\""))
            .count();
        assert_eq!(failed_cases, 3);
        assert_eq!(xml.matches("label=\"Error\"").count(), 1);
        assert_eq!(xml.matches("result=\"Passed\"").count(), 1);
        assert_eq!(xml.matches("<failure>").count(), 3);
        assert!(xml.contains("<test-run id=\"0\""));
        assert!(xml.contains(
            "testcasecount=\"4\" result=\"Failed\" total=\"4\" passed=\"1\" failed=\"3\""
        ));
        assert!(xml.contains("<message>web-1 not configured to use IMDSv2.</message>"));
        assert!(xml.contains("name=\"EC2 &lt;&amp;&gt; &quot;checks&quot;\""));
        assert!(xml.contains("duration=\"1.500000\""));
    }

    #[test]
    fn text_header_rows_and_summary() {
        let text = render(&benchmark_run(), Format::Text, 100, false);
        let lines: Vec<&str> = text.lines().collect();
        let header = lines
            .iter()
            .find(|l| l.contains("8 EC2 instances should use IMDSv2"))
            .unwrap();
        assert!(header.ends_with("HIGH 3 / 4 [==========]"), "{header}");
        assert_eq!(header.chars().count(), 100);
        assert!(header.starts_with("| + 8 EC2 instances should use IMDSv2 ..."));
        let group = lines.iter().find(|l| l.starts_with("+ EC2 ")).unwrap();
        assert!(group.ends_with(" 3 / 4 [==========]"), "{group}");
        let alarm = lines.iter().find(|l| l.contains("ALARM: web-1")).unwrap();
        assert!(
            alarm.starts_with("|   ALARM: web-1 not configured to use IMDSv2. ..."),
            "{alarm}"
        );
        assert!(alarm.ends_with(" us-east-1 123456789012"));
        assert_eq!(alarm.chars().count(), 100);
        assert!(lines.iter().any(|l| l.contains("OK   : web-3 configured")));
        assert!(lines
            .iter()
            .any(|l| l.contains("ERROR: query failed: boom")));
        assert!(text.contains("\nSummary\n\n"));
        for (label, tail) in [
            ("OK ", " 1 [===       ]"),
            ("SKIP ", " 0 [          ]"),
            ("INFO ", " 0 [          ]"),
            ("ALARM ", " 2 [=====     ]"),
            ("ERROR ", " 1 [===       ]"),
            ("HIGH ", " 3 / 4 [==========]"),
            ("TOTAL ", " 3 / 4 [==========]"),
        ] {
            let l = lines
                .iter()
                .find(|l| l.starts_with(label))
                .unwrap_or_else(|| panic!("{label}"));
            assert!(l.ends_with(tail), "{l}");
            assert_eq!(l.chars().count(), 100);
        }
        assert!(!text.contains('\x1b'));
        let coloured = render(&benchmark_run(), Format::Text, 100, true);
        assert!(coloured.contains("\x1b[1;31mALARM\x1b[0m"));
    }

    #[test]
    fn text_truncates_long_reasons() {
        let mut run = control_run();
        if let Node::Control(c) = &mut run.root {
            c.results[1].reason = "x".repeat(200);
        }
        let text = render(&run, Format::Text, 80, false);
        let l = text.lines().find(|l| l.contains("ALARM")).unwrap();
        assert_eq!(l.chars().count(), 80);
        assert!(l.contains("x… ... us-east-1 123456789012"), "{l}");
        // A single control: rows indented under it.
        assert!(text.contains("\n+ 8 EC2 instances should use IMDSv2 "));
        assert!(text.contains("\n  |\n  ERROR: "));
    }

    #[test]
    fn brief_omits_ok_rows() {
        let text = render(&benchmark_run(), Format::Brief, 100, false);
        assert!(!text.contains("OK   : web-3"));
        assert!(text.contains("ALARM: web-1"));
        assert!(text.contains("ALARM: web-2"));
        assert!(text.contains("ERROR: query failed"));
        assert!(text.contains("HIGH 3 / 4"));
        assert!(text.contains("\nSummary\n"));
        assert!(text.lines().any(|l| l.starts_with("TOTAL ")));
    }

    #[test]
    fn markdown_and_html() {
        let mut run = benchmark_run();
        if let Node::Group(g) = &mut run.root {
            if let Node::Control(c) = &mut g.children[0] {
                c.results[1].reason = "a|b <script>".into();
            }
        }
        let md = render(&run, Format::Md, 100, false);
        assert!(md.starts_with("# EC2\n"));
        assert!(
            md.contains("| ALARM | a\\|b &lt;script&gt; |")
                || md.contains("| ALARM | a\\|b <script> |")
        );
        assert!(md.contains("| **TOTAL** | **3 / 4** |"));
        let html = render(&run, Format::Html, 100, false);
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("a|b &lt;script&gt;"));
        assert!(!html.contains("<script>"));
        assert!(html.contains("<td class=\"ok\">OK</td>"));
    }

    #[test]
    fn export_names() {
        let run = control_run();
        assert_eq!(
            default_export_name(&run, Format::Snapshot),
            "aws_compliance.control.foundational_security_ec2_8.20260101T120000.pps"
        );
        let mut run = benchmark_run();
        run.start_time = "2026-01-01T17:30:05.123456+05:30".into();
        assert_eq!(
            default_export_name(&run, Format::Asff),
            "aws_compliance.benchmark.foundational_security_ec2.20260101T120005.asff.json"
        );
        assert_eq!(
            default_export_name(&run, Format::Nunit3)
                .rsplit_once(".20")
                .unwrap()
                .1,
            "260101T120005.nunit3.xml"
        );
        let ext: Vec<&str> = [
            Format::Csv,
            Format::Json,
            Format::Md,
            Format::Html,
            Format::Nunit3,
            Format::Asff,
            Format::Snapshot,
        ]
        .iter()
        .map(|f| f.extension())
        .collect();
        assert_eq!(
            ext,
            [
                ".csv",
                ".json",
                ".md",
                ".html",
                ".nunit3.xml",
                ".asff.json",
                ".pps"
            ]
        );
    }

    #[test]
    fn parse_formats() {
        assert_eq!(
            Format::parse_export("out.xml").unwrap(),
            (Format::Nunit3, Some(PathBuf::from("out.xml")))
        );
        assert_eq!(
            Format::parse_export("x.pps").unwrap(),
            (Format::Snapshot, Some(PathBuf::from("x.pps")))
        );
        assert_eq!(Format::parse_export("r.asff.json").unwrap().0, Format::Asff);
        assert_eq!(
            Format::parse_export("r.nunit3.xml").unwrap().0,
            Format::Nunit3
        );
        assert_eq!(Format::parse_export("dir/r.JSON").unwrap().0, Format::Json);
        assert_eq!(Format::parse_export("a.csv").unwrap().0, Format::Csv);
        assert_eq!(Format::parse_export("a.md").unwrap().0, Format::Md);
        assert_eq!(Format::parse_export("a.html").unwrap().0, Format::Html);
        for (bare, f) in [
            ("csv", Format::Csv),
            ("json", Format::Json),
            ("md", Format::Md),
            ("html", Format::Html),
            ("nunit3", Format::Nunit3),
            ("nunit3.xml", Format::Nunit3),
            ("asff", Format::Asff),
            ("asff.json", Format::Asff),
            ("snapshot", Format::Snapshot),
            ("pps", Format::Snapshot),
        ] {
            assert_eq!(Format::parse_export(bare).unwrap(), (f, None), "{bare}");
        }
        let e = Format::parse_export("report.txt").unwrap_err();
        assert!(
            e.contains("report.txt") && e.contains("nunit3") && e.contains(".pps"),
            "{e}"
        );
        assert!(Format::parse_export("text").is_err());
        assert!(Format::parse_export(".csv").is_err());

        assert_eq!(Format::parse_output("pps").unwrap(), Format::Snapshot);
        assert_eq!(Format::parse_output("snapshot").unwrap(), Format::Snapshot);
        assert_eq!(Format::parse_output("brief").unwrap(), Format::Brief);
        assert_eq!(Format::parse_output("none").unwrap(), Format::None);
        let e = Format::parse_output("bogus").unwrap_err();
        for v in [
            "bogus", "text", "brief", "csv", "json", "md", "snapshot", "pps", "none",
        ] {
            assert!(e.contains(v), "{e}");
        }
        assert_eq!(render(&benchmark_run(), Format::None, 100, false), "");
    }

    #[test]
    fn progress() {
        assert_eq!(
            progress_line(1, 1, "foundational_security_ec2_8"),
            "Running 1 control. (1 complete, 0 running, 0 pending, 0 errors): foundational_security_ec2_8"
        );
        assert_eq!(
            progress_line(2, 31, "foundational_security_ec2_9"),
            "Running 31 controls. (2 complete, 1 running, 28 pending, 0 errors): foundational_security_ec2_9"
        );
        assert_eq!(
            progress_status(3, 1, 1, 1, ""),
            "Running 3 controls. (1 complete, 1 running, 1 pending, 1 error)"
        );
    }

    #[test]
    fn times() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some((0, 0)));
        assert_eq!(
            parse_rfc3339("2026-01-01T12:00:00Z").map(|t| civil(t.0)),
            Some((2026, 1, 1, 12, 0, 0))
        );
        assert_eq!(
            parse_rfc3339("2022-12-15T20:12:43.270226+05:30").map(|t| t.1),
            Some(270_226_000)
        );
        assert_eq!(
            parse_rfc3339("2024-02-29T23:59:59-01:00").map(|t| civil(t.0)),
            Some((2024, 3, 1, 0, 59, 59))
        );
        assert_eq!(parse_rfc3339("not a time"), None);
        assert_eq!(parse_rfc3339("2026-01-01T12:00:00+0100"), None);
        assert_eq!(iso_utc(0, 5_000_000), "1970-01-01T00:00:00.005Z");
    }
}
