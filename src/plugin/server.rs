//! The `proto.WrapperPlugin` service: connections, schema and scans.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use futures::Stream;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use tonic::{Request, Response, Status};

use crate::pb::steampipe as pb;
use crate::pb::steampipe::wrapper_plugin_server::WrapperPlugin;
use crate::plugin::cache::{decode_part, CacheKey, QueryCache, DEFAULT_MAX_BYTES};
use crate::plugin::config::ConnectionConfig;
use crate::plugin::limiter::{Definition, RateLimiters};
use crate::plugin::metadata;
use crate::plugin::quals::{Qual, QualMap, EVALUATED_OPERATORS};
use crate::plugin::table::{
    AbortOnDrop, BoxError, BoxFuture, KeptRows, RowSender, Scan, ScanError, TableDef,
};
use crate::plugin::value::Value;
use crate::plugin::wire;
use crate::plugin::PROTOCOL_VERSION;

enum Connection<C> {
    Plain(Arc<C>),
    Aggregator(Vec<String>),
}

impl<C> Clone for Connection<C> {
    fn clone(&self) -> Self {
        match self {
            Connection::Plain(c) => Connection::Plain(c.clone()),
            Connection::Aggregator(ch) => Connection::Aggregator(ch.clone()),
        }
    }
}

/// Cache settings the host sends (`SetCacheOptions`): whether the query cache
/// serves scans and its default TTL, which a scan's own connection data overrides.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CacheOptions {
    /// enabled
    pub enabled: bool,
    /// ttl in seconds
    pub ttl: i64,
    /// max size in MB
    pub max_size_mb: i64,
}

/// The value of a connection key column for one connection.
pub type ConnectionValueFn<C> =
    Arc<dyn Fn(Arc<C>) -> BoxFuture<Result<String, BoxError>> + Send + Sync>;

/// The column the SDK always treats as a connection key column.
const CONNECTION_NAME_COLUMN: &str = "sp_connection_name";

/// The operators the SDK offers on connection key columns.
const CONNECTION_KEY_OPERATORS: [&str; 6] = ["=", "<>", "~~", "~~*", "!~~", "!~~*"];

/// A Steampipe plugin: its name, tables and connections.
pub struct Plugin<C> {
    inner: Arc<Inner<C>>,
}

impl<C> Clone for Plugin<C> {
    fn clone(&self) -> Self {
        Plugin {
            inner: self.inner.clone(),
        }
    }
}

struct Inner<C> {
    name: String,
    sdk_version: String,
    tables: Vec<Arc<dyn TableDef<C>>>,
    by_name: HashMap<String, usize>,
    connections: RwLock<HashMap<String, Connection<C>>>,
    cache: Mutex<CacheOptions>,
    limiters: Arc<RateLimiters>,
    max_concurrent_connections: usize,
    query_cache: QueryCache,
    connection_keys: Vec<(String, ConnectionValueFn<C>)>,
}

impl<C: ConnectionConfig> Plugin<C> {
    /// A plugin named `name` (as in `steampipe-plugin-<name>`) serving `tables`.
    /// Panics if a table declaration is invalid: that is a programming error
    /// caught by the first test that builds the plugin.
    pub fn new(name: &str, tables: Vec<Arc<dyn TableDef<C>>>) -> Plugin<C> {
        let mut by_name = HashMap::new();
        for (i, t) in tables.iter().enumerate() {
            if let Err(e) = t.validate() {
                panic!("invalid table declaration: {e}");
            }
            assert!(
                by_name.insert(t.name().to_string(), i).is_none(),
                "table {} declared twice",
                t.name()
            );
        }
        let max_concurrent_connections = std::env::var("STEAMPIPE_MAX_CONCURRENT_CONNECTIONS")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(25);
        Plugin {
            inner: Arc::new(Inner {
                name: name.to_string(),
                sdk_version: env!("CARGO_PKG_VERSION").to_string(),
                tables,
                by_name,
                connections: RwLock::new(HashMap::new()),
                cache: Mutex::new(CacheOptions::default()),
                limiters: Arc::new(RateLimiters::default()),
                max_concurrent_connections,
                query_cache: QueryCache::default(),
                connection_keys: Vec::new(),
            }),
        }
    }

