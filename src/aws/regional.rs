//! The kit every regional table is built with, as the Go plugin's
//! `awsRegionalColumns` and `SupportedRegionMatrix` are: an item type that
//! carries its region and the connection's identity, the three columns every
//! regional table ends with, and List/Get/hydrate helpers that own identity,
//! region pruning, fan-out, pagination, `wants_more` and the ignore rules.
//! A table file is left with its columns and the one API call behind each
//! of List, Get and its hydrates.

use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use futures::StreamExt;

use crate::aws::client::AwsConnection;
use crate::aws::common::CallerIdentity;
use crate::aws::errors::AwsError;
use crate::plugin::{
    BoxError, ColumnType, GetRequest, HydrateRequest, ItemSink, ListRequest, QualMap, Table, Value,
};

/// How many regions one connection calls at once.
const REGION_CONCURRENCY: usize = 32;

/// An API item, with the region it was listed in and the connection's caller
/// identity (for `partition`, `account_id` and ARNs). Derefs to the item.
pub struct Regional<R> {
    /// the API item
    pub item: R,
    /// the region it came from
    pub region: String,
    /// who the connection's credentials belong to
    pub identity: Arc<CallerIdentity>,
}

impl<R> Deref for Regional<R> {
    type Target = R;
    fn deref(&self) -> &R {
        &self.item
    }
}

impl<R> Regional<R> {
    /// `arn:<partition>:<service>:<region>:<account>:<resource>`.
    pub fn arn(&self, service: &str, resource: &str) -> String {
        format!(
            "arn:{}:{service}:{}:{}:{resource}",
            self.identity.partition, self.region, self.identity.account_id
        )
    }
}

/// A table of regional items.
pub type RegionalTable<R> = Table<AwsConnection, Regional<R>>;

/// The description of `title`, as the Go plugin's `resourceInterfaceDescription`.
pub const TITLE: &str = "Title of the resource.";
/// The description of `tags`.
pub const TAGS: &str = "A map of tags for the resource.";
/// The description of `akas`.
pub const AKAS: &str =
    "Array of globally unique identifier strings (also known as) for the resource.";

/// Appends `partition`, `region` and `account_id`, the columns the Go
/// plugin's `awsRegionalColumns` adds to every regional table (their schema
/// names hydrate `getCommonColumns`, as the Go plugin's do).
pub fn regional_columns<R: Send + Sync + 'static>(t: &mut RegionalTable<R>) {
    t.column(
        "partition",
        ColumnType::String,
        "The AWS partition in which the resource is located (aws, aws-cn, or aws-us-gov).",
        |x| Value::from(x.identity.partition.clone()),
    )
    .reports_hydrate("getCommonColumns");
    t.column(
        "region",
        ColumnType::String,
        "The AWS Region in which the resource is located.",
        |x| Value::from(x.region.clone()),
    )
    .reports_hydrate("getCommonColumns");
    t.column(
        "account_id",
        ColumnType::String,
        "The AWS Account ID in which the resource is located.",
        |x| Value::from(x.identity.account_id.clone()),
    )
    .reports_hydrate("getCommonColumns");
    // An item's region is the matrix value its hydrate calls' limiters see.
    t.matrix_scope(|x| vec![("region", x.region.clone())]);
}

/// One connection in one region: what a table's API call needs.
#[derive(Clone)]
pub struct RegionCall {
    /// the connection (config, credentials, client caches)
    pub conn: Arc<AwsConnection>,
    /// the region called
    pub region: String,
}

impl RegionCall {
    /// The call for `item`'s region, for a hydrate.
    pub fn of<R>(req: &HydrateRequest<AwsConnection>, item: &Regional<R>) -> RegionCall {
        RegionCall {
            conn: req.connection.clone(),
            region: item.region.clone(),
        }
    }

    /// The connection's EC2 client for this region.
    pub async fn ec2(&self) -> aws_sdk_ec2::Client {
        self.conn.ec2(&self.region).await
    }

    /// The connection's Auto Scaling client for this region.
    pub async fn autoscaling(&self) -> aws_sdk_autoscaling::Client {
        self.conn.autoscaling(&self.region).await
    }

