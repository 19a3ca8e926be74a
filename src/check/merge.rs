//! `steampipe-plugin-aws check merge FILE...`: combines the JSON or snapshot
//! outputs of several `check` runs (each over a slice of the connections,
//! e.g. one CI job per group of accounts) into one report, in any format
//! `check` writes, with `check`'s exit codes.
//!
//! Each file is read back into the result tree ([`CheckRun`]): Powerpipe's
//! JSON (`--output json`, `--export json`) or snapshot (`--output snapshot`,
//! `--export snapshot` / `pps`), as `check` or Powerpipe wrote it. The trees
//! are unioned by name (targets, then benchmarks, then controls); a control
//! found in several files gets the rows of each, in the order the files are
//! given, and every summary is counted again. Rows are then in Powerpipe's
//! order (error, alarm, info, ok, skip; file order within each), so the files
//! of slices given in the order of their connections merge into what one run
//! over all the connections gives. Children are put back in the mod's
//! declaration order.
//!
//! A JSON file does not say the order of a root's targets when a run had
//! several (Powerpipe's JSON lists benchmarks before controls): merged from
//! JSON, they come in that order; from snapshots, in the run's.
//!
//! What a JSON file does not carry (documentation, which snapshots show; the
//! mod's name when the run was one control of it) is read from the mod: the
//! bundled one, or `--mod-location DIR` as `check` takes it. A file that is
//! not such an output, or that comes from another mod, is refused with one
//! line naming the file and what is wrong (exit 250, as `check` exits when its
//! inputs are rejected).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::Value;

use crate::check::model::{
    exit_code, CheckRun, ControlRun, GroupRun, Node, ResultRow, RunStatus, Status, StatusSummary,
};
use crate::check::output::{self, NIL, ROOT_GROUP_ID};
use crate::check::powerpipe_mod::{ModDef, ResolvedMod, VarInputs};
use crate::check::runner;

/// Arguments of `check merge`.
#[derive(clap::Args, Debug, Clone)]
pub struct MergeArgs {
    /// `check` outputs to merge: JSON (`--export json`, `--output json`) or snapshots (`--export snapshot`/`pps`, `--output snapshot`), in the order of their connections.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The mod the runs used, when not the bundled one (as `check --mod-location`).
    #[arg(long, value_name = "DIR")]
    pub mod_location: Option<PathBuf>,
    /// --output, --export and the csv options, as `check`'s
    #[command(flatten)]
    pub out: crate::check::cli::OutputArgs,
}

/// What the mod tells about the runs: its name, titles, documentation and
/// declaration order.
pub struct ModInfo {
    /// the mod's name (`aws_compliance`)
    pub name: String,
    /// the mod's title, for a root over several targets
    pub title: String,
    resolved: Option<ResolvedMod>,
}

impl ModInfo {
    /// Loads the mod in `dir` with the variables of the environment and the
    /// mod's own `.ppvars` files.
    pub fn load(dir: &Path) -> Result<ModInfo, String> {
        let def = ModDef::load(dir).map_err(|e| format!("loading the mod: {e}"))?;
        let mut inputs = VarInputs::default();
        inputs
            .from_env(std::env::vars(), &def)
            .and_then(|_| inputs.from_mod_dir(dir))
            .map_err(|e| e.to_string())?;
        let m = ResolvedMod::resolve(def, &inputs).map_err(|e| e.to_string())?;
        let title = m
            .mod_text("title")
            .ok()
            .flatten()
            .unwrap_or_else(|| m.def.name.clone());
        Ok(ModInfo {
            name: m.def.name.clone(),
            title,
            resolved: Some(m),
        })
    }

    /// A mod known by its name only (nothing to fill in, no order to restore).
    pub fn named(name: &str) -> ModInfo {
        ModInfo {
            name: name.to_string(),
            title: name.to_string(),
            resolved: None,
        }
    }

    fn control_documentation(&self, short: &str) -> Option<String> {
        let m = self.resolved.as_ref()?;
        m.control_text(short, "documentation").ok().flatten()
    }

    fn benchmark_documentation(&self, short: &str) -> Option<String> {
        let m = self.resolved.as_ref()?;
        m.benchmark_text(short, "documentation").ok().flatten()
    }

