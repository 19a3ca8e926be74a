//! `install` and `uninstall`: put the running binary where Steampipe looks for
//! plugins, with a connection `.spc` file, and take both away again.
//!
//! Layout under the install root (`--install-dir`, else `STEAMPIPE_INSTALL_DIR`,
//! else `~/.steampipe`):
//!
//! | `--as` | plugin binary | config | `plugin =` |
//! |---|---|---|---|
//! | `local` | `plugins/local/aws/aws.plugin` | `config/aws_rust.spc` | `"local/aws"` |
//! | `hub` | `plugins/hub.steampipe.io/plugins/turbot/aws@latest/steampipe-plugin-aws.plugin` | `config/aws.spc` | `"aws"` |
//!
//! Rules:
//! - Steampipe requires exactly one `.plugin` file in a plugin folder, so any
//!   other plugin binary there (turbot's Go plugin, say) is refused, or with
//!   `--force` moved aside to `<name>.bak`; `uninstall` moves it back.
//! - An existing file whose content differs is never replaced without
//!   `--force`; a config file install did not write is moved aside to
//!   `<name>.bak` (and restored by `uninstall`), one it wrote is replaced.
//! - Every check is made before anything is touched: a refusal changes nothing.
//! - Files are written to a temporary file in the same folder and renamed into
//!   place, so a running Steampipe never sees half a plugin.
//! - `uninstall` removes a binary only if it is this build (or, with `--force`,
//!   another build of this plugin, recognised by [`BINARY_MARKER`]; never a
//!   foreign binary), and the `.spc` file only if it is exactly what `install`
//!   writes (or with `--force`).

use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::aws::AwsConnection;
use crate::plugin::ConnectionConfig;

/// The first line of every `.spc` file `install` writes.
pub const SPC_MARKER: &str = "# Written by steampipe-plugin-aws install";

/// A byte string present in every build of this plugin (it is the needle
/// [`is_this_plugin`] searches for), so that an older build at the install
/// path is told apart from someone else's binary.
pub const BINARY_MARKER: &str = "steampipe-plugin-aws(rust):install-marker:v1";

/// The reserved connection attributes Steampipe strips before sending a config.
const RESERVED_ATTRIBUTES: [&str; 4] = ["plugin", "type", "connections", "import_schema"];

/// How the plugin is installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum InstallAs {
    /// as plugin `local/aws` (plugins/local/aws/aws.plugin, config/aws_rust.spc)
    Local,
    /// in place of turbot's aws plugin, so `plugin = "aws"` loads it (config/aws.spc)
    Hub,
}

impl InstallAs {
    /// The plugin folder under the install root.
    pub fn plugin_dir(self, root: &Path) -> PathBuf {
        match self {
            InstallAs::Local => root.join("plugins").join("local").join("aws"),
            InstallAs::Hub => root
                .join("plugins")
                .join("hub.steampipe.io")
                .join("plugins")
                .join("turbot")
                .join("aws@latest"),
        }
    }
    /// The binary's file name in the plugin folder.
    pub fn plugin_file_name(self) -> &'static str {
        match self {
            InstallAs::Local => "aws.plugin",
            InstallAs::Hub => "steampipe-plugin-aws.plugin",
        }
    }
    /// The `plugin =` value of the connection.
    pub fn plugin_ref(self) -> &'static str {
        match self {
            InstallAs::Local => "local/aws",
            InstallAs::Hub => "aws",
        }
    }
    /// The `.spc` file name under `config/`.
    pub fn spc_file_name(self) -> &'static str {
        match self {
            InstallAs::Local => "aws_rust.spc",
            InstallAs::Hub => "aws.spc",
        }
    }
    /// The connection name used when `--connection` is not given.
    pub fn default_connection(self) -> &'static str {
        match self {
            InstallAs::Local => "aws_rust",
            InstallAs::Hub => "aws",
        }
    }
}

/// The paths `install` writes for one install root and kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// the install root
    pub root: PathBuf,
    /// the plugin folder
    pub plugin_dir: PathBuf,
    /// the plugin binary
    pub plugin_path: PathBuf,
    /// `<root>/config`
    pub config_dir: PathBuf,
    /// the connection config file
    pub spc_path: PathBuf,
}

impl Layout {
    /// The layout for `install_as` under `root`.
    pub fn new(root: &Path, install_as: InstallAs) -> Layout {
        let plugin_dir = install_as.plugin_dir(root);
        let config_dir = root.join("config");
        Layout {
            root: root.to_path_buf(),
            plugin_path: plugin_dir.join(install_as.plugin_file_name()),
            plugin_dir,
            spc_path: config_dir.join(install_as.spc_file_name()),
            config_dir,
        }
    }
}

/// `install`'s command-line arguments.
#[derive(Debug, clap::Args)]
pub struct InstallArgs {
    /// Steampipe's install directory [default: $STEAMPIPE_INSTALL_DIR, else ~/.steampipe]
    #[arg(long, value_name = "DIR")]
    pub install_dir: Option<PathBuf>,
    /// Install as plugin `local/aws`, or in place of turbot's `aws` plugin
    #[arg(long = "as", value_enum, value_name = "KIND", default_value_t = InstallAs::Local)]
    pub install_as: InstallAs,
    /// Connection name (the Postgres schema) [default: aws_rust, or aws with --as hub]
    #[arg(long, value_name = "NAME")]
    pub connection: Option<String>,
    /// Regions (or wildcards) to query, comma-separated [default: the default region only]
    #[arg(long, value_name = "R1,R2", value_delimiter = ',')]
    pub regions: Vec<String>,
    /// AWS profile for the connection
    #[arg(long, value_name = "PROFILE")]
    pub profile: Option<String>,
    /// Replace files that differ, and move other plugin binaries and config files aside (to .bak)
    #[arg(long)]
    pub force: bool,
}

