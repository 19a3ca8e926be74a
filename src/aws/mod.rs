//! The AWS plugin on the SDK layer: the connection config of turbot's aws
//! plugin (`config`), per-connection clients, identity and regions
//! (`client`, `regions`), errors and ignore rules (`errors`), the value
//! helpers and the regional table kit (`common`, `regional`), the generated
//! JSON writers (`ec2_json`) and one file per table. Knows nothing of gRPC or
//! go-plugin.

mod assume_role;
pub mod autoscaling_json;
pub mod client;
pub mod common;
pub mod config;
pub mod ec2_ami;
pub mod ec2_ami_shared;
pub mod ec2_instance;
pub mod ec2_instance_metadata_defaults;
pub mod ec2_instance_metadata_usage;
pub mod ec2_json;
pub mod ec2_launch_configuration;
pub mod ec2_launch_template;
pub mod ec2_launch_template_version;
pub mod errors;
pub mod limiters;
pub mod profiles;
pub mod regional;
pub mod regions;

use std::sync::Arc;

use crate::plugin::{Plugin, TableDef};

pub use client::AwsConnection;
pub use config::AwsConfig;

/// The tables this plugin serves.
pub fn tables() -> Vec<Arc<dyn TableDef<AwsConnection>>> {
    vec![
        Arc::new(ec2_instance::table()),
        Arc::new(ec2_launch_template::table()),
        Arc::new(ec2_launch_template_version::table()),
        Arc::new(ec2_ami::table()),
        Arc::new(ec2_ami_shared::table()),
        Arc::new(ec2_launch_configuration::table()),
        Arc::new(ec2_instance_metadata_defaults::table()),
        Arc::new(ec2_instance_metadata_usage::table()),
    ]
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
            // A profile that assumes a role names its account: no STS call
            // to prune a connection the qual excludes.
            if let Some(account) = c.known_account().await {
                return Ok(account);
            }
            c.identity()
                .await
                .map(|id| id.account_id.clone())
                .map_err(|e| Box::new(e) as crate::plugin::BoxError)
        })
}
