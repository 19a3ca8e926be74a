//! The results of a control run, shaped as Powerpipe's execution tree: a
//! benchmark (group) holds benchmarks and controls; a control holds result
//! rows. Output formats and exit codes are computed from this.

use std::collections::BTreeMap;

/// A control result's status, in Powerpipe's display order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    /// the query for this row failed
    Error,
    /// the resource fails the control
    Alarm,
    /// informational
    Info,
    /// the resource passes
    Ok,
    /// not applicable
    Skip,
}

impl Status {
    /// Parses a `status` column value; anything else is a control error.
    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "ok" => Status::Ok,
            "alarm" => Status::Alarm,
            "info" => Status::Info,
            "skip" => Status::Skip,
            "error" => Status::Error,
            _ => return None,
        })
    }
    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Alarm => "alarm",
            Status::Info => "info",
            Status::Skip => "skip",
            Status::Error => "error",
        }
    }
}

/// One result row of a control.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultRow {
    /// the `reason` column
    pub reason: String,
    /// the `resource` column
    pub resource: String,
    /// the `status` column
    pub status: Status,
    /// every other scalar column, in column order, as text (the names are
    /// shared by every row of the control)
    pub dimensions: Vec<(std::sync::Arc<str>, String)>,
}

/// Counts per status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusSummary {
    /// alarm rows
    pub alarm: u64,
    /// ok rows
    pub ok: u64,
    /// info rows
    pub info: u64,
    /// skip rows
    pub skip: u64,
    /// error rows (and control run errors)
    pub error: u64,
}

impl StatusSummary {
    /// Adds one row of `status`.
    pub fn count(&mut self, status: Status) {
        match status {
            Status::Alarm => self.alarm += 1,
            Status::Ok => self.ok += 1,
            Status::Info => self.info += 1,
            Status::Skip => self.skip += 1,
            Status::Error => self.error += 1,
        }
    }
    /// Adds another summary.
    pub fn add(&mut self, other: &StatusSummary) {
        self.alarm += other.alarm;
        self.ok += other.ok;
        self.info += other.info;
        self.skip += other.skip;
        self.error += other.error;
    }
    /// alarm + error, as Powerpipe's header counts failures.
    pub fn failed(&self) -> u64 {
        self.alarm + self.error
    }
    /// all five.
    pub fn total(&self) -> u64 {
        self.alarm + self.ok + self.info + self.skip + self.error
    }
}

/// How a control's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// ran to the end (its rows may still hold alarms or errors)
    Complete,
    /// the query could not run; see `run_error`
    Error,
}

impl RunStatus {
    /// Powerpipe's name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Complete => "complete",
            RunStatus::Error => "error",
        }
    }
}

/// One control's run.
#[derive(Debug, Clone)]
pub struct ControlRun {
    /// `aws_compliance.control.foundational_security_ec2_8`
    pub full_name: String,
    /// `foundational_security_ec2_8`
    pub short_name: String,
    /// the title
    pub title: String,
    /// the description
    pub description: String,
    /// the documentation markdown
    pub documentation: Option<String>,
    /// `high`, `critical`…; empty when unset
    pub severity: String,
    /// the evaluated tags
    pub tags: BTreeMap<String, String>,
    /// the dimension column names, in query column order
    pub dimension_columns: Vec<String>,
    /// the rows, ordered error, alarm, info, ok, skip (query order within each)
    pub results: Vec<ResultRow>,
    /// the counts
    pub summary: StatusSummary,
    /// how it ended
    pub run_status: RunStatus,
    /// why it could not run
    pub run_error: Option<String>,
    /// how long it took
    pub duration: std::time::Duration,
}

/// A benchmark's run (or the synthetic root group).
#[derive(Debug, Clone)]
pub struct GroupRun {
    /// `aws_compliance.benchmark.foundational_security`
    pub full_name: String,
    /// `foundational_security`
    pub short_name: String,
    /// the title
    pub title: String,
    /// the description
    pub description: String,
    /// the documentation markdown
    pub documentation: Option<String>,
    /// the evaluated tags
    pub tags: BTreeMap<String, String>,
    /// child groups and controls, in declaration order
    pub children: Vec<Node>,
}

/// A node of the tree.
#[derive(Debug, Clone)]
pub enum Node {
    /// a benchmark
    Group(GroupRun),
    /// a control
    Control(ControlRun),
}

impl Node {
    /// The status counts of everything below.
    pub fn summary(&self) -> StatusSummary {
        match self {
            Node::Control(c) => c.summary,
            Node::Group(g) => {
                let mut s = StatusSummary::default();
                for ch in &g.children {
                    s.add(&ch.summary());
                }
                s
            }
        }
    }
    /// Every control below, depth first.
    pub fn controls(&self) -> Vec<&ControlRun> {
        match self {
            Node::Control(c) => vec![c],
            Node::Group(g) => g.children.iter().flat_map(|c| c.controls()).collect(),
        }
    }
    /// The full name.
    pub fn full_name(&self) -> &str {
        match self {
            Node::Control(c) => &c.full_name,
            Node::Group(g) => &g.full_name,
        }
    }
    /// The title.
    pub fn title(&self) -> &str {
        match self {
            Node::Control(c) => &c.title,
            Node::Group(g) => &g.title,
        }
    }
}

/// A whole `check` run.
#[derive(Debug, Clone)]
pub struct CheckRun {
    /// the target that ran (a benchmark, a control, or a root over several targets)
    pub root: Node,
    /// the mod's name (`aws_compliance`)
    pub mod_name: String,
    /// start, RFC 3339
    pub start_time: String,
    /// end, RFC 3339
    pub end_time: String,
    /// variable values referenced by the run, for snapshots (`var.x` → value)
    pub variables: BTreeMap<String, serde_json::Value>,
}

/// Powerpipe's exit codes.
pub mod exit_code {
    /// no alarms, no errors
    pub const OK: u8 = 0;
    /// at least one alarm, no errors
    pub const ALARMS: u8 = 1;
    /// at least one control error
    pub const ERRORS: u8 = 2;
    /// initialisation failed: the mod, its variables, the targets or the
    /// exports asked for (as Powerpipe: workspace load and export checks)
    pub const INIT_FAILED: u8 = 250;
    /// Turbot Pipes input missing (`--snapshot` without a token or a
    /// snapshot location that does not exist)
    pub const BAD_INPUT: u8 = 254;
    /// a flag the command line rejects: an unknown flag, a bad `--output`
    /// value (Powerpipe's cobra/enumflag errors exit 255)
    pub const FLAG_ERROR: u8 = 255;
}

impl CheckRun {
    /// 2 if any error, else 1 if any alarm, else 0.
    pub fn exit_code(&self) -> u8 {
        let s = self.root.summary();
        if s.error > 0 {
            exit_code::ERRORS
        } else if s.alarm > 0 {
            exit_code::ALARMS
        } else {
            exit_code::OK
        }
    }
}