    /// The connection's CloudWatch client for this region.
    pub async fn cloudwatch(&self) -> aws_sdk_cloudwatch::Client {
        self.conn.cloudwatch(&self.region).await
    }

    /// An SDK answer with the ignore rules applied: `Ok(None)` for an error
    /// `ignore` (glob patterns) or the connection's `ignore_error_codes` /
    /// `ignore_error_messages` match.
    pub fn answer<T, E>(
        &self,
        operation: &'static str,
        ignore: &[&str],
        r: Result<T, SdkError<E, Response>>,
    ) -> Result<Option<T>, BoxError>
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        match r {
            Ok(v) => Ok(Some(v)),
            Err(e) => Ok(
                AwsError::from_sdk(operation, &self.region, e).ignored_or(&self.conn, ignore)?
            ),
        }
    }
}

/// The regions a scan covers: the connection's query regions, pruned by
/// `region` quals (`=` or IN).
pub async fn regions(conn: &AwsConnection, all_quals: &QualMap) -> Vec<String> {
    let regions = conn.query_regions().await;
    match all_quals.equal_values("region") {
        None => regions.as_ref().clone(),
        Some(wanted) => {
            let wanted: Vec<&str> = wanted.iter().filter_map(|v| v.as_str()).collect();
            regions
                .iter()
                .filter(|r| wanted.contains(&r.as_str()))
                .cloned()
                .collect()
        }
    }
}

/// A page size for a pushed-down limit: the limit, kept within
/// `min..=max` (the API's bounds), else `max`.
pub fn page_size(limit: Option<u64>, min: i32, max: i32) -> i32 {
    limit
        .map(|l| l.clamp(min as u64, max as u64) as i32)
        .unwrap_or(max)
}

/// One page of a List call: its items and the token of the next page.
pub type Page<R> = (Vec<R>, Option<String>);

/// Lists every queried region of the connection, all at once: `page` is
/// called with a region and the previous page's token (`None` first) until a
/// page has no token, the scan needs no more rows, or a call fails. An error
/// `ignore` matches (or the connection's ignore rules) ends that region
/// quietly; any other fails the scan.
pub async fn list<R, F, Fut, E>(
    req: ListRequest<AwsConnection>,
    sink: ItemSink<Regional<R>>,
    operation: &'static str,
    ignore: &'static [&'static str],
    page: F,
) -> Result<(), BoxError>
where
    R: Send + Sync + 'static,
    F: Fn(RegionCall, Option<String>) -> Fut + Send + Sync,
    Fut: Future<Output = Result<Page<R>, SdkError<E, Response>>> + Send,
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let conn = req.connection.clone();
    conn.usable()?;
    let identity = conn.identity().await?;
    let regions = regions(&conn, &req.all_quals).await;
    tracing::debug!(
        connection = req.connection_name,
        regions = regions.len(),
        operation,
    );
    let page = &page;
    let limiter = &req.limiter;
    let runs = regions.into_iter().map(|region| {
        let call = RegionCall {
            conn: conn.clone(),
            region,
        };
        let sink = sink.clone();
        let identity = identity.clone();
        async move {
            // As the SDK: the List call's limiters are waited on once when
            // the call starts, and again before each page (the Go tables'
            // `d.WaitForListRateLimit` in their paging loop).
            let matrix = [("region", call.region.as_str())];
            limiter.wait(&matrix).await;
            let mut token: Option<String> = None;
            loop {
                limiter.wait(&matrix).await;
                let sent = token.clone();
                let Some((items, next)) =
                    call.answer(operation, ignore, page(call.clone(), token).await)?
                else {
                    tracing::debug!(region = call.region, operation, "error ignored");
                    return Ok(());
                };
                for item in items {
                    sink.push(Regional {
                        item,
                        region: call.region.clone(),
                        identity: identity.clone(),
                    })
                    .await?;
                }
                // No further page once a pushed-down limit is met (as the Go
                // SDK's RowsRemaining check), when the token ends, or when it
                // comes back unchanged (the Go plugin's paginators set
                // StopOnDuplicateToken).
                match next.filter(|t| !t.is_empty() && Some(t) != sent.as_ref()) {
                    Some(t) if sink.wants_more().await => token = Some(t),
                    _ => return Ok::<(), BoxError>(()),
                }
            }
        }
    });
    let mut runs = futures::stream::iter(runs).buffer_unordered(REGION_CONCURRENCY);
    while let Some(r) = runs.next().await {
        r?;
    }
    Ok(())
}

