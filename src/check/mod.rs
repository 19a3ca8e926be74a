//! `check`: the standalone control runner. It loads the bundled Powerpipe mod
//! (or one from `--mod-location`) and renders its controls' SQL
//! (`powerpipe_mod`), fetches the rows through the plugin in-process and runs
//! the SQL on embedded SQLite (`runner`), and writes Powerpipe's outputs,
//! exports, snapshots and Turbot Pipes uploads (`output`, `snapshot_upload`);
//! `cli` holds the command line and exit codes.

pub mod cli;
pub mod merge;
pub mod model;
pub mod output;
pub mod powerpipe_mod;
pub mod runner;
pub mod snapshot_upload;
pub mod spc_limiters;
