//! A plugin built on the SDK layer with tables made for testing it: a column
//! of every type (NULLs included), an endless stream, a failing scan, a
//! required key column, a panicking table and a hydrated column. The
//! integration tests start it through the go-plugin host stand-in exactly as
//! Steampipe starts the real plugin.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use steampipe_plugin_aws::pb::steampipe::wrapper_plugin_server::WrapperPluginServer;
use steampipe_plugin_aws::plugin::limiter::Definition;
use steampipe_plugin_aws::plugin::{
    Attributes, BoxError, ColumnType, ConfigError, ConnectionConfig, KeyColumn, Plugin, Table,
    TableDef, Timestamp, Value,
};
use steampipe_plugin_aws::{goplugin, logging};

/// `rows = 5`, `label = "x"`, `tags = ["a"]`.
struct TestConnection {
    rows: i64,
    label: String,
}

impl ConnectionConfig for TestConnection {
    fn parse(connection: &str, hcl: &str) -> Result<Self, ConfigError> {
        let mut a = Attributes::parse(connection, hcl)?;
        let rows = a.int("rows")?.unwrap_or(5);
        if rows < 0 {
            return Err(ConfigError::attribute(
                connection,
                "rows",
                "must not be negative",
            ));
        }
        let label = a.string("label")?.unwrap_or_else(|| connection.to_string());
        let _tags = a.strings("tags")?;
        a.finish()?;
        Ok(TestConnection { rows, label })
    }
}

/// One row of `test_types`; row 3 has every nullable value unset.
#[derive(Clone)]
struct Thing {
    id: i64,
    label: String,
    present: bool,
}

const DAY: i64 = 86_400;
const JAN_1_2024: i64 = 1_704_067_200;

fn things(n: i64, label: &str) -> impl Iterator<Item = Thing> + '_ {
    (1..=n).map(move |id| Thing {
        id,
        label: label.to_string(),
        present: id != 3,
    })
}

static HYDRATE_CALLS: AtomicU64 = AtomicU64::new(0);

fn types_table() -> Table<TestConnection, Thing> {
    let mut t = Table::<TestConnection, Thing>::new(
        "test_types",
        "A column of every type, with NULLs in row 3.",
    );
    let detail = t.hydrate("detail", |_req, t: Arc<Thing>| async move {
        let n = HYDRATE_CALLS.fetch_add(1, Ordering::SeqCst) + 1;
        tracing::info!("hydrate detail called for id {} (call {n})", t.id);
        Ok::<_, BoxError>(format!("detail-{}", t.id))
    });
    t.column("id", ColumnType::Int, "Row number, from 1.", |t: &Thing| {
        t.id
    });
    t.column(
        "name",
        ColumnType::String,
        "name-<id>; NULL in row 3.",
        |t: &Thing| t.present.then(|| format!("name-{}", t.id)),
    );
    t.column(
        "flag",
        ColumnType::Bool,
        "True for even ids.",
        |t: &Thing| t.present.then_some(t.id % 2 == 0),
    );
    t.column("score", ColumnType::Double, "id * 1.5.", |t: &Thing| {
        t.present.then_some(t.id as f64 * 1.5)
    });
    t.column("doc", ColumnType::Json, "A JSON object with nesting and a newline.", |t: &Thing| {
            t.present.then(|| {
                serde_json::json!({"id": t.id, "nested": {"list": [1, 2, 3], "none": null}, "text": "line one\nline \"two\""})
            })
        });
    t.column(
        "created",
        ColumnType::Timestamp,
        "2024-01-01 plus id days, plus id milliseconds.",
        |t: &Thing| {
            t.present
                .then(|| Timestamp::new(JAN_1_2024 + t.id * DAY, (t.id as u32) * 1_000_000))
                .flatten()
        },
    );
    t.column("ip", ColumnType::IpAddr, "10.0.0.<id>.", |t: &Thing| {
        t.present.then(|| format!("10.0.0.{}", t.id))
    });
    t.column("net", ColumnType::Cidr, "10.<id>.0.0/16.", |t: &Thing| {
        t.present.then(|| format!("10.{}.0.0/16", t.id))
    });
    t.column(
        "addr",
        ColumnType::Inet,
        "fd00::<id>/64; an empty string (NULL) in row 3.",
        |t: &Thing| {
            if t.present {
                format!("fd00::{}/64", t.id)
            } else {
                String::new()
            }
        },
    );
    t.column("path", ColumnType::Ltree, "top.sub<id>.", |t: &Thing| {
        t.present.then(|| format!("top.sub{}", t.id))
    });
    t.column(
        "label",
        ColumnType::String,
        "The connection's label.",
        |t: &Thing| t.label.clone(),
    );
    t.hydrated_column(
        "detail",
        ColumnType::String,
        "From the hydrate call `detail`.",
        detail,
        |_t: &Thing, d: &String| d.clone(),
    );
    t.get(vec![KeyColumn::required("id")], |req| async move {
        let id = match req.quals.equals("id") {
            Some(steampipe_plugin_aws::plugin::QualValue::Int(i)) => *i,
            other => return Err(format!("id qual is not an integer: {other:?}").into()),
        };
        tracing::info!("test_types get id={id}");
        let c = &req.connection;
        Ok::<_, BoxError>(things(c.rows, &c.label).find(|t| t.id == id))
    });
    t.list(
        vec![
            KeyColumn::optional("name").operators(&["=", "is null", "is not null", "~~"]),
            KeyColumn::optional("flag"),
            KeyColumn::optional("score").operators(&["=", "<", "<=", ">", ">="]),
        ],
        |req, sink| async move {
            // Returns every row whatever the quals: the SDK must filter exactly.
            let mut quals: Vec<String> = req
                .quals
                .iter()
                .map(|q| format!("{} {} {:?}", q.column, q.operator, q.value))
                .collect();
            quals.sort();
            tracing::info!(
                "test_types list quals=[{}] limit={:?}",
                quals.join("; "),
                req.limit
            );
            let c = req.connection.clone();
            for t in things(c.rows, &c.label) {
                sink.push(t).await?;
            }
            Ok::<_, BoxError>(())
        },
    );
    t
}