/// `uninstall`'s command-line arguments.
#[derive(Debug, clap::Args)]
pub struct UninstallArgs {
    /// Steampipe's install directory [default: $STEAMPIPE_INSTALL_DIR, else ~/.steampipe]
    #[arg(long, value_name = "DIR")]
    pub install_dir: Option<PathBuf>,
    /// Which install to remove
    #[arg(long = "as", value_enum, value_name = "KIND", default_value_t = InstallAs::Local)]
    pub install_as: InstallAs,
    /// Also remove another build of this plugin, and a config file that was edited or not written by install
    #[arg(long)]
    pub force: bool,
}

/// What `install` is to do.
#[derive(Debug, Clone)]
pub struct InstallOptions {
    /// the install root (absolute)
    pub root: PathBuf,
    /// local or hub
    pub install_as: InstallAs,
    /// the connection name
    pub connection: String,
    /// `regions`, omitted when `None`
    pub regions: Option<Vec<String>>,
    /// `profile`, omitted when `None`
    pub profile: Option<String>,
    /// replace differing files, move others aside
    pub force: bool,
    /// the plugin binary to copy (the running executable)
    pub binary: PathBuf,
    /// whether the next-step hint must name the root (`--install-dir`), as
    /// Steampipe would not find it by default
    pub name_root_in_hint: bool,
}

/// What `uninstall` is to do.
#[derive(Debug, Clone)]
pub struct UninstallOptions {
    /// the install root (absolute)
    pub root: PathBuf,
    /// local or hub
    pub install_as: InstallAs,
    /// remove other builds and edited config files too
    pub force: bool,
    /// the running binary, compared with the installed one
    pub binary: PathBuf,
}

/// Why nothing (or not everything) was done: one line per problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// the problems, each naming the path and what to do
    pub problems: Vec<String>,
    /// the outcome, e.g. "Nothing was written."
    pub outcome: &'static str,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.problems {
            writeln!(f, "error: {p}")?;
        }
        f.write_str(self.outcome)
    }
}

impl std::error::Error for Failure {}

const NOTHING_WRITTEN: &str = "Nothing was written.";
const NOTHING_REMOVED: &str = "Nothing was removed.";

fn fail(outcome: &'static str, problem: String) -> Failure {
    Failure {
        problems: vec![problem],
        outcome,
    }
}

/// The install root: `flag`, else `env` (`STEAMPIPE_INSTALL_DIR`), else
/// `<home>/.steampipe`; a leading `~/` is expanded and a relative path made
/// absolute (against the current directory), as Steampipe would see it.
pub fn resolve_root(
    flag: Option<&Path>,
    env: Option<OsString>,
    home: Option<OsString>,
) -> Result<PathBuf, String> {
    let home = home.filter(|h| !h.is_empty()).map(PathBuf::from);
    let chosen = match (flag, env.filter(|e| !e.is_empty())) {
        (Some(f), _) if f.as_os_str().is_empty() => {
            return Err("--install-dir must not be empty".into())
        }
        (Some(f), _) => f.to_path_buf(),
        (None, Some(e)) => PathBuf::from(e),
        (None, None) => match &home {
            Some(h) => h.join(".steampipe"),
            None => {
                return Err(
                    "cannot find the home directory: HOME is not set; pass --install-dir DIR or set STEAMPIPE_INSTALL_DIR"
                        .into(),
                )
            }
        },
    };
    let expanded = match chosen.strip_prefix("~") {
        Ok(rest) => match &home {
            Some(h) => h.join(rest),
            None => {
                return Err(format!(
                    "cannot expand '~' in {}: HOME is not set",
                    chosen.display()
                ))
            }
        },
        Err(_) => chosen,
    };
    std::path::absolute(&expanded)
        .map_err(|e| format!("cannot make {} absolute: {e}", expanded.display()))
}

