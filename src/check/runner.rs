//! Runs the bundled controls by themselves: the mod's SQL rendered from its
//! HCL, the rows fetched in-process through the same table code Steampipe
//! queries (only the columns the SQL names), loaded into embedded SQLite, and
//! the SQL run there. SQLite's `->` / `->>` JSON operators read a label as
//! `$.label`, as Postgres reads a jsonb key, so the controls run unchanged.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use futures::StreamExt;
use rusqlite::types::ValueRef;

use crate::aws::AwsConnection;
use crate::check::model::{
    CheckRun, ControlRun, GroupRun, Node, ResultRow, RunStatus, Status, StatusSummary,
};
use crate::check::output::NIL;
use crate::check::powerpipe_mod::{ModDef, ModError, ResolvedMod};
use crate::pb::steampipe as pb;
use crate::pb::steampipe::wrapper_plugin_server::WrapperPlugin;
use crate::plugin::Plugin;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded_mod.rs"));
}

/// Writes the mod built into the binary to a fresh directory under `parent`.
pub fn extract_bundled_mod(parent: &Path) -> std::io::Result<PathBuf> {
    let dir = parent.join(format!(
        "steampipe-plugin-aws-mod-{}-{}",
        env!("CARGO_PKG_VERSION"),
        std::process::id()
    ));
    for (rel, content) in embedded::FILES {
        let p = dir.join(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d)?;
        }
        std::fs::write(&p, content)?;
    }
    Ok(dir)
}

/// A control or benchmark named on the command line, resolved in the mod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `control.<name>`
    Control(String),
    /// `benchmark.<name>`
    Benchmark(String),
}

/// Resolves `aws_compliance.control.x`, `control.x`, `x` (and benchmarks alike).
pub fn resolve_target(m: &ModDef, name: &str) -> Result<Target, ModError> {
    let parts: Vec<&str> = name.split('.').collect();
    let (kind, short) = match parts.as_slice() {
        [modname, kind, short] if *modname == m.name => (Some(*kind), *short),
        [kind, short] => (Some(*kind), *short),
        [short] => (None, *short),
        _ => {
            return Err(ModError(format!(
                "'{name}' is not a control or benchmark name of mod {}",
                m.name
            )))
        }
    };
    let control = m.controls.contains_key(short);
    let benchmark = m.benchmarks.contains_key(short);
    match kind {
        Some("control") if control => Ok(Target::Control(short.to_string())),
        Some("benchmark") if benchmark => Ok(Target::Benchmark(short.to_string())),
        None if control => Ok(Target::Control(short.to_string())),
        None if benchmark => Ok(Target::Benchmark(short.to_string())),
        _ => {
            let mut known: Vec<String> =
                m.controls.keys().map(|c| format!("control.{c}")).collect();
            known.extend(m.benchmarks.keys().map(|b| format!("benchmark.{b}")));
            Err(ModError(format!(
                "mod {} has no control or benchmark '{name}'; it has: {}",
                m.name,
                known.join(", ")
            )))
        }
    }
}

/// The benchmarks no other benchmark lists: what runs when no name is given.
pub fn top_benchmarks(m: &ResolvedMod) -> Result<Vec<Target>, ModError> {
    let mut children = BTreeSet::new();
    for b in m.def.benchmarks.keys() {
        for (_, c) in m.children(b)? {
            children.insert(c);
        }
    }
    Ok(m.def
        .benchmarks
        .keys()
        .filter(|b| !children.contains(*b))
        .map(|b| Target::Benchmark(b.clone()))
        .collect())
}

/// The controls under a target, in order.
pub fn controls_of(m: &ResolvedMod, t: &Target) -> Result<Vec<String>, ModError> {
    match t {
        Target::Control(c) => Ok(vec![c.clone()]),
        Target::Benchmark(b) => {
            let mut out = Vec::new();
            for (kind, name) in m.children(b)? {
                if kind == "control" {
                    out.push(name);
                } else {
                    out.extend(controls_of(m, &Target::Benchmark(name))?);
                }
            }
            Ok(out)
        }
    }
}

/// The columns of `table` that `sqls` mention (identifiers compared case-insensitively).
pub fn columns_used(sqls: &[String], table: &pb::TableSchema) -> Vec<String> {
    let mut words = BTreeSet::new();
    for sql in sqls {
        let mut word = String::new();
        let mut in_string = false;
        for c in sql.chars().chain(std::iter::once(' ')) {
            if c == '\'' {
                in_string = !in_string;
                word.clear();
                continue;
            }
            if in_string {
                continue;
            }
            if c.is_alphanumeric() || c == '_' {
                word.push(c.to_ascii_lowercase());
            } else if !word.is_empty() {
                words.insert(std::mem::take(&mut word));
            }
        }
    }
    table
        .columns
        .iter()
        .filter(|c| words.contains(&c.name))
        .map(|c| c.name.clone())
        .collect()
}

