//! The query cache, with Steampipe's semantics: on when the host's
//! `SetCacheOptions` and the scan's `ExecuteConnectionData.cache_enabled` both
//! say so, for the smaller of the two TTLs, within `max_size_mb`. A scan is
//! served from a cached scan of the same connection and table with the same
//! quals, whose columns cover the requested ones and whose limit (if any) is
//! no smaller; or from a complete cached scan with a subset of its quals (as
//! Steampipe's cache does), the rows then filtered by the quals it lacks. `SetConnectionCacheOptions` clears a connection's entries.
//! Concurrent identical scans share one fetch: the later ones wait for the
//! first and are then served from what it cached.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prost::Message;

use crate::pb::steampipe as pb;
use crate::plugin::wire::ExecuteResponse;

/// What identifies a scan for the cache: connection, table and quals.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// the (child) connection
    pub connection: String,
    /// the table
    pub table: String,
    /// the quals, one canonical part per qual (`column`, NUL, encoded
    /// `Qual`), sorted and without repeats
    pub quals: Vec<Vec<u8>>,
}

impl CacheKey {
    /// The key of a scan of `table` on `connection` with `quals`.
    pub fn new(connection: &str, table: &str, quals: &HashMap<String, pb::Quals>) -> CacheKey {
        let mut parts: Vec<Vec<u8>> = Vec::new();
        for (c, q) in quals {
            for one in &q.quals {
                let mut part = c.as_bytes().to_vec();
                part.push(0);
                one.encode(&mut part).expect("a Vec grows");
                parts.push(part);
            }
        }
        parts.sort();
        parts.dedup();
        CacheKey {
            connection: connection.to_string(),
            table: table.to_string(),
            quals: parts,
        }
    }

    /// The quals of this key that `looser` lacks, if `looser` has no qual this
    /// key lacks (then every row of this key's scan is a row of `looser`'s).
    fn extra_over(&self, looser: &CacheKey) -> Option<Vec<Vec<u8>>> {
        if self.connection != looser.connection || self.table != looser.table {
            return None;
        }
        if !looser
            .quals
            .iter()
            .all(|q| self.quals.binary_search(q).is_ok())
        {
            return None;
        }
        Some(
            self.quals
                .iter()
                .filter(|q| looser.quals.binary_search(q).is_err())
                .cloned()
                .collect(),
        )
    }
}

/// Decodes a canonical qual part back into (column, qual).
pub fn decode_part(part: &[u8]) -> Option<(String, pb::Qual)> {
    let nul = part.iter().position(|b| *b == 0)?;
    let column = std::str::from_utf8(&part[..nul]).ok()?.to_string();
    let qual = pb::Qual::decode(&part[nul + 1..]).ok()?;
    Some((column, qual))
}

/// A scan served from the cache.
pub struct Hit {
    /// the cached rows
    pub rows: Arc<Vec<ExecuteResponse>>,
    /// quals of the request that the cached scan did not have (canonical
    /// parts, see [`decode_part`]): the rows must still be filtered by them
    pub extra: Vec<Vec<u8>>,
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

