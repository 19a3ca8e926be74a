//! The query cache, with Steampipe's semantics: on when the host's
//! `SetCacheOptions` and the scan's `ExecuteConnectionData.cache_enabled` both
//! say so, for the smaller of the two TTLs, within `max_size_mb`. A scan is
//! served from a cached scan of the same connection and table with the same
//! quals, whose columns cover the requested ones and whose limit (if any) is
//! no smaller. `SetConnectionCacheOptions` clears a connection's entries.
//! Concurrent identical scans share one fetch: the later ones wait for the
//! first and are then served from what it cached.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prost::Message;

use crate::pb::steampipe as pb;
use crate::plugin::wire::ExecuteResponse;

/// What identifies a family of scans that can serve each other.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// the (child) connection
    pub connection: String,
    /// the table
    pub table: String,
    /// the quals, canonical (sorted, encoded)
    pub quals: Vec<u8>,
}

impl CacheKey {
    /// The key of a scan of `table` on `connection` with `quals`.
    pub fn new(connection: &str, table: &str, quals: &HashMap<String, pb::Quals>) -> CacheKey {
        let mut cols: Vec<(&String, &pb::Quals)> = quals.iter().collect();
        cols.sort_by(|a, b| a.0.cmp(b.0));
        let mut bytes = Vec::new();
        for (c, q) in cols {
            bytes.extend_from_slice(c.as_bytes());
            bytes.push(0);
            let mut encoded: Vec<Vec<u8>> = q.quals.iter().map(|x| x.encode_to_vec()).collect();
            encoded.sort();
            for e in encoded {
                bytes.extend_from_slice(&(e.len() as u64).to_le_bytes());
                bytes.extend_from_slice(&e);
            }
            bytes.push(0xff);
        }
        CacheKey {
            connection: connection.to_string(),
            table: table.to_string(),
            quals: bytes,
        }
    }
}

struct Entry {
    columns: Vec<String>,
    limit: Option<u64>,
    rows: Arc<Vec<ExecuteResponse>>,
    bytes: usize,
    expires: Instant,
    inserted: Instant,
}

/// The cache of one plugin process.
#[derive(Default)]
pub struct QueryCache {
    entries: Mutex<HashMap<CacheKey, Vec<Entry>>>,
    inflight: Mutex<HashMap<CacheKey, Arc<tokio::sync::Mutex<()>>>>,
    hits: std::sync::atomic::AtomicU64,
}

/// The size budget when the host sets none.
pub const DEFAULT_MAX_BYTES: usize = 256 << 20;

impl QueryCache {
    /// The lock that makes concurrent identical scans wait for the first.
    pub fn inflight(&self, key: &CacheKey) -> Arc<tokio::sync::Mutex<()>> {
        self.inflight
            .lock()
            .expect("cache lock")
            .entry(key.clone())
            .or_default()
            .clone()
    }

