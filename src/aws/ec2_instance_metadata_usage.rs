//! `aws_ec2_instance_metadata_usage`: how much each instance still uses
//! IMDSv1, per instance and UTC day, from the CloudWatch metrics AWS
//! publishes for it (namespace `AWS/EC2`, dimension `InstanceId`, statistic
//! Sum, period one day):
//! - `MetadataNoToken`: IMDS calls made without a token (IMDSv1) that were
//!   answered; published, 0 or more, only while the instance runs with
//!   `HttpTokens=optional`;
//! - `MetadataNoTokenRejected`: IMDSv1 calls refused because tokens are
//!   required.
//!
//! Not in turbot's plugin: our addition for the IMDSv2 readiness benchmark
//! and `enforce`. One row per instance and day of the window, whether or not
//! CloudWatch has a datapoint for it (`has_data`), so a day the instance did
//! not run shows as such.
//!
//! - The window: the `timestamp` quals (`>`, `>=`, `<`, `<=`, `=`), else the
//!   last 14 days: from midnight UTC 14 days ago to now (today's partial day
//!   included). The start is rounded down to midnight UTC.
//! - The instances: the `instance_id` quals (`=` or IN), else every instance
//!   DescribeInstances lists in the region (terminated ones left out).
//! - The calls: `GetMetricData`, two queries per instance, up to 500 queries
//!   (250 instances) per call, following `NextToken`; never one call per
//!   instance.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, ScanBy};
use aws_smithy_types::DateTime;

use crate::aws::client::AwsConnection;
use crate::aws::regional::{self, regional_columns, RegionCall, RegionSink, RegionalTable};
use crate::plugin::{
    BoxError, ColumnType as T, ItemSink, KeyColumn, ListRequest, QualMap, QualValue, Timestamp,
    Value,
};

/// Seconds in a day.
pub const DAY: i64 = 86_400;
/// The default window, in days.
pub const DEFAULT_DAYS: i64 = 14;
/// The most queries one GetMetricData call takes.
pub const MAX_QUERIES: usize = 500;
/// The metric of answered IMDSv1 calls.
pub const NO_TOKEN: &str = "MetadataNoToken";
/// The metric of refused IMDSv1 calls.
pub const REJECTED: &str = "MetadataNoTokenRejected";

/// A time window, in unix seconds: `start` (midnight UTC) to `end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// the first day's midnight UTC
    pub start: i64,
    /// where the window ends (exclusive)
    pub end: i64,
}

/// Now, in unix seconds.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Midnight UTC of the day `t` falls in.
pub fn midnight(t: i64) -> i64 {
    t.div_euclid(DAY) * DAY
}

impl Window {
    /// The last `days` days up to `now`: from midnight UTC `days` days ago.
    pub fn last_days(days: i64, now: i64) -> Window {
        Window {
            start: midnight(now) - days * DAY,
            end: now,
        }
    }

    /// The window the `timestamp` quals ask for, else the last 14 days.
    pub fn from_quals(quals: &QualMap, now: i64) -> Window {
        let mut w = Window::last_days(DEFAULT_DAYS, now);
        let mut start: Option<i64> = None;
        let mut end: Option<i64> = None;
        for q in quals.on("timestamp") {
            let Some(QualValue::Timestamp(t)) = &q.value else {
                continue;
            };
            let secs = t.seconds;
            match q.operator.as_str() {
                ">" | ">=" => start = Some(start.map_or(secs, |s| s.max(secs))),
                "<" => end = Some(end.map_or(secs, |e| e.min(secs))),
                "<=" => end = Some(end.map_or(secs + 1, |e| e.min(secs + 1))),
                "=" => {
                    start = Some(secs);
                    end = Some(secs + 1);
                }
                _ => {}
            }
        }
        if let Some(s) = start {
            w.start = midnight(s);
        }
        if let Some(e) = end {
            w.end = e;
            if start.is_none() {
                w.start = midnight(e - 1) - (DEFAULT_DAYS - 1) * DAY;
            }
        }
        w
    }

    /// The midnights of the days the window covers.
    pub fn days(&self) -> Vec<i64> {
        (0..)
            .map(|i| self.start + i * DAY)
            .take_while(|d| *d < self.end)
            .collect()
    }
}

