//! Renders a control run ([`CheckRun`]) in Powerpipe's `--output` and
//! `--export` formats: text, brief, csv, json, md, html, nunit3, asff and
//! snapshot (`.pps`), plus the default export file names and the stderr
//! progress line.
//!
//! Each format is Powerpipe v1.5.2's byte for byte (its text renderer and its
//! `internal/controldisplay/templates`, whitespace included), checked against
//! Powerpipe itself by `scripts/conformance.sh powerpipe` and against the
//! golden files it saves (`tests/golden/powerpipe/`) by every `cargo test`.
//! Where `check` knowingly differs (it names itself, not Powerpipe; it
//! escapes markup in html and nunit3; its own stylesheet and icons in html),
//! docs/compatibility.md (Powerpipe section) lists it.

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

/// How `check` names itself where Powerpipe names itself (md and html
/// footers, ASFF `ProductFields`).
pub const TOOL_NAME: &str = "steampipe-plugin-aws";
/// The version next to [`TOOL_NAME`].
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");
const TOOL_URL: &str = "https://steampipe.io";

/// What Powerpipe writes for a NULL (Go's `fmt.Sprint(nil)`): the reason,
/// resource or dimension value of a row whose column is NULL.
pub const NIL: &str = "<nil>";

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
    /// an HTML report
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

const OUTPUT_VALUES: &str = "brief, csv, html, md, text, none, json, snapshot, pps";
const EXPORT_VALUES: &str =
    "csv, html, json, md, nunit3 (nunit3.xml), asff (asff.json), snapshot (pps), text (brief)";

impl Format {
    /// `--output` values, as Powerpipe's flag lists them: brief, csv, html,
    /// md, text, none, json, snapshot, pps (= snapshot).
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

    /// An export format's name or alias, as Powerpipe registers its exporters.
    fn export_name(s: &str) -> Option<Format> {
        Some(match s {
            "csv" => Format::Csv,
            "json" => Format::Json,
            "md" => Format::Md,
            "html" => Format::Html,
            "nunit3" | "nunit3.xml" => Format::Nunit3,
            "asff" | "asff.json" => Format::Asff,
            "snapshot" | "pps" => Format::Snapshot,
            "text" => Format::Text,
            "brief" => Format::Brief,
            _ => return None,
        })
    }

    /// `--export` value: an exporter name (csv, json, md, html, nunit3 or
    /// nunit3.xml, asff or asff.json, snapshot or pps, text or brief) or a
    /// file name. As in Powerpipe, a file name's format comes from its last
    /// extension only (Go's `path.Ext`): `.csv`, `.html`, `.json`, `.md`,
    /// `.xml` (nunit3), `.pps`, `.txt` — so `x.asff.json` is written as json.
    /// Returns (format, Some(path)) for a file name, (format, None) for a name.
    pub fn parse_export(s: &str) -> Result<(Format, Option<PathBuf>), String> {
        let s = s.trim();
        if let Some(f) = Format::export_name(s) {
            return Ok((f, None));
        }
        let base = s.rsplit('/').next().unwrap_or(s);
        let ext = base.rfind('.').map(|i| &base[i..]).unwrap_or("");
        let format = match ext {
            ".csv" => Format::Csv,
            ".html" => Format::Html,
            ".json" => Format::Json,
            ".md" => Format::Md,
            ".xml" => Format::Nunit3,
            ".pps" => Format::Snapshot,
            ".txt" => Format::Text,
            _ => {
                return Err(format!(
                    "invalid export format: '{s}': give a format ({EXPORT_VALUES}) or a file name with one of their extensions"
                ))
            }
        };
        Ok((format, Some(PathBuf::from(s))))
    }

    /// The extension of default export files: .txt .csv .json .md .html
    /// .nunit3.xml .asff.json .pps (none gets nothing).
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

/// Renders `run` in `format` for `--output` (a snapshot is indented).
/// `width` is the display width asked for (POWERPIPE_DISPLAY_WIDTH, else the
/// terminal's, else 0); text is rendered at that width kept between the
/// tree's minimum and 200 columns, as Powerpipe does. `color` turns ANSI
/// colours on for text/brief.
pub fn render(run: &CheckRun, format: Format, width: usize, color: bool) -> String {
    render_with(run, format, width, color, &CsvOptions::default())
}

/// `--separator` and `--header` of csv output and exports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvOptions {
    /// between cells (Powerpipe's default `,`)
    pub separator: String,
    /// the header line (default on)
    pub header: bool,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            separator: ",".into(),
            header: true,
        }
    }
}

/// [`render`] with csv options.
pub fn render_with(
    run: &CheckRun,
    format: Format,
    width: usize,
    color: bool,
    csv: &CsvOptions,
) -> String {
    let mut out = Sink::string();
    write_with(run, format, width, color, csv, &mut out);
    out.finish().unwrap_or_default()
}

/// [`render_with`] into `out`: text, brief, csv and json are handed to its
/// writer as they are rendered, a control's results one at a time.
pub fn write_with(
    run: &CheckRun,
    format: Format,
    width: usize,
    color: bool,
    csv: &CsvOptions,
    out: &mut Sink<'_>,
) {
    match format {
        Format::Text => render_text(run, false, width, color, out),
        Format::Brief => render_text(run, true, width, color, out),
        Format::Csv => render_csv(run, &csv.separator, csv.header, out),
        Format::Json => render_json(run, out),
        Format::Md => out.push_str(&render_md(run)),
        Format::Html => out.push_str(&render_html(run)),
        Format::Nunit3 => out.push_str(&render_nunit3(run)),
        Format::Asff => out.push_str(&render_asff(run)),
        Format::Snapshot => write_snapshot(run, true, out),
        Format::None => {}
    }
}

/// Renders `run` for `--export`: as [`render`], but a snapshot is compact
/// (Powerpipe indents only the one it prints), and text is brief only when
/// the run's `--output` is brief (Powerpipe's text exporter reads that flag).
pub fn render_export(
    run: &CheckRun,
    format: Format,
    width: usize,
    output: Format,
    csv: &CsvOptions,
) -> String {
    let mut out = Sink::string();
    write_export(run, format, width, output, csv, &mut out);
    out.finish().unwrap_or_default()
}

/// [`render_export`] into `out`.
pub fn write_export(
    run: &CheckRun,
    format: Format,
    width: usize,
    output: Format,
    csv: &CsvOptions,
    out: &mut Sink<'_>,
) {
    match format {
        Format::Snapshot => write_snapshot(run, false, out),
        Format::Text | Format::Brief => {
            render_text(run, output == Format::Brief, width, false, out)
        }
        f => write_with(run, f, width, false, csv, out),
    }
}

/// Where a renderer writes: a string, which, when the sink has a writer, is
/// handed to it every 64 KiB, so that a large output is never held whole.
/// The first write error is kept and stops further writes.
pub struct Sink<'w> {
    buf: String,
    to: Option<&'w mut dyn std::io::Write>,
    error: Option<std::io::Error>,
}

const SINK_CHUNK: usize = 1 << 16;

impl Sink<'static> {
    /// A sink that keeps everything (see [`Sink::finish`]).
    pub fn string() -> Self {
        Sink {
            buf: String::new(),
            to: None,
            error: None,
        }
    }
}

impl<'w> Sink<'w> {
    /// A sink that writes to `to` as it goes.
    pub fn writer(to: &'w mut dyn std::io::Write) -> Self {
        Sink {
            buf: String::with_capacity(SINK_CHUNK + 1024),
            to: Some(to),
            error: None,
        }
    }

    /// Appends text.
    pub fn push_str(&mut self, s: &str) {
        self.buf.push_str(s);
        if self.buf.len() >= SINK_CHUNK {
            self.spill();
        }
    }

    /// Appends a character.
    pub fn push(&mut self, c: char) {
        self.buf.push(c);
        if self.buf.len() >= SINK_CHUNK {
            self.spill();
        }
    }

    fn spill(&mut self) {
        if let Some(to) = self.to.as_mut() {
            if self.error.is_none() {
                if let Err(e) = to.write_all(self.buf.as_bytes()) {
                    self.error = Some(e);
                }
            }
            self.buf.clear();
        }
    }

    /// Writes what is left and flushes the writer; returns what a sink
    /// without a writer kept (empty otherwise), or the first write error.
    pub fn finish(mut self) -> std::io::Result<String> {
        self.spill();
        if let Some(to) = self.to.as_mut() {
            if self.error.is_none() {
                if let Err(e) = to.flush() {
                    self.error = Some(e);
                }
            }
        }
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(std::mem::take(&mut self.buf)),
        }
    }
}

