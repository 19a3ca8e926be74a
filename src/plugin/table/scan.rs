//! The scan pipeline of one connection: the fetch functions push items, a
//! builder runs the hydrate calls the requested columns need, extracts and
//! filters values, stops at the limit and sends rows.

use super::*;

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
        let progress = Arc::new(Progress::new(scan.limit));
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