    /// A benchmark's children's full names, in declaration order.
    fn children_order(&self, short: &str) -> Option<Vec<String>> {
        let m = self.resolved.as_ref()?;
        let children = m.children(short).ok()?;
        Some(
            children
                .into_iter()
                .map(|(kind, name)| format!("{}.{kind}.{name}", self.name))
                .collect(),
        )
    }
}

/// Which kind of file a run was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Powerpipe's JSON result tree
    Json,
    /// a Powerpipe snapshot
    Snapshot,
}

/// One run read back from a file.
#[derive(Debug, Clone)]
pub struct ParsedRun {
    /// the tree (with the mod's name filled in when the file names it)
    pub run: CheckRun,
    /// the mod the file names, when it names one
    pub mod_name: Option<String>,
    /// JSON or snapshot
    pub source: Source,
}

// ---------------------------------------------------------------------------
// reading values

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn field<'a>(v: &'a Value, key: &str, at: &str) -> Result<&'a Value, String> {
    v.get(key).ok_or_else(|| format!("{at} has no \"{key}\""))
}

fn text(v: &Value, key: &str, at: &str) -> Result<String, String> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(format!(
            "{at}: \"{key}\" is {}, not a string",
            kind_of(other)
        )),
    }
}

/// A cell as Powerpipe prints it: strings as they are, NULL as `<nil>`,
/// other scalars in their JSON form.
fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => NIL.to_string(),
        other => other.to_string(),
    }
}

fn tags(v: &Value, at: &str) -> Result<BTreeMap<String, String>, String> {
    match v.get("tags") {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(m)) => Ok(m.iter().map(|(k, v)| (k.clone(), cell(v))).collect()),
        Some(other) => Err(format!(
            "{at}: \"tags\" is {}, not an object",
            kind_of(other)
        )),
    }
}

fn array<'a>(v: &'a Value, key: &str, at: &str) -> Result<&'a [Value], String> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(other) => Err(format!(
            "{at}: \"{key}\" is {}, not an array",
            kind_of(other)
        )),
    }
}

fn status(s: &str, at: &str) -> Result<Status, String> {
    Status::parse(s)
        .ok_or_else(|| format!("{at}: status '{s}' is not one of ok, alarm, info, skip, error"))
}

/// `<mod>.control.<x>` / `<mod>.benchmark.<x>` → (mod, kind, x).
fn split_name(name: &str) -> Option<(&str, &str, &str)> {
    let mut parts = name.splitn(3, '.');
    let (m, kind, short) = (parts.next()?, parts.next()?, parts.next()?);
    if m.is_empty() || short.is_empty() || short.contains('.') {
        return None;
    }
    matches!(kind, "control" | "benchmark").then_some((m, kind, short))
}

fn short_of(full: &str) -> String {
    full.rsplit('.').next().unwrap_or(full).to_string()
}

/// An empty control run, to be filled in.
fn control_shell(full_name: String) -> ControlRun {
    ControlRun {
        short_name: short_of(&full_name),
        full_name,
        title: String::new(),
        description: String::new(),
        documentation: None,
        severity: String::new(),
        tags: BTreeMap::new(),
        dimension_columns: Vec::new(),
        results: Vec::new(),
        summary: StatusSummary::default(),
        run_status: RunStatus::Complete,
        run_error: None,
        duration: Default::default(),
    }
}