/// One connection to fetch from: its name and its HCL attribute string.
#[derive(Debug, Clone)]
pub struct ConnectionSpec {
    /// the connection name (the `connection_name` dimension)
    pub name: String,
    /// the aws plugin arguments, as Steampipe hands them over
    pub config: String,
}

/// Fetches `columns` of `table` for every connection, through the plugin's own
/// Execute path. Returns the rows.
pub async fn fetch(
    connections: &[ConnectionSpec],
    limiters: &[pb::RateLimiterDefinition],
    table: &str,
    columns: &[String],
) -> Result<Vec<pb::Row>, String> {
    let plugin: Plugin<AwsConnection> = crate::aws::plugin();
    let configs: Vec<pb::ConnectionConfig> = connections
        .iter()
        .map(|c| pb::ConnectionConfig {
            connection: c.name.clone(),
            plugin: "aws".into(),
            plugin_short_name: "aws".into(),
            config: c.config.clone(),
            ..Default::default()
        })
        .collect();
    plugin
        .set_all_connection_configs(tonic::Request::new(pb::SetAllConnectionConfigsRequest {
            configs,
            max_cache_size_mb: -1,
        }))
        .await
        .map_err(|s| s.message().to_string())?;
    plugin.set_rate_limiters(limiters)?;
    // The rows are put in one fixed order (below), by region and the table's
    // key (`instance_id`): those columns are fetched even when the SQL does
    // not name them.
    let schema = plugin.schema();
    let mut order_by = vec!["region".to_string()];
    if let Some(t) = schema.schema.get(table) {
        order_by.extend(t.get_call_key_column_list.iter().map(|k| k.name.clone()));
        order_by.retain(|c| t.columns.iter().any(|tc| tc.name == *c));
    }
    let mut requested = columns.to_vec();
    for c in &order_by {
        if !requested.contains(c) {
            requested.push(c.clone());
        }
    }
    let req = pb::ExecuteRequest {
        table: table.to_string(),
        query_context: Some(pb::QueryContext {
            columns: requested,
            ..Default::default()
        }),
        connection: connections
            .first()
            .map(|c| c.name.clone())
            .unwrap_or_default(),
        execute_connection_data: connections
            .iter()
            .map(|c| (c.name.clone(), pb::ExecuteConnectionData::default()))
            .collect(),
        ..Default::default()
    };
    let mut stream = plugin.execute(req).map_err(|s| s.message().to_string())?;
    let mut rows = Vec::new();
    while let Some(r) = stream.next().await {
        let r = r.map_err(|s| s.message().to_string())?;
        let row = r
            .decode_row()
            .map_err(|e| format!("{}: a row of {table} does not decode: {e}", r.connection))?;
        let conn = connections
            .iter()
            .position(|c| *c.name == *r.connection)
            .unwrap_or(usize::MAX);
        rows.push((conn, row.unwrap_or_default()));
    }
    // Regions are scanned concurrently and rows built concurrently, so they
    // arrive in an order that changes from run to run (as they reach
    // Powerpipe through the FDW). One fixed order instead: by connection,
    // region, then key. Results keep it within each status.
    rows.sort_by(|(ca, a), (cb, b)| {
        ca.cmp(cb).then_with(|| {
            order_by
                .iter()
                .map(|c| text_column(a, c).cmp(text_column(b, c)))
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        })
    });
    Ok(rows.into_iter().map(|(_, r)| r).collect())
}

fn text_column<'a>(row: &'a pb::Row, column: &str) -> &'a str {
    match row.columns.get(column).and_then(|c| c.value.as_ref()) {
        Some(pb::column::Value::StringValue(s)) => s,
        _ => "",
    }
}

fn sqlite_type(t: i32) -> &'static str {
    match pb::ColumnType::try_from(t) {
        Ok(pb::ColumnType::Bool | pb::ColumnType::Int) => "INTEGER",
        Ok(pb::ColumnType::Double) => "REAL",
        _ => "TEXT",
    }
}