/// Quotes `s` as an HCL string literal that evaluates back to `s` (no
/// template interpolation).
pub fn hcl_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' | '%' if chars.peek() == Some(&'{') => {
                out.push(c);
                out.push(c);
            }
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The `.spc` file `install` writes: the marker line, one connection with
/// `plugin`, `regions` and `profile` if given, and every other argument of the
/// aws plugin documented in a commented-out line.
pub fn render_spc(
    install_as: InstallAs,
    connection: &str,
    regions: Option<&[String]>,
    profile: Option<&str>,
) -> String {
    let regions_line = match regions {
        Some(list) => format!(
            "  regions = [{}]",
            list.iter()
                .map(|r| hcl_quote(r))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => "  # regions = [\"*\"]".to_string(),
    };
    let profile_line = match profile {
        Some(p) => format!("  profile = {}", hcl_quote(p)),
        None => "  # profile = \"my-profile\"".to_string(),
    };
    let lines = [
        "# The arguments are those of turbot's aws plugin: uncomment and set the ones you need.".into(),
        String::new(),
        format!("connection {} {{", hcl_quote(connection)),
        format!("  plugin = {}", hcl_quote(install_as.plugin_ref())),
        String::new(),
        "  # Regions to query: names or wildcards (\"*\" for all, \"us-*\", \"eu-??st-1\").".into(),
        "  # Without it, only the default region is queried.".into(),
        regions_line,
        String::new(),
        "  # A named profile from ~/.aws/config and ~/.aws/credentials.".into(),
        profile_line,
        String::new(),
        "  # The region for global calls, and the one queried when regions is unset".into(),
        "  # (default: AWS_REGION or AWS_DEFAULT_REGION, then the profile's region, then us-east-1).".into(),
        "  # default_region = \"eu-west-1\"".into(),
        String::new(),
        "  # Static credentials, instead of a profile or the environment. Never commit real keys.".into(),
        "  # access_key    = \"AKIA...\"".into(),
        "  # secret_key    = \"...\"".into(),
        "  # session_token = \"...\"".into(),
        String::new(),
        "  # Attempts per AWS call (at least 1; default 9, or AWS_MAX_ATTEMPTS),".into(),
        "  # and the first retry delay in milliseconds (at least 1; default 25).".into(),
        "  # max_error_retry_attempts = 9".into(),
        "  # min_error_retry_delay    = 25".into(),
        String::new(),
        "  # AWS error codes (glob patterns) and error-message regular expressions".into(),
        "  # whose errors are returned as empty results.".into(),
        "  # ignore_error_codes    = [\"AccessDenied\", \"AccessDeniedException\", \"UnauthorizedOperation\"]".into(),
        "  # ignore_error_messages = [\"^.*not authorized.*$\"]".into(),
        String::new(),
        "  # One endpoint for every AWS service, e.g. LocalStack or moto (default: AWS_ENDPOINT_URL).".into(),
        "  # endpoint_url = \"http://localhost:4566\"".into(),
        String::new(),
        "  # S3 path-style addressing (default false).".into(),
        "  # s3_force_path_style = true".into(),
        "}".into(),
    ];
    let mut body = lines.join("\n");
    body.push('\n');
    let uninstall = match install_as {
        InstallAs::Local => "steampipe-plugin-aws uninstall",
        InstallAs::Hub => "steampipe-plugin-aws uninstall --as hub",
    };
    format!(
        "{SPC_MARKER} (checksum {:016x}); `{uninstall}` removes it unless it was edited.\n{body}",
        fnv1a64(body.as_bytes())
    )
}

/// FNV-1a, 64 bits: the checksum in the marker line.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// One connection block of a `.spc` file, as Steampipe reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct SpcConnection {
    /// the block label
    pub name: String,
    /// the `plugin` attribute, if a string
    pub plugin: Option<String>,
    /// the evaluated attributes other than the reserved ones, sorted by name
    pub attributes: Vec<(String, hcl::Value)>,
}

impl SpcConnection {
    /// The attribute string Steampipe sends as `ConnectionConfig.config`:
    /// `name = literal` lines, sorted.
    pub fn config_string(&self) -> String {
        self.attributes
            .iter()
            .map(|(k, v)| format!("{k} = {}\n", hcl_literal(v)))
            .collect()
    }
}