impl std::fmt::Write for Sink<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.push_str(s);
        Ok(())
    }
}

/// Powerpipe's default export file name: `<target full name>.<YYYYMMDDTHHMMSS><ext>`
/// for the run's start time, in UTC (Powerpipe uses the local time at
/// export). An unparsable start time falls back to the current time.
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

/// Powerpipe's root result group: titled after the run's single target (or
/// the mod), no description, no tags; its children are the targets.
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
            let (groups, controls) = split_children(&g.children);
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

fn split_children(children: &[Node]) -> (Vec<&GroupRun>, Vec<&ControlRun>) {
    let mut groups = Vec::new();
    let mut controls = Vec::new();
    for ch in children {
        match ch {
            Node::Group(g) => groups.push(g),
            Node::Control(c) => controls.push(c),
        }
    }
    (groups, controls)
}

fn group_summary(g: &GroupRun) -> StatusSummary {
    let mut s = StatusSummary::default();
    for ch in &g.children {
        s.add(&ch.summary());
    }
    s
}

fn group_duration(g: &GroupRun) -> std::time::Duration {
    g.children
        .iter()
        .map(|ch| match ch {
            Node::Control(c) => c.duration,
            Node::Group(cg) => group_duration(cg),
        })
        .sum()
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

fn passed(s: &StatusSummary) -> u64 {
    s.ok + s.info
}

/// The working directory, as Powerpipe's md and html footers show it.
fn working_dir() -> String {
    std::env::current_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_default()
}

/// `2006-01-02 15:04:05` of the run's start (UTC).
fn start_time_text(run: &CheckRun) -> String {
    let secs = parse_rfc3339(&run.start_time)
        .map(|(s, _)| s)
        .unwrap_or_else(now_unix);
    let (y, mo, d, h, mi, s) = civil(secs);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
}

// ---------------------------------------------------------------------------
// Go's JSON encoding (encoding/json): HTML-safe escapes, sorted map keys.

/// A JSON string as Go's `json.Marshal` writes it: `<`, `>`, `&`, U+2028
/// and U+2029 escaped as `\u003c`..., control characters as `\n`, `\t`...
/// or `\u00XX`.
pub fn go_json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `v` as Go's `json.Marshal` (compact) or `json.MarshalIndent(v, "", "  ")`
/// writes a `map[string]any`: keys sorted, Go's string escapes.
pub fn go_json(v: &serde_json::Value, indent: bool) -> String {
    let mut out = Sink::string();
    write_go_json(&mut out, v, indent, 0, &no_rows);
    out.finish().unwrap_or_default()
}

/// For [`write_go_json`]: the results a control panel's `data.rows` are
/// written from, by panel name, instead of a value built for each.
type RowsOf<'a> = dyn Fn(&str) -> Option<&'a [ResultRow]> + 'a;

fn no_rows(_: &str) -> Option<&'static [ResultRow]> {
    None
}

fn write_go_json<'a>(
    out: &mut Sink<'_>,
    v: &serde_json::Value,
    indent: bool,
    depth: usize,
    rows_of: &RowsOf<'a>,
) {
    write_go_json_at(out, v, indent, depth, rows_of, None)
}

/// `rows`: the results to write as this object's `rows` member (a control
/// panel's `data`), one at a time.
fn write_go_json_at<'a>(
    out: &mut Sink<'_>,
    v: &serde_json::Value,
    indent: bool,
    depth: usize,
    rows_of: &RowsOf<'a>,
    rows: Option<&'a [ResultRow]>,
) {
    use serde_json::Value;
    let newline = |out: &mut Sink<'_>, depth: usize| {
        if indent {
            out.push('\n');
            for _ in 0..depth {
                out.push_str("  ");
            }
        }
    };
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => out.push_str(&go_json_string(s)),
        Value::Array(a) if a.is_empty() => out.push_str("[]"),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, depth + 1);
                write_go_json(out, x, indent, depth + 1, rows_of);
            }
            newline(out, depth);
            out.push(']');
        }
        Value::Object(m) if m.is_empty() => out.push_str("{}"),
        Value::Object(m) => {
            // A control panel whose rows are written from its results.
            let panel_rows = match (m.get("panel_type"), m.get("name")) {
                (Some(Value::String(t)), Some(Value::String(name))) if t == "control" => {
                    rows_of(name)
                }
                _ => None,
            };
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, depth + 1);
                out.push_str(&go_json_string(k));
                out.push(':');
                if indent {
                    out.push(' ');
                }
                match (k.as_str(), rows) {
                    ("rows", Some(results)) if !results.is_empty() => {
                        out.push('[');
                        for (i, r) in results.iter().enumerate() {
                            if i > 0 {
                                out.push(',');
                            }
                            newline(out, depth + 2);
                            write_go_json(out, &snapshot_row(r), indent, depth + 2, rows_of);
                        }
                        newline(out, depth + 1);
                        out.push(']');
                    }
                    ("data", _) if panel_rows.is_some() => write_go_json_at(
                        out,
                        &m[k.as_str()],
                        indent,
                        depth + 1,
                        rows_of,
                        panel_rows,
                    ),
                    _ => write_go_json(out, &m[k.as_str()], indent, depth + 1, rows_of),
                }
            }
            newline(out, depth);
            out.push('}');
        }
    }
}