fn dimension_columns(results: &[ResultRow]) -> Vec<String> {
    results
        .first()
        .map(|r| r.dimensions.iter().map(|(k, _)| k.to_string()).collect())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------
// JSON (`--output json`, `--export json`)

/// Notes the mod a full name belongs to; two different mods are an error.
fn note_mod(found: &mut Option<String>, name: &str) -> Result<(), String> {
    if let Some((m, ..)) = split_name(name) {
        match found {
            Some(f) if f != m => {
                return Err(format!(
                    "it holds runs of two mods, {f} and {m}: merge the outputs of one mod"
                ))
            }
            Some(_) => {}
            None => *found = Some(m.to_string()),
        }
    }
    Ok(())
}

fn json_control(v: &Value, at: &str) -> Result<ControlRun, String> {
    if !v.is_object() {
        return Err(format!("{at}: a control is {}, not an object", kind_of(v)));
    }
    let id = text(v, "control_id", at)?;
    if id.is_empty() {
        return Err(format!("{at}: a control without a \"control_id\""));
    }
    let at = format!("control {id}");
    // `control.<x>` is the run's own mod's, resolved once the mod is known.
    let mut c = control_shell(id.clone());
    c.title = text(v, "title", &at)?;
    c.description = text(v, "description", &at)?;
    c.severity = text(v, "severity", &at)?;
    c.tags = tags(v, &at)?;
    for (i, r) in array(v, "results", &at)?.iter().enumerate() {
        let rat = format!("{at}, result {}", i + 1);
        let mut dims = Vec::new();
        for d in array(r, "dimensions", &rat)? {
            dims.push((text(d, "key", &rat)?.into(), cell(field(d, "value", &rat)?)));
        }
        c.results.push(ResultRow {
            reason: cell(r.get("reason").unwrap_or(&Value::Null)),
            resource: cell(r.get("resource").unwrap_or(&Value::Null)),
            status: status(&text(r, "status", &rat)?, &rat)?,
            dimensions: dims,
        });
    }
    match field(v, "run_status", &at)?.as_u64() {
        Some(4) => {}
        Some(8) => {
            c.run_status = RunStatus::Error;
            c.run_error = Some(text(v, "run_error", &at)?);
        }
        _ => {
            return Err(format!(
                "{at}: run_status {} is neither 4 (complete) nor 8 (error): the run did not finish",
                v["run_status"]
            ))
        }
    }
    c.dimension_columns = dimension_columns(&c.results);
    Ok(c)
}

fn json_group(v: &Value, found_mod: &mut Option<String>) -> Result<GroupRun, String> {
    let id = text(v, "group_id", "a group")?;
    let at = format!("group {id}");
    note_mod(found_mod, &id)?;
    let mut children = Vec::new();
    for g in array(v, "groups", &at)? {
        children.push(Node::Group(json_group(g, found_mod)?));
    }
    for c in array(v, "controls", &at)? {
        let c = json_control(c, &at)?;
        note_mod(found_mod, &c.full_name)?;
        children.push(Node::Control(c));
    }
    Ok(GroupRun {
        short_name: short_of(&id),
        full_name: id,
        title: text(v, "title", &at)?,
        description: text(v, "description", &at)?,
        documentation: None,
        tags: tags(v, &at)?,
        children,
    })
}

/// Gives `control.<x>` ids their mod's name, everywhere in the tree.
fn qualify(node: &mut Node, mod_name: &str) {
    match node {
        Node::Control(c) => {
            if c.full_name.starts_with("control.") {
                c.full_name = format!("{mod_name}.{}", c.full_name);
            }
        }
        Node::Group(g) => g.children.iter_mut().for_each(|c| qualify(c, mod_name)),
    }
}

/// Reads one JSON result tree (the root group `root_result_group`).
pub fn parse_json(v: &Value) -> Result<ParsedRun, String> {
    let id = text(v, "group_id", "the document")?;
    if id != ROOT_GROUP_ID {
        return Err(format!(
            "its group_id is '{id}', not '{ROOT_GROUP_ID}': not the whole JSON output of a run"
        ));
    }
    let mut found_mod = None;
    let root = json_group(v, &mut found_mod)?;
    let (groups, controls): (Vec<&Node>, Vec<&Node>) = root
        .children
        .iter()
        .partition(|n| matches!(n, Node::Group(_)));
    // Powerpipe's root group is titled after a single target.
    let single = match (groups.as_slice(), controls.as_slice()) {
        ([g], []) if g.title() == root.title => true,
        ([], [c]) if c.title() == root.title => true,
        _ => false,
    };
    let root_node = if single {
        root.children.into_iter().next().expect("one child")
    } else {
        Node::Group(GroupRun {
            full_name: String::new(), // check.<mod>, once the mod is known
            short_name: String::new(),
            title: root.title,
            description: String::new(),
            documentation: None,
            tags: BTreeMap::new(),
            children: root.children,
        })
    };
    Ok(ParsedRun {
        run: CheckRun {
            root: root_node,
            mod_name: found_mod.clone().unwrap_or_default(),
            start_time: String::new(),
            end_time: String::new(),
            variables: BTreeMap::new(),
        },
        mod_name: found_mod,
        source: Source::Json,
    })
}

// ---------------------------------------------------------------------------
// snapshots (`--output snapshot`, `--export snapshot` / `pps`)

fn snapshot_node(
    layout: &Value,
    panels: &serde_json::Map<String, Value>,
    found_mod: &mut Option<String>,
    depth: usize,
) -> Result<Node, String> {
    if depth > 64 {
        return Err("its layout is nested more than 64 deep".into());
    }
    let name = text(layout, "name", "a layout entry")?;
    let kind = text(layout, "panel_type", &format!("layout entry {name}"))?;
    let panel = panels
        .get(&name)
        .ok_or_else(|| format!("the layout names {name} but \"panels\" has no such panel"))?;
    let at = format!("panel {name}");
    match kind.as_str() {
        "control" => {
            note_mod(found_mod, &name)?;
            let mut c = control_shell(name.clone());
            c.title = text(panel, "title", &at)?;
            c.description = text(panel, "description", &at)?;
            let doc = text(panel, "documentation", &at)?;
            c.documentation = (!doc.is_empty()).then_some(doc);
            c.tags = tags(panel, &at)?;
            if let Some(p) = panel.get("properties") {
                c.severity = text(p, "severity", &at)?;
                let short = text(p, "name", &at)?;
                if !short.is_empty() {
                    c.short_name = short;
                }
            }
            match text(panel, "status", &at)?.as_str() {
                "complete" => {}
                "error" => {
                    c.run_status = RunStatus::Error;
                    c.run_error = Some(text(panel, "error", &at)?);
                    return Ok(Node::Control(c));
                }
                other => {
                    return Err(format!(
                    "{at}: status '{other}' is neither complete nor error: the run did not finish"
                ))
                }
            }
            let Some(data) = panel.get("data").filter(|d| !d.is_null()) else {
                return Ok(Node::Control(c));
            };
            let columns: Vec<String> = array(data, "columns", &at)?
                .iter()
                .map(|col| text(col, "name", &at))
                .collect::<Result<_, _>>()?;
            for needed in ["reason", "resource", "status"] {
                if !columns.iter().any(|c| c == needed) {
                    return Err(format!("{at}: its data has no \"{needed}\" column"));
                }
            }
            let dims: Vec<&String> = columns
                .iter()
                .filter(|c| !["reason", "resource", "status"].contains(&c.as_str()))
                .collect();
            for (i, row) in array(data, "rows", &at)?.iter().enumerate() {
                let rat = format!("{at}, row {}", i + 1);
                if !row.is_object() {
                    return Err(format!("{rat} is {}, not an object", kind_of(row)));
                }
                let get = |k: &str| cell(row.get(k).unwrap_or(&Value::Null));
                c.results.push(ResultRow {
                    reason: get("reason"),
                    resource: get("resource"),
                    status: status(&get("status"), &rat)?,
                    dimensions: dims.iter().map(|d| (d.as_str().into(), get(d))).collect(),
                });
            }
            c.dimension_columns = dims.into_iter().cloned().collect();
            Ok(Node::Control(c))
        }
        "benchmark" => {
            note_mod(found_mod, &name)?;
            let doc = text(panel, "documentation", &at)?;
            let mut children = Vec::new();
            for ch in array(layout, "children", &at)? {
                children.push(snapshot_node(ch, panels, found_mod, depth + 1)?);
            }
            Ok(Node::Group(GroupRun {
                short_name: short_of(&name),
                full_name: name.clone(),
                title: text(panel, "title", &at)?,
                description: text(panel, "description", &at)?,
                documentation: (!doc.is_empty()).then_some(doc),
                tags: tags(panel, &at)?,
                children,
            }))
        }
        other => Err(format!(
            "{at} is a '{other}' panel: not a control run (a dashboard snapshot?)"
        )),
    }
}

/// Reads one snapshot.
pub fn parse_snapshot(v: &Value) -> Result<ParsedRun, String> {
    let panels = field(v, "panels", "the snapshot")?
        .as_object()
        .ok_or("its \"panels\" is not an object")?;
    let layout = field(v, "layout", "the snapshot")?;
    let mut found_mod = None;
    let root = snapshot_node(layout, panels, &mut found_mod, 0)?;
    // A root over several targets is `check.<mod>`.
    if let (Node::Group(g), None) = (&root, &found_mod) {
        if let Some(m) = g.full_name.strip_prefix("check.") {
            found_mod = Some(m.to_string());
        }
    }
    let variables = match v.get("variables") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        Some(other) => {
            return Err(format!(
                "its \"variables\" is {}, not an object",
                kind_of(other)
            ))
        }
    };
    Ok(ParsedRun {
        run: CheckRun {
            root,
            mod_name: found_mod.clone().unwrap_or_default(),
            start_time: text(v, "start_time", "the snapshot")?,
            end_time: text(v, "end_time", "the snapshot")?,
            variables,
        },
        mod_name: found_mod,
        source: Source::Snapshot,
    })
}