    /// The SDK version reported in `GetSchema` and `sp_ctx` (default: this
    /// crate's version).
    pub fn with_sdk_version(self, version: &str) -> Plugin<C> {
        self.configure("with_sdk_version", |inner| {
            inner.sdk_version = version.to_string()
        })
    }

    /// Changes the plugin's declaration; only before it is served (shared).
    fn configure(self, what: &str, f: impl FnOnce(&mut Inner<C>)) -> Plugin<C> {
        let mut inner = Arc::try_unwrap(self.inner)
            .unwrap_or_else(|_| panic!("{what} must be called before serving"));
        f(&mut inner);
        Plugin {
            inner: Arc::new(inner),
        }
    }

    /// Declares a connection key column (the SDK's `ConnectionKeyColumns`):
    /// a column with one value per connection, e.g. `account_id`. Every
    /// table with such a column (and then `sp_connection_name` too, as the
    /// SDK's) lists it as an optional key column, and quals on it pick the
    /// connections a scan covers before any call is made. A connection whose
    /// value cannot be had is left out, as the SDK does.
    pub fn with_connection_key_column<F, Fut>(self, name: &str, f: F) -> Plugin<C>
    where
        F: Fn(Arc<C>) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<String, BoxError>> + Send + 'static,
    {
        self.configure("with_connection_key_column", |inner| {
            inner
                .connection_keys
                .push((name.to_string(), Arc::new(move |c| Box::pin(f(c)))))
        })
    }

    fn is_connection_key(&self, column: &str) -> bool {
        let keys = &self.inner.connection_keys;
        (column == CONNECTION_NAME_COLUMN && !keys.is_empty())
            || keys.iter().any(|(n, _)| n == column)
    }

    /// Adds the connection key columns to a table's Get and List key
    /// columns, in column order, where the table does not list them already
    /// (the SDK's `addConnectionKeyColumns`).
    fn add_connection_key_columns(&self, t: &mut pb::TableSchema) {
        let names: Vec<String> = t
            .columns
            .iter()
            .map(|c| c.name.clone())
            .filter(|n| self.is_connection_key(n))
            .collect();
        for name in names {
            let kc = pb::KeyColumn {
                name: name.clone(),
                operators: CONNECTION_KEY_OPERATORS
                    .iter()
                    .map(|o| o.to_string())
                    .collect(),
                require: "optional".to_string(),
                cache_match: String::new(),
            };
            if !t.get_call_key_column_list.iter().any(|k| k.name == name) {
                t.get_call_key_column_list.push(kc.clone());
            }
            if !t.list_call_key_column_list.iter().any(|k| k.name == name) {
                t.list_call_key_column_list.push(kc);
            }
        }
    }