/// Escapes text for HTML and XML (element text and attribute values),
/// dropping the control characters XML 1.0 does not allow. Powerpipe's
/// templates do not escape (its html and nunit3 break on `<` or `&` in a
/// reason); `check` does, and is otherwise the same.
fn escape_markup(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' | '\n' | '\r' => out.push(ch),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}

/// Text inside an XML CDATA section: `]]>` split so the section stays whole.
fn cdata(s: &str) -> String {
    escape_markup_controls(s).replace("]]>", "]]]]><![CDATA[>")
}

fn escape_markup_controls(s: &str) -> String {
    s.chars()
        .filter(|&c| (c as u32) >= 0x20 || matches!(c, '\t' | '\n' | '\r'))
        .collect()
}

/// A number as Go's message printer writes it in English: `1,020`.
fn thousands(n: u64) -> String {
    let d = n.to_string();
    let mut out = String::new();
    for (i, c) in d.chars().enumerate() {
        if i > 0 && (d.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

// ---------------------------------------------------------------------------
// text / brief: Powerpipe's table renderer (controldisplay/table.go and the
// group, control, result, counter, graph, spacer and summary renderers).

mod ansi {
    pub const BOLD: &str = "1";
    pub const GREY: &str = "90";
    pub const RED: &str = "31";
    pub const BOLD_RED: &str = "1;31";
    pub const GREEN: &str = "32";
    pub const CYAN: &str = "36";
    /// dimension values cycle through these, as Powerpipe colours each
    /// dimension value differently
    pub const DIMENSIONS: [&str; 6] = ["36", "35", "34", "33", "32", "96"];
}

/// A piece of a line and its ANSI style ("" for none). Widths are counted on
/// the text alone, so colour never changes the layout.
#[derive(Clone)]
struct Piece(String, &'static str);

fn p(text: impl Into<String>, style: &'static str) -> Piece {
    Piece(text.into(), style)
}

fn width_of(pieces: &[Piece]) -> i64 {
    pieces.iter().map(|x| printable_len(&x.0) as i64).sum()
}

fn paint(pieces: &[Piece], color: bool) -> String {
    let mut out = String::new();
    for Piece(text, style) in pieces {
        if color && !style.is_empty() && !text.is_empty() {
            let _ = write!(out, "\x1b[{style}m{text}\x1b[0m");
        } else {
            out.push_str(text);
        }
    }
    out
}

/// Go's `unicode.IsGraphic`, closely enough: not a control or an invisible
/// format character.
fn is_graphic(c: char) -> bool {
    !c.is_control()
        && !matches!(c, '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{feff}')
}

/// go-kit's `PrintableLength`: graphic runes.
fn printable_len(s: &str) -> usize {
    s.chars().filter(|c| is_graphic(*c)).count()
}

/// go-kit's `LimitPrintableRunes`: the first `n` graphic runes.
fn limit_printable(s: &str, n: i64) -> &str {
    if n <= 0 || s.is_empty() {
        return "";
    }
    let mut n = n;
    for (i, c) in s.char_indices() {
        if is_graphic(c) {
            n -= 1;
        }
        if n == -1 {
            return &s[..i];
        }
    }
    s
}

/// go-kit's `TruncateString`: each line cut to `length` printable runes,
/// the last one an ellipsis; nothing at all when `length` <= 1.
fn truncate(s: &str, length: i64) -> String {
    let mut lines: Vec<String> = s.split('\n').map(String::from).collect();
    for line in lines.iter_mut() {
        if length <= 1 {
            return String::new();
        }
        if printable_len(line) as i64 > length {
            *line = format!("{}…", limit_printable(line, length - 1));
        }
    }
    lines.join("\n")
}

/// `width - 1` dots and a space; one space for 1; nothing for less.
fn spacer(width: i64) -> Vec<Piece> {
    match width {
        w if w <= 0 => vec![],
        1 => vec![p(" ", "")],
        w => vec![p(".".repeat((w - 1) as usize), ansi::GREY), p(" ", "")],
    }
}

const GRAPH_SEGMENTS: i64 = 10;

/// `[`, failed segments, passed segments, spaces, `]`, against `max_total`.
fn graph(failed: u64, total: u64, max_total: u64, fail_style: &'static str) -> Vec<Piece> {
    let (fail, pass, spaces) = if max_total == 0 {
        (0, 0, GRAPH_SEGMENTS)
    } else {
        let segment = max_total as f64 / GRAPH_SEGMENTS as f64;
        let fail = if failed == 0 {
            0
        } else {
            (failed as f64 / segment).ceil() as i64
        };
        let mut all = (total as f64 / segment).ceil() as i64;
        let mut pass = all - fail;
        if pass == 0 && failed < total && all < GRAPH_SEGMENTS {
            pass += 1;
            all += 1;
        }
        (fail, pass, GRAPH_SEGMENTS - all)
    };
    vec![
        p("[", ""),
        p("=".repeat(fail.max(0) as usize), fail_style),
        p("=".repeat(pass.max(0) as usize), ansi::GREEN),
        p(" ".repeat(spaces.max(0) as usize), ""),
        p("]", ""),
    ]
}

/// `<failed> / <total> `, right-aligned to the widths of the maxima (the
/// failed count only when `align_failed`).
fn counter(
    failed: u64,
    total: u64,
    max_failed: u64,
    max_total: u64,
    align_failed: bool,
) -> Vec<Piece> {
    let (f, t) = (thousands(failed), thousands(total));
    let fw = if align_failed {
        thousands(max_failed).len()
    } else {
        f.len()
    };
    let tw = thousands(max_total).len();
    let fail_style = if failed == 0 {
        ansi::GREEN
    } else {
        ansi::BOLD_RED
    };
    vec![
        p(format!("{f:>fw$}"), fail_style),
        p(" ", ""),
        p("/", ""),
        p(" ", ""),
        p(format!("{t:>tw$}"), ""),
        p(" ", ""),
    ]
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

struct TextRenderer {
    width: i64,
    brief: bool,
    color: bool,
    max_failed: u64,
    max_total: u64,
}

/// Where a group sits in the tree: the indents its heading and children get.
#[derive(Clone)]
struct Place {
    /// the root result group (its children are not indented)
    root: bool,
    /// the indent inherited from the parent
    parent_indent: String,
    /// the indent of this group's heading
    heading_indent: String,
}

impl Place {
    fn child_indent(&self) -> String {
        format!("{}| ", self.parent_indent)
    }
    fn last_child_indent(&self) -> String {
        format!("{}  ", self.parent_indent)
    }
    fn child_group_indent(&self) -> String {
        format!("{}+ ", self.parent_indent)
    }
    /// The place of a child group.
    fn child(&self, last: bool) -> Place {
        Place {
            root: false,
            parent_indent: if self.root {
                String::new()
            } else if last {
                self.last_child_indent()
            } else {
                self.child_indent()
            },
            heading_indent: if self.root {
                String::new()
            } else {
                self.child_group_indent()
            },
        }
    }
}

impl TextRenderer {
    fn line(&self, pieces: &[Piece]) -> String {
        paint(pieces, self.color)
    }

    /// A group's or control's heading: title, dots, severity, counter, graph.
    fn heading(&self, title: &str, severity: &str, s: &StatusSummary, indent: &str) -> String {
        let sev = severity.to_uppercase();
        let sev_pieces = if sev == "CRITICAL" || sev == "HIGH" {
            vec![p(sev, ansi::BOLD_RED), p(" ", "")]
        } else {
            vec![]
        };
        let count = counter(s.failed(), s.total(), self.max_failed, self.max_total, true);
        let bar = graph(s.failed(), s.total(), self.max_total, ansi::RED);
        let indent_pieces = vec![p(indent, "")];
        let available = self.width
            - width_of(&count)
            - width_of(&bar)
            - width_of(&sev_pieces)
            - width_of(&indent_pieces);
        let title_pieces = if available <= 0 {
            vec![]
        } else {
            vec![p(truncate(title, available - 1), ansi::BOLD), p(" ", "")]
        };
        let spacer_width = available - width_of(&title_pieces);
        let mut all = indent_pieces;
        all.extend(title_pieces);
        if spacer_width > 0 {
            all.extend(spacer(spacer_width));
        }
        all.extend(sev_pieces);
        all.extend(count);
        all.extend(bar);
        self.line(&all)
    }

    /// The dimension values that fit in `width`: the first value is cut one
    /// rune at a time, then dropped (while more than two remain).
    fn dimensions(&self, dims: &[(std::sync::Arc<str>, String)], width: i64) -> Vec<Piece> {
        if width <= 0 || dims.is_empty() {
            return vec![];
        }
        let mut values: Vec<String> = dims.iter().map(|(_, v)| v.clone()).collect();
        let mut offset = 0;
        let bytes =
            |v: &[String]| v.iter().map(|x| x.len() as i64).sum::<i64>() + v.len() as i64 - 1;
        while bytes(&values) > width {
            let n = printable_len(&values[0]) as i64;
            if n > 0 {
                values[0] = truncate(&values[0], n - 1);
            } else if values.len() > 2 {
                values.remove(0);
                offset += 1;
            } else {
                return vec![];
            }
        }
        let mut out = Vec::new();
        for (i, v) in values.iter().enumerate() {
            if dims[offset + i].1.trim().is_empty() {
                continue;
            }
            if !out.is_empty() {
                out.push(p(" ", ""));
            }
            out.push(p(
                v.clone(),
                ansi::DIMENSIONS[(offset + i) % ansi::DIMENSIONS.len()],
            ));
        }
        out
    }

    fn result(&self, r: &ResultRow, indent: &str) -> Option<String> {
        if self.brief && !matches!(r.status, Status::Alarm | Status::Error) {
            return None;
        }
        let status = vec![
            p(
                format!("{:<5}", r.status.as_str().to_uppercase()),
                status_style(r.status),
            ),
            p(": ", ""),
        ];
        let indent_pieces = vec![p(indent, "")];
        let mut available = self.width - width_of(&status) - width_of(&indent_pieces);
        let mut dims = vec![];
        if available - 10 > 0 {
            dims = self.dimensions(&r.dimensions, available - 10);
            available -= width_of(&dims);
        }
        let reason = vec![p(truncate(&r.reason, available - 1), ""), p(" ", "")];
        available -= width_of(&reason);
        let mut all = indent_pieces;
        all.extend(status);
        all.extend(reason);
        if available > 0 && !r.dimensions.is_empty() {
            all.extend(spacer(available));
        }
        all.extend(dims);
        Some(self.line(&all))
    }

    /// Appends a control: its heading, then its results, line by line (the
    /// lines joined by line breaks, no break after the last).
    fn control(&self, out: &mut Sink<'_>, c: &ControlRun, parent: &Place, last: bool) {
        out.push_str(&self.heading(
            &c.title,
            &c.severity,
            &c.summary,
            &parent.child_group_indent(),
        ));
        let indent = if last {
            parent.last_child_indent()
        } else {
            parent.child_indent()
        };
        out.push('\n');
        out.push_str(&indent);
        if !c.results.is_empty() {
            out.push_str("| ");
        }
        if let Some(e) = &c.run_error {
            let status = vec![p("ERROR", ansi::RED), p(": ", "")];
            let available = self.width - width_of(&status) - indent.chars().count() as i64;
            let mut all = vec![p(indent.clone(), "")];
            all.extend(status);
            all.push(p(truncate(e, available), ansi::RED));
            out.push('\n');
            out.push_str(&self.line(&all));
            out.push('\n');
            out.push_str(&indent);
        }
        let mut any = false;
        for line in c.results.iter().filter_map(|r| self.result(r, &indent)) {
            out.push('\n');
            out.push_str(&line);
            any = true;
        }
        if any {
            out.push('\n');
            out.push_str(&indent);
        }
    }

    /// Appends a group and everything below it.
    fn group(&self, out: &mut Sink<'_>, g: &GroupRun, place: &Place) {
        out.push_str(&self.heading(&g.title, "", &group_summary(g), &place.heading_indent));
        out.push('\n');
        out.push_str(&place.child_indent());
        let n = g.children.len();
        for (i, ch) in g.children.iter().enumerate() {
            let last = i + 1 == n;
            out.push('\n');
            match ch {
                Node::Group(cg) => self.group(out, cg, &place.child(last)),
                Node::Control(c) => self.control(out, c, place, last),
            }
        }
    }

    fn root(&self, out: &mut Sink<'_>, root: &RootGroup) {
        let place = Place {
            root: true,
            parent_indent: String::new(),
            heading_indent: String::new(),
        };
        // As Powerpipe: groups, then controls written over the same slots.
        let slots = root.groups.len() + root.controls.len();
        for i in 0..slots {
            if i > 0 {
                out.push('\n');
            }
            if let Some(c) = root.controls.get(i) {
                self.control(out, c, &place, true);
            } else if let Some(g) = root.groups.get(i) {
                self.group(out, g, &place.child(true));
            }
        }
    }

    fn severity_row(
        &self,
        severity: &str,
        s: &StatusSummary,
        total: &StatusSummary,
        width: i64,
    ) -> String {
        let sev = vec![p(severity.to_uppercase(), ansi::BOLD_RED), p(" ", "")];
        let count = counter(s.failed(), s.total(), total.failed(), total.total(), false);
        let bar = graph(s.failed(), s.total(), total.total(), ansi::RED);
        let space = if severity == "critical" {
            spacer(4)
        } else {
            spacer(width - (width_of(&sev) + width_of(&count) + width_of(&bar)))
        };
        let mut all = sev;
        all.extend(space);
        all.extend(count);
        all.extend(bar);
        self.line(&all)
    }

    fn summary(&self, run: &CheckRun) -> String {
        let total = run.root.summary();
        let mut by_severity: BTreeMap<String, StatusSummary> = BTreeMap::new();
        for c in run.root.controls() {
            if !c.severity.is_empty() {
                by_severity
                    .entry(c.severity.clone())
                    .or_default()
                    .add(&c.summary);
            }
        }
        let mut available = self.width;
        let mut severity_rows = Vec::new();
        if let Some(s) = by_severity.get("critical") {
            let row = self.severity_row("critical", s, &total, available);
            available = printable_len(&strip_ansi(&row)) as i64;
            severity_rows.push(row);
        }
        if let Some(s) = by_severity.get("high") {
            severity_rows.push(self.severity_row("high", s, &total, available));
        }
        let severity_width = severity_rows
            .iter()
            .map(|r| printable_len(&strip_ansi(r)) as i64)
            .max()
            .unwrap_or(0);
        if severity_width > 0 {
            available = severity_width;
        }
        let head = vec![p("TOTAL", ansi::BOLD), p(" ", "")];
        let count = counter(
            total.failed(),
            total.total(),
            total.failed(),
            total.total(),
            false,
        );
        let bar = graph(total.failed(), total.total(), total.total(), ansi::RED);
        let mut total_row = head.clone();
        total_row.extend(spacer(
            available - (width_of(&head) + width_of(&count) + width_of(&bar)),
        ));
        total_row.extend(count);
        total_row.extend(bar);
        if severity_width == 0 {
            available = width_of(&total_row);
        }
        let mut lines = vec![format!("{}\n", self.line(&[p("Summary", ansi::BOLD)]))];
        for (status, n) in [
            (Status::Ok, total.ok),
            (Status::Skip, total.skip),
            (Status::Info, total.info),
            (Status::Alarm, total.alarm),
            (Status::Error, total.error),
        ] {
            let style = status_style(status);
            let st = vec![p(status.as_str().to_uppercase(), style), p(" ", "")];
            let count = vec![p(thousands(n), style), p(" ", "")];
            let bar = graph(n, n, total.total(), style);
            let mut all = st.clone();
            all.extend(spacer(
                available - (width_of(&st) + width_of(&count) + width_of(&bar)),
            ));
            all.extend(count);
            all.extend(bar);
            lines.push(self.line(&all));
        }
        if !severity_rows.is_empty() {
            lines.push(String::new());
            lines.extend(severity_rows);
        }
        lines.push(String::new());
        lines.push(self.line(&total_row));
        lines.join("\n")
    }
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// How deep the groups nest below the root (Powerpipe's `groupDepth`).
fn group_depth(groups: &[&GroupRun], my_depth: i64) -> i64 {
    if groups.is_empty() {
        return 0;
    }
    let deepest = groups
        .iter()
        .map(|g| group_depth(&split_children(&g.children).0, my_depth + 1))
        .max()
        .unwrap_or(0);
    my_depth + deepest
}

/// Powerpipe's `MaxColumns`.
const MAX_COLUMNS: i64 = 200;

fn render_text(run: &CheckRun, brief: bool, width: usize, color: bool, out: &mut Sink<'_>) {
    let root = root_group(run);
    let total = run.root.summary();
    // The narrowest width the tree fits: indent, title, severity, counter, graph.
    let minimum = group_depth(&root.groups, 0) * 2 + 1 + 8 + 7 + GRAPH_SEGMENTS;
    let r = TextRenderer {
        width: (width as i64).clamp(minimum, MAX_COLUMNS),
        brief,
        color,
        max_failed: total.failed(),
        max_total: total.total(),
    };
    out.push('\n');
    r.root(out, &root);
    out.push('\n');
    out.push_str(&r.summary(run));
    out.push('\n');
}

// ---------------------------------------------------------------------------
// csv (templates/csv/output.tmpl)

/// One cell as Powerpipe's `toCsvCell` writes it: Go's encoding/csv quoting
/// (a separator, quote, line break or leading space quotes the field; `\.`
/// too), then surrounding white space trimmed.
fn csv_cell(s: &str, sep: &str) -> String {
    let needs = !s.is_empty()
        && (s == "\\."
            || (!sep.is_empty() && s.contains(sep))
            || s.contains(['"', '\r', '\n'])
            || s.chars().next().is_some_and(char::is_whitespace));
    let cell = if needs {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    };
    cell.trim().to_string()
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

/// Every tag key of every benchmark and control of the run, sorted.
fn all_tag_keys(run: &CheckRun) -> BTreeSet<String> {
    fn walk(n: &Node, keys: &mut BTreeSet<String>) {
        match n {
            Node::Control(c) => keys.extend(c.tags.keys().cloned()),
            Node::Group(g) => {
                keys.extend(g.tags.keys().cloned());
                g.children.iter().for_each(|c| walk(c, keys));
            }
        }
    }
    let mut keys = BTreeSet::new();
    walk(&run.root, &mut keys);
    keys
}

/// CSV with a separator and an optional header line (`--separator`,
/// `--header`). Dimension columns are the sorted union of every result's
/// keys; tag columns the sorted union of every benchmark's and control's tag
/// keys (a row shows its control's tags). A control that could not run
/// gives one `error` line.
pub fn render_csv(run: &CheckRun, separator: &str, header: bool, out: &mut Sink<'_>) {
    let controls = controls_with_parents(run);
    let mut dim_keys = BTreeSet::new();
    for (c, ..) in &controls {
        for r in &c.results {
            dim_keys.extend(r.dimensions.iter().map(|(k, _)| k.clone()));
        }
    }
    let tag_keys = all_tag_keys(run);
    let cell = |s: &str| csv_cell(s, separator);
    if header {
        let mut h: Vec<String> = [
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
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        h.extend(dim_keys.iter().map(|k| k.to_string()));
        h.extend(tag_keys.iter().cloned());
        out.push_str(&h.join(separator));
        out.push('\n');
    }
    for (c, gid, gtitle, gdesc) in &controls {
        let head = [
            cell(gid),
            cell(gtitle),
            cell(gdesc),
            cell(&control_id(run, c)),
            cell(&c.title),
            cell(&c.description),
        ];
        let tags: Vec<String> = tag_keys
            .iter()
            .map(|k| cell(c.tags.get(k).map(String::as_str).unwrap_or("")))
            .collect();
        if let Some(e) = &c.run_error {
            let mut f: Vec<String> = head.to_vec();
            f.extend([cell(e), String::new(), cell("error"), String::new()]);
            f.extend(dim_keys.iter().map(|_| String::new()));
            f.extend(tags);
            out.push_str(&f.join(separator));
            out.push('\n');
            continue;
        }
        for r in &c.results {
            let mut f: Vec<String> = head.to_vec();
            f.extend([
                cell(&r.reason),
                cell(&r.resource),
                cell(r.status.as_str()),
                cell(&c.severity),
            ]);
            for k in &dim_keys {
                f.push(cell(
                    r.dimensions
                        .iter()
                        .find(|(dk, _)| dk == k)
                        .map(|(_, v)| v.as_str())
                        .unwrap_or(""),
                ));
            }
            f.extend(tags.iter().cloned());
            out.push_str(&f.join(separator));
            out.push('\n');
        }
    }
}

// ---------------------------------------------------------------------------
// json (templates/json/output.tmpl, then Go's json.Indent)

/// An ordered JSON value: the template fixes the key order.
enum J<'a> {
    Null,
    Num(u64),
    Str(String),
    Arr(Vec<J<'a>>),
    Obj(Vec<(String, J<'a>)>),
    /// A control's results, written one at a time as [`json_result`]
    /// shapes them (never all built at once).
    Results(&'a [ResultRow]),
}

fn js(s: impl Into<String>) -> J<'static> {
    J::Str(s.into())
}

fn obj<'a>(entries: Vec<(&str, J<'a>)>) -> J<'a> {
    J::Obj(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}

/// As `json.Indent(dst, src, "", "  ")` lays the template's output out.
fn write_json(out: &mut Sink<'_>, j: &J<'_>, depth: usize) {
    let pad = |out: &mut Sink<'_>, d: usize| {
        out.push('\n');
        for _ in 0..d {
            out.push_str("  ");
        }
    };
    match j {
        J::Null => out.push_str("null"),
        J::Num(n) => {
            let _ = write!(out, "{n}");
        }
        J::Str(s) => out.push_str(&go_json_string(s)),
        J::Arr(v) if v.is_empty() => out.push_str("[]"),
        J::Obj(v) if v.is_empty() => out.push_str("{}"),
        J::Results([]) => out.push_str("[]"),
        J::Results(v) => {
            out.push('[');
            for (i, r) in v.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                pad(out, depth + 1);
                write_json(out, &json_result(r), depth + 1);
            }
            pad(out, depth);
            out.push(']');
        }
        J::Arr(v) => {
            out.push('[');
            for (i, x) in v.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                pad(out, depth + 1);
                write_json(out, x, depth + 1);
            }
            pad(out, depth);
            out.push(']');
        }
        J::Obj(v) => {
            out.push('{');
            for (i, (k, x)) in v.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                pad(out, depth + 1);
                out.push_str(&go_json_string(k));
                out.push_str(": ");
                write_json(out, x, depth + 1);
            }
            pad(out, depth);
            out.push('}');
        }
    }
}

fn json_tags(tags: &BTreeMap<String, String>) -> J<'static> {
    J::Obj(
        tags.iter()
            .map(|(k, v)| (k.clone(), js(v.clone())))
            .collect(),
    )
}

fn json_counts(s: &StatusSummary) -> J<'static> {
    obj(vec![
        ("alarm", J::Num(s.alarm)),
        ("ok", J::Num(s.ok)),
        ("info", J::Num(s.info)),
        ("skip", J::Num(s.skip)),
        ("error", J::Num(s.error)),
    ])
}

/// Powerpipe's `toSafeJson` of a run error: line breaks and tabs as spaces.
fn safe_error(e: &str) -> String {
    e.replace(['\n', '\r', '\t'], " ").replace('\0', "")
}

/// One result as the template writes it.
fn json_result(r: &ResultRow) -> J<'static> {
    let dims = if r.dimensions.is_empty() {
        J::Null
    } else {
        J::Arr(
            r.dimensions
                .iter()
                .map(|(k, v)| obj(vec![("key", js(&**k)), ("value", js(v.clone()))]))
                .collect(),
        )
    };
    obj(vec![
        ("reason", js(r.reason.clone())),
        ("resource", js(r.resource.clone())),
        ("status", js(r.status.as_str())),
        ("dimensions", dims),
    ])
}

fn json_control<'a>(run: &CheckRun, c: &'a ControlRun) -> J<'a> {
    let results = if c.results.is_empty() {
        J::Null
    } else {
        J::Results(&c.results)
    };
    obj(vec![
        ("summary", json_counts(&c.summary)),
        ("results", results),
        ("control_id", js(control_id(run, c))),
        ("description", js(c.description.clone())),
        ("severity", js(c.severity.clone())),
        ("tags", json_tags(&c.tags)),
        ("title", js(c.title.clone())),
        ("run_status", J::Num(run_status_code(c.run_status))),
        (
            "run_error",
            js(safe_error(c.run_error.as_deref().unwrap_or(""))),
        ),
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
fn json_group<'a>(
    run: &CheckRun,
    head: [&str; 3],
    tags: J<'a>,
    summary: &StatusSummary,
    groups: &[&'a GroupRun],
    controls: &[&'a ControlRun],
) -> J<'a> {
    let [id, title, description] = head;
    let controls = if controls.is_empty() {
        J::Null
    } else {
        J::Arr(controls.iter().map(|c| json_control(run, c)).collect())
    };
    obj(vec![
        ("group_id", js(id)),
        ("title", js(title)),
        ("description", js(description)),
        ("tags", tags),
        ("summary", obj(vec![("status", json_counts(summary))])),
        (
            "groups",
            J::Arr(groups.iter().map(|g| json_benchmark(run, g)).collect()),
        ),
        ("controls", controls),
    ])
}

fn json_benchmark<'a>(run: &CheckRun, g: &'a GroupRun) -> J<'a> {
    let (groups, controls) = split_children(&g.children);
    json_group(
        run,
        [&g.full_name, &g.title, &g.description],
        json_tags(&g.tags),
        &group_summary(g),
        &groups,
        &controls,
    )
}

fn render_json(run: &CheckRun, out: &mut Sink<'_>) {
    let root = root_group(run);
    let j = json_group(
        run,
        [ROOT_GROUP_ID, root.title, ""],
        J::Obj(vec![]),
        &run.root.summary(),
        &root.groups,
        &root.controls,
    );
    write_json(out, &j, 0);
    // json.Indent keeps the space the template leaves after the last brace.
    out.push(' ');
}

// ---------------------------------------------------------------------------
// md (templates/md/output.tmpl)

fn status_icon(s: Status) -> &'static str {
    match s {
        Status::Ok => "✅",
        Status::Skip => "⇨",
        Status::Info => "ℹ",
        Status::Alarm => "❌",
        Status::Error => "❗",
    }
}