/// Reads a file's text: one or more JSON documents (`check --output json`
/// over several targets prints one per target), each a JSON result tree or
/// a snapshot.
pub fn parse_text(text: &str) -> Result<Vec<ParsedRun>, String> {
    let mut runs = Vec::new();
    let docs = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    for (i, doc) in docs.enumerate() {
        let v = doc.map_err(|e| {
            if i == 0 {
                format!("not JSON ({e}): give check's JSON or snapshot output (--export json, --export snapshot)")
            } else {
                format!("document {} is not JSON ({e})", i + 1)
            }
        })?;
        let parsed = if v.get("group_id").is_some() {
            parse_json(&v)
        } else if v.get("panels").is_some() && v.get("layout").is_some() {
            parse_snapshot(&v)
        } else {
            Err("it is JSON but neither check's JSON output (a \"group_id\") nor a snapshot (\"panels\" and \"layout\")".to_string())
        };
        runs.push(parsed.map_err(|e| {
            if i == 0 {
                e
            } else {
                format!("document {}: {e}", i + 1)
            }
        })?);
    }
    if runs.is_empty() {
        return Err(
            "it is empty: give check's JSON or snapshot output (--export json, --export snapshot)"
                .into(),
        );
    }
    Ok(runs)
}

/// Reads a file; errors name it.
pub fn parse_file(path: &Path) -> Result<Vec<ParsedRun>, String> {
    let bytes = std::fs::read(path)
        .map_err(|e| format!("{}: cannot read it: {}", path.display(), io_reason(&e)))?;
    let text = std::str::from_utf8(&bytes).map_err(|_| {
        format!(
            "{}: not UTF-8 text: give check's JSON or snapshot output (--export json, --export snapshot)",
            path.display()
        )
    })?;
    parse_text(text).map_err(|e| format!("{}: {e}", path.display()))
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => {
            let s = e.to_string();
            s.split(" (os error").next().unwrap_or(&s).to_string()
        }
    }
}

