//! Tables declared as column lists, and the scan pipeline that turns API items
//! into streamed rows.
//!
//! A table is a list of columns, each with a name, type, description and a
//! closure that extracts its value from the API item (and, for hydrated
//! columns, from the named hydrate call's result), plus optional Get and List
//! functions with their key columns. Adding a column is one line.
//!
//! The pipeline for one connection: the fetch functions push items into a
//! bounded channel; a builder runs only the hydrate calls that the requested
//! columns need (bounded concurrency), extracts values, filters exactly by the
//! key-column quals, stops at the pushed-down limit and sends rows into the
//! gRPC stream. When the limit is met or the client goes away, the fetch is
//! dropped: pagination stops.
//!
//! This file is the declaration API ([`Table`], columns, typed hydrates, key
//! columns) and the [`TableDef`] trait the server uses; `scan.rs` is the
//! pipeline, `sink.rs` where items and rows go ([`ItemSink`], [`RowSender`]);
//! the rows kept for the query cache ([`KeptRows`]) live in `plugin::cache`.

use std::any::{Any, TypeId};
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use futures::StreamExt;
use tokio::sync::mpsc;

use crate::pb::steampipe as pb;
use crate::plugin::limiter::{CallLimiter, MultiLimiter, RateLimiters, SCOPE_FUNCTION};
use crate::plugin::metadata::ScanCounters;
use crate::plugin::plan::{plan, KeyColumn, Plan};
use crate::plugin::quals::{Qual, QualMap, EVALUATED_OPERATORS};
use crate::plugin::value::{encode, encode_owned, ColumnType, Value};
use crate::plugin::wire::{self, RowEncoder};

mod scan;
mod sink;

pub use crate::plugin::cache::KeptRows;
pub(crate) use scan::AbortOnDrop;
pub use scan::{Scan, ScanError};
use sink::Progress;
pub use sink::{ItemSink, RowSender, ScanStopped};

/// Errors from table functions: any error type, shown to the user by its `Display`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;
/// What a hydrate call returns, before [`Hydrated::get`] gives it its type back.
pub type HydrateOutput = Arc<dyn Any + Send + Sync>;

/// The three context columns the SDK appends to every table, in this order.
pub const RESERVED_COLUMNS: [(&str, ColumnType, &str); 3] = [
    (
        "sp_connection_name",
        ColumnType::String,
        "Steampipe connection name.",
    ),
    (
        "sp_ctx",
        ColumnType::Json,
        "Steampipe context in JSON form.",
    ),
    ("_ctx", ColumnType::Json, "Steampipe context in JSON form."),
];

/// A hydrate call of one table, returned by [`Table::hydrate`] and handed to
/// the columns that read its result: the compiler checks both the name and
/// the type of what a column reads.
pub struct Hydrate<T> {
    index: usize,
    name: &'static str,
    _output: PhantomData<fn() -> T>,
}

impl<T> Clone for Hydrate<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Hydrate<T> {}

impl<T> Hydrate<T> {
    /// The name the schema reports (the Go plugin's hydrate function name).
    pub fn name(&self) -> &'static str {
        self.name
    }
}

/// The results of the hydrate calls made for one item, by hydrate index.
#[derive(Default)]
pub struct Hydrated {
    results: Vec<Option<HydrateOutput>>,
}

impl Hydrated {
    /// The result of hydrate `h`, if it ran for this item.
    pub fn get<T: Any + Send + Sync>(&self, h: &Hydrate<T>) -> Option<&T> {
        self.results
            .get(h.index)?
            .as_ref()
            .and_then(|v| v.downcast_ref::<T>())
    }

    fn set(&mut self, index: usize, v: HydrateOutput) {
        if self.results.len() <= index {
            self.results.resize(index + 1, None);
        }
        self.results[index] = Some(v);
    }
}

type Extract<I> = Arc<dyn Fn(&I, &Hydrated) -> Value + Send + Sync>;

/// One column of a table.
pub struct Column<I> {
    /// name
    pub name: &'static str,
    /// type
    pub ty: ColumnType,
    /// description (becomes the Postgres column comment)
    pub description: &'static str,
    /// the hydrate call whose result the extractor reads, if any: its index
    /// in the table, its name, and the type it returns
    hydrate: Option<(usize, &'static str, TypeId)>,
    /// the hydrate name the schema reports, when it differs from `hydrate`
    /// (a value the Go plugin fetches in a hydrate call and this one has
    /// at hand)
    pub reported_hydrate: Option<&'static str>,
    /// the value put in place of NULL, reported in the schema (Go's `Default`)
    pub default: Option<Value>,
    extract: Extract<I>,
}

impl<I> Column<I> {
    /// The name of the hydrate call the column needs, if any.
    pub fn hydrate(&self) -> Option<&'static str> {
        self.hydrate.map(|(_, name, _)| name)
    }
}