    /// Whether the connection key column quals of a scan let `connection`
    /// in (the SDK's `filterConnectionsWithKeyColumns`).
    async fn connection_wanted(&self, name: &str, connection: &Arc<C>, quals: &QualMap) -> bool {
        if self.inner.connection_keys.is_empty() {
            return true;
        }
        for q in quals.iter() {
            // Operators the SDK does not evaluate here let the connection
            // in (checked first: no value is looked up for them).
            if !CONNECTION_KEY_OPERATORS.contains(&q.operator.as_str()) {
                continue;
            }
            let value = if q.column == CONNECTION_NAME_COLUMN {
                name.to_string()
            } else if let Some((_, f)) = self
                .inner
                .connection_keys
                .iter()
                .find(|(n, _)| *n == q.column)
            {
                match f(connection.clone()).await {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::debug!(
                            connection = name,
                            column = q.column,
                            "connection key column value: {e}"
                        );
                        return false;
                    }
                }
            } else {
                continue;
            };
            if q.matches(&Value::String(value)) == Some(false) {
                return false;
            }
        }
        true
    }

    /// Declares the plugin's own rate limiters (answered by `GetRateLimiters`).
    pub fn with_rate_limiters(self, defs: Vec<Definition>) -> Plugin<C> {
        let limiters = RateLimiters::from_definitions(defs);
        self.configure("with_rate_limiters", |inner| {
            inner.limiters = Arc::new(limiters)
        })
    }

    /// The schema every connection has (the plugin is static).
    pub fn schema(&self) -> pb::Schema {
        pb::Schema {
            schema: self
                .inner
                .tables
                .iter()
                .map(|t| {
                    let mut schema = t.schema();
                    self.add_connection_key_columns(&mut schema);
                    (t.name().to_string(), schema)
                })
                .collect(),
            sdk_version: self.inner.sdk_version.clone(),
            protocol_version: PROTOCOL_VERSION,
            mode: "static".to_string(),
        }
    }

    /// The cache settings last received.
    pub fn cache_options(&self) -> CacheOptions {
        self.inner.cache.lock().expect("cache lock").clone()
    }

    /// The rate limiter definitions in force: the plugin's, overridden and
    /// extended by those `SetRateLimiters` last sent.
    pub fn rate_limiters(&self) -> Vec<pb::RateLimiterDefinition> {
        self.inner.limiters.definitions()
    }

    /// `SetRateLimiters`: the user's definitions (a `limiter` block of the
    /// plugin's config) on top of the plugin's. `Err` names each definition
    /// that was left out, and why; the others are in force.
    pub fn set_rate_limiters(&self, defs: &[pb::RateLimiterDefinition]) -> Result<(), String> {
        let r = self.inner.limiters.set_user(defs);
        tracing::debug!(count = defs.len(), "rate limiters set");
        r
    }

    /// Parses one connection; aggregators carry no config of their own.
    fn load(cfg: &pb::ConnectionConfig) -> Result<Connection<C>, String> {
        if !cfg.child_connections.is_empty() || cfg.r#type == "aggregator" {
            return Ok(Connection::Aggregator(cfg.child_connections.clone()));
        }
        C::parse(&cfg.connection, &cfg.config)
            .map(|c| Connection::Plain(Arc::new(c)))
            .map_err(|e| e.to_string())
    }

    fn apply(
        &self,
        set: &[pb::ConnectionConfig],
        remove: &[pb::ConnectionConfig],
        replace_all: bool,
    ) -> HashMap<String, String> {
        let mut failed = HashMap::new();
        let mut loaded = Vec::new();
        for cfg in set {
            match Self::load(cfg) {
                Ok(c) => loaded.push((cfg.connection.clone(), c)),
                Err(e) => {
                    tracing::error!("{e}");
                    failed.insert(cfg.connection.clone(), e);
                }
            }
        }
        let mut conns = self.inner.connections.write().expect("connections lock");
        if replace_all {
            conns.clear();
        }
        for cfg in remove {
            conns.remove(&cfg.connection);
        }
        for cfg in set {
            if failed.contains_key(&cfg.connection) {
                conns.remove(&cfg.connection);
            }
        }
        for (name, c) in loaded {
            conns.insert(name, c);
        }
        tracing::info!(connections = conns.len(), "connection configs applied");
        failed
    }

    fn ctx_json(&self, connection: &str) -> Arc<Vec<u8>> {
        let v = serde_json::json!({
            "connection_name": connection,
            "steampipe": {"sdk_version": self.inner.sdk_version},
        });
        Arc::new(serde_json::to_vec(&v).expect("context json"))
    }

    /// The plain connections a scan of `name` covers (an aggregator's children).
    fn resolve(
        &self,
        name: &str,
        out: &mut Vec<(String, Arc<C>)>,
        depth: usize,
    ) -> Result<(), String> {
        let conns = self.inner.connections.read().expect("connections lock");
        match conns.get(name).cloned() {
            None => Err(format!(
                "{name}: connection '{name}' is not configured in this plugin"
            )),
            Some(Connection::Plain(c)) => {
                out.push((name.to_string(), c));
                Ok(())
            }
            Some(Connection::Aggregator(children)) => {
                drop(conns);
                if depth > 4 {
                    return Err(format!("{name}: aggregator nesting is too deep"));
                }
                for child in children {
                    self.resolve(&child, out, depth + 1)?;
                }
                Ok(())
            }
        }
    }

    /// Starts a scan and returns the row stream. Dropping the stream cancels
    /// every fetch of the scan.
    pub fn execute(&self, req: pb::ExecuteRequest) -> Result<RowStream, Status> {
        let conn_name = req.connection.clone();
        let table = match self.inner.by_name.get(&req.table) {
            Some(&i) => self.inner.tables[i].clone(),
            None => {
                return Err(Status::unknown(format!(
                    "{conn_name}: plugin {} does not provide table {}",
                    self.inner.name, req.table
                )))
            }
        };
        let qc = req.query_context.clone().unwrap_or_default();
        let quals = QualMap::from_proto(&qc.quals)
            .map_err(|e| Status::unknown(format!("{conn_name}: {e}")))?;

        // One scan per connection in executeConnectionData: the connection
        // itself, or each child of an aggregator; limits come only from there.
        // (child connection, its config, pushed-down limit, cache TTL if cached)
        type Target<C> = (String, Arc<C>, Option<u64>, Option<Duration>);
        let mut targets: Vec<Target<C>> = Vec::new();
        let global = self.cache_options();
        let mut entries: Vec<(&String, &pb::ExecuteConnectionData)> =
            req.execute_connection_data.iter().collect();
        entries.sort_by(|a, b| a.0.cmp(b.0));
        let fallback = pb::ExecuteConnectionData::default();
        if entries.is_empty() {
            entries.push((&req.connection, &fallback));
        }
        for (name, data) in entries {
            let limit = match data.limit.as_ref().map(|l| l.value) {
                None => None,
                Some(v) if v < 0 => None,
                Some(v) => Some(v as u64),
            };
            // Cached only when both the host and this scan say so, for the smaller TTL.
            let ttl = (global.enabled && data.cache_enabled).then(|| {
                let secs = [global.ttl, data.cache_ttl]
                    .into_iter()
                    .filter(|t| *t > 0)
                    .min()
                    .unwrap_or(300);
                Duration::from_secs(secs as u64)
            });
            let mut resolved = Vec::new();
            self.resolve(name, &mut resolved, 0)
                .map_err(Status::unknown)?;
            for (child, c) in resolved {
                targets.push((child, c, limit, ttl));
            }
        }

        let (tx, rx) = mpsc::channel(64);
        let plugin = self.clone();
        let columns = qc.columns.clone();
        let table_name = req.table.clone();
        let proto_quals = qc.quals.clone();
        let max_bytes = match global.max_size_mb {
            n if n > 0 => (n as usize) << 20,
            _ => DEFAULT_MAX_BYTES,
        };
        let call_id = req.call_id.clone();
        let coordinator = tokio::spawn(async move {
            // Whatever way the scan ends, give its pages back to the system.
            struct Release;
            impl Drop for Release {
                fn drop(&mut self) {
                    crate::memory::release();
                }
            }
            let _release = Release;
            let sem = Arc::new(Semaphore::new(plugin.inner.max_concurrent_connections));
            // No limiter in force: the calls skip resolving them.
            let limiters =
                (!plugin.inner.limiters.is_empty()).then(|| plugin.inner.limiters.clone());
            let mut set = JoinSet::new();
            let mut wanted = Vec::with_capacity(targets.len());
            for t in targets {
                if plugin.connection_wanted(&t.0, &t.1, &quals).await {
                    wanted.push(t);
                }
            }
            for (child, connection, limit, ttl) in wanted {
                let scan = Scan {
                    connection,
                    connection_name: child.clone(),
                    columns: columns.clone(),
                    quals: quals.clone(),
                    limit,
                    ctx_json: plugin.ctx_json(&child),
                    limiters: limiters.clone(),
                };
                let table = table.clone();
                let tx = tx.clone();
                let sem = sem.clone();
                let plugin = plugin.clone();
                let key = CacheKey::new(&child, &table_name, &proto_quals);
                let columns = columns.clone();
                set.spawn(async move {
                    let _permit = sem.acquire_owned().await;
                    let r = match ttl {
                        None => table.scan(scan, RowSender::new(tx)).await,
                        Some(ttl) => {
                            plugin
                                .cached_scan(table, scan, tx, key, columns, limit, ttl, max_bytes)
                                .await
                        }
                    };
                    (child, r)
                });
            }
            while let Some(joined) = set.join_next().await {
                let status = match joined {
                    Ok((child, Ok(rows))) => {
                        tracing::debug!(
                            call_id,
                            table = table_name,
                            connection = child,
                            rows,
                            "scan complete"
                        );
                        continue;
                    }
                    Ok((_, Err(ScanError::Cancelled))) => {
                        tracing::debug!(
                            call_id,
                            table = table_name,
                            "scan cancelled by the client"
                        );
                        return;
                    }
                    Ok((child, Err(e @ ScanError::MissingQuals(_)))) => {
                        Status::internal(format!("{child}: {e}"))
                    }
                    // A Get call's error too, although the SDK returns that
                    // one as is: with an aggregator, the connection is the
                    // first thing a person needs to know.
                    Ok((child, Err(e))) => Status::unknown(format!("{child}: {e}")),
                    Err(join) if join.is_panic() => {
                        let msg = panic_message(join.into_panic());
                        tracing::error!(table = table_name, "table function panicked: {msg}");
                        Status::unknown(format!(
                            "{conn_name}: table {table_name} failed unexpectedly: {msg}"
                        ))
                    }
                    Err(_) => return,
                };
                tracing::warn!(call_id, "scan failed: {}", status.message());
                // Stop the other connections' scans, then end the stream with the error.
                set.abort_all();
                let _ = tx.send(Err(status)).await;
                return;
            }
        });
        Ok(RowStream {
            rx,
            guard: AbortOnDrop(coordinator),
        })
    }
}