// ---------------------------------------------------------------------------
// merging

/// A run's targets: the children of a root over several targets, else the root.
fn targets(run: CheckRun) -> Vec<Node> {
    match run.root {
        Node::Group(g) if g.full_name.is_empty() || g.full_name.starts_with("check.") => g.children,
        n => vec![n],
    }
}

/// Adds `from`'s rows and children to `into`. `what` names the file, for errors.
fn merge_node(into: &mut Node, from: Node, what: &str) -> Result<(), String> {
    match (into, from) {
        (Node::Control(a), Node::Control(b)) => {
            let sorted = |d: &[String]| {
                let mut d = d.to_vec();
                d.sort();
                d
            };
            if !a.results.is_empty()
                && !b.results.is_empty()
                && sorted(&a.dimension_columns) != sorted(&b.dimension_columns)
            {
                return Err(format!(
                    "{what}: control {} has dimensions [{}] where the files before have [{}]: run every slice with the same variables (--var common_dimensions, tag_dimensions)",
                    a.full_name,
                    b.dimension_columns.join(", "),
                    a.dimension_columns.join(", ")
                ));
            }
            let mut rows = b.results;
            if a.results.is_empty() {
                a.dimension_columns = b.dimension_columns;
            } else if a.dimension_columns != b.dimension_columns {
                // The same columns in another order (a Powerpipe snapshot
                // lists them in Go map order): the first file's order.
                for r in &mut rows {
                    r.dimensions
                        .sort_by_key(|(k, _)| a.dimension_columns.iter().position(|c| **c == **k));
                }
            }
            a.results.extend(rows);
            if a.documentation.is_none() {
                a.documentation = b.documentation;
            }
            if let Some(e) = b.run_error.filter(|_| b.run_status == RunStatus::Error) {
                a.run_status = RunStatus::Error;
                a.run_error = Some(match a.run_error.take() {
                    Some(prev) if !prev.is_empty() && prev != e && !prev.contains(&e) => {
                        format!("{prev}; {e}")
                    }
                    Some(prev) if !prev.is_empty() => prev,
                    _ => e,
                });
            }
            Ok(())
        }
        (Node::Group(a), Node::Group(b)) => {
            if a.documentation.is_none() {
                a.documentation = b.documentation;
            }
            for ch in b.children {
                add_child(&mut a.children, ch, what)?;
            }
            Ok(())
        }
        (a, b) => Err(format!(
            "{what}: {} is a {} here and a {} in the files before",
            b.full_name(),
            kind_name(&b),
            kind_name(a)
        )),
    }
}

