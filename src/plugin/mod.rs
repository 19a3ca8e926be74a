//! A small Steampipe plugin SDK: tables declared as column lists, key columns
//! and quals, Get/List planning, row encoding, connections (aggregators
//! included), cache options, rate limiters and the schema. It serves the
//! `proto.WrapperPlugin` gRPC service and knows nothing of AWS or of the
//! go-plugin transport.

pub mod cache;
pub mod config;
pub mod limiter;
pub mod metadata;
pub mod plan;
pub mod quals;
pub mod server;
pub mod table;
pub mod value;
pub mod wire;

pub use config::{Attributes, ConfigError, ConnectionConfig};
pub use limiter::{CallLimiter, RateLimiters};
pub use plan::{KeyColumn, Require};
pub use quals::{Qual, QualMap, QualValue};
pub use server::Plugin;
pub use table::{
    BoxError, ColumnMut, GetRequest, Hydrate, HydrateRequest, Hydrated, ItemSink, ListRequest,
    ScanStopped, Table, TableDef,
};
pub use value::{ColumnType, Timestamp, Value};

/// The Steampipe protocol version every SDK since 3.x reports; hosts reject a higher one.
pub const PROTOCOL_VERSION: i64 = 20220201;