impl<C: ConnectionConfig> Plugin<C> {
    /// A scan served from the cache when a covering entry exists; otherwise
    /// run, streamed and, when complete, stored. Identical scans running at
    /// once wait for the first and are then served from it.
    #[allow(clippy::too_many_arguments)]
    async fn cached_scan(
        &self,
        table: Arc<dyn TableDef<C>>,
        scan: Scan<C>,
        tx: mpsc::Sender<Result<wire::ExecuteResponse, Status>>,
        key: CacheKey,
        columns: Vec<String>,
        limit: Option<u64>,
        ttl: Duration,
        max_bytes: usize,
    ) -> Result<u64, ScanError> {
        let cache = &self.inner.query_cache;
        let lock = cache.inflight(&key);
        let _first = lock.lock().await;
        // A looser cached scan serves this one if its rows can be filtered
        // by the quals it lacks: each on a column it kept, with an operator
        // evaluated here; or, with no limit, whatever is left to Postgres,
        // which re-checks every qual.
        // A qual on a key column declared `exact` (the SDK's CacheMatchExact:
        // the column feeds the API call, or echoes the qual) is never added
        // by filtering: the cached scan must have had it.
        let schema = table.schema();
        let exact: Vec<String> = (schema.get_call_key_column_list.iter())
            .chain(&schema.list_call_key_column_list)
            .filter(|k| k.cache_match == "exact")
            .map(|k| k.name.clone())
            .collect();
        let filterable = |q: &Qual| EVALUATED_OPERATORS.contains(&q.operator.as_str());
        let usable = |kept: &[String], extra: &[Vec<u8>]| match extra_quals(extra) {
            Some(qs) => qs.iter().all(|q| {
                !exact.contains(&q.column)
                    && ((filterable(q) && kept.contains(&q.column)) || limit.is_none())
            }),
            None => false,
        };
        if let Some(hit) = cache.get(&key, &columns, limit, ttl, usable) {
            let mut filters = extra_quals(&hit.extra).unwrap_or_default();
            filters.retain(filterable);
            tracing::debug!(
                connection = scan.connection_name,
                rows = hit.rows.len(),
                filters = filters.len(),
                "served from the query cache"
            );
            let mut sent = 0u64;
            for r in hit.rows.iter() {
                if Some(sent) == limit {
                    break;
                }
                if !filters.is_empty() {
                    let row = match r.decode_row() {
                        Ok(row) => row.unwrap_or_default(),
                        Err(e) => {
                            return Err(ScanError::Fetch(
                                format!("a cached row does not decode: {e}").into(),
                            ))
                        }
                    };
                    let rejected = filters.iter().any(|q| {
                        row.columns.contains_key(&q.column)
                            && q.matches(&Value::from_column(row.columns.get(&q.column)))
                                == Some(false)
                    });
                    if rejected {
                        continue;
                    }
                }
                sent += 1;
                // As the SDK's cached rows: counted as they go, no hydrate call.
                let mut r = r.clone();
                r.metadata = Some(metadata::cached(sent));
                tx.send(Ok(r)).await.map_err(|_| ScanError::Cancelled)?;
            }
            return Ok(sent);
        }
        // Rows go straight to the client; a reference to each is kept on the way.
        let kept = Arc::new(KeptRows::new(max_bytes));
        let result = table.scan(scan, RowSender::keeping(tx, kept.clone())).await;
        if result.is_ok() {
            if let Some(rows) = kept.take() {
                cache.put(key, columns, limit, rows, ttl, max_bytes);
            }
        }
        result
    }
}