fn kind_name(n: &Node) -> &'static str {
    match n {
        Node::Control(_) => "control",
        Node::Group(_) => "benchmark",
    }
}

fn add_child(children: &mut Vec<Node>, ch: Node, what: &str) -> Result<(), String> {
    match children
        .iter_mut()
        .find(|c| c.full_name() == ch.full_name())
    {
        Some(existing) => merge_node(existing, ch, what),
        None => {
            children.push(ch);
            Ok(())
        }
    }
}

/// Rows in Powerpipe's order, summaries counted again, documentation and
/// declaration order from the mod.
fn finish(node: &mut Node, m: &ModInfo) {
    match node {
        Node::Control(c) => {
            if c.documentation.is_none() {
                c.documentation = split_name(&c.full_name)
                    .filter(|(mm, ..)| *mm == m.name)
                    .and_then(|(.., short)| m.control_documentation(short));
            }
            if c.run_status == RunStatus::Error {
                // As `check` reports a control that could not run: no rows.
                c.results.clear();
                c.summary = StatusSummary {
                    error: 1,
                    ..Default::default()
                };
                return;
            }
            // A stable sort: file order within each status.
            c.results.sort_by_key(|r| r.status);
            c.summary = StatusSummary::default();
            for r in &c.results {
                c.summary.count(r.status);
            }
        }
        Node::Group(g) => {
            let own = split_name(&g.full_name).filter(|(mm, ..)| *mm == m.name);
            if let Some((.., short)) = own {
                if g.documentation.is_none() {
                    g.documentation = m.benchmark_documentation(short);
                }
                if let Some(order) = m.children_order(short) {
                    g.children.sort_by_key(|c| {
                        order
                            .iter()
                            .position(|o| o == c.full_name())
                            .unwrap_or(usize::MAX)
                    });
                }
            }
            g.children.iter_mut().for_each(|c| finish(c, m));
        }
    }
}

