//! Scan metadata: the `ExecuteResponse.metadata` every row carries, counted
//! the way steampipe-plugin-sdk v5.14.0 counts it (`QueryData.streamRow`,
//! `queryStatus`). Steampipe's FDW keeps the last row's metadata per
//! connection and shows it in `.timing` and its scan-metadata introspection.
//!
//! | field | SDK | here |
//! |---|---|---|
//! | `rows_fetched` | List: items the list function streamed (`rowsStreamed++` in `streamLeafListItem`, which stops at the limit); Get: set to 1 once the Get found its item, however many values an IN list had | List: items the row builder has taken (a row sent, or one the key-column quals dropped), so at most the limit when no row is dropped; Get: 1 once an item was found |
//! | `hydrate_calls` | every hydrate call started for a row (the List/Get call itself not counted): rows x distinct hydrate functions the requested columns need | the same, for the hydrate calls this plugin makes |
//! | `cache_hit` | rows served from the query cache (or from an identical scan in flight): `rows_fetched` counts the cached rows streamed, `hydrate_calls` is 0 | the same |
//!
//! Each row carries the counters as they stand when it is sent; a scan
//! that sends no row sends no metadata (the SDK sends no row-less response
//! on a gRPC stream). Counters are per connection: an aggregator's children
//! count apart, each row naming its connection.

use std::sync::atomic::{AtomicI64, Ordering};

use crate::pb::steampipe as pb;

/// The counters of one connection's scan.
#[derive(Debug, Default)]
pub struct ScanCounters {
    /// whether the scan is a Get (then `rows_fetched` is 1 once anything
    /// was found, as the SDK sets it)
    get: bool,
    rows_fetched: AtomicI64,
    hydrate_calls: AtomicI64,
}

impl ScanCounters {
    /// Counters for a List scan, or a Get scan when `get`.
    pub fn new(get: bool) -> ScanCounters {
        ScanCounters {
            get,
            ..Default::default()
        }
    }

    /// The row builder took one item from the fetch.
    pub fn fetched(&self) {
        if self.get {
            self.rows_fetched.store(1, Ordering::Relaxed);
        } else {
            self.rows_fetched.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `n` hydrate calls were started for one item.
    pub fn hydrates_started(&self, n: usize) {
        if n > 0 {
            self.hydrate_calls.fetch_add(n as i64, Ordering::Relaxed);
        }
    }

    /// The metadata of the row being sent now.
    pub fn snapshot(&self) -> pb::QueryMetadata {
        pb::QueryMetadata {
            hydrate_calls: self.hydrate_calls.load(Ordering::Relaxed),
            rows_fetched: self.rows_fetched.load(Ordering::Relaxed),
            cache_hit: false,
        }
    }
}

/// The metadata of the `n`-th row (from 1) served from the query cache.
pub fn cached(n: u64) -> pb::QueryMetadata {
    pb::QueryMetadata {
        hydrate_calls: 0,
        rows_fetched: n as i64,
        cache_hit: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_counts_every_item_and_a_get_says_one() {
        let list = ScanCounters::new(false);
        for _ in 0..3 {
            list.fetched();
            list.hydrates_started(2);
        }
        list.hydrates_started(0);
        assert_eq!(
            list.snapshot(),
            pb::QueryMetadata {
                hydrate_calls: 6,
                rows_fetched: 3,
                cache_hit: false
            }
        );
        let get = ScanCounters::new(true);
        for _ in 0..4 {
            get.fetched();
            get.hydrates_started(1);
        }
        assert_eq!(get.snapshot().rows_fetched, 1);
        assert_eq!(get.snapshot().hydrate_calls, 4);
        assert_eq!(cached(5).rows_fetched, 5);
        assert!(cached(5).cache_hit);
        assert_eq!(cached(5).hydrate_calls, 0);
    }
}
