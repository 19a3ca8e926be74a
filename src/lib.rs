//! steampipe-plugin-aws: a Steampipe plugin served over HashiCorp go-plugin.
//!
//! Layers, each ignorant of the one above it:
//! - [`goplugin`]: transport only (handshake line, unix socket, health, controller, stdio, broker).
//! - [`plugin`]: a small Steampipe plugin SDK (tables, columns, quals, planning, rows, connections).
//! - [`logging`]: hclog-style stderr lines that Steampipe's plugin manager reads.

pub mod aws;
pub mod check;
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