fn md_summary(s: &StatusSummary) -> String {
    format!(
        "\n| OK | Skip | Info | Alarm | Error | Total |\n|-|-|-|-|-|-|\n| {} | {} | {} | {} | {} | {} |\n",
        s.ok,
        s.skip,
        s.info,
        s.alarm,
        s.error,
        s.total()
    )
}

fn md_control(c: &ControlRun) -> String {
    let mut out = format!("\n## {}\n", c.title);
    if !c.description.is_empty() {
        let _ = write!(out, " \n*{}*", c.description);
    }
    out.push('\n');
    out.push_str(&md_summary(&c.summary));
    if let Some(e) = &c.run_error {
        let _ = write!(out, "\n> Error: _{e}_\n");
    } else {
        out.push_str("\n\n");
        if !c.results.is_empty() {
            out.push_str("\n| | Reason | Dimensions |\n|-|--------|------------|");
            for r in &c.results {
                let _ = write!(out, "\n| {} | {}| ", status_icon(r.status), r.reason);
                for (_, v) in &r.dimensions {
                    let _ = write!(out, "`{v}` ");
                }
                out.push_str(" |");
            }
        }
    }
    out.push('\n');
    out
}

fn md_group(g: &GroupRun, root: bool) -> String {
    let s = group_summary(g);
    let mut out = format!("\n# {}\n", g.title);
    if root {
        let _ = write!(
            out,
            "\n| | TOTAL | {} |\n|-|-|-|\n| ✅ | OK | {} |\n| ⇨ | Skip | {} |\n| ℹ | Info | {} |\n| ❌ | Alarm | {} |\n| ❗ | Error | {} |\n",
            s.total(),
            s.ok,
            s.skip,
            s.info,
            s.alarm,
            s.error
        );
    } else {
        out.push_str(&md_summary(&s));
    }
    let (groups, controls) = split_children(&g.children);
    if !controls.is_empty() {
        out.push('\n');
        for c in controls {
            out.push_str(&md_control(c));
        }
    }
    for cg in groups {
        out.push_str(&md_group(cg, false));
    }
    out
}

