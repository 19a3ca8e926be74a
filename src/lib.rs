//! steampipe-plugin-aws: a Steampipe plugin served over HashiCorp go-plugin,
//! and the commands built on it.
//!
//! The map, lowest layer first; a module may use the ones above it in this
//! list, never one below:
//! - [`pb`]: the generated code for `proto/` (Steampipe's plugin contract and
//!   go-plugin's services).
//! - [`logging`]: hclog text lines on stderr, as Steampipe's plugin manager
//!   reads them. [`memory`]: malloc arena limits for a long-lived plugin.
//! - [`goplugin`]: the transport only: magic cookie, unix socket, handshake
//!   line, health/controller/stdio/broker services, AutoMTLS. Serves any
//!   tonic service; knows nothing of Steampipe.
//! - [`plugin`]: a small Steampipe plugin SDK: table declarations (columns,
//!   typed hydrates, key columns), quals and planning, the scan pipeline,
//!   row encoding, connections and aggregators, the query cache, rate
//!   limiters and the schema; it serves `proto.WrapperPlugin`. Knows nothing
//!   of AWS.
//! - [`aws`]: the AWS plugin: connection config, per-connection clients and
//!   identity, errors and ignore rules, the regional table kit
//!   (`aws::regional`) and one file per table.
//! - [`check`], [`enforce`], [`install`]: the commands. `enforce` switches
//!   instances to IMDSv2 when CloudWatch proves them safe (with an undo file). `check` runs the bundled Powerpipe
//!   mod over the tables in-process (SQLite) and writes Powerpipe's outputs;
//!   `install` puts the binary and a `.spc` where Steampipe looks.

pub mod aws;
pub mod check;
pub mod enforce;
pub mod goplugin;
pub mod install;
pub mod logging;
pub mod memory;
pub mod plugin;

/// Generated code for the wire contracts in `proto/`.
pub mod pb {
    /// The Steampipe plugin contract (package `proto`).
    #[allow(clippy::all, missing_docs)]
    pub mod steampipe {
        tonic::include_proto!("proto");
    }
    /// go-plugin's own services (package `plugin`).
    #[allow(clippy::all, missing_docs)]
    pub mod goplugin {
        tonic::include_proto!("plugin");
    }
}