struct StopLog {
    produced: Arc<AtomicU64>,
}

impl Drop for StopLog {
    fn drop(&mut self) {
        tracing::warn!(
            "test_stream producer stopped after {} items",
            self.produced.load(Ordering::SeqCst)
        );
    }
}

fn stream_table() -> Table<TestConnection, i64> {
    let mut t = Table::<TestConnection, i64>::new(
        "test_stream",
        "Endless rows, 1 ms apart: for cancellation.",
    );
    t.column("n", ColumnType::Int, "Sequence number.", |n: &i64| *n);
    t.list(vec![], |_req, sink| async move {
        let produced = Arc::new(AtomicU64::new(0));
        let _log = StopLog {
            produced: produced.clone(),
        };
        tracing::warn!("test_stream producer started");
        for n in 0.. {
            sink.push(n).await?;
            produced.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        Ok::<_, BoxError>(())
    });
    t
}

fn fail_table() -> Table<TestConnection, i64> {
    let mut t = Table::<TestConnection, i64>::new("test_fail", "Two rows, then an error.");
    t.column("n", ColumnType::Int, "Sequence number.", |n: &i64| *n);
    t.list(vec![], |_req, sink| async move {
        sink.push(1).await?;
        sink.push(2).await?;
        Err::<(), BoxError>("simulated failure after 2 rows\nsecond line of the message".into())
    });
    t
}

fn required_table() -> Table<TestConnection, String> {
    let mut t = Table::<TestConnection, String>::new("test_required", "Needs a region qual.");
    t.column(
        "region",
        ColumnType::String,
        "The region asked for.",
        |r: &String| r.clone(),
    );
    t.list(
        vec![KeyColumn::required("region")],
        |req, sink| async move {
            if let Some(v) = req.quals.equals("region").and_then(|v| v.as_str()) {
                sink.push(v.to_string()).await?;
            }
            Ok::<_, BoxError>(())
        },
    );
    t
}

fn panic_table() -> Table<TestConnection, i64> {
    let mut t = Table::<TestConnection, i64>::new("test_panic", "Its list function panics.");
    t.column("n", ColumnType::Int, "Never produced.", |n: &i64| *n);
    t.list(vec![], |_req, _sink| async move {
        if std::env::var("NEVER_SET_IN_TESTS_XYZ").is_err() {
            panic!("deliberate panic in test_panic");
        }
        Ok::<_, BoxError>(())
    });
    t
}

fn main() {
    if !goplugin::cookie_present() {
        eprintln!("{}", goplugin::NOT_A_PROGRAM);
        std::process::exit(1);
    }
    logging::init();
    let _ = Value::Null;
    let tables: Vec<Arc<dyn TableDef<TestConnection>>> = vec![
        Arc::new(types_table()),
        Arc::new(stream_table()),
        Arc::new(fail_table()),
        Arc::new(required_table()),
        Arc::new(panic_table()),
    ];
    let list_limiter = Definition::new(
        "sdktest_list",
        5.0,
        5,
        0,
        &["connection", "table"],
        "table = 'test_types'",
    )
    .expect("a valid limiter");
    let plugin = Plugin::new("sdktest", tables).with_rate_limiters(vec![list_limiter]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let served = rt.block_on(async {
        goplugin::serve(
            WrapperPluginServer::new(plugin)
                .max_decoding_message_size(64 << 20)
                .max_encoding_message_size(usize::MAX),
        )
        .await
    });
    std::process::exit(if served.is_ok() { 0 } else { 1 });
}
