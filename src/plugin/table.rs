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

/// Where a List function puts its items. `push` waits while the consumer is
/// busy (back-pressure) and fails once no more rows are wanted.
pub struct ItemSink<I> {
    tx: mpsc::Sender<Arc<I>>,
    progress: Arc<Progress>,
}

impl<I> Clone for ItemSink<I> {
    fn clone(&self) -> Self {
        ItemSink {
            tx: self.tx.clone(),
            progress: self.progress.clone(),
        }
    }
}

/// How far a scan with a pushed-down limit has got: items pushed, items the
/// row builder has taken (kept or rejected by the key-column quals), rows sent.
#[derive(Default)]
struct Progress {
    limit: Option<u64>,
    pushed: std::sync::atomic::AtomicU64,
    taken: std::sync::atomic::AtomicU64,
    sent: std::sync::atomic::AtomicU64,
    changed: tokio::sync::Notify,
}

impl Progress {
    fn took(&self, sent: bool) {
        use std::sync::atomic::Ordering::SeqCst;
        if self.limit.is_none() {
            return;
        }
        if sent {
            self.sent.fetch_add(1, SeqCst);
        }
        self.taken.fetch_add(1, SeqCst);
        self.changed.notify_waiters();
    }
}

/// Returned by [`ItemSink::push`] when the scan needs no more items (limit met,
/// client gone). List functions propagate it with `?` and stop paginating.
#[derive(Debug, thiserror::Error)]
#[error("the scan needs no more items")]
pub struct ScanStopped;

impl<I> ItemSink<I> {
    /// Sends one item downstream.
    pub async fn push(&self, item: I) -> Result<(), ScanStopped> {
        self.progress
            .pushed
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.tx.send(Arc::new(item)).await.map_err(|_| ScanStopped)
    }

    /// True once no more items are wanted.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Whether another page is needed, for a List function to ask before
    /// fetching one. Without a limit, always (until the scan stops). With a
    /// limit: yes while fewer items than the limit were pushed; otherwise it
    /// waits for the row builder to take what was pushed and says yes only if
    /// the quals rejected enough of it that the limit is not met. So a
    /// limited scan never fetches a page it does not need.
    pub async fn wants_more(&self) -> bool {
        use std::sync::atomic::Ordering::SeqCst;
        let p = &self.progress;
        let Some(limit) = p.limit else {
            return !self.tx.is_closed();
        };
        loop {
            let changed = p.changed.notified();
            if self.tx.is_closed() || p.sent.load(SeqCst) >= limit {
                return false;
            }
            let pushed = p.pushed.load(SeqCst);
            if pushed < limit {
                return true;
            }
            if p.taken.load(SeqCst) >= pushed {
                return true; // all taken, and the limit is still not met
            }
            tokio::select! {
                _ = changed => {}
                _ = self.tx.closed() => return false,
            }
        }
    }
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

/// A failed Get call, told apart from a failed List on its way out of the
/// producer.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct GetFailed(BoxError);

/// Why a scan of one connection ended without completing.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// required key-column quals are missing (the SDK answers INTERNAL)
    #[error(transparent)]
    MissingQuals(#[from] crate::plugin::plan::MissingQuals),
    /// the fetch or hydrate failed
    #[error("{0}")]
    Fetch(BoxError),
    /// the Get call failed (the SDK returns that error without the
    /// connection name in front; the server adds it, as for every scan)
    #[error("{0}")]
    Get(BoxError),
    /// a value could not be put on the wire
    #[error("column '{column}': {message}")]
    Encode {
        /// the column
        column: String,
        /// what is wrong
        message: String,
    },
    /// the client went away
    #[error("scan cancelled by the client")]
    Cancelled,
}

/// Everything a scan of one connection needs.
pub struct Scan<C> {
    /// the connection's parsed config and clients
    pub connection: Arc<C>,
    /// the (child) connection name, put on every row
    pub connection_name: String,
    /// the columns the query needs; empty for `count(*)`
    pub columns: Vec<String>,
    /// the scan's quals
    pub quals: QualMap,
    /// the pushed-down limit
    pub limit: Option<u64>,
    /// the `sp_ctx`/`_ctx` JSON bytes for this connection
    pub ctx_json: Arc<Vec<u8>>,
    /// the plugin's rate limiters (`None`: no limiter is defined)
    pub limiters: Option<Arc<RateLimiters>>,
}

/// Where rows go: the gRPC response stream, and, for a scan that will be
/// cached, a copy of each row (a reference to the same bytes) kept on the way.
#[derive(Clone)]
pub struct RowSender {
    tx: mpsc::Sender<Result<wire::ExecuteResponse, tonic::Status>>,
    keep: Option<Arc<KeptRows>>,
}

impl RowSender {
    /// Rows go to `tx` only.
    pub fn new(tx: mpsc::Sender<Result<wire::ExecuteResponse, tonic::Status>>) -> Self {
        RowSender { tx, keep: None }
    }