/// Merges runs read from files (`(file name, run)`, in order) of mod `m`.
pub fn merge(runs: Vec<(String, ParsedRun)>, m: &ModInfo) -> Result<CheckRun, String> {
    let mut merged: Vec<Node> = Vec::new();
    let mut starts = Vec::new();
    let mut ends = Vec::new();
    let mut variables: BTreeMap<String, Value> = BTreeMap::new();
    let mut var_from: BTreeMap<String, String> = BTreeMap::new();
    let mut root_title = None;
    for (what, p) in runs {
        if let Some(found) = &p.mod_name {
            if *found != m.name {
                return Err(format!(
                    "{what}: a run of mod {found}, not {}: merge the outputs of one mod (check merge --mod-location DIR for another mod than the bundled one)",
                    m.name
                ));
            }
        }
        let mut run = p.run;
        qualify(&mut run.root, &m.name);
        for (k, v) in std::mem::take(&mut run.variables) {
            match variables.get(&k) {
                Some(prev) if *prev != v => {
                    return Err(format!(
                        "{what}: variable {k} is {v} here but {prev} in {}: run every slice with the same variables",
                        var_from[&k]
                    ))
                }
                Some(_) => {}
                None => {
                    var_from.insert(k.clone(), what.clone());
                    variables.insert(k, v);
                }
            }
        }
        if !run.start_time.is_empty() {
            starts.push(run.start_time.clone());
        }
        if !run.end_time.is_empty() {
            ends.push(run.end_time.clone());
        }
        if let Node::Group(g) = &run.root {
            if g.full_name.is_empty() || g.full_name.starts_with("check.") {
                root_title.get_or_insert(g.title.clone());
            }
        }
        for t in targets(run) {
            add_child(&mut merged, t, &what)?;
        }
    }
    let root = if merged.len() == 1 {
        merged.pop().expect("one target")
    } else {
        Node::Group(GroupRun {
            full_name: format!("check.{}", m.name),
            short_name: m.name.clone(),
            title: root_title.unwrap_or_else(|| m.title.clone()),
            description: String::new(),
            documentation: None,
            tags: BTreeMap::new(),
            children: merged,
        })
    };
    let mut run = CheckRun {
        root,
        mod_name: m.name.clone(),
        start_time: earliest(&starts).unwrap_or_else(runner::now_rfc3339),
        end_time: latest(&ends).unwrap_or_else(runner::now_rfc3339),
        variables,
    };
    finish(&mut run.root, m);
    Ok(run)
}

fn earliest(times: &[String]) -> Option<String> {
    times
        .iter()
        .min_by_key(|t| output::parse_time(t).unwrap_or((i64::MAX, 0)))
        .cloned()
}

fn latest(times: &[String]) -> Option<String> {
    times
        .iter()
        .max_by_key(|t| output::parse_time(t).unwrap_or((i64::MIN, 0)))
        .cloned()
}

// ---------------------------------------------------------------------------
// the command

fn fail(code: u8, msg: &str) -> ExitCode {
    eprintln!("Error: {msg}");
    ExitCode::from(code)
}