fn render_md(run: &CheckRun) -> String {
    let root = root_group(run);
    let mut out = String::from("\n\n");
    for c in &root.controls {
        out.push_str(&md_control(c));
    }
    out.push_str("\n\n");
    for g in &root.groups {
        out.push_str(&md_group(g, true));
    }
    let _ = writeln!(
        out,
        "\n\n\\\n_Report run at `{}` using [`{TOOL_NAME} {TOOL_VERSION}`]({TOOL_URL}) in dir `{}`._",
        start_time_text(run),
        working_dir()
    );
    out
}

// ---------------------------------------------------------------------------
// html (templates/html/output.tmpl), escaped, with check's own stylesheet
// and icon

const HTML_STYLE: &str = "body{font-family:-apple-system,BlinkMacSystemFont,\"Segoe UI\",Helvetica,Arial,sans-serif;color:#24292f}\
.container{max-width:1200px;margin:0 auto;padding:2em}table{border-collapse:collapse;margin:0.5em 0 1.5em}\
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}th{background:#f6f8fa}\
.align-center{text-align:center}.header{display:flex;justify-content:space-between;align-items:center}\
.logo{height:32px}.highlight{font-weight:bold}.summary-total-ok.highlight{color:#1a7f37}\
.summary-total-alarm.highlight,.summary-total-error.highlight{color:#cf222e}.summary-total-info.highlight{color:#0969da}\
code{background:#f6f8fa;padding:0 4px;margin-right:4px}footer{margin-top:2em;color:#57606a}";

