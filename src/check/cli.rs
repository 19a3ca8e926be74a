//! `steampipe-plugin-aws check [NAME...]`: Powerpipe's `control run` /
//! `benchmark run` for the bundled mod, without Steampipe or Powerpipe.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::check::model::{exit_code, CheckRun, ControlRun, Node, RunStatus, StatusSummary};
use crate::check::output::{self, Format};
use crate::check::powerpipe_mod::{ModDef, ResolvedMod, VarInputs};
use crate::check::runner::{self, ConnectionSpec, Target};
use crate::check::snapshot_upload;

/// How a run is shown and exported: `check`'s and `check merge`'s flags.
#[derive(clap::Args, Debug, Clone)]
pub struct OutputArgs {
    /// Output format: text, brief, csv, json, md, html, snapshot (pps), none.
    #[arg(long, default_value = "text")]
    pub output: String,
    /// Include the header line in csv output and exports.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub header: bool,
    /// Separator between csv cells.
    #[arg(long, default_value = ",")]
    pub separator: String,
    /// Export to a format (csv, json, md, html, nunit3, asff, snapshot/pps) or a file name (repeatable).
    #[arg(long = "export", value_name = "FORMAT|FILE")]
    pub exports: Vec<String>,
}

/// The `--export` targets: a format (written under Powerpipe's default file
/// name) or a file name.
pub type Exports = Vec<(Format, Option<PathBuf>)>;

impl OutputArgs {
    /// The output format and the exports, or the failed exit code (after
    /// saying why, as Powerpipe does).
    pub fn formats(&self) -> Result<(Format, Exports), ExitCode> {
        let output =
            Format::parse_output(&self.output).map_err(|e| fail(exit_code::FLAG_ERROR, &e))?;
        let mut exports = Vec::new();
        for e in &self.exports {
            exports.push(Format::parse_export(e).map_err(|e| fail(exit_code::INIT_FAILED, &e))?);
        }
        // Powerpipe takes either format names or file names, not both.
        if exports.iter().any(|e| e.1.is_some()) && exports.iter().any(|e| e.1.is_none()) {
            return Err(fail(
                exit_code::INIT_FAILED,
                "combination of named and unnamed exports is not supported",
            ));
        }
        Ok((output, exports))
    }

    /// The csv options.
    pub fn csv(&self) -> output::CsvOptions {
        output::CsvOptions {
            separator: self.separator.clone(),
            header: self.header,
        }
    }
}

/// Arguments of `check`.
#[derive(clap::Args, Debug, Clone)]
#[command(args_conflicts_with_subcommands = true, disable_help_subcommand = true)]
pub struct CheckArgs {
    /// Controls or benchmarks to run (`aws_compliance.control.x`, `control.x` or `x`); none: the whole bundled benchmark.
    pub names: Vec<String>,
    /// Load the mod from this directory instead of the one built into the binary.
    #[arg(long, value_name = "DIR")]
    pub mod_location: Option<PathBuf>,
    /// Set a mod variable: `--var 'tag_dimensions=["Environment"]'` (repeatable; PP_VAR_<name> works too).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// Read mod variables from a .ppvars file (repeatable).
    #[arg(long = "var-file", value_name = "FILE")]
    pub var_files: Vec<PathBuf>,
    /// Connections to check, from a Steampipe .spc file (every aws connection in it); repeatable.
    #[arg(long = "config", value_name = "FILE.spc")]
    pub configs: Vec<PathBuf>,
    /// Without --config: regions to check (comma-separated; wildcards allowed, e.g. 'eu-*').
    #[arg(long, value_delimiter = ',', value_name = "REGIONS")]
    pub regions: Vec<String>,
    /// Without --config: the AWS profile.
    #[arg(long)]
    pub profile: Option<String>,
    /// Without --config: the region for global calls.
    #[arg(long)]
    pub default_region: Option<String>,
    /// Without --config: an endpoint override for EC2 and STS (e.g. a local emulator).
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// --output, --export and the csv options
    #[command(flatten)]
    pub out: OutputArgs,
    /// Show a progress line on stderr while controls run (when stderr is a terminal).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub progress: bool,
    /// Upload the snapshot to Turbot Pipes, visible to the workspace.
    #[arg(long, conflicts_with = "share")]
    pub snapshot: bool,
    /// Upload the snapshot to Turbot Pipes, visible to anyone with the link.
    #[arg(long)]
    pub share: bool,
    /// Where to upload: `<identity>/<workspace>`.
    #[arg(long, value_name = "IDENTITY/WORKSPACE")]
    pub snapshot_location: Option<String>,
    /// The snapshot's title (default: the target's title).
    #[arg(long)]
    pub snapshot_title: Option<String>,
    /// A snapshot tag `key=value` (repeatable).
    #[arg(long = "snapshot-tag", value_name = "KEY=VALUE")]
    pub snapshot_tags: Vec<String>,
    /// The Turbot Pipes host.
    #[arg(long, default_value = "pipes.turbot.com", env = "PIPES_HOST")]
    pub pipes_host: String,
    /// The Turbot Pipes API token.
    #[arg(long, env = "PIPES_TOKEN", hide_env_values = true)]
    pub pipes_token: Option<String>,
    /// `check merge FILE...`: combine the JSON or snapshot outputs of several runs.
    #[command(subcommand)]
    pub command: Option<CheckCommand>,
}