/// A value as an HCL literal on one line, as hclwrite emits it (strings
/// escaped so that they evaluate back to themselves).
pub fn hcl_literal(v: &hcl::Value) -> String {
    match v {
        hcl::Value::Null => "null".into(),
        hcl::Value::Bool(b) => b.to_string(),
        hcl::Value::Number(n) => n.to_string(),
        hcl::Value::String(s) => hcl_quote(s),
        hcl::Value::Array(items) => format!(
            "[{}]",
            items.iter().map(hcl_literal).collect::<Vec<_>>().join(", ")
        ),
        hcl::Value::Object(map) => format!(
            "{{ {} }}",
            map.iter()
                .map(|(k, v)| format!("{} = {}", hcl_quote(k), hcl_literal(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Reads the single connection block of a `.spc` file, evaluating its
/// attributes (literals only) and dropping the reserved ones, as Steampipe does.
pub fn read_spc_connection(text: &str) -> Result<SpcConnection, String> {
    let body = hcl::parse(text).map_err(|e| crate::plugin::config::hcl_error(&e))?;
    let mut blocks = body.blocks().filter(|b| b.identifier() == "connection");
    let block = blocks
        .next()
        .ok_or_else(|| "no connection block".to_string())?;
    if blocks.next().is_some() {
        return Err("more than one connection block".into());
    }
    let name = match block.labels() {
        [label] => label.as_str().to_string(),
        _ => return Err("the connection block must have exactly one label".into()),
    };
    if let Some(b) = block.body().blocks().next() {
        return Err(format!(
            "connections do not support '{}' blocks",
            b.identifier()
        ));
    }
    let ctx = hcl::eval::Context::new();
    let mut plugin = None;
    let mut attributes = Vec::new();
    for attr in block.body().attributes() {
        use hcl::eval::Evaluate;
        let value = attr.expr().evaluate(&ctx).map_err(|e| {
            format!(
                "attribute '{}': {}",
                attr.key(),
                crate::logging::escape_line(&e.to_string())
            )
        })?;
        if attr.key() == "plugin" {
            if let hcl::Value::String(s) = &value {
                plugin = Some(s.clone());
            }
        }
        if !RESERVED_ATTRIBUTES.contains(&attr.key()) {
            attributes.push((attr.key().to_string(), value));
        }
    }
    attributes.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(SpcConnection {
        name,
        plugin,
        attributes,
    })
}

/// Whether `text` was written by `install` and not edited since: its first
/// line is the marker, whose checksum matches the rest of the file.
pub fn is_unedited_spc(text: &str) -> bool {
    let Some((first, rest)) = text.split_once('\n') else {
        return false;
    };
    let Some(after) = first.strip_prefix(SPC_MARKER) else {
        return false;
    };
    let Some(sum) = after
        .strip_prefix(" (checksum ")
        .and_then(|a| a.split(')').next())
    else {
        return false;
    };
    sum == format!("{:016x}", fnv1a64(rest.as_bytes()))
}

/// Whether the file at `path` is a build of this plugin (contains [`BINARY_MARKER`]).
pub fn is_this_plugin(path: &Path) -> io::Result<bool> {
    let data = fs::read(path)?;
    let needle = BINARY_MARKER.as_bytes();
    let first = needle[0];
    let mut start = 0;
    while let Some(i) = data[start..].iter().position(|&b| b == first) {
        let at = start + i;
        if data[at..].starts_with(needle) {
            return Ok(true);
        }
        start = at + 1;
    }
    Ok(false)
}

/// Whether two files have the same bytes.
pub fn same_contents(a: &Path, b: &Path) -> io::Result<bool> {
    let (fa, fb) = (fs::File::open(a)?, fs::File::open(b)?);
    if fa.metadata()?.len() != fb.metadata()?.len() {
        return Ok(false);
    }
    let (mut ra, mut rb) = (io::BufReader::new(fa), io::BufReader::new(fb));
    let (mut ba, mut bb) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let na = read_full(&mut ra, &mut ba)?;
        let nb = read_full(&mut rb, &mut bb)?;
        if na != nb || ba[..na] != bb[..nb] {
            return Ok(false);
        }
        if na == 0 {
            return Ok(true);
        }
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A clear message for an I/O error on `path`, with what to do about it.
fn io_problem(action: &str, path: &Path, e: &io::Error) -> String {
    let hint = match e.kind() {
        io::ErrorKind::PermissionDenied => format!(
            " Check the permissions of {} (you may need to own it), or choose another --install-dir.",
            path.parent().unwrap_or(path).display()
        ),
        io::ErrorKind::NotADirectory => {
            " A part of that path is a file, not a directory; choose another --install-dir.".into()
        }
        io::ErrorKind::ReadOnlyFilesystem => {
            " The file system is read-only; choose another --install-dir.".into()
        }
        io::ErrorKind::StorageFull => " The disk is full.".into(),
        _ => String::new(),
    };
    format!("cannot {action} {}: {e}.{hint}", path.display())
}

/// Writes `path` atomically: the content goes to a temporary file in the same
/// folder (whose name does not end in `.plugin`), is synced, given `mode`, and
/// renamed over `path`.
fn write_atomically(
    path: &Path,
    mode: u32,
    fill: impl FnOnce(&mut fs::File) -> io::Result<()>,
) -> Result<(), String> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let result = (|| -> Result<(), String> {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(|e| io_problem("create", &tmp, &e))?;
        fill(&mut file).map_err(|e| io_problem("write", &tmp, &e))?;
        file.flush().map_err(|e| io_problem("write", &tmp, &e))?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))
            .map_err(|e| io_problem("set the permissions of", &tmp, &e))?;
        file.sync_all().map_err(|e| io_problem("write", &tmp, &e))?;
        fs::rename(&tmp, path).map_err(|e| io_problem("rename into place", path, &e))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    } else if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    result
}

/// The state of an existing file at an install path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Existing {
    Absent,
    /// same content as what install writes
    Same,
    /// written by install (a build of this plugin; an install-written .spc), different content
    Ours,
    /// something else
    Foreign,
}

/// The `.plugin` files in `dir` other than `except` (sorted; none if `dir` is absent).
fn other_plugin_files(dir: &Path, except: &Path) -> Result<Vec<PathBuf>, String> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_problem("list", dir, &e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_problem("list", dir, &e))?;
        let path = entry.path();
        if path.extension().is_some_and(|x| x == "plugin") && path != except {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

fn bak_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(".bak");
    PathBuf::from(s)
}

/// Reads a file that may be absent.
fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, String> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_problem("read", path, &e)),
    }
}

fn exists(path: &Path) -> Result<bool, String> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) if e.kind() == io::ErrorKind::NotADirectory => Ok(false),
        Err(e) => Err(io_problem("inspect", path, &e)),
    }
}

fn binary_state(installed: &Path, binary: &Path) -> Result<Existing, String> {
    if !exists(installed)? {
        return Ok(Existing::Absent);
    }
    if same_contents(installed, binary).map_err(|e| io_problem("read", installed, &e))? {
        return Ok(Existing::Same);
    }
    if is_this_plugin(installed).map_err(|e| io_problem("read", installed, &e))? {
        Ok(Existing::Ours)
    } else {
        Ok(Existing::Foreign)
    }
}

fn check_connection_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 63;
    if ok {
        Ok(())
    } else {
        Err(format!(
            "--connection '{name}' is not a usable connection name: it becomes a Postgres schema, so use letters, digits and underscores (not starting with a digit, at most 63 characters)"
        ))
    }
}