/// A plain check-mark icon (check's own; Powerpipe's embeds Turbot's logos).
const HTML_ICON: &str = "data:image/svg+xml;base64,PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciIHZpZXdCb3g9IjAgMCAxNiAxNiI+PGNpcmNsZSBjeD0iOCIgY3k9IjgiIHI9IjgiIGZpbGw9IiMxYTdmMzciLz48cGF0aCBkPSJNNCA4LjVsMi41IDIuNUwxMiA1IiBzdHJva2U9IiNmZmYiIHN0cm9rZS13aWR0aD0iMiIgZmlsbD0ibm9uZSIvPjwvc3ZnPg==";

fn html_class(name: &str, n: u64) -> String {
    if n > 0 {
        format!("summary-total-{name} highlight")
    } else {
        format!("summary-total-{name}")
    }
}

fn html_summary(s: &StatusSummary) -> String {
    format!(
        "\n<table role=\"table\">\n  <thead>\n    <tr>\n      <th>OK</th>\n      <th>Skip</th>\n      <th>Info</th>\n      <th>Alarm</th>\n      <th>Error</th>\n      <th>Total</th>\n    </tr>\n  </thead>\n  <tbody>\n    <tr>\n      <td class=\"{}\">{}</td>\n      <td class=\"{}\">{}</td>\n      <td class=\"{}\">{}</td>\n      <td class=\"{}\">{}</td>\n      <td class=\"{}\">{}</td>\n      <td>{}</td>\n    </tr>\n  </tbody>\n</table>\n",
        html_class("ok", s.ok),
        s.ok,
        html_class("skip", s.skip),
        s.skip,
        html_class("info", s.info),
        s.info,
        html_class("alarm", s.alarm),
        s.alarm,
        html_class("error", s.error),
        s.error,
        s.total()
    )
}

fn html_root_summary(s: &StatusSummary) -> String {
    let mut out = format!(
        "\n<table role=\"table\">\n  <thead>\n    <tr>\n      <th></th>\n      <th>TOTAL</th>\n      <th>{}</th>\n    </tr>\n  </thead>\n  <tbody>\n",
        s.total()
    );
    for (icon, label, class, n) in [
        ("✅", "OK", "ok", s.ok),
        ("⇨", "Skip", "skip", s.skip),
        ("ℹ", "Info", "info", s.info),
        ("❌", "Alarm", "alarm", s.alarm),
        ("❗", "Error", "error", s.error),
    ] {
        let _ = write!(
            out,
            "    <tr>\n      <td class=\"align-center\">{icon}</td>\n      <td>{label}</td>\n      <td class=\"{}\">{n}</td>\n    </tr>\n",
            html_class(class, n)
        );
    }
    out.push_str("  </tbody>\n</table>\n");
    out
}

fn html_control(c: &ControlRun) -> String {
    let mut out = format!(
        "\n<section class=\"control\">\n  <h3>{}</h3>\n\n  ",
        escape_markup(&c.title)
    );
    if !c.description.is_empty() {
        let _ = write!(
            out,
            "\n  <p><em>{}</em></p>\n  ",
            escape_markup(&c.description)
        );
    }
    out.push_str("\n\n  ");
    out.push_str(&html_summary(&c.summary));
    out.push_str("\n\n  ");
    if let Some(e) = &c.run_error {
        let _ = write!(out, "\n  <blockquote>{}</blockquote>\n  ", escape_markup(e));
    } else {
        out.push_str("\n  \n  ");
        if !c.results.is_empty() {
            out.push_str("\n  \n<table role=\"table\">\n  <thead>\n    <tr>\n      <th></th>\n      <th>Reason</th>\n      <th>Dimensions</th>\n    </tr>\n  </thead>\n  <tbody>\n    ");
            for r in &c.results {
                let resource = escape_markup(&r.resource);
                let _ = write!(
                    out,
                    "\n    \n<tr>\n  <td class=\"align-center\" title=\"Resource: {resource}\">{}</td>\n  <td title=\"Resource: {resource}\">{}</td>\n  <td>\n    ",
                    status_icon(r.status),
                    escape_markup(&r.reason)
                );
                for (_, v) in &r.dimensions {
                    let _ = write!(out, "\n    <code>{}</code>\n    ", escape_markup(v));
                }
                out.push_str("\n  </td>\n</tr>\n\n    ");
            }
            out.push_str("\n  </tbody>\n</table>\n\n  ");
        }
        out.push_str("\n  ");
    }
    out.push_str("\n</section>\n");
    out
}

fn html_group_body(g: &GroupRun, out: &mut String) {
    let (groups, controls) = split_children(&g.children);
    out.push_str("\n\n  ");
    if !controls.is_empty() {
        out.push_str("\n  ");
        for c in controls {
            out.push_str("\n  ");
            out.push_str(&html_control(c));
            out.push_str("\n  ");
        }
        out.push_str("\n  ");
    }
    out.push_str("\n\n  ");
    for cg in groups {
        out.push_str("\n  ");
        out.push_str(&html_group(cg));
        out.push_str("\n  ");
    }
    out.push_str("\n</section>\n");
}

fn html_group(g: &GroupRun) -> String {
    let mut out = format!(
        "\n<section class=\"group\">\n  <h2>{}</h2>\n  ",
        escape_markup(&g.title)
    );
    out.push_str(&html_summary(&group_summary(g)));
    html_group_body(g, &mut out);
    out
}

fn html_root_group(g: &GroupRun) -> String {
    let mut out = format!(
        "\n<section class=\"group\">\n  <div class=\"header\">\n    <h1 class=\"title\">{}</h1>\n    <a href=\"https://steampipe.io\" rel=\"noopener noreferrer\" target=\"_blank\"><img class=\"logo\" src=\"{HTML_ICON}\" alt=\"Steampipe Report\" /></a>\n  </div>\n  ",
        escape_markup(&g.title)
    );
    out.push_str(&html_root_summary(&group_summary(g)));
    html_group_body(g, &mut out);
    out
}

