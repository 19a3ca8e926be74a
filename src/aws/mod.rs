//! AWS specifics: the connection config of turbot's aws plugin (and, as tables
//! land, the client factory, common columns and one file per table). Knows
//! nothing of gRPC or go-plugin.

pub mod client;
pub mod common;
pub mod config;
pub mod ec2_instance;
pub mod ec2_json;
pub mod errors;
pub mod limiters;
pub mod profiles;
pub mod regional;
pub mod regions;

use std::sync::Arc;

use crate::plugin::{Plugin, TableDef};

pub use config::AwsConnection;

/// The tables this plugin serves.
pub fn tables() -> Vec<Arc<dyn TableDef<AwsConnection>>> {
    vec![Arc::new(ec2_instance::table())]
}

/// The SDK version turbot's aws plugin v1.31.0 reports: its SDK (v6.0.0)
/// still says 5.14.0.
pub const SDK_VERSION: &str = "5.14.0";

/// The plugin as Steampipe loads it. `account_id` is a connection key
/// column, as in turbot's plugin: `where account_id = '...'` skips the
/// connections of other accounts without calling them.
pub fn plugin() -> Plugin<AwsConnection> {
    Plugin::new("aws", tables())
        .with_sdk_version(SDK_VERSION)
        .with_rate_limiters(limiters::definitions())
        .with_connection_key_column("account_id", |c: Arc<AwsConnection>| async move {
            c.identity()
                .await
                .map(|id| id.account_id.clone())
                .map_err(|e| Box::new(e) as crate::plugin::BoxError)
        })
}