/// What `check` does besides running controls.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum CheckCommand {
    /// Merge check's JSON or snapshot outputs (runs over slices of the connections) into one report.
    Merge(crate::check::merge::MergeArgs),
}

fn fail(code: u8, msg: &str) -> ExitCode {
    eprintln!("Error: {msg}");
    ExitCode::from(code)
}

/// The connections from `--config` files: every `connection` block whose
/// plugin is aws, with Steampipe's reserved attributes removed.
pub fn connections_from_spc(path: &Path) -> Result<Vec<ConnectionSpec>, String> {
    connections_in(path, &crate::check::spc_limiters::read_spc(path)?)
}

/// [`connections_from_spc`] of a file already parsed (`path` names it in errors).
pub fn connections_in(path: &Path, body: &hcl::Body) -> Result<Vec<ConnectionSpec>, String> {
    // `plugin "<label>" { source = "aws" ... }`: a connection names one with
    // `plugin = plugin.<label>` (its `limiter` blocks are Steampipe's).
    let instances = crate::check::spc_limiters::aws_plugin_labels(body);
    let mut out = Vec::new();
    for block in body.blocks().filter(|b| b.identifier() == "connection") {
        let name = block
            .labels()
            .first()
            .map(|l| l.as_str().to_string())
            .ok_or_else(|| format!("{}: a connection block without a name", path.display()))?;
        let mut plugin = String::new();
        let mut is_aggregator = false;
        let mut kept = hcl::Body::builder();
        for a in block.body().attributes() {
            match a.key() {
                "plugin" => plugin = a.expr().to_string().trim_matches('"').to_string(),
                "type" => is_aggregator = a.expr().to_string().contains("aggregator"),
                "connections" | "import_schema" => {}
                _ => kept = kept.add_attribute(a.clone()),
            }
        }
        let aws = crate::check::spc_limiters::is_aws_plugin(&plugin)
            || (plugin.strip_prefix("plugin.")).is_some_and(|p| instances.iter().any(|i| i == p));
        if !aws || is_aggregator {
            continue;
        }
        let config = hcl::to_string(&kept.build())
            .map_err(|e| format!("{}: connection {name}: {e}", path.display()))?;
        out.push(ConnectionSpec { name, config });
    }
    if out.is_empty() {
        return Err(format!(
            "{}: no aws connection in this file",
            path.display()
        ));
    }
    Ok(out)
}

fn hcl_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// The one connection built from `--regions`, `--profile`, `--endpoint-url`.
pub fn connection_from_flags(args: &CheckArgs) -> ConnectionSpec {
    let mut lines = Vec::new();
    if let Some(r) = &args.default_region {
        lines.push(format!("default_region = {}", hcl_string(r)));
    }
    if let Some(u) = &args.endpoint_url {
        lines.push(format!("endpoint_url = {}", hcl_string(u)));
    }
    if let Some(p) = &args.profile {
        lines.push(format!("profile = {}", hcl_string(p)));
    }
    let regions: Vec<String> = args
        .regions
        .iter()
        .map(|r| r.trim())
        .filter(|r| !r.is_empty())
        .map(hcl_string)
        .collect();
    if !regions.is_empty() {
        lines.push(format!("regions = [{}]", regions.join(", ")));
    }
    ConnectionSpec {
        name: "aws".to_string(),
        config: lines.iter().map(|l| format!("{l}\n")).collect(),
    }
}

