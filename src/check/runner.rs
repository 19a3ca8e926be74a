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

/// Benchmarks `check` runs only when named: our IMDSv2 readiness benchmark
/// (an addition to upstream's mod) reads CloudWatch, which needs
/// `cloudwatch:GetMetricData` and costs a call per 250 instances.
pub const RUN_WHEN_NAMED: [&str; 1] = ["imds_readiness"];

/// The benchmarks no other benchmark lists, except [`RUN_WHEN_NAMED`]: what
/// runs when no name is given.
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
        .filter(|b| !children.contains(*b) && !RUN_WHEN_NAMED.contains(&b.as_str()))
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

/// The words of `sql` outside string literals, lower-cased: what a table or
/// column name in it can be.
fn sql_words(sql: &str) -> BTreeSet<String> {
    let mut words = BTreeSet::new();
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
    words
}

/// A table of the plugin that the controls' SQL names, with the columns of
/// it that those statements name: what `check` fetches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableUse {
    /// the table name
    pub table: String,
    /// its columns named by the statements that name it, in schema order
    pub columns: Vec<String>,
}

/// The plugin's tables named by `sql` (sorted).
pub fn tables_named(sql: &str, schema: &pb::Schema) -> Vec<String> {
    let words = sql_words(sql);
    let mut names: Vec<String> = schema
        .schema
        .keys()
        .filter(|t| words.contains(*t))
        .cloned()
        .collect();
    names.sort();
    names
}

/// The plugin's tables that `sqls` name, each with the columns named by the
/// statements that name it (identifiers compared case-insensitively). A
/// table no statement names is not there, so it is never fetched.
pub fn tables_used(sqls: &[String], schema: &pb::Schema) -> Vec<TableUse> {
    let words: Vec<BTreeSet<String>> = sqls.iter().map(|s| sql_words(s)).collect();
    let mut names: Vec<&String> = schema.schema.keys().collect();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let naming: Vec<&BTreeSet<String>> = words.iter().filter(|w| w.contains(name)).collect();
        if naming.is_empty() {
            continue;
        }
        let columns = schema.schema[name]
            .columns
            .iter()
            .filter(|c| naming.iter().any(|w| w.contains(&c.name)))
            .map(|c| c.name.clone())
            .collect();
        out.push(TableUse {
            table: name.clone(),
            columns,
        });
    }
    out
}

/// One connection to fetch from: its name and its HCL attribute string.
#[derive(Debug, Clone)]
pub struct ConnectionSpec {
    /// the connection name (the `connection_name` dimension)
    pub name: String,
    /// the aws plugin arguments, as Steampipe hands them over
    pub config: String,
}