    /// Cached rows that serve a scan wanting `columns` with `limit`.
    pub fn get(
        &self,
        key: &CacheKey,
        columns: &[String],
        limit: Option<u64>,
    ) -> Option<Arc<Vec<ExecuteResponse>>> {
        let now = Instant::now();
        let mut entries = self.entries.lock().expect("cache lock");
        let list = entries.get_mut(key)?;
        list.retain(|e| e.expires > now);
        let hit = list.iter().find(|e| {
            let covers = columns.is_empty() || columns.iter().all(|c| e.columns.contains(c));
            let enough = match (e.limit, limit) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(have), Some(want)) => have >= want,
            };
            covers && enough
        })?;
        self.hits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Some(hit.rows.clone())
    }

    /// Stores a complete scan.
    pub fn put(
        &self,
        key: CacheKey,
        columns: Vec<String>,
        limit: Option<u64>,
        rows: Vec<ExecuteResponse>,
        ttl: Duration,
        max_bytes: usize,
    ) {
        let bytes: usize = rows.iter().map(|r| r.encoded_len()).sum();
        if bytes > max_bytes {
            return;
        }
        let now = Instant::now();
        let mut entries = self.entries.lock().expect("cache lock");
        entries.entry(key).or_default().push(Entry {
            columns,
            limit,
            rows: Arc::new(rows),
            bytes,
            expires: now + ttl,
            inserted: now,
        });
        // Evict expired entries, then the oldest, until within budget.
        let mut total: usize = 0;
        for list in entries.values_mut() {
            list.retain(|e| e.expires > now);
            total += list.iter().map(|e| e.bytes).sum::<usize>();
        }
        while total > max_bytes {
            let oldest = entries
                .iter()
                .flat_map(|(k, l)| {
                    l.iter()
                        .enumerate()
                        .map(move |(i, e)| (e.inserted, k.clone(), i))
                })
                .min_by_key(|(t, _, _)| *t);
            let Some((_, k, i)) = oldest else { break };
            if let Some(list) = entries.get_mut(&k) {
                total -= list[i].bytes;
                list.remove(i);
            }
        }
        entries.retain(|_, l| !l.is_empty());
    }

    /// Forgets every entry of `connection`.
    pub fn clear_connection(&self, connection: &str) {
        self.entries
            .lock()
            .expect("cache lock")
            .retain(|k, _| k.connection != connection);
    }

    /// Forgets everything.
    pub fn clear(&self) {
        self.entries.lock().expect("cache lock").clear();
    }

    /// How many scans were served from the cache.
    pub fn hits(&self) -> u64 {
        self.hits.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(n: i64) -> ExecuteResponse {
        let mut enc = crate::plugin::wire::RowEncoder::default();
        enc.cell(
            "n",
            &pb::Column {
                value: Some(pb::column::Value::IntValue(n)),
            },
        );
        ExecuteResponse {
            row: enc.finish(),
            has_row: true,
            metadata: None,
            connection: "c".into(),
        }
    }

    #[test]
    fn a_scan_is_served_by_one_with_more_columns_and_no_smaller_limit() {
        let c = QueryCache::default();
        let k = CacheKey::new("c", "t", &HashMap::new());
        c.put(
            k.clone(),
            vec!["a".into(), "b".into()],
            Some(10),
            vec![row(1)],
            Duration::from_secs(60),
            DEFAULT_MAX_BYTES,
        );
        assert!(c.get(&k, &["a".into()], Some(5)).is_some());
        assert!(
            c.get(&k, &["a".into()], None).is_none(),
            "a limited scan cannot serve an unlimited one"
        );
        assert!(c.get(&k, &["z".into()], Some(5)).is_none());
        let other = CacheKey::new("c2", "t", &HashMap::new());
        assert!(c.get(&other, &["a".into()], Some(5)).is_none());
        c.clear_connection("c");
        assert!(c.get(&k, &["a".into()], Some(5)).is_none());
    }

    #[test]
    fn entries_expire_and_the_size_budget_evicts_the_oldest() {
        let c = QueryCache::default();
        let k1 = CacheKey::new("c", "t1", &HashMap::new());
        let k2 = CacheKey::new("c", "t2", &HashMap::new());
        c.put(
            k1.clone(),
            vec![],
            None,
            vec![row(1)],
            Duration::from_millis(1),
            DEFAULT_MAX_BYTES,
        );
        std::thread::sleep(Duration::from_millis(5));
        assert!(c.get(&k1, &[], None).is_none(), "expired");
        let one = row(1).encoded_len();
        c.put(
            k1.clone(),
            vec![],
            None,
            vec![row(1)],
            Duration::from_secs(60),
            one,
        );
        c.put(
            k2.clone(),
            vec![],
            None,
            vec![row(2)],
            Duration::from_secs(60),
            one,
        );
        assert!(c.get(&k1, &[], None).is_none(), "evicted");
        assert!(c.get(&k2, &[], None).is_some());
    }

    #[test]
    fn qual_order_does_not_change_the_key() {
        let q = |op: &str| pb::Qual {
            field_name: "a".into(),
            operator: Some(pb::qual::Operator::StringValue(op.into())),
            value: None,
        };
        let mut m1 = HashMap::new();
        m1.insert(
            "a".to_string(),
            pb::Quals {
                quals: vec![q("is null"), q("is not null")],
            },
        );
        let mut m2 = HashMap::new();
        m2.insert(
            "a".to_string(),
            pb::Quals {
                quals: vec![q("is not null"), q("is null")],
            },
        );
        assert_eq!(CacheKey::new("c", "t", &m1), CacheKey::new("c", "t", &m2));
    }
}