/// Looks an item up in every queried region at once. Errors `ignore` matches
/// (the id belongs to another region, or is malformed) count as not found.
/// An item found in two regions is an error, as the Go SDK's Get says (a
/// launch configuration's name, unlike an instance id, is unique only
/// within its region).
pub async fn get<R, F, Fut, E>(
    req: GetRequest<AwsConnection>,
    operation: &'static str,
    ignore: &'static [&'static str],
    call: F,
) -> Result<Option<Regional<R>>, BoxError>
where
    F: Fn(RegionCall) -> Fut,
    Fut: Future<Output = Result<Option<R>, SdkError<E, Response>>>,
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let conn = req.connection.clone();
    conn.usable()?;
    let identity = conn.identity().await?;
    let lookups = regions(&conn, &req.all_quals)
        .await
        .into_iter()
        .map(|region| {
            let c = RegionCall {
                conn: conn.clone(),
                region,
            };
            let fut = call(c.clone());
            let limiter = &req.limiter;
            async move {
                limiter.wait(&[("region", c.region.as_str())]).await;
                let found = c.answer(operation, ignore, fut.await)?.flatten();
                Ok::<_, BoxError>(found.map(|item| (item, c.region)))
            }
        });
    let mut lookups = futures::stream::iter(lookups).buffer_unordered(REGION_CONCURRENCY);
    let mut found = Vec::new();
    while let Some(r) = lookups.next().await {
        found.extend(r?);
    }
    if found.len() > 1 {
        return Err(format!(
            "get call returned {} results - the key column is not globally unique",
            found.len()
        )
        .into());
    }
    Ok(found.pop().map(|(item, region)| Regional {
        item,
        region,
        identity,
    }))
}

/// Where a [`list_with`] fetch puts a region's items: wraps each in
/// [`Regional`] with the region and the connection's identity.
pub struct RegionSink<R> {
    sink: ItemSink<Regional<R>>,
    region: String,
    identity: Arc<CallerIdentity>,
}

impl<R> RegionSink<R> {
    /// Sends one item downstream; fails once the scan needs no more.
    pub async fn push(&self, item: R) -> Result<(), crate::plugin::ScanStopped> {
        self.sink
            .push(Regional {
                item,
                region: self.region.clone(),
                identity: self.identity.clone(),
            })
            .await
    }

    /// Whether another call is needed (see [`ItemSink::wants_more`]).
    pub async fn wants_more(&self) -> bool {
        self.sink.wants_more().await
    }
}

/// Like [`list`], for a List that is more than one paged call per region (a
/// parent list, then a child list per parent item, as the Go SDK's
/// `ParentHydrate`): identity, region pruning and fan-out as [`list`];
/// `fetch` makes the region's calls, applies the ignore rules itself
/// ([`RegionCall::answer`]) and pushes items into its [`RegionSink`].
pub async fn list_with<R, F, Fut>(
    req: ListRequest<AwsConnection>,
    sink: ItemSink<Regional<R>>,
    fetch: F,
) -> Result<(), BoxError>
where
    R: Send + Sync + 'static,
    F: Fn(RegionCall, RegionSink<R>) -> Fut + Send + Sync,
    Fut: Future<Output = Result<(), BoxError>> + Send,
{
    let conn = req.connection.clone();
    conn.usable()?;
    let identity = conn.identity().await?;
    let regions = regions(&conn, &req.all_quals).await;
    let fetch = &fetch;
    let runs = regions.into_iter().map(|region| {
        let call = RegionCall {
            conn: conn.clone(),
            region: region.clone(),
        };
        let sink = RegionSink {
            sink: sink.clone(),
            region,
            identity: identity.clone(),
        };
        fetch(call, sink)
    });
    let mut runs = futures::stream::iter(runs).buffer_unordered(REGION_CONCURRENCY);
    while let Some(r) = runs.next().await {
        r?;
    }
    Ok(())
}