/// The column just added, to set what is not common to every column.
pub struct ColumnMut<'a, I>(&'a mut Column<I>);

impl<I> ColumnMut<'_, I> {
    /// The schema names hydrate `name`, as the Go plugin's does, though the
    /// value needs no call of its own here.
    pub fn reports_hydrate(self, name: &'static str) -> Self {
        self.0.reported_hydrate = Some(name);
        self
    }

    /// `value` is put where the value would be NULL, and the schema reports it
    /// as the column's default (Go's `Column.Default`).
    pub fn default_value(self, value: impl Into<Value>) -> Self {
        self.0.default = Some(value.into());
        self
    }
}

/// A request to a List function.
pub struct ListRequest<C> {
    /// the connection's parsed config and clients
    pub connection: Arc<C>,
    /// the connection's name
    pub connection_name: String,
    /// the quals on List key columns (an IN list already split per call)
    pub quals: QualMap,
    /// every qual of the scan, key column or not (e.g. to prune regions)
    pub all_quals: Arc<QualMap>,
    /// the pushed-down limit, if any: rows beyond it will not be read
    pub limit: Option<u64>,
    /// the columns the query needs
    pub columns: Arc<Vec<String>>,
    /// the rate limiters of the List call: wait on it before each page
    pub limiter: CallLimiter,
}

/// A request to a Get function: `quals` holds one `=` value per Get key column.
pub struct GetRequest<C> {
    /// the connection's parsed config and clients
    pub connection: Arc<C>,
    /// the connection's name
    pub connection_name: String,
    /// the quals on Get key columns
    pub quals: QualMap,
    /// every qual of the scan, key column or not
    pub all_quals: Arc<QualMap>,
    /// the columns the query needs
    pub columns: Arc<Vec<String>>,
    /// the rate limiters of the Get call: wait on it before each call
    pub limiter: CallLimiter,
}

/// A request to a hydrate function.
pub struct HydrateRequest<C> {
    /// the connection's parsed config and clients
    pub connection: Arc<C>,
    /// the connection's name
    pub connection_name: String,
}

type ListFn<C, I> =
    Arc<dyn Fn(ListRequest<C>, ItemSink<I>) -> BoxFuture<Result<(), BoxError>> + Send + Sync>;
type GetFn<C, I> =
    Arc<dyn Fn(GetRequest<C>) -> BoxFuture<Result<Option<I>, BoxError>> + Send + Sync>;
type HydrateFn<C, I> = Arc<
    dyn Fn(HydrateRequest<C>, Arc<I>) -> BoxFuture<Result<HydrateOutput, BoxError>> + Send + Sync,
>;