/// Marks as failed every control of the tree that reads a table that could
/// not be fetched, with that table's error.
fn fail_unfetched(
    node: &mut Node,
    tables_of: &BTreeMap<String, Vec<String>>,
    failed: &BTreeMap<String, String>,
) {
    match node {
        Node::Control(c) => {
            let error = tables_of
                .get(&c.short_name)
                .into_iter()
                .flatten()
                .find_map(|t| failed.get(t));
            if let Some(e) = error {
                set_error(c, e);
            }
        }
        Node::Group(g) => g
            .children
            .iter_mut()
            .for_each(|c| fail_unfetched(c, tables_of, failed)),
    }
}

fn set_error(c: &mut ControlRun, error: &str) {
    c.run_status = RunStatus::Error;
    c.run_error = Some(error.to_string());
    c.results.clear();
    c.summary = StatusSummary {
        error: 1,
        ..Default::default()
    };
}

/// Powerpipe's test for a Turbot Pipes workspace (`<identity>/<workspace>`):
/// exactly two `/`-separated parts. Anything else is a local directory.
fn is_pipes_workspace(location: &str) -> bool {
    location.split('/').count() == 2
}

/// The display width asked for: POWERPIPE_DISPLAY_WIDTH, else the
/// terminal's columns when stdout is one, else 0 (the renderer keeps it
/// between the tree's minimum and 200, as Powerpipe does).
pub(crate) fn display_width() -> usize {
    if let Some(w) = std::env::var("POWERPIPE_DISPLAY_WIDTH")
        .ok()
        .and_then(|w| w.trim().parse().ok())
    {
        return w;
    }
    if !std::io::stdout().is_terminal() {
        return 0;
    }
    // SAFETY: TIOCGWINSZ fills the winsize struct it is given, nothing more.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) == 0 {
            return usize::from(ws.ws_col);
        }
    }
    0
}

/// Runs `check`; returns Powerpipe's exit code.
pub fn run(args: CheckArgs) -> ExitCode {
    crate::memory::limit_arenas();
    if let Some(CheckCommand::Merge(m)) = args.command {
        return crate::check::merge::run(m);
    }
    let start_time = runner::now_rfc3339();
    let (output_format, exports) = match args.out.formats() {
        Ok(f) => f,
        Err(code) => return code,
    };
    if args.snapshot || args.share {
        match args.snapshot_location.as_deref() {
            // A local directory (anything but `<identity>/<workspace>`): it must exist.
            Some(loc) if !is_pipes_workspace(loc) && !Path::new(loc).is_dir() => {
                return fail(
                    exit_code::BAD_INPUT,
                    &format!("snapshot location {loc} does not exist"),
                );
            }
            Some(loc) if !is_pipes_workspace(loc) => {}
            _ if args.pipes_token.as_deref().unwrap_or("").is_empty() => {
                return fail(exit_code::BAD_INPUT, "--snapshot and --share need a Turbot Pipes token: pass --pipes-token or set PIPES_TOKEN");
            }
            _ => {}
        }
    }

    // The mod: the bundled one unless --mod-location.
    let (mod_dir, extracted) = match &args.mod_location {
        Some(d) => (d.clone(), None),
        None => match runner::extract_bundled_mod(&std::env::temp_dir()) {
            Ok(d) => (d.clone(), Some(d)),
            Err(e) => {
                return fail(
                    exit_code::INIT_FAILED,
                    &format!("cannot unpack the bundled mod: {e}"),
                )
            }
        },
    };
    let code = run_with_mod(&args, &mod_dir, output_format, &exports, start_time);
    if let Some(d) = extracted {
        let _ = std::fs::remove_dir_all(d);
    }
    code
}