    /// Rows go to `tx`, and are kept in `keep` as they pass.
    pub fn keeping(
        tx: mpsc::Sender<Result<wire::ExecuteResponse, tonic::Status>>,
        keep: Arc<KeptRows>,
    ) -> Self {
        RowSender {
            tx,
            keep: Some(keep),
        }
    }

    /// Sends one row; an error if the receiver is gone.
    pub async fn send(&self, row: wire::ExecuteResponse) -> Result<(), ScanStopped> {
        if let Some(k) = &self.keep {
            k.keep(&row);
        }
        self.tx.send(Ok(row)).await.map_err(|_| ScanStopped)
    }
}

/// The rows of a scan kept for the query cache, up to a size budget (past
/// it, none are kept: a partial result is never cached).
pub struct KeptRows {
    max_bytes: usize,
    /// the rows kept, and the bytes of every row offered
    state: std::sync::Mutex<(Vec<wire::ExecuteResponse>, usize)>,
}

impl KeptRows {
    /// Keeps at most `max_bytes` of encoded rows.
    pub fn new(max_bytes: usize) -> Self {
        KeptRows {
            max_bytes,
            state: std::sync::Mutex::new((Vec::new(), 0)),
        }
    }

    fn keep(&self, row: &wire::ExecuteResponse) {
        use prost::Message;
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.1 > self.max_bytes {
            return;
        }
        st.1 += row.encoded_len();
        if st.1 > self.max_bytes {
            st.0 = Vec::new();
        } else {
            st.0.push(row.clone());
        }
    }

    /// The rows, or `None` if they went past the budget.
    pub fn take(&self) -> Option<Vec<wire::ExecuteResponse>> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        (st.1 <= self.max_bytes).then(|| std::mem::take(&mut st.0))
    }
}

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

enum ConsumerEnd {
    /// the items ran out
    Done,
    /// the pushed-down limit was reached; the rest of the fetch is moot
    Limit,
    ClientGone,
    Failed(ScanError),
}

impl<C: Send + Sync + 'static, I: Send + Sync + 'static> TableDef<C> for Table<C, I> {
    fn name(&self) -> &str {
        self.name
    }

    fn validate(&self) -> Result<(), String> {
        Table::validate(self)
    }

