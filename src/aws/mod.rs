//! AWS specifics: the connection config of turbot's aws plugin (and, as tables
//! land, the client factory, common columns and one file per table). Knows
//! nothing of gRPC or go-plugin.

pub mod client;
pub mod common;
pub mod config;
pub mod ec2_instance;
pub mod ec2_json;
pub mod errors;
pub mod regions;

use std::sync::Arc;

use crate::plugin::{Plugin, TableDef};

pub use config::AwsConnection;

/// The tables this plugin serves.
pub fn tables() -> Vec<Arc<dyn TableDef<AwsConnection>>> {
    vec![Arc::new(ec2_instance::table())]
}

/// The plugin as Steampipe loads it.
pub fn plugin() -> Plugin<AwsConnection> {
    Plugin::new("aws", tables())
}