/// Runs `check merge`; returns `check`'s exit code for the merged run.
pub fn run(args: MergeArgs) -> ExitCode {
    let (output_format, exports) = match args.out.formats() {
        Ok(f) => f,
        Err(code) => return code,
    };
    // The same file twice would count its rows twice.
    let mut seen: Vec<(PathBuf, &Path)> = Vec::new();
    for f in &args.files {
        let key = std::fs::canonicalize(f).unwrap_or_else(|_| f.clone());
        if let Some((_, first)) = seen.iter().find(|(k, _)| *k == key) {
            return fail(
                exit_code::INIT_FAILED,
                &format!(
                    "{}: given twice (also as {}): each slice's output once",
                    f.display(),
                    first.display()
                ),
            );
        }
        seen.push((key, f));
    }
    let mut runs = Vec::new();
    for f in &args.files {
        match parse_file(f) {
            Ok(rs) => runs.extend(rs.into_iter().map(|r| (f.display().to_string(), r))),
            Err(e) => return fail(exit_code::INIT_FAILED, &e),
        }
    }
    // The mod's documentation is read from its files when asked for: the
    // bundled mod's directory stays until the run is merged.
    let (mod_dir, extracted) = match &args.mod_location {
        Some(d) => (d.clone(), false),
        None => match runner::extract_bundled_mod(&std::env::temp_dir()) {
            Ok(d) => (d, true),
            Err(e) => {
                return fail(
                    exit_code::INIT_FAILED,
                    &format!("cannot unpack the bundled mod: {e}"),
                )
            }
        },
    };
    let merged = ModInfo::load(&mod_dir).and_then(|m| merge(runs, &m));
    if extracted {
        let _ = std::fs::remove_dir_all(&mod_dir);
    }
    let run = match merged {
        Ok(r) => r,
        Err(e) => return fail(exit_code::INIT_FAILED, &e),
    };

    let width = crate::check::cli::display_width();
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let csv = args.out.csv();
    let text = output::render_with(&run, output_format, width, color, &csv);
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
    drop(stdout);
    for (format, path) in &exports {
        let path = path
            .clone()
            .unwrap_or_else(|| PathBuf::from(output::default_export_name(&run, *format)));
        let body = output::render_export(&run, *format, width, output_format, &csv);
        if let Err(e) = std::fs::write(&path, body) {
            return fail(
                exit_code::BAD_INPUT,
                &format!("cannot write export {}: {}", path.display(), io_reason(&e)),
            );
        }
        eprintln!("File exported to {}", path.display());
    }
    ExitCode::from(run.exit_code())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_doc(results: &str, run_status: u8) -> String {
        format!(
            r#"{{"group_id":"root_result_group","title":"T","description":"","tags":{{}},
            "summary":{{"status":{{"alarm":0,"ok":0,"info":0,"skip":0,"error":0}}}},"groups":[],
            "controls":[{{"summary":{{}},"results":{results},"control_id":"control.c1",
            "description":"d","severity":"high","tags":{{"a":"b"}},"title":"T","run_status":{run_status},"run_error":""}}]}} "#
        )
    }

    fn row(status: &str, res: &str) -> String {
        format!(
            r#"{{"reason":"r","resource":"{res}","status":"{status}","dimensions":[{{"key":"region","value":"us-east-1"}}]}}"#
        )
    }

    #[test]
    fn rows_of_one_control_are_concatenated_in_powerpipes_order() {
        let a = parse_text(&json_doc(
            &format!("[{},{}]", row("alarm", "a1"), row("ok", "a2")),
            4,
        ))
        .unwrap();
        let b = parse_text(&json_doc(
            &format!("[{},{}]", row("alarm", "b1"), row("ok", "b2")),
            4,
        ))
        .unwrap();
        let runs = a
            .into_iter()
            .map(|r| ("a".to_string(), r))
            .chain(b.into_iter().map(|r| ("b".to_string(), r)))
            .collect();
        let run = merge(runs, &ModInfo::named("m")).unwrap();
        let Node::Control(c) = &run.root else {
            panic!("a control root")
        };
        assert_eq!(c.full_name, "m.control.c1");
        let order: Vec<&str> = c.results.iter().map(|r| r.resource.as_str()).collect();
        assert_eq!(order, ["a1", "b1", "a2", "b2"]);
        assert_eq!((c.summary.alarm, c.summary.ok), (2, 2));
        assert_eq!(run.exit_code(), exit_code::ALARMS);
    }

    #[test]
    fn a_file_may_hold_one_document_per_target() {
        // `check --output json` over two targets prints two documents.
        let one = json_doc(&format!("[{}]", row("ok", "x")), 4);
        let runs = parse_text(&format!("{one}\n{one}")).unwrap();
        assert_eq!(runs.len(), 2);
        let e = parse_text(&format!("{one}\n{{\"a\": 1}}")).unwrap_err();
        assert!(e.starts_with("document 2: "), "{e}");
    }

    #[test]
    fn bad_documents_are_named() {
        let e = |t: &str| parse_text(t).unwrap_err();
        assert!(e("").contains("empty"));
        assert!(e("col1,col2\n").contains("not JSON"));
        assert!(e("{\"a\":1}").contains("neither"));
        assert!(e(&json_doc("[]", 2)).contains("did not finish"));
        assert!(e(&json_doc(&format!("[{}]", row("maybe", "x")), 4)).contains("status 'maybe'"));
        assert!(e(r#"{"group_id":"aws_compliance.benchmark.x"}"#).contains("not the whole"));
        assert!(
            e(r#"{"panels":{},"layout":{"name":"d","panel_type":"dashboard"}}"#)
                .contains("no such panel")
        );
        assert!(
            e(r#"{"panels":{"d":{}},"layout":{"name":"d","panel_type":"dashboard"}}"#)
                .contains("dashboard")
        );
    }

    #[test]
    fn a_run_of_another_mod_is_refused() {
        let doc = r#"{"group_id":"root_result_group","title":"B","groups":[{"group_id":"other.benchmark.b","title":"B","groups":[],"controls":null}],"controls":null}"#;
        let runs = parse_text(doc).unwrap();
        let e = merge(
            runs.into_iter()
                .map(|r| ("x.json".to_string(), r))
                .collect(),
            &ModInfo::named("aws_compliance"),
        )
        .unwrap_err();
        assert!(
            e.starts_with("x.json: a run of mod other, not aws_compliance"),
            "{e}"
        );
    }
}