    fn schema(&self) -> pb::TableSchema {
        let mut columns: Vec<pb::ColumnDefinition> = self
            .columns
            .iter()
            .map(|c| pb::ColumnDefinition {
                name: c.name.to_string(),
                r#type: c.ty.to_proto() as i32,
                description: c.description.to_string(),
                hydrate: c
                    .reported_hydrate
                    .or(c.hydrate())
                    .unwrap_or_default()
                    .to_string(),
                default: c.default.as_ref().and_then(|d| encode(c.ty, d).ok()),
                sort_order: pb::SortOrder::None as i32,
            })
            .collect();
        columns.extend(
            RESERVED_COLUMNS
                .iter()
                .map(|(n, t, d)| pb::ColumnDefinition {
                    name: n.to_string(),
                    r#type: t.to_proto() as i32,
                    description: d.to_string(),
                    hydrate: String::new(),
                    default: None,
                    sort_order: pb::SortOrder::None as i32,
                }),
        );
        pb::TableSchema {
            columns,
            description: self.description.to_string(),
            get_call_key_columns: None,
            list_call_key_columns: None,
            list_call_optional_key_columns: None,
            get_call_key_column_list: self
                .get
                .as_ref()
                .map(|(k, _)| k.iter().map(KeyColumn::to_proto).collect())
                .unwrap_or_default(),
            list_call_key_column_list: self
                .list
                .as_ref()
                .map(|(k, _)| k.iter().map(KeyColumn::to_proto).collect())
                .unwrap_or_default(),
        }
    }

    fn scan(self: Arc<Self>, scan: Scan<C>, out: RowSender) -> BoxFuture<Result<u64, ScanError>> {
        Box::pin(async move { self.run(scan, out).await })
    }
}

/// The columns of a row being built: index into `Table::columns`, and whether
/// the query asked for it (else it is only read to filter).
struct RowShape {
    /// by column index: whether the row carries it
    emitted: Vec<bool>,
    extract: Vec<usize>,
    hydrates: Vec<usize>,
    filters: Vec<(usize, Vec<Qual>)>,
    /// whether rate limiters are in play for this scan
    limited: bool,
    /// by hydrate index: the limiter scope of its calls in this scan
    hydrate_limiters: Vec<(usize, CallLimiter)>,
}

