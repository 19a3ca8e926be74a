//! AWS specifics: the connection config of turbot's aws plugin (and, as tables
//! land, the client factory, common columns and one file per table). Knows
//! nothing of gRPC or go-plugin.

pub mod config;

use std::sync::Arc;

use crate::plugin::{Plugin, TableDef};

pub use config::AwsConnection;

/// The tables this plugin serves.
pub fn tables() -> Vec<Arc<dyn TableDef<AwsConnection>>> {
    Vec::new()
}

/// The plugin as Steampipe loads it.
pub fn plugin() -> Plugin<AwsConnection> {
    Plugin::new("aws", tables())
}