fn render_html(run: &CheckRun) -> String {
    let root = root_group(run);
    let mut out = format!(
        "\n<!DOCTYPE html>\n<html lang=\"en\">\n\n<head>\n  <title>Powerpipe Report</title>\n  <style>\n    {HTML_STYLE}\n  </style>\n  <meta charset=\"UTF-8\">\n  <link rel=\"icon\" href='{HTML_ICON}' type=\"image/svg+xml\" sizes=\"any\">\n</head>\n\n<body>\n  <div class=\"container\">\n    \n    "
    );
    for c in &root.controls {
        out.push_str(&html_control(c));
    }
    out.push_str("\n    \n    ");
    for g in &root.groups {
        out.push_str(&html_root_group(g));
    }
    let _ = write!(
        out,
        "\n    <footer><em>Report run at <code>{}</code> using <a href=\"{TOOL_URL}\"\n          rel=\"nofollow\"><code>{TOOL_NAME} {TOOL_VERSION}</code></a> in dir\n        <code>{}</code>.</em></footer>\n  </div>\n</body>\n\n</html>\n",
        start_time_text(run),
        escape_markup(&working_dir())
    );
    out
}

// ---------------------------------------------------------------------------
// nunit3 (templates/nunit3.xml/output.tmpl), escaped

fn nunit_counts(s: &StatusSummary) -> String {
    format!(
        "testcasecount=\"{t}\" total=\"{t}\" passed=\"{}\" failed=\"{}\" skipped=\"{}\"",
        passed(s),
        s.failed(),
        s.skip,
        t = s.total()
    )
}

fn nunit_result(s: Status) -> &'static str {
    match s {
        Status::Ok | Status::Info => "Passed",
        Status::Alarm | Status::Error => "Failed",
        Status::Skip => "Skipped",
    }
}

fn nunit_control(run: &CheckRun, c: &ControlRun) -> String {
    let mut out = format!(
        "\n<test-suite id=\"{}\" name=\"{}\" duration=\"{}\" {}>\n    ",
        escape_markup(&control_id(run, c)),
        escape_markup(&c.full_name),
        c.duration.as_secs_f64(),
        nunit_counts(&c.summary)
    );
    for (i, r) in c.results.iter().enumerate() {
        let reason = escape_markup(&r.reason);
        let _ = write!(
            out,
            "\n        \n<test-case id=\"{}::{i}\" name=\"{}::{i}\" result=\"{}\">\n<properties>\n    <property>\n     <key>steampipe:status</key>\n     <value>{}</value>\n    </property>\n    <property>\n     <key>steampipe:reason</key>\n     <value>{reason}</value>\n    </property>\n    ",
            escape_markup(&c.short_name),
            escape_markup(&c.full_name),
            nunit_result(r.status),
            r.status.as_str()
        );
        for (k, v) in &r.dimensions {
            let _ = write!(
                out,
                "\n    <property>\n    <key>steampipe:dimension:{}</key>\n    <value>{}</value>\n    </property>\n    ",
                escape_markup(k),
                escape_markup(v)
            );
        }
        let _ = write!(
            out,
            "\n</properties>\n<reason>\n<message><![CDATA[{}]]></message>\n</reason>\n</test-case>\n\n    ",
            cdata(&r.reason)
        );
    }
    out.push_str("\n</test-suite>\n");
    out
}

fn nunit_children(
    run: &CheckRun,
    groups: &[&GroupRun],
    controls: &[&ControlRun],
    out: &mut String,
) {
    for g in groups {
        out.push_str("\n        ");
        out.push_str(&nunit_group(run, g));
        out.push_str("\n    ");
    }
    out.push_str("\n    \n    ");
    for c in controls {
        out.push_str(&nunit_control(run, c));
    }
}

fn nunit_group(run: &CheckRun, g: &GroupRun) -> String {
    let mut out = format!(
        "\n<test-suite id=\"{}\" name=\"{}\" duration=\"{}\" {}>\n    ",
        escape_markup(&g.full_name),
        escape_markup(&g.title),
        group_duration(g).as_secs_f64(),
        nunit_counts(&group_summary(g))
    );
    let (groups, controls) = split_children(&g.children);
    nunit_children(run, &groups, &controls, &mut out);
    out.push_str("</test-suite>\n");
    out
}

fn render_nunit3(run: &CheckRun) -> String {
    let root = root_group(run);
    let mut out = format!("\n<test-run {}>\n    ", nunit_counts(&run.root.summary()));
    nunit_children(run, &root.groups, &root.controls, &mut out);
    out.push_str("</test-run>\n");
    out
}

// ---------------------------------------------------------------------------
// asff (templates/asff.json/output.tmpl)

fn asff_compliance(s: Status) -> &'static str {
    match s {
        Status::Ok => "PASSED",
        Status::Alarm => "FAILED",
        Status::Error => "WARNING",
        Status::Skip | Status::Info => "NOT_AVAILABLE",
    }
}

/// A JSON string's inside, for the template's `"{{ .Field }}"` places:
/// Powerpipe writes those raw; `check` escapes them so the file stays JSON.
fn json_inner(s: &str) -> String {
    let q = go_json_string(s);
    q[1..q.len() - 1].to_string()
}

/// ASFF findings for every result row of controls tagged `plugin = "aws"`.
/// `Id` is the control's full name and `GeneratorId` `powerpipe-<control>`,
/// as Powerpipe writes them; CreatedAt and UpdatedAt are the run's end time.
fn render_asff(run: &CheckRun) -> String {
    let at = parse_rfc3339(&run.end_time)
        .or_else(|| parse_rfc3339(&run.start_time))
        .map(|(s, _)| {
            let (y, mo, d, h, mi, s) = civil(s);
            format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
        })
        .unwrap_or_else(|| run.end_time.clone());
    let mut findings = Vec::new();
    for c in run.root.controls() {
        if c.tags.get("plugin").map(String::as_str) != Some("aws") {
            continue;
        }
        let severity = if c.severity.is_empty() {
            "INFORMATIONAL".to_string()
        } else {
            c.severity.to_uppercase()
        };
        for r in &c.results {
            let dim = |k: &str| {
                r.dimensions
                    .iter()
                    .find(|(dk, _)| &**dk == k)
                    .map(|(_, v)| json_inner(v))
                    .unwrap_or_default()
            };
            let (region, account) = (dim("region"), dim("account_id"));
            findings.push(format!(
                "\n{{\n    \"SchemaVersion\": \"2018-10-08\",\n    \"Id\": \"{}\",\n    \"ProductArn\": \"arn:aws:securityhub:{region}:{account}:product/{account}/default\",\n    \"ProductFields\": {{\n        \"ProviderName\": \"{TOOL_NAME}\",\n        \"ProviderVersion\": \"{TOOL_VERSION}\"\n    }},\n    \"GeneratorId\": \"powerpipe-{}\",\n    \"AwsAccountId\": \"{account}\",\n    \"Types\": [\n        \"automated\"\n    ],\n    \"UpdatedAt\": \"{at}\",\n    \"CreatedAt\": \"{at}\",\n    \"Title\": {},\n    \"Description\": {},\n    \"Severity\": {{\n        \"Label\": \"{}\"\n    }},\n    \"Resources\": [\n        {{\n            \"Type\": \"Other\",\n            \"Id\": \"{}\"\n        }}\n    ],\n    \"Compliance\": {{\n        \"Status\": \"{}\"\n    }}\n}}",
                json_inner(&c.full_name),
                json_inner(&c.short_name),
                go_json_string(&c.title),
                go_json_string(&c.description),
                json_inner(&severity),
                json_inner(&r.resource),
                asff_compliance(r.status)
            ));
        }
    }
    format!("[{}\n]\n", findings.join(","))
}

// ---------------------------------------------------------------------------
// snapshot

use serde_json::{json, Map, Value};

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

fn put_text(p: &mut Map<String, Value>, key: &str, v: &str) {
    if !v.is_empty() {
        p.insert(key.into(), json!(v));
    }
}

/// One result as a row of a control panel's data.
fn snapshot_row(r: &ResultRow) -> Value {
    let mut row = Map::new();
    row.insert("reason".into(), json!(r.reason));
    row.insert("resource".into(), json!(r.resource));
    row.insert("status".into(), json!(r.status.as_str()));
    for (k, v) in &r.dimensions {
        row.insert(k.to_string(), json!(v));
    }
    Value::Object(row)
}