fn to_sql(c: Option<&pb::Column>) -> rusqlite::types::Value {
    use pb::column::Value as V;
    use rusqlite::types::Value as S;
    match c.and_then(|c| c.value.as_ref()) {
        None | Some(V::NullValue(_)) => S::Null,
        Some(V::BoolValue(b)) => S::Integer(*b as i64),
        Some(V::IntValue(i)) => S::Integer(*i),
        Some(V::DoubleValue(d)) => S::Real(*d),
        Some(V::StringValue(s) | V::IpAddrValue(s) | V::CidrRangeValue(s) | V::LtreeValue(s)) => {
            S::Text(s.clone())
        }
        Some(V::JsonValue(b)) => match std::str::from_utf8(b) {
            Ok("null") => S::Null,
            Ok(s) => S::Text(s.to_string()),
            Err(_) => S::Null,
        },
        Some(V::TimestampValue(t)) => {
            let dt =
                aws_smithy_types::DateTime::from_secs_and_nanos(t.seconds, t.nanos.max(0) as u32);
            crate::aws::common::rfc3339(&dt)
                .map(S::Text)
                .unwrap_or(S::Null)
        }
    }
}

/// Loads `rows` into a new in-memory SQLite table shaped like `schema`.
pub fn load_sqlite(
    schema: &pb::TableSchema,
    table: &str,
    rows: &[pb::Row],
) -> rusqlite::Result<rusqlite::Connection> {
    let db = rusqlite::Connection::open_in_memory()?;
    let defs: Vec<String> = schema
        .columns
        .iter()
        .map(|c| format!("\"{}\" {}", c.name, sqlite_type(c.r#type)))
        .collect();
    db.execute_batch(&format!("create table \"{table}\" ({});", defs.join(", ")))?;
    let names: Vec<&str> = schema.columns.iter().map(|c| c.name.as_str()).collect();
    let placeholders: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
    let sql = format!(
        "insert into \"{table}\" ({}) values ({})",
        names
            .iter()
            .map(|n| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(", "),
        placeholders.join(", ")
    );
    let tx = db.unchecked_transaction()?;
    {
        let mut stmt = tx.prepare(&sql)?;
        for r in rows {
            let values: Vec<rusqlite::types::Value> =
                names.iter().map(|n| to_sql(r.columns.get(*n))).collect();
            stmt.execute(rusqlite::params_from_iter(values))?;
        }
    }
    tx.commit()?;
    Ok(db)
}

fn text_of(v: ValueRef<'_>) -> Option<String> {
    match v {
        ValueRef::Null => None,
        ValueRef::Integer(i) => Some(i.to_string()),
        ValueRef::Real(f) => Some(f.to_string()),
        ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Some(String::from_utf8_lossy(b).into_owned()),
    }
}

/// The database's message for a failed statement, without the SQL text
/// rusqlite appends (Powerpipe shows PostgreSQL's message alone).
fn sql_error(e: &rusqlite::Error) -> String {
    match e {
        rusqlite::Error::SqlInputError { msg, .. } => msg.clone(),
        e => e.to_string(),
    }
}

/// Runs one control's SQL on `db`; a failure is the control's run error.
pub fn run_control(db: &rusqlite::Connection, m: &ResolvedMod, control: &str) -> ControlRun {
    let started = Instant::now();
    let text = |k: &str| m.control_text(control, k).ok().flatten();
    let mut run = ControlRun {
        full_name: format!("{}.control.{control}", m.def.name),
        short_name: control.to_string(),
        title: text("title").unwrap_or_else(|| control.to_string()),
        description: text("description").unwrap_or_default(),
        documentation: text("documentation"),
        severity: text("severity").unwrap_or_default(),
        tags: m.tags("control", control).unwrap_or_default(),
        dimension_columns: Vec::new(),
        results: Vec::new(),
        summary: StatusSummary::default(),
        run_status: RunStatus::Complete,
        run_error: None,
        duration: Default::default(),
    };
    let outcome = (|| -> Result<(), String> {
        let sql = m.control_sql(control).map_err(|e| e.to_string())?;
        let mut stmt = db
            .prepare(sql.trim().trim_end_matches(';'))
            .map_err(|e| sql_error(&e))?;
        let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
        let missing: Vec<&str> = ["reason", "resource", "status"]
            .into_iter()
            .filter(|c| !names.iter().any(|n| n == c))
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "control result is missing required column(s): {missing:?}"
            ));
        }
        run.dimension_columns = names
            .iter()
            .filter(|n| !["reason", "resource", "status"].contains(&n.as_str()))
            .cloned()
            .collect();
        let mut rows = stmt.query([]).map_err(|e| sql_error(&e))?;
        let mut results = Vec::new();
        loop {
            let row = match rows.next() {
                Ok(Some(r)) => r,
                Ok(None) => break,
                Err(e) => {
                    // A row-level failure is an error row, as Powerpipe records it.
                    results.push(ResultRow {
                        reason: e.to_string(),
                        resource: String::new(),
                        status: Status::Error,
                        dimensions: Vec::new(),
                    });
                    break;
                }
            };
            let mut reason = String::new();
            let mut resource = String::new();
            let mut status = None;
            let mut dimensions = Vec::new();
            for (i, n) in names.iter().enumerate() {
                let v = text_of(row.get_ref(i).map_err(|e| e.to_string())?);
                match n.as_str() {
                    // A NULL is Go's "<nil>" in Powerpipe's results.
                    "reason" => reason = v.unwrap_or_else(|| NIL.to_string()),
                    "resource" => resource = v.unwrap_or_else(|| NIL.to_string()),
                    "status" => {
                        let s = v.unwrap_or_else(|| NIL.to_string());
                        status = Some(
                            Status::parse(&s)
                                .ok_or_else(|| format!("invalid control status '{s}'"))?,
                        );
                    }
                    _ => dimensions.push((n.clone(), v.unwrap_or_else(|| NIL.to_string()))),
                }
            }
            results.push(ResultRow {
                reason,
                resource,
                status: status.expect("status column present"),
                dimensions,
            });
        }
        // Powerpipe's order: error, alarm, info, ok, skip; query order within.
        results.sort_by_key(|r| r.status);
        for r in &results {
            run.summary.count(r.status);
        }
        run.results = results;
        Ok(())
    })();
    if let Err(e) = outcome {
        run.run_status = RunStatus::Error;
        run.run_error = Some(e);
        run.summary = StatusSummary {
            error: 1,
            ..Default::default()
        };
        run.results.clear();
    }
    run.duration = started.elapsed();
    run
}

/// Builds the result tree for `target`, running each control on `db`.
pub fn run_target(
    db: &rusqlite::Connection,
    m: &ResolvedMod,
    target: &Target,
    on_control: &mut dyn FnMut(&str),
) -> Result<Node, ModError> {
    match target {
        Target::Control(c) => {
            on_control(c);
            Ok(Node::Control(run_control(db, m, c)))
        }
        Target::Benchmark(b) => {
            let mut children = Vec::new();
            for (kind, name) in m.children(b)? {
                let t = if kind == "control" {
                    Target::Control(name)
                } else {
                    Target::Benchmark(name)
                };
                children.push(run_target(db, m, &t, on_control)?);
            }
            Ok(Node::Group(GroupRun {
                full_name: format!("{}.benchmark.{b}", m.def.name),
                short_name: b.clone(),
                title: m.benchmark_text(b, "title")?.unwrap_or_else(|| b.clone()),
                description: m.benchmark_text(b, "description")?.unwrap_or_default(),
                documentation: m.benchmark_text(b, "documentation")?,
                tags: m.tags("benchmark", b)?,
                children,
            }))
        }
    }
}

/// The variables a run's resources reference directly (`var.x`), for snapshots.
pub fn referenced_variables(m: &ResolvedMod) -> BTreeMap<String, serde_json::Value> {
    // The controls reference locals only; like Powerpipe, list nothing then.
    let _ = m;
    BTreeMap::new()
}

/// A whole run over `targets`: several targets are grouped under one root.
pub fn check(
    db: &rusqlite::Connection,
    m: &ResolvedMod,
    targets: &[Target],
    start_time: String,
    on_control: &mut dyn FnMut(&str),
) -> Result<CheckRun, ModError> {
    let mut nodes = Vec::new();
    for t in targets {
        nodes.push(run_target(db, m, t, on_control)?);
    }
    let root = if nodes.len() == 1 {
        nodes.pop().expect("one node")
    } else {
        Node::Group(GroupRun {
            full_name: format!("check.{}", m.def.name),
            short_name: m.def.name.clone(),
            title: m.mod_text("title")?.unwrap_or_else(|| m.def.name.clone()),
            description: String::new(),
            documentation: None,
            tags: BTreeMap::new(),
            children: nodes,
        })
    };
    Ok(CheckRun {
        root,
        mod_name: m.def.name.clone(),
        start_time,
        end_time: now_rfc3339(),
        variables: referenced_variables(m),
    })
}

/// Now, RFC 3339 UTC with microseconds.
pub fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let dt = aws_smithy_types::DateTime::from_secs_and_nanos(
        d.as_secs() as i64,
        d.subsec_micros() * 1000,
    );
    dt.fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default()
}