/// The quals of canonical cache-key parts; `None` if one does not decode.
fn extra_quals(parts: &[Vec<u8>]) -> Option<Vec<Qual>> {
    parts
        .iter()
        .map(|p| decode_part(p).and_then(|(c, q)| Qual::from_proto(&c, &q).ok()))
        .collect()
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_string()
    }
}

/// The rows of one Execute call. Dropping it (the client went away) aborts the scan.
pub struct RowStream {
    rx: mpsc::Receiver<Result<wire::ExecuteResponse, Status>>,
    guard: AbortOnDrop<()>,
}

impl Stream for RowStream {
    type Item = Result<wire::ExecuteResponse, Status>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let _ = &self.guard;
        self.rx.poll_recv(cx)
    }
}

type ServerStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl<C: ConnectionConfig> WrapperPlugin for Plugin<C> {
    type EstablishMessageStreamStream = ServerStream<pb::PluginMessage>;
    type ExecuteStream = RowStream;

    async fn establish_message_stream(
        &self,
        _req: Request<pb::EstablishMessageStreamRequest>,
    ) -> Result<Response<Self::EstablishMessageStreamStream>, Status> {
        // A static plugin never updates its schema: the stream ends at once, OK.
        Ok(Response::new(Box::pin(futures::stream::empty())))
    }

    async fn get_schema(
        &self,
        req: Request<pb::GetSchemaRequest>,
    ) -> Result<Response<pb::GetSchemaResponse>, Status> {
        tracing::debug!(connection = req.get_ref().connection, "GetSchema");
        Ok(Response::new(pb::GetSchemaResponse {
            schema: Some(self.schema()),
            rate_limiters: Vec::new(),
        }))
    }

    async fn execute(
        &self,
        req: Request<pb::ExecuteRequest>,
    ) -> Result<Response<Self::ExecuteStream>, Status> {
        let req = req.into_inner();
        tracing::debug!(
            table = req.table,
            connection = req.connection,
            call_id = req.call_id,
            "Execute"
        );
        Plugin::execute(self, req).map(Response::new)
    }

    async fn set_connection_config(
        &self,
        req: Request<pb::SetConnectionConfigRequest>,
    ) -> Result<Response<pb::SetConnectionConfigResponse>, Status> {
        let r = req.into_inner();
        let cfg = pb::ConnectionConfig {
            connection: r.connection_name.clone(),
            config: r.connection_config,
            ..Default::default()
        };
        let failed = self.apply(&[cfg], &[], false);
        if let Some(msg) = failed.values().next() {
            return Err(Status::unknown(msg.clone()));
        }
        Ok(Response::new(pb::SetConnectionConfigResponse {
            failed_connections: failed,
        }))
    }

    async fn set_all_connection_configs(
        &self,
        req: Request<pb::SetAllConnectionConfigsRequest>,
    ) -> Result<Response<pb::SetConnectionConfigResponse>, Status> {
        let r = req.into_inner();
        let failed = self.apply(&r.configs, &[], true);
        if !failed.is_empty() {
            // As the Go SDK does: one bad connection fails the call, and the
            // status text carries every connection's own message.
            let mut msgs: Vec<&String> = failed.values().collect();
            msgs.sort();
            let text: Vec<&str> = msgs.iter().map(|s| s.as_str()).collect();
            return Err(Status::unknown(format!(
                "{} connection{} failed: {}",
                failed.len(),
                if failed.len() == 1 { "" } else { "s" },
                text.join("; ")
            )));
        }
        Ok(Response::new(pb::SetConnectionConfigResponse {
            failed_connections: failed,
        }))
    }

    async fn update_connection_configs(
        &self,
        req: Request<pb::UpdateConnectionConfigsRequest>,
    ) -> Result<Response<pb::UpdateConnectionConfigsResponse>, Status> {
        let r = req.into_inner();
        let mut set = r.added;
        set.extend(r.changed);
        let failed = self.apply(&set, &r.deleted, false);
        Ok(Response::new(pb::UpdateConnectionConfigsResponse {
            failed_connections: failed,
        }))
    }

    async fn get_supported_operations(
        &self,
        _req: Request<pb::GetSupportedOperationsRequest>,
    ) -> Result<Response<pb::GetSupportedOperationsResponse>, Status> {
        Ok(Response::new(pb::GetSupportedOperationsResponse {
            query_cache: true,
            multiple_connections: true,
            message_stream: true,
            set_cache_options: true,
            rate_limiters: true,
        }))
    }

    async fn set_cache_options(
        &self,
        req: Request<pb::SetCacheOptionsRequest>,
    ) -> Result<Response<pb::SetCacheOptionsResponse>, Status> {
        let r = req.into_inner();
        *self.inner.cache.lock().expect("cache lock") = CacheOptions {
            enabled: r.enabled,
            ttl: r.ttl,
            max_size_mb: r.max_size_mb,
        };
        if !r.enabled {
            self.inner.query_cache.clear();
        }
        tracing::debug!(enabled = r.enabled, ttl = r.ttl, "cache options set");
        Ok(Response::new(pb::SetCacheOptionsResponse {}))
    }

    async fn set_rate_limiters(
        &self,
        req: Request<pb::SetRateLimitersRequest>,
    ) -> Result<Response<pb::SetRateLimitersResponse>, Status> {
        let defs = req.into_inner().definitions;
        // As the SDK: the definitions that parse are in force, and the call
        // fails naming the others.
        self.set_rate_limiters(&defs).map_err(|e| {
            tracing::warn!("{e}");
            Status::unknown(e)
        })?;
        Ok(Response::new(pb::SetRateLimitersResponse {}))
    }

    async fn get_rate_limiters(
        &self,
        _req: Request<pb::GetRateLimitersRequest>,
    ) -> Result<Response<pb::GetRateLimitersResponse>, Status> {
        // As the Go SDK answers: the limiters the plugin itself defines (the
        // host lists them as plugin-defined next to the user's own).
        Ok(Response::new(pb::GetRateLimitersResponse {
            definitions: self.inner.limiters.plugin_definitions(),
        }))
    }

    async fn set_connection_cache_options(
        &self,
        req: Request<pb::SetConnectionCacheOptionsRequest>,
    ) -> Result<Response<pb::SetConnectionCacheOptionsResponse>, Status> {
        let name = req.into_inner().clear_cache_for_connection;
        // An aggregator's entries are its children's.
        let mut children = Vec::new();
        if self.resolve(&name, &mut children, 0).is_ok() {
            for (child, _) in &children {
                self.inner.query_cache.clear_connection(child);
            }
        }
        self.inner.query_cache.clear_connection(&name);
        tracing::debug!(connection = name, "query cache cleared");
        Ok(Response::new(pb::SetConnectionCacheOptionsResponse {}))
    }
}