impl<C: Send + Sync + 'static, I: Send + Sync + 'static> Table<C, I> {
    fn index_of(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    fn shape(&self, requested: &[String], quals: &QualMap) -> RowShape {
        let mut emitted = vec![false; self.columns.len()];
        let mut emit: Vec<usize> = Vec::new();
        for i in requested.iter().filter_map(|n| self.index_of(n)) {
            if !emitted[i] {
                emitted[i] = true;
                emit.push(i);
            }
        }
        if emit.is_empty() {
            // count(*) asks for no column; a row still needs one real value.
            if let Some(first) = self.columns.iter().position(|c| c.hydrate.is_none()) {
                emit.push(first);
                emitted[first] = true;
            }
        }
        // Exact filtering on key-column quals, so a pushed-down limit counts
        // only rows that Postgres will keep.
        let mut filters = Vec::new();
        let keys = self
            .get
            .iter()
            .flat_map(|g| g.0.iter())
            .chain(self.list.iter().flat_map(|l| l.0.iter()));
        let mut done = std::collections::HashSet::new();
        for kc in keys {
            if !done.insert(kc.name.clone()) || !kc.filter_rows {
                continue;
            }
            let qs: Vec<Qual> = kc
                .matching_quals(quals)
                .into_iter()
                .filter(|q| EVALUATED_OPERATORS.contains(&q.operator.as_str()))
                .collect();
            if let (false, Some(i)) = (qs.is_empty(), self.index_of(&kc.name)) {
                filters.push((i, qs));
            }
        }
        let mut extract = emit.clone();
        for (i, _) in &filters {
            if !extract.contains(i) {
                extract.push(*i);
            }
        }
        let mut hydrates = Vec::new();
        for &i in &extract {
            if let Some((hi, ..)) = self.columns[i].hydrate {
                if !hydrates.contains(&hi) {
                    hydrates.push(hi);
                }
            }
        }
        RowShape {
            emitted,
            extract,
            hydrates,
            filters,
            limited: false,
            hydrate_limiters: Vec::new(),
        }
    }

    async fn run(self: Arc<Self>, scan: Scan<C>, out: RowSender) -> Result<u64, ScanError> {
        let get_keys = self.get.as_ref().map(|g| g.0.as_slice());
        let list_keys = self.list.as_ref().map(|l| l.0.as_slice());
        let plan = plan(self.name, get_keys, list_keys, &scan.quals)?;
        let mut shape = self.shape(&scan.columns, &scan.quals);
        if scan.limiters.is_some() {
            shape.limited = true;
            shape.hydrate_limiters = (shape.hydrates.iter())
                .map(|&hi| {
                    let name = self.hydrates[hi].0;
                    let tags = match self.hydrate_tags.iter().find(|(i, _)| *i == hi) {
                        Some((_, t)) => t.clone(),
                        None => vec![(SCOPE_FUNCTION, name)],
                    };
                    let l = CallLimiter::new(
                        scan.limiters.clone(),
                        &scan.connection_name,
                        self.name,
                        &tags,
                    );
                    (hi, l)
                })
                .collect();
        }
        let shape = Arc::new(shape);
        let columns = Arc::new(scan.columns.clone());

        let (item_tx, item_rx) = mpsc::channel::<Arc<I>>(self.read_ahead);
        // The producer (API calls and response parsing) runs as its own task,
        // so that it parses the next page on one core while this task builds
        // and encodes rows on another. Dropping `producer` aborts it.
        let progress = Arc::new(Progress {
            limit: scan.limit,
            ..Default::default()
        });
        let counters = Arc::new(ScanCounters::new(matches!(plan, Plan::Get(_))));
        let mut producer = AbortOnDrop(tokio::spawn(self.clone().produce(
            plan,
            &scan,
            columns,
            ItemSink {
                tx: item_tx,
                progress: progress.clone(),
            },
        )));
        let consumer = self
            .clone()
            .consume(&scan, shape, item_rx, out, progress.clone(), counters);
        tokio::pin!(consumer);

        // How the producer ended: Some(error) if the fetch failed.
        fn fetch_outcome(
            r: Result<Result<(), BoxError>, tokio::task::JoinError>,
        ) -> Option<BoxError> {
            match r {
                Ok(Ok(())) => None,
                // Rows already fetched still go out (as the Go SDK streams
                // them); the error ends the stream after.
                Ok(Err(e)) => e.downcast_ref::<ScanStopped>().is_none().then_some(e),
                // A panicking table function fails this scan, as it would
                // had it run in this task.
                Err(j) if j.is_panic() => std::panic::resume_unwind(j.into_panic()),
                Err(_) => None,
            }
        }
        let mut produced = false;
        let mut fetch_error = None;
        loop {
            tokio::select! {
                r = &mut producer.0, if !produced => {
                    produced = true;
                    fetch_error = fetch_outcome(r);
                }
                (end, rows) = &mut consumer => {
                    if matches!(end, ConsumerEnd::Done) && !produced {
                        // The items ran out because the producer ended; its
                        // result may not be in yet. Never drop its error.
                        fetch_error = fetch_outcome((&mut producer.0).await);
                    }
                    return match (end, fetch_error) {
                        (ConsumerEnd::ClientGone, _) => Err(ScanError::Cancelled),
                        (ConsumerEnd::Failed(e), _) => Err(e),
                        (ConsumerEnd::Done, Some(e)) => Err(match e.downcast::<GetFailed>() {
                            Ok(g) => ScanError::Get(g.0),
                            Err(e) => ScanError::Fetch(e),
                        }),
                        (ConsumerEnd::Done, None) | (ConsumerEnd::Limit, _) => Ok(rows),
                    };
                }
            }
        }
    }

    fn produce(
        self: Arc<Self>,
        plan: Plan,
        scan: &Scan<C>,
        columns: Arc<Vec<String>>,
        sink: ItemSink<I>,
    ) -> BoxFuture<Result<(), BoxError>> {
        let connection = scan.connection.clone();
        let connection_name = scan.connection_name.clone();
        let limit = scan.limit;
        let all_quals = Arc::new(scan.quals.clone());
        let call_limiter = |tags: &Tags| {
            CallLimiter::new(
                scan.limiters.clone(),
                &scan.connection_name,
                self.name,
                tags,
            )
        };
        let get_limiter = call_limiter(&self.get_tags);
        let list_limiter = call_limiter(&self.list_tags);
        Box::pin(async move {
            match plan {
                Plan::Get(calls) => {
                    let (_, get) = self.get.as_ref().expect("planned a Get without a Get call");
                    let mut results = futures::stream::iter(calls)
                        .map(|quals| {
                            get(GetRequest {
                                connection: connection.clone(),
                                connection_name: connection_name.clone(),
                                quals,
                                all_quals: all_quals.clone(),
                                columns: columns.clone(),
                                limiter: get_limiter.clone(),
                            })
                        })
                        .buffer_unordered(self.get_concurrency);
                    while let Some(r) = results.next().await {
                        if let Some(item) = r.map_err(|e| Box::new(GetFailed(e)) as BoxError)? {
                            sink.push(item).await?;
                        }
                    }
                    Ok(())
                }
                Plan::List(calls) => {
                    let (_, list) = self
                        .list
                        .as_ref()
                        .expect("planned a List without a List call");
                    let mut runs = futures::stream::iter(calls)
                        .map(|quals| {
                            list(
                                ListRequest {
                                    connection: connection.clone(),
                                    connection_name: connection_name.clone(),
                                    quals,
                                    all_quals: all_quals.clone(),
                                    limit,
                                    columns: columns.clone(),
                                    limiter: list_limiter.clone(),
                                },
                                sink.clone(),
                            )
                        })
                        .buffer_unordered(self.get_concurrency);
                    while let Some(r) = runs.next().await {
                        r?;
                    }
                    Ok(())
                }
            }
        })
    }

    /// Builds one row from an item; `None` if the key-column quals reject it.
    async fn build_row(
        &self,
        shape: &RowShape,
        connection: &Arc<C>,
        connection_name: &str,
        item: Arc<I>,
        counters: &ScanCounters,
    ) -> Result<Option<Vec<(usize, Value)>>, ScanError> {
        let mut hydrated = Hydrated::default();
        if !shape.hydrates.is_empty() {
            counters.hydrates_started(shape.hydrates.len());
            // The item's matrix values, for the hydrate calls' limiters.
            let matrix = match (&self.matrix, shape.limited) {
                (Some(m), true) => m(&item),
                _ => Vec::new(),
            };
            let matrix: Vec<(&str, &str)> = matrix.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let calls = shape.hydrates.iter().map(|&hi| {
                let (_, _, f) = &self.hydrates[hi];
                let limiters = match shape.hydrate_limiters.iter().find(|(i, _)| *i == hi) {
                    Some((_, l)) if shape.limited => l.resolve(&matrix),
                    _ => MultiLimiter::default(),
                };
                let fut = f(
                    HydrateRequest {
                        connection: connection.clone(),
                        connection_name: connection_name.to_string(),
                    },
                    item.clone(),
                );
                async move {
                    // As the SDK: a slot of every concurrency cap, then the rate.
                    let _slots = if limiters.is_empty() {
                        None
                    } else {
                        let slots = limiters.acquire().await;
                        limiters.wait().await;
                        Some(slots)
                    };
                    fut.await.map(|v| (hi, v))
                }
            });
            for r in futures::future::join_all(calls).await {
                let (hi, v) = r.map_err(ScanError::Fetch)?;
                hydrated.set(hi, v);
            }
        }
        let mut values: Vec<(usize, Value)> = Vec::with_capacity(shape.extract.len());
        for &i in &shape.extract {
            values.push((i, (self.columns[i].extract)(&item, &hydrated)));
        }
        for (ci, quals) in &shape.filters {
            let v = &values
                .iter()
                .find(|(i, _)| i == ci)
                .expect("filter column extracted")
                .1;
            if quals.iter().any(|q| q.matches(v) == Some(false)) {
                return Ok(None);
            }
        }
        Ok(Some(values))
    }

    fn encode_row(
        &self,
        shape: &RowShape,
        values: Vec<(usize, Value)>,
        out: &RowOut,
        size_hint: &mut usize,
    ) -> Result<wire::ExecuteResponse, ScanError> {
        let mut row = RowEncoder::with_capacity(*size_hint);
        for (i, v) in values {
            if !shape.emitted[i] {
                continue;
            }
            let c = &self.columns[i];
            let v = match &c.default {
                Some(d) if v.is_null() => d.clone(),
                _ => v,
            };
            let cell = encode_owned(c.ty, v).map_err(|message| ScanError::Encode {
                column: c.name.to_string(),
                message,
            })?;
            row.cell(c.name, &cell);
        }
        row.raw(&out.trailer);
        *size_hint = (*size_hint).max(row.as_bytes().len() + row.as_bytes().len() / 8);
        Ok(wire::ExecuteResponse {
            row: row.finish(),
            has_row: true,
            metadata: Some(out.counters.snapshot()),
            connection: out.connection.clone(),
        })
    }

    fn consume(
        self: Arc<Self>,
        scan: &Scan<C>,
        shape: Arc<RowShape>,
        mut items: mpsc::Receiver<Arc<I>>,
        out: RowSender,
        progress: Arc<Progress>,
        counters: Arc<ScanCounters>,
    ) -> BoxFuture<(ConsumerEnd, u64)> {
        let connection = scan.connection.clone();
        let connection_name = scan.connection_name.clone();
        let row_out = RowOut::new(&connection_name, &scan.ctx_json, out, progress, counters);
        let limit = scan.limit;
        Box::pin(async move {
            let out = row_out;
            let mut size_hint = 256;
            let mut rows: u64 = 0;
            if limit == Some(0) {
                return (ConsumerEnd::Limit, 0);
            }
            if shape.hydrates.is_empty() {
                while let Some(item) = items.recv().await {
                    let built = self
                        .build_row(&shape, &connection, &connection_name, item, &out.counters)
                        .await;
                    match self.deliver(&shape, built, &out, &mut size_hint).await {
                        Ok(true) => {
                            rows += 1;
                            if Some(rows) == limit {
                                return (ConsumerEnd::Limit, rows);
                            }
                        }
                        Ok(false) => {}
                        Err(end) => return (end, rows),
                    }
                }
                return (ConsumerEnd::Done, rows);
            }
            let this = self.clone();
            let shape2 = shape.clone();
            let conn2 = connection.clone();
            let name2 = connection_name.clone();
            let counters = out.counters.clone();
            let mut built = tokio_stream::wrappers::ReceiverStream::new(items)
                .map(move |item| {
                    let this = this.clone();
                    let shape = shape2.clone();
                    let conn = conn2.clone();
                    let name = name2.clone();
                    let counters = counters.clone();
                    async move { this.build_row(&shape, &conn, &name, item, &counters).await }
                })
                .buffered(self.hydrate_concurrency);
            while let Some(b) = built.next().await {
                match self.deliver(&shape, b, &out, &mut size_hint).await {
                    Ok(true) => {
                        rows += 1;
                        if Some(rows) == limit {
                            return (ConsumerEnd::Limit, rows);
                        }
                    }
                    Ok(false) => {}
                    Err(end) => return (end, rows),
                }
            }
            (ConsumerEnd::Done, rows)
        })
    }

    /// Sends a built row; Ok(true) if a row went out, Ok(false) if filtered.
    /// Either way the item counts as taken for the scan's progress.
    async fn deliver(
        &self,
        shape: &RowShape,
        built: Result<Option<Vec<(usize, Value)>>, ScanError>,
        out: &RowOut,
        size_hint: &mut usize,
    ) -> Result<bool, ConsumerEnd> {
        if built.is_ok() {
            out.counters.fetched();
        }
        let values = match built {
            Ok(Some(v)) => v,
            Ok(None) => {
                out.progress.took(false);
                return Ok(false);
            }
            Err(e) => return Err(ConsumerEnd::Failed(e)),
        };
        let resp = self
            .encode_row(shape, values, out, size_hint)
            .map_err(ConsumerEnd::Failed)?;
        out.tx
            .send(resp)
            .await
            .map_err(|_| ConsumerEnd::ClientGone)?;
        out.progress.took(true);
        Ok(true)
    }
}

/// Aborts a spawned task when dropped (the scan ended or was cancelled).
pub(crate) struct AbortOnDrop<T>(pub(crate) tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Where a scan's rows go, with what every row of the scan ends with: the
/// connection name and the reserved columns, encoded once per scan.
struct RowOut {
    tx: RowSender,
    connection: Arc<str>,
    trailer: bytes::Bytes,
    progress: Arc<Progress>,
    /// the scan metadata each row carries
    counters: Arc<ScanCounters>,
}

impl RowOut {
    fn new(
        connection_name: &str,
        ctx_json: &[u8],
        tx: RowSender,
        progress: Arc<Progress>,
        counters: Arc<ScanCounters>,
    ) -> RowOut {
        use pb::column::Value as Cell;
        let mut trailer = RowEncoder::default();
        trailer.cell(
            "sp_connection_name",
            &pb::Column {
                value: Some(Cell::StringValue(connection_name.to_string())),
            },
        );
        let ctx = pb::Column {
            value: Some(Cell::JsonValue(ctx_json.to_vec())),
        };
        trailer.cell("sp_ctx", &ctx);
        trailer.cell("_ctx", &ctx);
        RowOut {
            tx,
            connection: Arc::from(connection_name),
            trailer: trailer.finish(),
            progress,
            counters,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn sink(limit: Option<u64>) -> (ItemSink<u32>, mpsc::Receiver<Arc<u32>>, Arc<Progress>) {
        let (tx, rx) = mpsc::channel(16);
        let progress = Arc::new(Progress {
            limit,
            ..Default::default()
        });
        (
            ItemSink {
                tx,
                progress: progress.clone(),
            },
            rx,
            progress,
        )
    }

    #[tokio::test]
    async fn a_limited_scan_asks_for_a_page_only_when_the_limit_cannot_be_met_yet() {
        let (sink, mut rx, progress) = sink(Some(3));
        sink.push(0).await.unwrap();
        sink.push(1).await.unwrap();
        assert!(sink.wants_more().await, "2 pushed, limit 3");
        sink.push(2).await.unwrap();
        // 3 pushed, none taken yet: the answer waits for the row builder.
        let s = sink.clone();
        let waiting = tokio::spawn(async move { s.wants_more().await });
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(
            !waiting.is_finished(),
            "answered before the rows were built"
        );
        // Two rows sent, one rejected by the quals: the limit is not met.
        for sent in [true, false, true] {
            rx.recv().await.unwrap();
            progress.took(sent);
        }
        assert!(waiting.await.unwrap(), "1 row short of the limit");
        sink.push(3).await.unwrap();
        let s = sink.clone();
        let waiting = tokio::spawn(async move { s.wants_more().await });
        rx.recv().await.unwrap();
        progress.took(true);
        assert!(!waiting.await.unwrap(), "3 rows sent: no further page");
    }

    #[tokio::test]
    async fn an_unlimited_scan_wants_pages_until_its_consumer_is_gone() {
        let (sink, rx, _) = sink(None);
        sink.push(0).await.unwrap();
        assert!(sink.wants_more().await);
        drop(rx);
        assert!(!sink.wants_more().await);
        // A limited scan whose consumer went away while waiting stops too.
        let (sink, rx, _) = sink_limited();
        let s = sink.clone();
        let waiting = tokio::spawn(async move { s.wants_more().await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(rx);
        assert!(!waiting.await.unwrap());
    }

    fn sink_limited() -> (ItemSink<u32>, mpsc::Receiver<Arc<u32>>, Arc<Progress>) {
        let (s, rx, p) = sink(Some(1));
        s.progress
            .pushed
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        (s, rx, p)
    }

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