fn snapshot_panels(node: &Node, top: bool, panels: &mut Map<String, Value>, with_rows: bool) {
    match node {
        Node::Control(c) => {
            let mut p = Map::new();
            p.insert("name".into(), json!(c.full_name));
            put_text(&mut p, "title", &c.title);
            put_text(&mut p, "description", &c.description);
            put_text(
                &mut p,
                "documentation",
                c.documentation.as_deref().unwrap_or(""),
            );
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
            if c.run_status == RunStatus::Complete {
                let mut columns = vec![
                    json!({"name": "reason", "data_type": "TEXT"}),
                    json!({"name": "resource", "data_type": "TEXT"}),
                    json!({"name": "status", "data_type": "TEXT"}),
                ];
                let mut dim_names: Vec<&str> = Vec::new();
                for r in &c.results {
                    for (k, _) in &r.dimensions {
                        if !dim_names.contains(&&**k) {
                            dim_names.push(k);
                        }
                    }
                }
                columns.extend(
                    dim_names
                        .iter()
                        .map(|d| json!({"name": d, "data_type": "TEXT"})),
                );
                // Left empty when the writer fills them from the results.
                let rows: Vec<Value> = if with_rows {
                    c.results.iter().map(snapshot_row).collect()
                } else {
                    Vec::new()
                };
                p.insert("data".into(), json!({"columns": columns, "rows": rows}));
            }
            if let Some(e) = &c.run_error {
                // A control whose query failed has no data (null), and the error.
                p.insert("data".into(), Value::Null);
                p.insert("error".into(), json!(e));
            }
            panels.insert(c.full_name.clone(), Value::Object(p));
        }
        Node::Group(g) => {
            let mut p = Map::new();
            p.insert("name".into(), json!(g.full_name));
            put_text(&mut p, "title", &g.title);
            put_text(&mut p, "description", &g.description);
            put_text(
                &mut p,
                "documentation",
                g.documentation.as_deref().unwrap_or(""),
            );
            if !g.tags.is_empty() {
                p.insert("tags".into(), snapshot_tags(&g.tags));
            }
            p.insert("panel_type".into(), json!("benchmark"));
            if top {
                p.insert("benchmark_type".into(), json!("control"));
                p.insert("dashboard".into(), json!(g.full_name));
                p.insert("status".into(), json!("complete"));
            }
            p.insert(
                "summary".into(),
                json!({"status": snapshot_counts(&group_summary(g))}),
            );
            panels.insert(g.full_name.clone(), Value::Object(p));
            for ch in &g.children {
                snapshot_panels(ch, false, panels, with_rows);
            }
        }
    }
}

/// The snapshot as a JSON value: Powerpipe's panels (without `sql`,
/// `source_definition`, `search_path`), layout, times and variables.
pub fn snapshot_value(run: &CheckRun) -> Value {
    snapshot_value_with(run, true)
}

fn snapshot_value_with(run: &CheckRun, with_rows: bool) -> Value {
    let mut panels = Map::new();
    snapshot_panels(&run.root, true, &mut panels, with_rows);
    let variables: Map<String, Value> = run
        .variables
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    json!({
        "end_time": run.end_time,
        "inputs": {},
        "layout": snapshot_layout(&run.root),
        "panels": panels,
        "schema_version": SNAPSHOT_SCHEMA_VERSION,
        "start_time": run.start_time,
        "variables": variables,
    })
}

/// Go's `json.Marshal` (export) or `json.MarshalIndent` (output) of the
/// snapshot, and a line break. The panels are built without their rows,
/// which are written from the results one at a time.
fn write_snapshot(run: &CheckRun, indent: bool, out: &mut Sink<'_>) {
    let controls = run.root.controls();
    let rows_of = |name: &str| {
        controls
            .iter()
            .find(|c| c.full_name == name && c.run_status == RunStatus::Complete)
            .map(|c| c.results.as_slice())
    };
    write_go_json(out, &snapshot_value_with(run, false), indent, 0, &rows_of);
    out.push('\n');
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

/// Parses an RFC 3339 time to Unix seconds and nanoseconds (see
/// `parse_rfc3339`), for ordering the times of several runs.
pub fn parse_time(s: &str) -> Option<(i64, u32)> {
    parse_rfc3339(s)
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

    #[test]
    fn truncation_counts_printable_runes_and_ends_with_an_ellipsis() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abc", 1), "");
        assert_eq!(truncate("ab\ncdefg", 4), "ab\ncde…");
        assert_eq!(truncate("żółw żółw", 5), "żółw…");
    }

    #[test]
    fn counter_graphs_scale_against_the_largest_total() {
        let plain = |v: Vec<Piece>| paint(&v, false);
        assert_eq!(plain(graph(8, 13, 13, "")), "[==========]");
        assert_eq!(plain(graph(0, 0, 13, "")), "[          ]");
        assert_eq!(plain(graph(5, 5, 13, "")), "[====      ]");
        assert_eq!(plain(graph(0, 0, 0, "")), "[          ]");
        // one passing result still shows one segment
        assert_eq!(plain(graph(1, 2, 100, "")), "[==        ]");
        assert_eq!(plain(counter(8, 13, 8, 13, true)), "8 / 13 ");
        assert_eq!(plain(counter(2, 3, 10, 1020, true)), " 2 /     3 ");
        assert_eq!(plain(counter(2, 3, 10, 1020, false)), "2 /     3 ");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn spacers_are_dots_and_a_space() {
        assert_eq!(paint(&spacer(4), false), "... ");
        assert_eq!(paint(&spacer(1), false), " ");
        assert_eq!(paint(&spacer(0), false), "");
    }

    #[test]
    fn strings_are_escaped_as_go_encodes_them() {
        assert_eq!(
            go_json_string("a<b>&c\"d\\"),
            r#""a\u003cb\u003e\u0026c\"d\\""#
        );
        assert_eq!(
            go_json_string("l\ni\tn\u{1}e\u{2028}"),
            r#""l\ni\tn\u0001e\u2028""#
        );
        let v = serde_json::json!({"b": [1, {"z": null, "a": "x"}], "a": {}, "c": []});
        assert_eq!(
            go_json(&v, false),
            r#"{"a":{},"b":[1,{"a":"x","z":null}],"c":[]}"#
        );
        assert_eq!(
            go_json(&v, true),
            "{\n  \"a\": {},\n  \"b\": [\n    1,\n    {\n      \"a\": \"x\",\n      \"z\": null\n    }\n  ],\n  \"c\": []\n}"
        );
    }

    #[test]
    fn csv_cells_are_quoted_as_go_csv_quotes_them_then_trimmed() {
        assert_eq!(csv_cell("plain", ","), "plain");
        assert_eq!(csv_cell("a,b", ","), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\"", ","), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell(" lead", ","), "\" lead\"");
        assert_eq!(csv_cell("trail ", ","), "trail");
        assert_eq!(csv_cell("a|b", "|"), "\"a|b\"");
        assert_eq!(csv_cell("", ","), "");
    }

    #[test]
    fn export_files_take_their_format_from_the_last_extension() {
        let f = |s: &str| Format::parse_export(s).map(|(f, p)| (f, p.is_some()));
        assert_eq!(f("csv"), Ok((Format::Csv, false)));
        assert_eq!(f("asff"), Ok((Format::Asff, false)));
        assert_eq!(f("asff.json"), Ok((Format::Asff, false)));
        assert_eq!(f("nunit3.xml"), Ok((Format::Nunit3, false)));
        assert_eq!(f("pps"), Ok((Format::Snapshot, false)));
        assert_eq!(f("out.csv"), Ok((Format::Csv, true)));
        assert_eq!(f("findings.asff.json"), Ok((Format::Json, true)));
        assert_eq!(f("report.nunit3.xml"), Ok((Format::Nunit3, true)));
        assert_eq!(f("run.pps"), Ok((Format::Snapshot, true)));
        assert_eq!(f("run.txt"), Ok((Format::Text, true)));
        assert!(f("bogus").unwrap_err().contains("'bogus'"));
        assert!(f("OUT.JSON").is_err());
    }

    #[test]
    fn output_names_are_powerpipes() {
        for (s, want) in [
            ("text", Format::Text),
            ("brief", Format::Brief),
            ("pps", Format::Snapshot),
            ("none", Format::None),
            ("html", Format::Html),
        ] {
            assert_eq!(Format::parse_output(s), Ok(want));
        }
        assert!(Format::parse_output("nunit3").is_err());
    }

    #[test]
    fn progress_lines_count_controls() {
        assert_eq!(
            progress_line(0, 1, "foundational_security_ec2_8"),
            "Running 1 control. (0 complete, 1 running, 0 pending, 0 errors): foundational_security_ec2_8"
        );
        assert_eq!(
            progress_status(3, 1, 1, 1, ""),
            "Running 3 controls. (1 complete, 1 running, 1 pending, 1 error)"
        );
    }
}
