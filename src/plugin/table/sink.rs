//! Where items and rows go: the List functions' [`ItemSink`] (back-pressure,
//! the pushed-down limit, progress) and the [`RowSender`] into the gRPC
//! stream (keeping a copy for the query cache on the way).

use super::*;

/// Where a List function puts its items. `push` waits while the consumer is
/// busy (back-pressure) and fails once no more rows are wanted.
pub struct ItemSink<I> {
    pub(super) tx: mpsc::Sender<Arc<I>>,
    pub(super) progress: Arc<Progress>,
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
pub(super) struct Progress {
    limit: Option<u64>,
    pushed: std::sync::atomic::AtomicU64,
    taken: std::sync::atomic::AtomicU64,
    sent: std::sync::atomic::AtomicU64,
    changed: tokio::sync::Notify,
}

impl Progress {
    /// Progress of a scan with this pushed-down limit.
    pub(super) fn new(limit: Option<u64>) -> Progress {
        Progress {
            limit,
            ..Default::default()
        }
    }

    pub(super) fn took(&self, sent: bool) {
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
}