/// Checks the arguments `install` will write with the plugin's own config
/// parser, on the attribute string Steampipe would send.
fn check_spc(connection: &str, spc: &str) -> Result<(), String> {
    let conn = read_spc_connection(spc).map_err(|e| format!("internal error: {e}"))?;
    match AwsConnection::parse(connection, &conn.config_string()) {
        Ok(_) => Ok(()),
        // errors about arguments install did not write come from the
        // environment (AWS_MAX_ATTEMPTS, AWS_ENDPOINT_URL), not from the file
        Err(e) if matches!(e.attribute.as_deref(), Some(a) if a != "regions" && a != "profile") => {
            Ok(())
        }
        Err(e) => {
            let flag = match e.attribute.as_deref() {
                Some(a) => format!("--{a}: "),
                None => String::new(),
            };
            Err(format!("{flag}{}", e.message))
        }
    }
}

/// Installs the plugin binary and its connection config. Returns the lines to
/// print (what was written, then the next step).
pub fn install(o: &InstallOptions) -> Result<Vec<String>, Failure> {
    let bad = |p: String| fail(NOTHING_WRITTEN, p);
    check_connection_name(&o.connection).map_err(bad)?;
    let regions: Option<Vec<String>> = o
        .regions
        .as_ref()
        .map(|rs| rs.iter().map(|r| r.trim().to_string()).collect());
    if let Some(p) = &o.profile {
        if p.trim().is_empty() {
            return Err(bad("--profile must not be empty".into()));
        }
    }
    let spc = render_spc(
        o.install_as,
        &o.connection,
        regions.as_deref(),
        o.profile.as_deref(),
    );
    check_spc(&o.connection, &spc).map_err(bad)?;

    let layout = Layout::new(&o.root, o.install_as);
    match fs::metadata(&o.binary) {
        Ok(m) if m.is_file() => {}
        Ok(_) => {
            return Err(bad(format!(
                "the running binary {} is not a regular file",
                o.binary.display()
            )))
        }
        Err(e) => return Err(bad(io_problem("read the running binary", &o.binary, &e))),
    }

    // Look before touching anything.
    let mut problems = Vec::new();
    let plugin_state = binary_state(&layout.plugin_path, &o.binary).map_err(bad)?;
    let others = other_plugin_files(&layout.plugin_dir, &layout.plugin_path).map_err(bad)?;
    let spc_state = match read_optional(&layout.spc_path).map_err(bad)? {
        None => Existing::Absent,
        Some(b) if b == spc.as_bytes() => Existing::Same,
        Some(b) if b.starts_with(SPC_MARKER.as_bytes()) => Existing::Ours,
        Some(_) => Existing::Foreign,
    };
    // what is moved aside (to .bak) rather than replaced
    let mut move_aside: Vec<PathBuf> = others.clone();
    if plugin_state == Existing::Foreign {
        move_aside.insert(0, layout.plugin_path.clone());
    }
    if spc_state == Existing::Foreign {
        move_aside.push(layout.spc_path.clone());
    }
    if !o.force {
        match plugin_state {
            Existing::Ours => problems.push(format!(
                "{} is another build of this plugin; rerun with --force to replace it",
                layout.plugin_path.display()
            )),
            Existing::Foreign => problems.push(format!(
                "{} is another plugin binary (not this one); rerun with --force to move it aside to {}",
                layout.plugin_path.display(),
                bak_path(&layout.plugin_path).display()
            )),
            Existing::Absent | Existing::Same => {}
        }
        for other in &others {
            problems.push(format!(
                "{} is another plugin binary in the same folder, and Steampipe requires exactly one .plugin file there; rerun with --force to move it aside to {}",
                other.display(),
                bak_path(other).display()
            ));
        }
        match spc_state {
            Existing::Ours => problems.push(format!(
                "{} differs from what install writes now (edited, or written with other options); rerun with --force to replace it",
                layout.spc_path.display()
            )),
            Existing::Foreign => problems.push(format!(
                "{} exists and was not written by install; rerun with --force to move it aside to {}",
                layout.spc_path.display(),
                bak_path(&layout.spc_path).display()
            )),
            Existing::Absent | Existing::Same => {}
        }
    }
    for p in &move_aside {
        let bak = bak_path(p);
        if exists(&bak).map_err(bad)? {
            problems.push(format!(
                "{} must be moved aside, but {} already exists; move or remove one of them yourself",
                p.display(),
                bak.display()
            ));
        }
    }
    if !problems.is_empty() {
        return Err(Failure {
            problems,
            outcome: NOTHING_WRITTEN,
        });
    }

    // Act.
    let partial = |p: String| {
        fail(
            "The install is incomplete: fix the problem and run install again.",
            p,
        )
    };
    let mut lines = Vec::new();
    for dir in [&layout.plugin_dir, &layout.config_dir] {
        fs::create_dir_all(dir).map_err(|e| bad(io_problem("create the directory", dir, &e)))?;
    }
    for p in &move_aside {
        let bak = bak_path(p);
        fs::rename(p, &bak).map_err(|e| partial(io_problem("move aside", p, &e)))?;
        lines.push(format!(
            "moved {} aside to {} (uninstall restores it)",
            p.display(),
            bak.display()
        ));
    }
    match plugin_state {
        Existing::Same => lines.push(format!(
            "already installed: {} (identical to this binary)",
            layout.plugin_path.display()
        )),
        state => {
            let src = o.binary.clone();
            write_atomically(&layout.plugin_path, 0o755, |f| {
                let mut from = fs::File::open(&src)?;
                io::copy(&mut from, f).map(|_| ())
            })
            .map_err(partial)?;
            let verb = if state == Existing::Ours {
                "replaced"
            } else {
                "wrote"
            };
            lines.push(format!(
                "{verb} {} (plugin binary, {})",
                layout.plugin_path.display(),
                o.install_as.plugin_ref()
            ));
        }
    }
    match spc_state {
        Existing::Same => lines.push(format!(
            "already installed: {} (connection \"{}\", unchanged)",
            layout.spc_path.display(),
            o.connection
        )),
        state => {
            write_atomically(&layout.spc_path, 0o644, |f| f.write_all(spc.as_bytes()))
                .map_err(partial)?;
            let verb = if state == Existing::Ours {
                "replaced"
            } else {
                "wrote"
            };
            lines.push(format!(
                "{verb} {} (connection \"{}\", plugin = \"{}\")",
                layout.spc_path.display(),
                o.connection,
                o.install_as.plugin_ref()
            ));
        }
    }
    let dir_flag = if o.name_root_in_hint {
        format!(" --install-dir {}", shell_quote(&o.root.to_string_lossy()))
    } else {
        String::new()
    };
    lines.push(format!(
        "Next: steampipe query{dir_flag} \"select instance_id, metadata_options ->> 'HttpTokens' from {}.aws_ec2_instance\"",
        o.connection
    ));
    Ok(lines)
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:@%,".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Removes what [`install`] wrote. Returns the lines to print.
pub fn uninstall(o: &UninstallOptions) -> Result<Vec<String>, Failure> {
    let bad = |p: String| fail(NOTHING_REMOVED, p);
    let layout = Layout::new(&o.root, o.install_as);
    if let Err(e) = fs::metadata(&o.binary) {
        return Err(bad(io_problem("read the running binary", &o.binary, &e)));
    }

    // Look before touching anything.
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    let plugin_state = binary_state(&layout.plugin_path, &o.binary).map_err(bad)?;
    let remove_plugin = match plugin_state {
        Existing::Absent => {
            notes.push(format!("not found: {}", layout.plugin_path.display()));
            false
        }
        Existing::Same => true,
        Existing::Ours if o.force => true,
        Existing::Ours => {
            problems.push(format!(
                "{} is another build of this plugin, not this binary; rerun with --force to remove it",
                layout.plugin_path.display()
            ));
            false
        }
        Existing::Foreign => {
            notes.push(format!(
                "left in place: {} is not this plugin (someone else's binary)",
                layout.plugin_path.display()
            ));
            false
        }
    };
    let spc_text = read_optional(&layout.spc_path).map_err(bad)?;
    let remove_spc = match &spc_text {
        None => {
            notes.push(format!("not found: {}", layout.spc_path.display()));
            false
        }
        Some(b) => {
            let text = String::from_utf8_lossy(b);
            if is_unedited_spc(&text) || o.force {
                true
            } else if text.starts_with(SPC_MARKER) {
                problems.push(format!(
                    "{} was edited since install wrote it; rerun with --force to remove it anyway",
                    layout.spc_path.display()
                ));
                false
            } else {
                problems.push(format!(
                    "{} was not written by install; rerun with --force to remove it anyway",
                    layout.spc_path.display()
                ));
                false
            }
        }
    };
    if !problems.is_empty() {
        return Err(Failure {
            problems,
            outcome: NOTHING_REMOVED,
        });
    }

    // Act: the connection goes first, so a running Steampipe never has a
    // connection whose plugin is gone; backups come back last.
    let partial = |p: String| fail("The uninstall is incomplete.", p);
    let mut lines = Vec::new();
    if remove_spc {
        fs::remove_file(&layout.spc_path)
            .map_err(|e| partial(io_problem("remove", &layout.spc_path, &e)))?;
        lines.push(format!("removed {}", layout.spc_path.display()));
    }
    if remove_plugin {
        fs::remove_file(&layout.plugin_path)
            .map_err(|e| partial(io_problem("remove", &layout.plugin_path, &e)))?;
        lines.push(format!("removed {}", layout.plugin_path.display()));
    }
    // Put back a plugin binary a forced install moved aside, if it would be
    // the folder's only .plugin file.
    let remaining = other_plugin_files(&layout.plugin_dir, Path::new("")).map_err(partial)?;
    let baks = plugin_baks(&layout.plugin_dir).map_err(partial)?;
    match (remaining.is_empty(), baks.as_slice()) {
        (_, []) => {}
        (true, [bak]) => {
            let to = bak.with_extension("");
            fs::rename(bak, &to).map_err(|e| partial(io_problem("restore", bak, &e)))?;
            lines.push(format!(
                "restored {} (from {})",
                to.display(),
                bak.display()
            ));
        }
        _ => notes.push(format!(
            "not restored (Steampipe needs exactly one .plugin file in {}): {}",
            layout.plugin_dir.display(),
            baks.iter()
                .map(|b| b.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
    let spc_bak = bak_path(&layout.spc_path);
    if (remove_spc || spc_text.is_none()) && exists(&spc_bak).map_err(partial)? {
        fs::rename(&spc_bak, &layout.spc_path)
            .map_err(|e| partial(io_problem("restore", &spc_bak, &e)))?;
        lines.push(format!(
            "restored {} (from {})",
            layout.spc_path.display(),
            spc_bak.display()
        ));
    }
    // Remove the plugin's now-empty folders, up to (not including) `plugins/`.
    let stop = o.root.join("plugins");
    let mut dir = layout.plugin_dir.clone();
    while dir.starts_with(&stop) && dir != stop {
        match fs::remove_dir(&dir) {
            Ok(()) => lines.push(format!("removed empty directory {}", dir.display())),
            Err(_) => break,
        }
        if !dir.pop() {
            break;
        }
    }
    if lines.is_empty() {
        lines.push("nothing to uninstall".into());
    }
    lines.extend(notes);
    Ok(lines)
}

/// The `*.plugin.bak` files in `dir`.
fn plugin_baks(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_problem("list", dir, &e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| io_problem("list", dir, &e))?.path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().ends_with(".plugin.bak"))
        {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

fn running_binary() -> Result<PathBuf, String> {
    std::env::current_exe().map_err(|e| format!("cannot find the running binary: {e}"))
}

fn print_outcome(result: Result<Vec<String>, Failure>) -> ExitCode {
    match result {
        Ok(lines) => {
            let mut out = io::stdout().lock();
            for l in lines {
                let _ = writeln!(out, "{l}");
            }
            ExitCode::SUCCESS
        }
        Err(f) => {
            eprintln!("{f}");
            ExitCode::from(1)
        }
    }
}

fn cli_root(flag: Option<&Path>) -> Result<(PathBuf, bool), String> {
    let env = std::env::var_os("STEAMPIPE_INSTALL_DIR");
    let home = std::env::var_os("HOME");
    let root = resolve_root(flag, env.clone(), home.clone())?;
    let name_root = match flag {
        Some(_) => resolve_root(None, env, home).map_or(true, |default| default != root),
        None => false,
    };
    Ok((root, name_root))
}

/// `steampipe-plugin-aws install`.
pub fn run_install(args: InstallArgs) -> ExitCode {
    let prepared = (|| {
        let (root, name_root_in_hint) = cli_root(args.install_dir.as_deref())?;
        Ok::<_, String>(InstallOptions {
            root,
            install_as: args.install_as,
            connection: args
                .connection
                .clone()
                .unwrap_or_else(|| args.install_as.default_connection().to_string()),
            regions: (!args.regions.is_empty()).then(|| args.regions.clone()),
            profile: args.profile.clone(),
            force: args.force,
            binary: running_binary()?,
            name_root_in_hint,
        })
    })();
    match prepared {
        Ok(o) => print_outcome(install(&o)),
        Err(e) => print_outcome(Err(fail(NOTHING_WRITTEN, e))),
    }
}

/// `steampipe-plugin-aws uninstall`.
pub fn run_uninstall(args: UninstallArgs) -> ExitCode {
    let prepared = (|| {
        let (root, _) = cli_root(args.install_dir.as_deref())?;
        Ok::<_, String>(UninstallOptions {
            root,
            install_as: args.install_as,
            force: args.force,
            binary: running_binary()?,
        })
    })();
    match prepared {
        Ok(o) => print_outcome(uninstall(&o)),
        Err(e) => print_outcome(Err(fail(NOTHING_REMOVED, e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(s: &str) -> Option<OsString> {
        Some(OsString::from(s))
    }

    #[test]
    fn the_root_is_the_flag_then_the_env_then_home() {
        let flag = Path::new("/opt/sp");
        assert_eq!(
            resolve_root(Some(flag), os("/env"), os("/home/u")).unwrap(),
            PathBuf::from("/opt/sp")
        );
        assert_eq!(
            resolve_root(None, os("/env"), os("/home/u")).unwrap(),
            PathBuf::from("/env")
        );
        assert_eq!(
            resolve_root(None, os(""), os("/home/u")).unwrap(),
            PathBuf::from("/home/u/.steampipe")
        );
        assert_eq!(
            resolve_root(None, os("~/sp"), os("/home/u")).unwrap(),
            PathBuf::from("/home/u/sp")
        );
        assert!(resolve_root(None, None, None)
            .unwrap_err()
            .contains("--install-dir"));
        let rel = resolve_root(Some(Path::new("rel/dir")), None, None).unwrap();
        assert!(rel.is_absolute() && rel.ends_with("rel/dir"));
    }

    #[test]
    fn quoted_strings_evaluate_back_to_themselves() {
        let ctx = hcl::eval::Context::new();
        for s in [
            "plain",
            "quo\"te",
            "back\\slash",
            "${not_a_var}",
            "%{if x}",
            "$$",
            "new\nline\ttab\u{1}",
            "ünïcode",
        ] {
            let body = hcl::parse(&format!("a = {}\n", hcl_quote(s))).unwrap();
            let attr = body.attributes().next().unwrap();
            use hcl::eval::Evaluate;
            assert_eq!(
                attr.expr().evaluate(&ctx).unwrap(),
                hcl::Value::from(s),
                "{s:?}"
            );
        }
        let nested: hcl::Value = hcl::value!({
            "a${b}" = ["x\"y", 1, 2.5, true, null]
            n = { m = "%{z}" }
        });
        let body = hcl::parse(&format!("v = {}\n", hcl_literal(&nested))).unwrap();
        use hcl::eval::Evaluate;
        let back = body.attributes().next().unwrap().expr().evaluate(&ctx);
        assert_eq!(back.unwrap(), nested);
    }

    #[test]
    fn the_spc_parses_as_the_plugin_reads_it() {
        let regions = vec!["us-east-1".to_string(), "eu-*".to_string()];
        let spc = render_spc(InstallAs::Hub, "aws", Some(&regions), Some("prod"));
        assert!(spc.starts_with(SPC_MARKER));
        let conn = read_spc_connection(&spc).unwrap();
        assert_eq!(conn.name, "aws");
        assert_eq!(conn.plugin.as_deref(), Some("aws"));
        assert_eq!(
            conn.config_string(),
            "profile = \"prod\"\nregions = [\"us-east-1\", \"eu-*\"]\n"
        );
        let c = AwsConnection::parse("aws", &conn.config_string()).unwrap();
        assert_eq!(c.regions, Some(regions));
        assert_eq!(c.profile.as_deref(), Some("prod"));
        assert!(is_unedited_spc(&spc));
        assert!(!is_unedited_spc(&spc.replace("us-east-1", "us-east-2"),));
        assert!(!is_unedited_spc(
            &spc.replace("# default_region", "default_region"),
        ));
        let minimal = render_spc(InstallAs::Local, "aws_rust", None, None);
        assert!(is_unedited_spc(&minimal));
        // even an edit install itself could have made counts as an edit
        assert!(!is_unedited_spc(&minimal.replace(
            "  # profile = \"my-profile\"",
            "  profile = \"mine\""
        )));
        assert!(!is_unedited_spc("connection \"x\" {}\n"));
        assert_eq!(read_spc_connection(&minimal).unwrap().config_string(), "");
    }

    #[test]
    fn every_documented_argument_is_accepted_when_uncommented() {
        let spc = render_spc(InstallAs::Local, "aws_rust", None, None);
        let uncommented: String = spc
            .lines()
            .map(|l| match l.strip_prefix("  # ") {
                Some(rest) if rest.split_whitespace().nth(1) == Some("=") => format!("  {rest}\n"),
                _ => format!("{l}\n"),
            })
            .collect();
        let conn = read_spc_connection(&uncommented).unwrap();
        let names: Vec<&str> = conn.attributes.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "access_key",
                "default_region",
                "endpoint_url",
                "ignore_error_codes",
                "ignore_error_messages",
                "max_error_retry_attempts",
                "min_error_retry_delay",
                "profile",
                "regions",
                "s3_force_path_style",
                "secret_key",
                "session_token"
            ]
        );
        AwsConnection::parse("aws_rust", &conn.config_string()).unwrap();
    }

    #[test]
    fn bad_arguments_are_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("exe");
        fs::write(&exe, b"binary").unwrap();
        let base = InstallOptions {
            root: dir.path().join("root"),
            install_as: InstallAs::Local,
            connection: "aws_rust".into(),
            regions: None,
            profile: None,
            force: false,
            binary: exe,
            name_root_in_hint: false,
        };
        let cases = [
            (
                InstallOptions {
                    regions: Some(vec!["us east".into()]),
                    ..base.clone()
                },
                "--regions: 'us east' is not a region",
            ),
            (
                InstallOptions {
                    connection: "1bad-name".into(),
                    ..base.clone()
                },
                "--connection '1bad-name'",
            ),
            (
                InstallOptions {
                    profile: Some(" ".into()),
                    ..base.clone()
                },
                "--profile must not be empty",
            ),
        ];
        for (o, want) in cases {
            let f = install(&o).unwrap_err();
            assert!(f.to_string().contains(want), "{f}");
            assert!(f.to_string().ends_with(NOTHING_WRITTEN));
        }
        assert!(!dir.path().join("root").exists());
    }

    #[test]
    fn builds_of_this_plugin_are_recognised_by_their_marker() {
        let dir = tempfile::tempdir().unwrap();
        let ours = dir.path().join("ours");
        let mut bytes = vec![b's'; 10_000];
        bytes.extend_from_slice(BINARY_MARKER.as_bytes());
        bytes.extend_from_slice(b"tail");
        fs::write(&ours, &bytes).unwrap();
        let theirs = dir.path().join("theirs");
        fs::write(&theirs, &BINARY_MARKER.as_bytes()[..20]).unwrap();
        assert!(is_this_plugin(&ours).unwrap());
        assert!(!is_this_plugin(&theirs).unwrap());
        assert!(same_contents(&ours, &ours).unwrap());
        assert!(!same_contents(&ours, &theirs).unwrap());
        // the running test binary links this module, so carries the marker too
        assert!(is_this_plugin(&std::env::current_exe().unwrap()).unwrap());
    }

    #[test]
    fn another_build_is_replaced_only_with_force_and_never_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("exe");
        fs::write(&exe, format!("new build {BINARY_MARKER}")).unwrap();
        let root = dir.path().join("root");
        let layout = Layout::new(&root, InstallAs::Hub);
        fs::create_dir_all(&layout.plugin_dir).unwrap();
        fs::write(&layout.plugin_path, format!("old build {BINARY_MARKER}")).unwrap();
        let mut o = InstallOptions {
            root: root.clone(),
            install_as: InstallAs::Hub,
            connection: "aws".into(),
            regions: None,
            profile: None,
            force: false,
            binary: exe.clone(),
            name_root_in_hint: true,
        };
        let f = install(&o).unwrap_err().to_string();
        assert!(f.contains("another build of this plugin"), "{f}");
        o.force = true;
        let lines = install(&o).unwrap();
        assert!(lines[0].starts_with("replaced "), "{lines:?}");
        assert!(lines.last().unwrap().contains("--install-dir "));
        assert!(!bak_path(&layout.plugin_path).exists());
        assert_eq!(
            fs::read(&layout.plugin_path).unwrap(),
            fs::read(&exe).unwrap()
        );
        let mode = fs::metadata(&layout.plugin_path)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        // no temporary files are left behind
        let names: Vec<_> = fs::read_dir(&layout.plugin_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [OsString::from("steampipe-plugin-aws.plugin")]);
    }
}