/// One instance on one day.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageDay {
    /// the instance
    pub instance_id: String,
    /// midnight UTC of the day
    pub day: i64,
    /// the Sum of MetadataNoToken that day; `None`: no datapoint
    pub no_token: Option<f64>,
    /// the Sum of MetadataNoTokenRejected that day; `None`: no datapoint
    pub rejected: Option<f64>,
    /// the window the row belongs to
    pub window: Window,
    /// midnight UTC of the day the rows were read
    pub today: i64,
}

type GetMetricDataError = aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataError;
/// A failed GetMetricData call.
pub type UsageError = aws_sdk_cloudwatch::error::SdkError<GetMetricDataError>;

fn query(id: String, metric: &str, instance: &str) -> MetricDataQuery {
    MetricDataQuery::builder()
        .id(id)
        .metric_stat(
            MetricStat::builder()
                .metric(
                    Metric::builder()
                        .namespace("AWS/EC2")
                        .metric_name(metric)
                        .dimensions(
                            Dimension::builder()
                                .name("InstanceId")
                                .value(instance)
                                .build(),
                        )
                        .build(),
                )
                .period(DAY as i32)
                .stat("Sum")
                .build(),
        )
        .return_data(true)
        .build()
}

/// The daily sums of both metrics for `instances` over `w`, in as few
/// GetMetricData calls as the 500-query limit allows (and their pages):
/// by instance, one entry per day of the window.
pub async fn usage(
    c: &RegionCall,
    instances: &[String],
    w: Window,
) -> Result<Vec<(String, Vec<UsageDay>)>, UsageError> {
    let today = midnight(now());
    let days = w.days();
    let mut out = Vec::with_capacity(instances.len());
    for batch in instances.chunks(MAX_QUERIES / 2) {
        let mut queries = Vec::with_capacity(batch.len() * 2);
        for (k, id) in batch.iter().enumerate() {
            queries.push(query(format!("n{k}"), NO_TOKEN, id));
            queries.push(query(format!("r{k}"), REJECTED, id));
        }
        // (query id) -> day -> sum
        let mut sums: HashMap<String, HashMap<i64, f64>> = HashMap::new();
        let mut token: Option<String> = None;
        loop {
            let o = (c.cloudwatch().await.get_metric_data())
                .set_metric_data_queries(Some(queries.clone()))
                .start_time(DateTime::from_secs(w.start))
                .end_time(DateTime::from_secs(w.end))
                .scan_by(ScanBy::TimestampAscending)
                .set_next_token(token.clone())
                .send()
                .await?;
            for r in o.metric_data_results.unwrap_or_default() {
                let Some(id) = r.id else { continue };
                let entry = sums.entry(id).or_default();
                let ts = r.timestamps.unwrap_or_default();
                let vs = r.values.unwrap_or_default();
                for (t, v) in ts.iter().zip(vs) {
                    *entry.entry(midnight(t.secs())).or_insert(0.0) += v;
                }
            }
            match o
                .next_token
                .filter(|t| !t.is_empty() && Some(t) != token.as_ref())
            {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        for (k, id) in batch.iter().enumerate() {
            let n = sums.get(&format!("n{k}"));
            let r = sums.get(&format!("r{k}"));
            let rows = days
                .iter()
                .map(|d| UsageDay {
                    instance_id: id.clone(),
                    day: *d,
                    no_token: n.and_then(|m| m.get(d).copied()),
                    rejected: r.and_then(|m| m.get(d).copied()),
                    window: w,
                    today,
                })
                .collect();
            out.push((id.clone(), rows));
        }
    }
    Ok(out)
}

/// The ids of the region's instances that are not terminated
/// (DescribeInstances, every page).
pub async fn instance_ids(c: &RegionCall) -> Result<Option<Vec<String>>, BoxError> {
    let mut ids = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let r = (c.ec2().await.describe_instances())
            .max_results(1000)
            .set_next_token(token.clone())
            .send()
            .await;
        let Some(o) = c.answer("DescribeInstances", &[], r)? else {
            return Ok(None);
        };
        for i in (o.reservations.unwrap_or_default().into_iter())
            .flat_map(|r| r.instances.unwrap_or_default())
        {
            let state = i.state.as_ref().and_then(|s| s.name.as_ref());
            let gone = state.is_some_and(|s| matches!(s.as_str(), "terminated" | "shutting-down"));
            if let (Some(id), false) = (i.instance_id, gone) {
                ids.push(id);
            }
        }
        match o
            .next_token
            .filter(|t| !t.is_empty() && Some(t) != token.as_ref())
        {
            Some(t) => token = Some(t),
            None => return Ok(Some(ids)),
        }
    }
}

async fn fetch_region(
    c: RegionCall,
    sink: RegionSink<UsageDay>,
    quals: QualMap,
    w: Window,
) -> Result<(), BoxError> {
    let ids = match quals.equal_values("instance_id") {
        Some(v) => v
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        None => match instance_ids(&c).await? {
            Some(ids) => ids,
            None => return Ok(()),
        },
    };
    if ids.is_empty() || w.start >= w.end {
        return Ok(());
    }
    let Some(found) = c.answer("GetMetricData", &[], usage(&c, &ids, w).await)? else {
        return Ok(());
    };
    for (_, rows) in found {
        for row in rows {
            sink.push(row).await?;
        }
    }
    Ok(())
}

async fn list_usage(
    req: ListRequest<AwsConnection>,
    sink: ItemSink<regional::Regional<UsageDay>>,
) -> Result<(), BoxError> {
    let quals = req.quals.clone();
    let w = Window::from_quals(&quals, now());
    regional::list_with(req, sink, move |c, sink| {
        fetch_region(c, sink, quals.clone(), w)
    })
    .await
}

fn ts(secs: i64) -> Value {
    Timestamp::new(secs, 0).map_or(Value::Null, Value::Timestamp)
}

/// The table.
pub fn table() -> RegionalTable<UsageDay> {
    let mut t = RegionalTable::<UsageDay>::new(
        "aws_ec2_instance_metadata_usage",
        "AWS EC2 Instance Metadata Usage",
    );
    t.column("instance_id", T::String, "The ID of the instance.", |x| {
        Value::from(x.instance_id.clone())
    });
    t.column(
        "timestamp",
        T::Timestamp,
        "The day (midnight UTC) the sums are for. Quals on it choose the window; the default is the last 14 days.",
        |x| ts(x.day),
    );
    t.column(
        "days_ago",
        T::Int,
        "Whole days between this day and the day the row was read: 0 today, 1 yesterday.",
        |x| Value::Int((x.today - x.day) / DAY),
    );
    t.column(
        "metadata_no_token",
        T::Double,
        "The number of IMDSv1 calls (without a token) the instance made and that were answered that day (MetadataNoToken, Sum); NULL when CloudWatch has no datapoint for the day.",
        |x| x.no_token.map_or(Value::Null, Value::Double),
    );
    t.column(
        "metadata_no_token_rejected",
        T::Double,
        "The number of IMDSv1 calls refused that day because the instance requires tokens (MetadataNoTokenRejected, Sum); NULL when CloudWatch has no datapoint for the day.",
        |x| x.rejected.map_or(Value::Null, Value::Double),
    );
    t.column(
        "has_data",
        T::Bool,
        "Whether CloudWatch has a datapoint of either metric for the instance that day (it publishes them only while the instance runs).",
        |x| Value::Bool(x.no_token.is_some() || x.rejected.is_some()),
    );
    t.column(
        "window_start",
        T::Timestamp,
        "The start of the window the row was read for (midnight UTC).",
        |x| ts(x.window.start),
    );
    t.column(
        "window_end",
        T::Timestamp,
        "The end of the window the row was read for.",
        |x| ts(x.window.end),
    );
    t.column("title", T::String, regional::TITLE, |x| {
        Value::from(x.instance_id.clone())
    });
    regional_columns(&mut t);
    let time = KeyColumn::optional("timestamp").operators(&[">", ">=", "<", "<=", "="]);
    t.list(vec![KeyColumn::optional("instance_id"), time], list_usage);
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_window_is_the_last_14_days_from_midnight() {
        let now = 1_765_000_000; // 2025-12-06T05:46:40Z
        let w = Window::from_quals(&QualMap::default(), now);
        assert_eq!(w.start, midnight(now) - 14 * DAY);
        assert_eq!(w.end, now);
        assert_eq!(w.days().len(), 15);
        assert_eq!(w.days()[0] % DAY, 0);
    }
}