fn run_with_mod(
    args: &CheckArgs,
    mod_dir: &Path,
    output_format: Format,
    exports: &[(Format, Option<PathBuf>)],
    start_time: String,
) -> ExitCode {
    let def = match ModDef::load(mod_dir) {
        Ok(d) => d,
        Err(e) => return fail(exit_code::INIT_FAILED, &format!("loading the mod: {e}")),
    };
    let mut inputs = VarInputs::default();
    let var_result = (|| {
        inputs.from_env(std::env::vars(), &def)?;
        inputs.from_mod_dir(mod_dir)?;
        for f in &args.var_files {
            inputs.from_file(f)?;
        }
        for v in &args.vars {
            inputs.from_arg(v)?;
        }
        Ok::<(), crate::check::powerpipe_mod::ModError>(())
    })();
    if let Err(e) = var_result {
        return fail(exit_code::INIT_FAILED, &e.to_string());
    }
    let m = match ResolvedMod::resolve(def, &inputs) {
        Ok(m) => m,
        Err(e) => return fail(exit_code::INIT_FAILED, &e.to_string()),
    };
    let targets: Vec<Target> = if args.names.is_empty() {
        match runner::top_benchmarks(&m) {
            Ok(t) => t,
            Err(e) => return fail(exit_code::INIT_FAILED, &e.to_string()),
        }
    } else {
        let mut t = Vec::new();
        for n in &args.names {
            match runner::resolve_target(&m.def, n) {
                Ok(x) => t.push(x),
                Err(e) => return fail(exit_code::INIT_FAILED, &e.to_string()),
            }
        }
        t
    };
    let mut controls = Vec::new();
    for t in &targets {
        match runner::controls_of(&m, t) {
            Ok(c) => controls.extend(c),
            Err(e) => return fail(exit_code::INIT_FAILED, &e.to_string()),
        }
    }

    // Connections.
    let mut limiters = Vec::new();
    let connections = if args.configs.is_empty() {
        vec![connection_from_flags(args)]
    } else {
        let mut all = Vec::new();
        for f in &args.configs {
            let body = match crate::check::spc_limiters::read_spc(f) {
                Ok(b) => b,
                Err(e) => return fail(exit_code::BAD_INPUT, &e),
            };
            match connections_in(f, &body) {
                Ok(c) => all.extend(c),
                Err(e) => return fail(exit_code::BAD_INPUT, &e),
            }
            // The aws plugin's `limiter` blocks, as Steampipe passes them on.
            match crate::check::spc_limiters::limiters_in(f, &body) {
                Ok(l) => limiters.extend(l),
                Err(e) => return fail(exit_code::BAD_INPUT, &e),
            }
        }
        all
    };

    // Only the tables and columns the controls' SQL names are fetched, each
    // table once, whatever number of controls read it.
    let schema = crate::aws::plugin().schema();
    let mut sqls = Vec::new();
    let mut tables_of = BTreeMap::new();
    for c in &controls {
        if let Ok(sql) = m.control_sql(c) {
            tables_of.insert(c.clone(), runner::tables_named(&sql, &schema));
            sqls.push(sql);
        }
    }
    let uses = runner::tables_used(&sqls, &schema);

    let progress = args.progress && std::io::stderr().is_terminal();
    let total = controls.len();
    if progress {
        let tables: Vec<&str> = uses.iter().map(|u| u.table.as_str()).collect();
        eprint!(
            "\r{}",
            output::progress_line(0, total, &format!("fetching {}", tables.join(", ")))
        );
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            return fail(
                exit_code::INIT_FAILED,
                &format!("cannot start the async runtime: {e}"),
            )
        }
    };
    let db = match rusqlite::Connection::open_in_memory() {
        Ok(db) => db,
        Err(e) => return fail(exit_code::INIT_FAILED, &format!("opening SQLite: {e}")),
    };
    // Rows go into SQLite as they arrive; a table that could not be fetched
    // fails the controls that read it.
    let failed = match rt.block_on(runner::load(&db, &connections, &limiters, &uses)) {
        Ok(f) => f,
        Err(e) => {
            return fail(
                exit_code::INIT_FAILED,
                &format!("loading rows into SQLite: {e}"),
            )
        }
    };
    crate::memory::release();
    let mut done = 0;
    let mut on_control = |name: &str| {
        if progress {
            eprint!("\r\x1b[K{}", output::progress_line(done, total, name));
        }
        done += 1;
    };
    // As Powerpipe: several targets are one merged run (`check.<mod>`) when an
    // export names a file, else each target is its own run, shown, exported
    // and saved in turn.
    let groups: Vec<Vec<Target>> = if exports.iter().any(|e| e.1.is_some()) || targets.len() < 2 {
        vec![targets.clone()]
    } else {
        targets.iter().map(|t| vec![t.clone()]).collect()
    };
    let mut runs = Vec::new();
    for (i, group) in groups.iter().enumerate() {
        let started = if i == 0 {
            start_time.clone()
        } else {
            runner::now_rfc3339()
        };
        match runner::check(&db, &m, group, started, &mut on_control) {
            Ok(mut r) => {
                fail_unfetched(&mut r.root, &tables_of, &failed);
                runs.push(r);
            }
            Err(e) => return fail(exit_code::INIT_FAILED, &e.to_string()),
        }
    }
    if progress {
        eprint!("\r\x1b[K");
    }
    let mut code = exit_code::OK;
    for run in &runs {
        if let Err(c) = emit(args, run, output_format, exports, &rt) {
            return c;
        }
        // The worst of the runs (Powerpipe keeps only the last run's counts).
        code = code.max(run.exit_code());
    }
    ExitCode::from(code)
}