    /// Cached rows that serve a scan wanting `columns` with `limit`: from a
    /// scan with the same quals whose columns cover these and whose limit (if
    /// any) is no smaller; else from a complete (unlimited) scan with fewer
    /// quals whose columns cover these, if `usable(its columns, extra quals)`
    /// says the rows can be filtered by the extra quals. Only rows cached at
    /// most `max_age` ago (the scan's TTL) serve it, as the SDK's
    /// `satisfiesTtl`: that is how Steampipe's `.cache clear` and a lower
    /// `.cache_ttl` take effect (the FDW shortens the TTL it sends).
    pub fn get(
        &self,
        key: &CacheKey,
        columns: &[String],
        limit: Option<u64>,
        max_age: Duration,
        usable: impl Fn(&[String], &[Vec<u8>]) -> bool,
    ) -> Option<Hit> {
        let now = Instant::now();
        let mut entries = self.entries.lock().expect("cache lock");
        let covers = |e: &Entry| {
            now.duration_since(e.inserted) <= max_age
                && (columns.is_empty() || columns.iter().all(|c| e.columns.contains(c)))
        };
        if let Some(list) = entries.get_mut(key) {
            list.retain(|e| e.expires > now);
            let hit = list.iter().find(|e| {
                let enough = match (e.limit, limit) {
                    (None, _) => true,
                    (Some(_), None) => false,
                    (Some(have), Some(want)) => have >= want,
                };
                covers(e) && enough
            });
            if let Some(hit) = hit {
                self.hits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Some(Hit {
                    rows: hit.rows.clone(),
                    extra: Vec::new(),
                });
            }
        }
        for (k, list) in entries.iter() {
            let Some(extra) = key.extra_over(k) else {
                continue;
            };
            if extra.is_empty() {
                continue; // the same key, seen above
            }
            let hit = list.iter().find(|e| {
                e.expires > now && e.limit.is_none() && covers(e) && usable(&e.columns, &extra)
            });
            if let Some(hit) = hit {
                self.hits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Some(Hit {
                    rows: hit.rows.clone(),
                    extra,
                });
            }
        }
        None
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

/// The rows of a scan kept for the query cache, up to a size budget (past
/// it, none are kept: a partial result is never cached).
pub struct KeptRows {
    max_bytes: usize,
    /// the rows kept, and the bytes of every row offered
    state: std::sync::Mutex<(Vec<ExecuteResponse>, usize)>,
}

impl KeptRows {
    /// Keeps at most `max_bytes` of encoded rows.
    pub fn new(max_bytes: usize) -> Self {
        KeptRows {
            max_bytes,
            state: std::sync::Mutex::new((Vec::new(), 0)),
        }
    }

    pub(crate) fn keep(&self, row: &ExecuteResponse) {
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
    pub fn take(&self) -> Option<Vec<ExecuteResponse>> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        (st.1 <= self.max_bytes).then(|| std::mem::take(&mut st.0))
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

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn rows_older_than_the_scans_ttl_do_not_serve_it() {
        let c = QueryCache::default();
        let k = CacheKey::new("c", "t", &HashMap::new());
        let cols = vec!["a".to_string()];
        c.put(
            k.clone(),
            cols.clone(),
            None,
            vec![row(1)],
            HOUR,
            DEFAULT_MAX_BYTES,
        );
        std::thread::sleep(Duration::from_millis(30));
        assert!(c.get(&k, &cols, None, HOUR, |_, _| true).is_some());
        assert!(
            c.get(&k, &cols, None, Duration::from_millis(10), |_, _| true)
                .is_none(),
            "cached before the cache was cleared (a TTL shorter than their age)"
        );
        let strict = CacheKey::new("c", "t", &quals(&[("a", "=", "x")]));
        assert!(c.get(&strict, &cols, None, HOUR, |_, _| true).is_some());
        assert!(c
            .get(&strict, &cols, None, Duration::ZERO, |_, _| true)
            .is_none());
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
        assert!(c
            .get(&k, &["a".into()], Some(5), HOUR, |_, _| true)
            .is_some());
        assert!(
            c.get(&k, &["a".into()], None, HOUR, |_, _| true).is_none(),
            "a limited scan cannot serve an unlimited one"
        );
        assert!(c
            .get(&k, &["z".into()], Some(5), HOUR, |_, _| true)
            .is_none());
        let other = CacheKey::new("c2", "t", &HashMap::new());
        assert!(c
            .get(&other, &["a".into()], Some(5), HOUR, |_, _| true)
            .is_none());
        c.clear_connection("c");
        assert!(c
            .get(&k, &["a".into()], Some(5), HOUR, |_, _| true)
            .is_none());
    }

    fn quals(list: &[(&str, &str, &str)]) -> HashMap<String, pb::Quals> {
        let mut m: HashMap<String, pb::Quals> = HashMap::new();
        for (col, op, v) in list {
            m.entry(col.to_string()).or_default().quals.push(pb::Qual {
                field_name: col.to_string(),
                operator: Some(pb::qual::Operator::StringValue(op.to_string())),
                value: Some(pb::QualValue {
                    value: Some(pb::qual_value::Value::StringValue(v.to_string())),
                }),
            });
        }
        m
    }

    #[test]
    fn a_complete_scan_with_fewer_quals_serves_a_stricter_one_with_the_extra_quals() {
        let c = QueryCache::default();
        let loose = CacheKey::new("c", "t", &quals(&[("region", "=", "r1")]));
        let strict = CacheKey::new(
            "c",
            "t",
            &quals(&[("region", "=", "r1"), ("state", "=", "running")]),
        );
        let other = CacheKey::new("c", "t", &quals(&[("state", "=", "running")]));
        let ttl = Duration::from_secs(60);
        c.put(
            loose.clone(),
            vec!["a".into(), "state".into()],
            None,
            vec![row(1)],
            ttl,
            DEFAULT_MAX_BYTES,
        );
        let hit = c
            .get(&strict, &["a".into()], Some(1), HOUR, |_, _| true)
            .expect("served");
        assert_eq!(hit.extra.len(), 1);
        let (col, q) = decode_part(&hit.extra[0]).unwrap();
        assert_eq!(col, "state");
        assert_eq!(q.field_name, "state");
        // The cached scan had a qual the request lacks: its rows are too few.
        assert!(c
            .get(&other, &["a".into()], None, HOUR, |_, _| true)
            .is_none());
        assert!(c
            .get(&loose, &["a".into()], None, HOUR, |_, _| true)
            .unwrap()
            .extra
            .is_empty());
        // The caller refuses what it cannot filter.
        assert!(c
            .get(&strict, &["a".into()], None, HOUR, |_, _| false)
            .is_none());
        // A limited scan is not complete: it serves no stricter scan.
        let c = QueryCache::default();
        c.put(
            loose,
            vec!["a".into()],
            Some(100),
            vec![row(1)],
            ttl,
            DEFAULT_MAX_BYTES,
        );
        assert!(c
            .get(&strict, &["a".into()], None, HOUR, |_, _| true)
            .is_none());
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
        assert!(
            c.get(&k1, &[], None, HOUR, |_, _| true).is_none(),
            "expired"
        );
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
        assert!(
            c.get(&k1, &[], None, HOUR, |_, _| true).is_none(),
            "evicted"
        );
        assert!(c.get(&k2, &[], None, HOUR, |_, _| true).is_some());
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