fn sqlite_type(t: i32) -> &'static str {
    match pb::ColumnType::try_from(t) {
        Ok(pb::ColumnType::Bool | pb::ColumnType::Int) => "INTEGER",
        Ok(pb::ColumnType::Double) => "REAL",
        _ => "TEXT",
    }
}

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A cell as SQLite takes it (a JSON `null` is SQL NULL, as the FDW reads it).
fn to_sql(c: pb::Column) -> rusqlite::types::Value {
    use pb::column::Value as V;
    use rusqlite::types::Value as S;
    match c.value {
        None | Some(V::NullValue(_)) => S::Null,
        Some(V::BoolValue(b)) => S::Integer(b as i64),
        Some(V::IntValue(i)) => S::Integer(i),
        Some(V::DoubleValue(d)) => S::Real(d),
        Some(V::StringValue(s) | V::IpAddrValue(s) | V::CidrRangeValue(s) | V::LtreeValue(s)) => {
            S::Text(s)
        }
        Some(V::JsonValue(b)) => match String::from_utf8(b) {
            Ok(s) if s == "null" => S::Null,
            Ok(s) => S::Text(s),
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

/// The cells of an encoded `Row` (`map<string, Column> columns = 1`), read
/// one at a time from the wire bytes, without building the row's map.
fn for_each_cell(
    mut buf: &[u8],
    mut f: impl FnMut(&str, pb::Column) -> rusqlite::Result<()>,
) -> Result<(), String> {
    use prost::encoding::{decode_key, decode_varint, WireType};
    use prost::Message;
    fn delimited<'a>(buf: &mut &'a [u8]) -> Result<&'a [u8], String> {
        let len = decode_varint(buf).map_err(|e| e.to_string())? as usize;
        if len > buf.len() {
            return Err("a length past the end of the row".into());
        }
        let (head, rest) = buf.split_at(len);
        *buf = rest;
        Ok(head)
    }
    while !buf.is_empty() {
        let (tag, wt) = decode_key(&mut buf).map_err(|e| e.to_string())?;
        if tag != 1 || wt != WireType::LengthDelimited {
            return Err(format!("unexpected field {tag} in a row"));
        }
        let mut entry = delimited(&mut buf)?;
        let mut key = "";
        let mut value = pb::Column::default();
        while !entry.is_empty() {
            let (tag, wt) = decode_key(&mut entry).map_err(|e| e.to_string())?;
            if wt != WireType::LengthDelimited {
                return Err(format!("unexpected field {tag} in a row's cell"));
            }
            let part = delimited(&mut entry)?;
            match tag {
                1 => {
                    key = std::str::from_utf8(part)
                        .map_err(|_| "a column name that is not UTF-8".to_string())?
                }
                2 => value = pb::Column::decode(part).map_err(|e| e.to_string())?,
                _ => {}
            }
        }
        f(key, value).map_err(|e| format!("SQLite: {e}"))?;
    }
    Ok(())
}

/// Where one table's rows go in SQLite: `_rows_<table>`, a table clustered
/// on (connection, region, the table's get key columns, arrival) holding
/// only the columns fetched, and a view named as the table with every
/// column of its schema (NULL for those no control names). Scans of
/// regions and connections run concurrently, so rows arrive in an order
/// that changes from run to run; the clustering gives the view one fixed
/// order instead (by connection, region, then key, as text; arrival breaks
/// ties), with no sort of rows held in memory.
struct TableSink {
    /// the columns fetched, their parameter numbers are 3 + order.len() + index
    columns: Vec<String>,
    /// the order columns (their text, "" when not a string, is stored)
    order: Vec<String>,
    insert_sql: String,
}

impl TableSink {
    fn create(
        db: &rusqlite::Connection,
        schema: &pb::TableSchema,
        table: &str,
        columns: &[String],
    ) -> rusqlite::Result<TableSink> {
        let mut order = vec!["region".to_string()];
        order.extend(
            schema
                .get_call_key_column_list
                .iter()
                .map(|k| k.name.clone()),
        );
        order.retain(|c| schema.columns.iter().any(|tc| tc.name == *c));
        // The order columns are fetched even when the SQL does not name them.
        let mut fetched: Vec<String> = columns.to_vec();
        for c in &order {
            if !fetched.contains(c) {
                fetched.push(c.clone());
            }
        }
        let store = quoted(&format!("_rows_{table}"));
        let mut defs = vec!["_conn INTEGER NOT NULL".to_string()];
        defs.extend((0..order.len()).map(|i| format!("_key{i} TEXT NOT NULL")));
        defs.push("_seq INTEGER NOT NULL".into());
        let mut key: Vec<String> = vec!["_conn".into()];
        key.extend((0..order.len()).map(|i| format!("_key{i}")));
        key.push("_seq".into());
        for c in schema.columns.iter().filter(|c| fetched.contains(&c.name)) {
            defs.push(format!("{} {}", quoted(&c.name), sqlite_type(c.r#type)));
        }
        defs.push(format!("PRIMARY KEY ({})", key.join(", ")));
        let view_columns: Vec<String> = schema
            .columns
            .iter()
            .map(|c| {
                if fetched.contains(&c.name) {
                    quoted(&c.name)
                } else {
                    format!("NULL AS {}", quoted(&c.name))
                }
            })
            .collect();
        db.execute_batch(&format!(
            "create table {store} ({}) without rowid;\ncreate view {} as select {} from {store};",
            defs.join(", "),
            quoted(table),
            view_columns.join(", ")
        ))?;
        let fetched: Vec<String> = schema
            .columns
            .iter()
            .filter(|c| fetched.contains(&c.name))
            .map(|c| c.name.clone())
            .collect();
        let names: Vec<String> = key
            .iter()
            .cloned()
            .chain(fetched.iter().map(|c| quoted(c)))
            .collect();
        let params: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
        let insert_sql = format!(
            "insert into {store} ({}) values ({})",
            names.join(", "),
            params.join(", ")
        );
        Ok(TableSink {
            columns: fetched,
            order,
            insert_sql,
        })
    }

    /// Inserts one encoded row.
    fn insert(
        &self,
        stmt: &mut rusqlite::Statement<'_>,
        conn: i64,
        seq: i64,
        row: &[u8],
    ) -> Result<(), String> {
        stmt.clear_bindings();
        let sql_err = |e: rusqlite::Error| format!("SQLite: {e}");
        stmt.raw_bind_parameter(1, conn).map_err(sql_err)?;
        let first_key = 2;
        let seq_at = first_key + self.order.len();
        for i in 0..self.order.len() {
            stmt.raw_bind_parameter(first_key + i, "")
                .map_err(sql_err)?;
        }
        stmt.raw_bind_parameter(seq_at, seq).map_err(sql_err)?;
        for_each_cell(row, |name, cell| {
            if let Some(k) = self.order.iter().position(|o| o == name) {
                if let Some(pb::column::Value::StringValue(s)) = &cell.value {
                    stmt.raw_bind_parameter(first_key + k, s.as_str())?;
                }
            }
            if let Some(i) = self.columns.iter().position(|c| c == name) {
                stmt.raw_bind_parameter(seq_at + 1 + i, to_sql(cell))?;
            }
            Ok(())
        })?;
        stmt.raw_execute().map_err(sql_err)?;
        Ok(())
    }
}

/// Fetches the columns `uses` name from every connection, through the
/// plugin's own Execute path, each table once and all at once, and inserts
/// the rows into `db` as they arrive (see [`TableSink`]). Returns, per
/// table that could not be fetched, why (its rows are then incomplete);
/// `Err` only if SQLite itself fails.
pub async fn load(
    db: &rusqlite::Connection,
    connections: &[ConnectionSpec],
    limiters: &[pb::RateLimiterDefinition],
    uses: &[TableUse],
) -> Result<BTreeMap<String, String>, String> {
    let plugin: Plugin<AwsConnection> = crate::aws::plugin();
    let schema = plugin.schema();
    let mut sinks = Vec::new();
    for u in uses {
        let Some(t) = schema.schema.get(&u.table) else {
            return Err(format!("the plugin serves no table {}", u.table));
        };
        let sink = TableSink::create(db, t, &u.table, &u.columns)
            .map_err(|e| format!("creating table {} in SQLite: {e}", u.table))?;
        sinks.push(sink);
    }
    let mut failed = BTreeMap::new();
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
    if let Err(s) = plugin
        .set_all_connection_configs(tonic::Request::new(pb::SetAllConnectionConfigsRequest {
            configs,
            max_cache_size_mb: -1,
        }))
        .await
    {
        for u in uses {
            failed.insert(u.table.clone(), s.message().to_string());
        }
        return Ok(failed);
    }
    // The aws plugin's `limiter` blocks from the `--config` files.
    plugin.set_rate_limiters(limiters)?;
    let conn_index: std::collections::HashMap<&str, i64> = connections
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.as_str(), i as i64))
        .collect();
    let mut streams = Vec::new();
    for (i, (u, sink)) in uses.iter().zip(&sinks).enumerate() {
        let req = pb::ExecuteRequest {
            table: u.table.clone(),
            query_context: Some(pb::QueryContext {
                columns: sink.columns.clone(),
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
        match plugin.execute(req) {
            Ok(s) => streams.push(s.map(move |r| (i, r)).boxed()),
            Err(s) => {
                failed.insert(u.table.clone(), s.message().to_string());
            }
        }
    }
    let tx = db
        .unchecked_transaction()
        .map_err(|e| format!("SQLite: {e}"))?;
    {
        let mut stmts = Vec::new();
        for s in &sinks {
            stmts.push(
                tx.prepare(&s.insert_sql)
                    .map_err(|e| format!("SQLite: {e}"))?,
            );
        }
        let mut seq = 0i64;
        let mut all = futures::stream::select_all(streams);
        while let Some((i, r)) = all.next().await {
            let table = &uses[i].table;
            if failed.contains_key(table) {
                continue;
            }
            let r = match r {
                Ok(r) => r,
                Err(s) => {
                    failed.insert(table.clone(), s.message().to_string());
                    continue;
                }
            };
            if !r.has_row {
                continue;
            }
            let conn = conn_index.get(&*r.connection).copied().unwrap_or(i64::MAX);
            seq += 1;
            if let Err(e) = sinks[i].insert(&mut stmts[i], conn, seq, &r.row) {
                failed.insert(
                    table.clone(),
                    format!("{}: a row of {table} does not load: {e}", r.connection),
                );
            }
        }
    }
    tx.commit().map_err(|e| format!("SQLite: {e}"))?;
    Ok(failed)
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
        let names: Vec<std::sync::Arc<str>> =
            stmt.column_names().iter().map(|s| (*s).into()).collect();
        let missing: Vec<&str> = ["reason", "resource", "status"]
            .into_iter()
            .filter(|c| !names.iter().any(|n| &**n == *c))
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "control result is missing required column(s): {}",
                missing.join(", ")
            ));
        }
        run.dimension_columns = names
            .iter()
            .filter(|n| !["reason", "resource", "status"].contains(&&***n))
            .map(|n| n.to_string())
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
            let mut dimensions = Vec::with_capacity(names.len().saturating_sub(3));
            for (i, n) in names.iter().enumerate() {
                let v = text_of(row.get_ref(i).map_err(|e| e.to_string())?);
                match &**n {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::wire::RowEncoder;
    use pb::column::Value as Cell;

    fn column(name: &str, ty: pb::ColumnType) -> pb::ColumnDefinition {
        pb::ColumnDefinition {
            name: name.into(),
            r#type: ty as i32,
            ..Default::default()
        }
    }

    fn schema() -> pb::Schema {
        let mut s = pb::Schema::default();
        let mut instance = pb::TableSchema {
            columns: vec![
                column("instance_id", pb::ColumnType::String),
                column("region", pb::ColumnType::String),
                column("metadata_options", pb::ColumnType::Json),
                column("title", pb::ColumnType::String),
                column("cpu_options_core_count", pb::ColumnType::Int),
            ],
            ..Default::default()
        };
        instance.get_call_key_column_list = vec![pb::KeyColumn {
            name: "instance_id".into(),
            operators: vec!["=".into()],
            require: "required".into(),
            cache_match: String::new(),
        }];
        s.schema.insert("aws_ec2_instance".into(), instance);
        s.schema.insert(
            "aws_ec2_ami".into(),
            pb::TableSchema {
                columns: vec![
                    column("image_id", pb::ColumnType::String),
                    column("region", pb::ColumnType::String),
                    column("imds_support", pb::ColumnType::String),
                ],
                ..Default::default()
            },
        );
        s.schema.insert(
            "aws_ec2_launch_template".into(),
            pb::TableSchema {
                columns: vec![column("launch_template_id", pb::ColumnType::String)],
                ..Default::default()
            },
        );
        s
    }

    #[test]
    fn each_table_a_statement_names_is_fetched_with_the_columns_those_statements_name() {
        let sqls = vec![
            "select instance_id as resource, 'ok' as status, title as reason, region \
             from aws_ec2_instance where metadata_options ->> 'HttpTokens' = 'title'"
                .to_string(),
            "select i.image_id as resource, 'alarm' as status, 'x' as reason \
             from AWS_EC2_AMI as i"
                .to_string(),
            // Names in string literals are not names.
            "select 'aws_ec2_launch_template' as resource, 'ok' as status, 'image_id' as reason"
                .to_string(),
        ];
        let uses = tables_used(&sqls, &schema());
        assert_eq!(
            uses,
            vec![
                TableUse {
                    table: "aws_ec2_ami".into(),
                    columns: vec!["image_id".into()],
                },
                TableUse {
                    table: "aws_ec2_instance".into(),
                    columns: vec![
                        "instance_id".into(),
                        "region".into(),
                        "metadata_options".into(),
                        "title".into()
                    ],
                },
            ],
            "a table no statement names (aws_ec2_launch_template) is not fetched"
        );
        assert_eq!(tables_named(&sqls[1], &schema()), vec!["aws_ec2_ami"]);
        assert!(tables_named(&sqls[2], &schema()).is_empty());
    }

    fn row(cells: &[(&str, Cell)]) -> Vec<u8> {
        let mut e = RowEncoder::default();
        for (name, v) in cells {
            e.cell(
                name,
                &pb::Column {
                    value: Some(v.clone()),
                },
            );
        }
        e.finish().to_vec()
    }

    #[test]
    fn rows_inserted_as_they_arrive_are_read_by_connection_region_and_key() {
        let db = rusqlite::Connection::open_in_memory().unwrap();
        let s = schema();
        let t = &s.schema["aws_ec2_instance"];
        let columns = vec!["metadata_options".to_string(), "title".to_string()];
        let sink = TableSink::create(&db, t, "aws_ec2_instance", &columns).unwrap();
        let mut stmt = db.prepare(&sink.insert_sql).unwrap();
        let s = |v: &str| Cell::StringValue(v.into());
        // (connection, region, id), in an arrival order that is none of the orders read.
        let arrivals = [
            (1, "eu-west-1", "i-b"),
            (0, "us-east-1", "i-a"),
            (0, "eu-west-1", "i-c"),
            (1, "eu-west-1", "i-a"),
            (0, "eu-west-1", "i-a"),
        ];
        for (seq, (conn, region, id)) in arrivals.iter().enumerate() {
            let r = row(&[
                ("instance_id", s(id)),
                ("region", s(region)),
                ("title", s(&format!("{conn}/{region}/{id}"))),
                (
                    "metadata_options",
                    Cell::JsonValue(b"{\"HttpTokens\":\"required\"}".to_vec()),
                ),
                // not asked for: not stored
                ("cpu_options_core_count", Cell::IntValue(4)),
            ]);
            sink.insert(&mut stmt, *conn, seq as i64, &r).unwrap();
        }
        // A JSON null is SQL NULL.
        let r = row(&[
            ("instance_id", s("i-z")),
            ("region", s("us-east-1")),
            ("metadata_options", Cell::JsonValue(b"null".to_vec())),
        ]);
        sink.insert(&mut stmt, 1, 9, &r).unwrap();
        drop(stmt);
        let mut q = db
            .prepare(
                "select title, metadata_options ->> 'HttpTokens', cpu_options_core_count \
                 from aws_ec2_instance",
            )
            .unwrap();
        let got: Vec<(Option<String>, Option<String>, Option<i64>)> = q
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let titles: Vec<Option<&str>> = got.iter().map(|g| g.0.as_deref()).collect();
        assert_eq!(
            titles,
            vec![
                Some("0/eu-west-1/i-a"),
                Some("0/eu-west-1/i-c"),
                Some("0/us-east-1/i-a"),
                Some("1/eu-west-1/i-a"),
                Some("1/eu-west-1/i-b"),
                None,
            ]
        );
        assert_eq!(got[0].1.as_deref(), Some("required"));
        assert_eq!(got[5].1, None, "JSON null");
        assert!(
            got.iter().all(|g| g.2.is_none()),
            "a column not fetched is NULL"
        );
        // The view has every column of the schema, in its order.
        let names: Vec<String> = db
            .prepare("select * from aws_ec2_instance")
            .unwrap()
            .column_names()
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            names,
            [
                "instance_id",
                "region",
                "metadata_options",
                "title",
                "cpu_options_core_count"
            ]
        );
    }

    #[test]
    fn a_row_that_does_not_decode_is_an_error_not_a_panic() {
        let db = rusqlite::Connection::open_in_memory().unwrap();
        let s = schema();
        let sink = TableSink::create(
            &db,
            &s.schema["aws_ec2_ami"],
            "aws_ec2_ami",
            &["image_id".into()],
        )
        .unwrap();
        let mut stmt = db.prepare(&sink.insert_sql).unwrap();
        for bad in [&[0x0a, 0x7f, 0x01][..], &[0x08, 0x01], &[0x0a]] {
            assert!(sink.insert(&mut stmt, 0, 0, bad).is_err(), "{bad:?}");
        }
    }
}