/// Prints one run, writes its exports and saves or uploads its snapshot.
fn emit(
    args: &CheckArgs,
    run: &CheckRun,
    output_format: Format,
    exports: &[(Format, Option<PathBuf>)],
    rt: &tokio::runtime::Runtime,
) -> Result<(), ExitCode> {
    let width = display_width();
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let csv = args.out.csv();
    // Written as it is rendered: a large run is never held as text.
    let mut stdout = std::io::stdout().lock();
    let mut sink = output::Sink::writer(&mut stdout);
    output::write_with(run, output_format, width, color, &csv, &mut sink);
    let _ = sink.finish();
    drop(stdout);

    for (format, path) in exports {
        let path = path
            .clone()
            .unwrap_or_else(|| PathBuf::from(output::default_export_name(run, *format)));
        let written = std::fs::File::create(&path).and_then(|mut f| {
            let mut sink = output::Sink::writer(&mut f);
            output::write_export(run, *format, width, output_format, &csv, &mut sink);
            sink.finish().map(drop)
        });
        if let Err(e) = written {
            return Err(fail(
                exit_code::BAD_INPUT,
                &format!("cannot write export {}: {e}", path.display()),
            ));
        }
        eprintln!("File exported to {}", path.display());
    }

    if let Some(dir) = args
        .snapshot_location
        .as_deref()
        .filter(|l| (args.snapshot || args.share) && !is_pipes_workspace(l))
    {
        // A local snapshot location: the snapshot is saved there, as an export.
        let path = Path::new(dir).join(output::default_export_name(run, Format::Snapshot));
        let body = output::render_export(run, Format::Snapshot, width, output_format, &csv);
        if let Err(e) = std::fs::write(&path, body) {
            return Err(fail(
                exit_code::ERRORS,
                &format!("cannot write snapshot {}: {e}", path.display()),
            ));
        }
        eprintln!("Snapshot saved to {}", path.display());
    } else if args.snapshot || args.share {
        let snapshot = output::render_export(run, Format::Snapshot, width, output_format, &csv);
        let upload = snapshot_upload::Upload {
            host: args.pipes_host.clone(),
            token: args.pipes_token.clone().unwrap_or_default(),
            location: args.snapshot_location.clone(),
            title: args
                .snapshot_title
                .clone()
                .unwrap_or_else(|| run.root.title().to_string()),
            tags: args.snapshot_tags.clone(),
            visibility: if args.share {
                "anyone_with_link"
            } else {
                "workspace"
            }
            .to_string(),
        };
        match rt.block_on(upload.send(&snapshot)) {
            Ok(url) => eprintln!("Snapshot uploaded to {url}"),
            Err(e) => {
                return Err(fail(
                    exit_code::ERRORS,
                    &format!("snapshot upload failed: {e}"),
                ))
            }
        }
    }
    Ok(())
}