/// A table over API items of type `I`, for connections of type `C`.
pub struct Table<C, I> {
    name: &'static str,
    description: &'static str,
    columns: Vec<Column<I>>,
    list: Option<(Vec<KeyColumn>, ListFn<C, I>)>,
    get: Option<(Vec<KeyColumn>, GetFn<C, I>)>,
    hydrates: Vec<(&'static str, TypeId, HydrateFn<C, I>)>,
    hydrate_concurrency: usize,
    read_ahead: usize,
    get_concurrency: usize,
    /// rate-limiter tags: of the List and Get calls (with their Go function
    /// names) and of hydrate calls, by hydrate index
    list_tags: Tags,
    get_tags: Tags,
    hydrate_tags: Vec<(usize, Tags)>,
    /// an item's matrix scope values (e.g. its `region`), for its hydrate calls' limiters
    matrix: Option<MatrixFn<I>>,
}

/// Rate-limiter tags of one call: `function_name` and the declared ones.
type Tags = Vec<(&'static str, &'static str)>;
type MatrixFn<I> = Arc<dyn Fn(&I) -> Vec<(&'static str, String)> + Send + Sync>;

fn tags_of(function_name: &'static str, tags: &[(&'static str, &'static str)]) -> Tags {
    let mut t = tags.to_vec();
    t.push((SCOPE_FUNCTION, function_name));
    t
}

impl<C: Send + Sync + 'static, I: Send + Sync + 'static> Table<C, I> {
    /// An empty table.
    pub fn new(name: &'static str, description: &'static str) -> Self {
        Table {
            name,
            description,
            columns: Vec::new(),
            list: None,
            get: None,
            hydrates: Vec::new(),
            hydrate_concurrency: 10,
            read_ahead: 64,
            get_concurrency: 10,
            list_tags: Vec::new(),
            get_tags: Vec::new(),
            hydrate_tags: Vec::new(),
            matrix: None,
        }
    }

    /// The rate-limiter tags of the List call (the Go `ListConfig.Tags`),
    /// and its Go function name (scope value `function_name`).
    pub fn list_tags(
        &mut self,
        function_name: &'static str,
        tags: &[(&'static str, &'static str)],
    ) -> &mut Self {
        self.list_tags = tags_of(function_name, tags);
        self
    }

    /// The rate-limiter tags of the Get call (the Go `GetConfig.Tags`).
    pub fn get_tags(
        &mut self,
        function_name: &'static str,
        tags: &[(&'static str, &'static str)],
    ) -> &mut Self {
        self.get_tags = tags_of(function_name, tags);
        self
    }

    /// The rate-limiter tags of hydrate `h` (the Go `HydrateConfig.Tags`).
    pub fn hydrate_tags<T>(
        &mut self,
        h: &Hydrate<T>,
        tags: &[(&'static str, &'static str)],
    ) -> &mut Self {
        self.hydrate_tags.retain(|(i, _)| *i != h.index);
        self.hydrate_tags.push((h.index, tags_of(h.name, tags)));
        self
    }

    /// The matrix scope values of an item (the Go matrix item the row was
    /// listed under, e.g. its `region`), which the rate limiters of its
    /// hydrate calls see.
    pub fn matrix_scope<F>(&mut self, f: F) -> &mut Self
    where
        F: Fn(&I) -> Vec<(&'static str, String)> + Send + Sync + 'static,
    {
        self.matrix = Some(Arc::new(f));
        self
    }

    fn push_column(
        &mut self,
        name: &'static str,
        ty: ColumnType,
        description: &'static str,
        hydrate: Option<(usize, &'static str, TypeId)>,
        extract: Extract<I>,
    ) -> ColumnMut<'_, I> {
        self.columns.push(Column {
            name,
            ty,
            description,
            hydrate,
            reported_hydrate: None,
            default: None,
            extract,
        });
        ColumnMut(self.columns.last_mut().expect("just pushed"))
    }

    /// Adds a column whose value comes from the item alone.
    pub fn column<F, V>(
        &mut self,
        name: &'static str,
        ty: ColumnType,
        description: &'static str,
        f: F,
    ) -> ColumnMut<'_, I>
    where
        F: Fn(&I) -> V + Send + Sync + 'static,
        V: Into<Value>,
    {
        self.push_column(
            name,
            ty,
            description,
            None,
            Arc::new(move |i, _| f(i).into()),
        )
    }

    /// Adds a column read from the result of hydrate `h`; the call runs only
    /// when the query asks for a column that needs it.
    pub fn hydrated_column<T, F, V>(
        &mut self,
        name: &'static str,
        ty: ColumnType,
        description: &'static str,
        h: Hydrate<T>,
        f: F,
    ) -> ColumnMut<'_, I>
    where
        T: Any + Send + Sync,
        F: Fn(&I, &T) -> V + Send + Sync + 'static,
        V: Into<Value>,
    {
        let extract: Extract<I> = Arc::new(move |i, hydrated| match hydrated.get(&h) {
            Some(out) => f(i, out).into(),
            None => Value::Null,
        });
        self.push_column(
            name,
            ty,
            description,
            Some((h.index, h.name, TypeId::of::<T>())),
            extract,
        )
    }

    /// Declares the List call.
    pub fn list<F, Fut>(&mut self, key_columns: Vec<KeyColumn>, f: F) -> &mut Self
    where
        F: Fn(ListRequest<C>, ItemSink<I>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        self.list = Some((key_columns, Arc::new(move |r, s| Box::pin(f(r, s)))));
        self
    }

    /// Declares the Get call.
    pub fn get<F, Fut>(&mut self, key_columns: Vec<KeyColumn>, f: F) -> &mut Self
    where
        F: Fn(GetRequest<C>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Option<I>, BoxError>> + Send + 'static,
    {
        self.get = Some((key_columns, Arc::new(move |r| Box::pin(f(r)))));
        self
    }

    /// Declares hydrate call `name` (the name the schema reports); the
    /// returned handle is what columns read its result through.
    pub fn hydrate<F, Fut, T>(&mut self, name: &'static str, f: F) -> Hydrate<T>
    where
        F: Fn(HydrateRequest<C>, Arc<I>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, BoxError>> + Send + 'static,
        T: Any + Send + Sync,
    {
        let f = Arc::new(f);
        self.hydrates.push((
            name,
            TypeId::of::<T>(),
            Arc::new(move |r, i| {
                let fut = f(r, i);
                Box::pin(async move { fut.await.map(|v| Arc::new(v) as HydrateOutput) })
            }),
        ));
        Hydrate {
            index: self.hydrates.len() - 1,
            name,
            _output: PhantomData,
        }
    }

    /// How many items may be hydrated at once (default 10).
    pub fn hydrate_concurrency(&mut self, n: usize) -> &mut Self {
        self.hydrate_concurrency = n.max(1);
        self
    }

    /// How many listed items may wait for the row builder (default 64). Set it
    /// to the API's page size so that the next page is fetched while the rows
    /// of the last one are built and sent, and at most that many items (plus
    /// the page in flight) are held when the client reads slowly.
    pub fn read_ahead(&mut self, items: usize) -> &mut Self {
        self.read_ahead = items.max(1);
        self
    }

    /// Checks the declaration: unique column names, key columns that exist with
    /// operators the SDK knows, hydrates that are declared, a Get or a List.
    pub fn validate(&self) -> Result<(), String> {
        let mut seen = std::collections::HashSet::new();
        for c in &self.columns {
            if !seen.insert(c.name) {
                return Err(format!(
                    "table {}: duplicate column '{}'",
                    self.name, c.name
                ));
            }
            if RESERVED_COLUMNS.iter().any(|(n, ..)| *n == c.name) || c.name.starts_with("_spc_") {
                return Err(format!(
                    "table {}: column name '{}' is reserved",
                    self.name, c.name
                ));
            }
            if let Some((index, name, ty)) = c.hydrate {
                // A handle from another table over the same item type.
                if !matches!(self.hydrates.get(index), Some((n, t, _)) if *n == name && *t == ty) {
                    return Err(format!(
                        "table {}: column '{}' reads hydrate '{name}', which this table does not declare",
                        self.name, c.name
                    ));
                }
            }
        }
        if self.list.is_none() && self.get.is_none() {
            return Err(format!(
                "table {} has neither a Get nor a List call",
                self.name
            ));
        }
        for (call, keys) in [
            ("get", self.get.as_ref().map(|g| &g.0)),
            ("list", self.list.as_ref().map(|l| &l.0)),
        ] {
            let mut names = std::collections::HashSet::new();
            for kc in keys.into_iter().flatten() {
                if !seen.contains(kc.name.as_str()) {
                    return Err(format!(
                        "table {}: {call} key column '{}' is not a column",
                        self.name, kc.name
                    ));
                }
                if !names.insert(kc.name.as_str()) {
                    return Err(format!(
                        "table {}: {call} key column '{}' is listed twice",
                        self.name, kc.name
                    ));
                }
                for op in &kc.operators {
                    if !VALID_OPERATORS.contains(&op.as_str()) {
                        return Err(format!(
                            "table {}: key column '{}' has unknown operator '{op}'",
                            self.name, kc.name
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// The operators the SDK accepts on key columns.
const VALID_OPERATORS: &[&str] = &[
    "=",
    "<>",
    "<",
    "<=",
    ">",
    ">=",
    "~~",
    "!~~",
    "~~*",
    "!~~*",
    "~",
    "!~",
    "~*",
    "!~*",
    "is null",
    "is not null",
    "@>",
    "<@",
    "?",
    "?|",
    "?&",
    "@?",
    "@@",
];

/// A table with its item type erased, as the plugin serves it.
pub trait TableDef<C>: Send + Sync {
    /// The table name.
    fn name(&self) -> &str;
    /// The wire schema, reserved columns included.
    fn schema(&self) -> pb::TableSchema;
    /// The declaration check.
    fn validate(&self) -> Result<(), String>;
    /// Streams the rows of one connection into `out`; returns the row count.
    fn scan(self: Arc<Self>, scan: Scan<C>, out: RowSender) -> BoxFuture<Result<u64, ScanError>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_column_reads_only_a_hydrate_of_its_own_table() {
        let noop = |_r: HydrateRequest<()>, n: Arc<u32>| async move { Ok::<u32, BoxError>(*n) };
        let mut other = Table::<(), u32>::new("other", "");
        let foreign = other.hydrate("h", noop);
        let mut t = Table::<(), u32>::new("t", "");
        t.list(vec![], |_r, _s| async { Ok(()) });
        let own = t.hydrate("mine", noop);
        t.hydrated_column("a", ColumnType::Int, "", own, |_, v: &u32| *v as i64);
        assert_eq!(t.validate(), Ok(()));
        assert_eq!(t.columns[0].hydrate(), Some("mine"));
        t.hydrated_column("b", ColumnType::Int, "", foreign, |_, v: &u32| *v as i64);
        assert_eq!(
            t.validate().unwrap_err(),
            "table t: column 'b' reads hydrate 'h', which this table does not declare"
        );
    }
}
