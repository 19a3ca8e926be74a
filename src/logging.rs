//! Log lines on stderr in the hclog text form that Steampipe's plugin manager reads.
//!
//! The manager reads the plugin's stderr line by line and takes the level from a
//! `[TRACE]`/`[DEBUG]`/`[INFO]`/`[WARN]`/`[ERROR]` prefix; a message that spans
//! lines would be split, so embedded newlines are escaped as the two characters
//! `\n`, as the Go SDK's escape-newline writer does. Nothing here ever writes to
//! stdout: stdout carries only the go-plugin handshake line.

use std::fmt::Write as _;
use std::io::Write as _;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

/// The level named by `STEAMPIPE_LOG_LEVEL` (or the legacy `SP_LOG` / `STEAMPIPE_LOG`);
/// WARN when unset. `None` means logging is off.
pub fn level_from_env() -> Option<Level> {
    let raw = ["STEAMPIPE_LOG_LEVEL", "SP_LOG", "STEAMPIPE_LOG"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()));
    parse_level(raw.as_deref().unwrap_or("WARN"))
}

/// hclog level names, case-insensitive; an unknown name falls back to WARN.
pub fn parse_level(name: &str) -> Option<Level> {
    match name.trim().to_ascii_uppercase().as_str() {
        "TRACE" => Some(Level::TRACE),
        "DEBUG" => Some(Level::DEBUG),
        "INFO" => Some(Level::INFO),
        "ERROR" => Some(Level::ERROR),
        "OFF" => None,
        _ => Some(Level::WARN),
    }
}

/// Installs the stderr logger once for the whole process.
pub fn init() {
    let level = level_from_env();
    let layer = HclogLayer { max: level };
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

/// hclog pads the bracketed level to the width of `[ERROR]`.
fn bracket(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "[TRACE]",
        Level::DEBUG => "[DEBUG]",
        Level::INFO => "[INFO] ",
        Level::WARN => "[WARN] ",
        Level::ERROR => "[ERROR]",
    }
}

/// Escapes what would break the one-event-per-line contract.
pub fn escape_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            _ => out.push(c),
        }
    }
    out
}

struct HclogLayer {
    max: Option<Level>,
}

/// Our own code logs at the configured level. Libraries (gRPC frames, the AWS
/// SDK's request traces, which carry signed headers) stop at INFO.
const OUR_TARGETS: [&str; 2] = ["steampipe_plugin_aws", "sdk_test_plugin"];

impl HclogLayer {
    fn wants(&self, metadata: &tracing::Metadata<'_>) -> bool {
        let Some(max) = self.max else { return false };
        let ours = OUR_TARGETS.iter().any(|t| metadata.target().starts_with(t));
        let max = if ours { max } else { max.min(Level::INFO) };
        // tracing orders levels by verbosity: TRACE > DEBUG > ... > ERROR.
        *metadata.level() <= max
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    pairs: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.pairs, " {}={:?}", field.name(), value);
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.pairs, " {}={:?}", field.name(), value);
        }
    }
}

impl<S: Subscriber> Layer<S> for HclogLayer {
    fn enabled(&self, metadata: &tracing::Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        self.wants(metadata)
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if !self.wants(event.metadata()) {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let line = format!(
            "{} {}{}",
            bracket(event.metadata().level()),
            fields.message,
            fields.pairs
        );
        let mut out = escape_line(&line);
        out.push('\n');
        let _ = std::io::stderr().lock().write_all(out.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newlines_inside_a_message_stay_on_one_line() {
        assert_eq!(escape_line("a\nb\r\nc"), "a\\nb\\r\\nc");
    }

    #[test]
    fn level_names_follow_hclog_and_default_to_warn() {
        assert_eq!(parse_level("trace"), Some(Level::TRACE));
        assert_eq!(parse_level("Info"), Some(Level::INFO));
        assert_eq!(parse_level("off"), None);
        assert_eq!(parse_level("nonsense"), Some(Level::WARN));
        assert_eq!(bracket(&Level::INFO), "[INFO] ");
    }
}
