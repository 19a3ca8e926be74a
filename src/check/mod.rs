//! The standalone control runner: loads the bundled Powerpipe mod and renders
//! its controls' SQL. (The runner itself, on embedded SQLite, and Powerpipe's
//! output formats land with the `check` command.)

pub mod cli;
pub mod model;
pub mod output;
pub mod powerpipe_mod;
pub mod runner;
pub mod snapshot_upload;
pub mod spc_limiters;
