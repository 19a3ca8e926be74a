//! `steampipe-plugin-aws install` / `uninstall`, run as the real binary
//! against temporary install roots.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hcl::eval::Evaluate;
use hcl::format::Format;
use steampipe_plugin_aws::aws::AwsConnection;
use steampipe_plugin_aws::install::BINARY_MARKER;
use steampipe_plugin_aws::plugin::ConnectionConfig;

const BIN: &str = env!("CARGO_BIN_EXE_steampipe-plugin-aws");
const LOCAL_PLUGIN: &str = "plugins/local/aws/aws.plugin";
const LOCAL_SPC: &str = "config/aws_rust.spc";
const HUB_DIR: &str = "plugins/hub.steampipe.io/plugins/turbot/aws@latest";
const HUB_PLUGIN: &str =
    "plugins/hub.steampipe.io/plugins/turbot/aws@latest/steampipe-plugin-aws.plugin";
const HUB_SPC: &str = "config/aws.spc";

/// A temporary home directory and install root.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        let s = Sandbox {
            dir: tempfile::tempdir().unwrap(),
        };
        fs::create_dir_all(s.home()).unwrap();
        s
    }
    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }
    fn root(&self) -> PathBuf {
        self.dir.path().join("steampipe")
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }
    /// Runs the binary with `args`, HOME pointing into the sandbox and no
    /// STEAMPIPE_INSTALL_DIR unless given in `env`.
    fn run_env(&self, args: &[&str], env: &[(&str, &Path)]) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env("HOME", self.home())
            .env_remove("STEAMPIPE_INSTALL_DIR")
            .env_remove(steampipe_plugin_aws::goplugin::MAGIC_COOKIE_KEY);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }
    /// Runs `<subcommand> --install-dir <root> <args>`.
    fn run(&self, subcommand: &str, args: &[&str]) -> Output {
        let root = self.root();
        let mut all = vec![subcommand, "--install-dir", root.to_str().unwrap()];
        all.extend_from_slice(args);
        self.run_env(&all, &[])
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn assert_ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        stdout(o),
        stderr(o)
    );
    stdout(o)
}

#[track_caller]
fn assert_refused(o: &Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(1),
        "stdout: {}\nstderr: {}",
        stdout(o),
        stderr(o)
    );
    assert_eq!(stdout(o), "", "a refusal prints nothing to stdout");
    stderr(o)
}

/// Every file and directory under `root`, with file contents (large ones by
/// length and checksum).
fn snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            if path.is_dir() {
                out.insert(rel, "dir".into());
                walk(root, &path, out);
            } else {
                let bytes = fs::read(&path).unwrap();
                let sum = bytes.iter().fold(0xcbf29ce484222325u64, |h, b| {
                    (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
                });
                let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
                out.insert(
                    rel,
                    format!("{} bytes, {sum:x}, mode {mode:o}", bytes.len()),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    if root.exists() {
        walk(root, root, &mut out);
    }
    out
}

/// The connection in a `.spc` file as Steampipe hands it to the plugin: its
/// name, and its attributes other than the reserved ones, evaluated and
/// re-emitted as sorted `name = literal` lines.
fn steampipe_view(spc: &str) -> (String, Option<String>, String) {
    let body = hcl::parse(spc).expect("the .spc is valid HCL");
    let blocks: Vec<_> = body
        .blocks()
        .filter(|b| b.identifier() == "connection")
        .collect();
    assert_eq!(blocks.len(), 1, "one connection block");
    let block = blocks[0];
    assert_eq!(block.labels().len(), 1);
    let name = block.labels()[0].as_str().to_string();
    assert_eq!(block.body().blocks().count(), 0, "no nested blocks");
    let ctx = hcl::eval::Context::new();
    let mut plugin = None;
    let mut attrs = Vec::new();
    for attr in block.body().attributes() {
        let v = attr.expr().evaluate(&ctx).expect("literal values only");
        match attr.key() {
            "plugin" => plugin = v.as_str().map(str::to_string),
            "type" | "connections" | "import_schema" => {}
            k => attrs.push((k.to_string(), v)),
        }
    }
    attrs.sort_by(|a, b| a.0.cmp(&b.0));
    let config = attrs
        .iter()
        .map(|(k, v)| {
            // one line per attribute, lists inline, as hclwrite emits them
            let mut f = hcl::format::Formatter::builder().compact(true).build_vec();
            format!("{k} = {}\n", v.format_string(&mut f).unwrap())
        })
        .collect();
    (name, plugin, config)
}

fn parse_spc(path: &Path) -> (String, Option<String>, AwsConnection) {
    let text = fs::read_to_string(path).unwrap();
    assert!(
        text.starts_with("# Written by steampipe-plugin-aws install"),
        "marker line first:\n{text}"
    );
    let (name, plugin, config) = steampipe_view(&text);
    let conn = AwsConnection::parse(&name, &config)
        .unwrap_or_else(|e| panic!("{e}\nconfig:\n{config}\nfile:\n{text}"));
    (name, plugin, conn)
}

fn plugin_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".plugin"))
        .collect();
    names.sort();
    names
}

#[test]
fn local_install_writes_an_identical_executable_and_a_parsable_spc() {
    let sb = Sandbox::new();
    let out = assert_ok(&sb.run("install", &[]));
    let plugin = sb.path(LOCAL_PLUGIN);
    let spc = sb.path(LOCAL_SPC);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[0].starts_with(&format!("wrote {}", plugin.display())),
        "{out}"
    );
    assert!(
        lines[1].starts_with(&format!("wrote {}", spc.display())),
        "{out}"
    );
    assert!(
        lines[2].starts_with("Next: steampipe query")
            && lines[2].ends_with(
                "\"select instance_id, metadata_options ->> 'HttpTokens' from aws_rust.aws_ec2_instance\""
            ),
        "{out}"
    );

    assert_eq!(fs::read(&plugin).unwrap(), fs::read(BIN).unwrap());
    assert_eq!(
        fs::metadata(&plugin).unwrap().permissions().mode() & 0o777,
        0o755
    );
    // the installed copy runs, as a CLI too
    let schema = Command::new(&plugin)
        .arg("--version")
        .env_remove(steampipe_plugin_aws::goplugin::MAGIC_COOKIE_KEY)
        .output()
        .unwrap();
    assert!(schema.status.success());

    let (name, plugin_ref, conn) = parse_spc(&spc);
    assert_eq!(name, "aws_rust");
    assert_eq!(plugin_ref.as_deref(), Some("local/aws"));
    assert_eq!(conn.regions, None, "regions omitted: the default region");
    assert_eq!(conn.profile, None);
    let text = fs::read_to_string(&spc).unwrap();
    for documented in [
        "# default_region",
        "# access_key",
        "# secret_key",
        "# max_error_retry_attempts",
        "# min_error_retry_delay",
        "# ignore_error_codes",
        "# ignore_error_messages",
        "# endpoint_url",
    ] {
        assert!(text.contains(documented), "{documented} in\n{text}");
    }

    // nothing else was written, not even temporary files
    let files: Vec<PathBuf> = snapshot(&sb.root())
        .into_iter()
        .filter(|(_, v)| v != "dir")
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        files,
        [PathBuf::from(LOCAL_SPC), PathBuf::from(LOCAL_PLUGIN)]
    );
    assert!(!sb.home().join(".steampipe").exists());
}

#[test]
fn regions_profile_and_connection_name_are_written() {
    let sb = Sandbox::new();
    let out = assert_ok(&sb.run(
        "install",
        &[
            "--connection",
            "aws_dev",
            "--regions",
            "us-east-1, eu-*",
            "--profile",
            "dev \"team\"",
        ],
    ));
    assert!(out.contains("from aws_dev.aws_ec2_instance"), "{out}");
    let (name, _, conn) = parse_spc(&sb.path(LOCAL_SPC));
    assert_eq!(name, "aws_dev");
    assert_eq!(conn.regions, Some(vec!["us-east-1".into(), "eu-*".into()]));
    assert_eq!(conn.profile.as_deref(), Some("dev \"team\""));

    // arguments the plugin would reject are refused up front
    let sb = Sandbox::new();
    let err = assert_refused(&sb.run("install", &["--regions", "us east 1"]));
    assert!(
        err.contains("--regions") && err.contains("'us east 1'"),
        "{err}"
    );
    assert!(!sb.root().exists());
}

#[test]
fn a_second_install_is_a_no_op() {
    let sb = Sandbox::new();
    assert_ok(&sb.run("install", &["--regions", "us-east-1"]));
    let before = snapshot(&sb.root());
    let ino = fs::metadata(sb.path(LOCAL_PLUGIN)).unwrap().ino();
    let out = assert_ok(&sb.run("install", &["--regions", "us-east-1"]));
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("already installed: ") && lines[0].contains(LOCAL_PLUGIN),
        "{out}"
    );
    assert!(
        lines[1].starts_with("already installed: ") && lines[1].contains(LOCAL_SPC),
        "{out}"
    );
    assert!(lines[2].starts_with("Next: "), "{out}");
    assert_eq!(snapshot(&sb.root()), before);
    assert_eq!(
        fs::metadata(sb.path(LOCAL_PLUGIN)).unwrap().ino(),
        ino,
        "not rewritten"
    );
}

#[test]
fn a_user_modified_spc_is_replaced_only_with_force() {
    let sb = Sandbox::new();
    assert_ok(&sb.run("install", &[]));
    let spc = sb.path(LOCAL_SPC);
    let original = fs::read_to_string(&spc).unwrap();
    let edited = original.replace("  # regions = [\"*\"]", "  regions = [\"*\"]");
    assert_ne!(edited, original);
    fs::write(&spc, &edited).unwrap();

    let err = assert_refused(&sb.run("install", &[]));
    assert!(err.contains(&spc.display().to_string()), "{err}");
    assert!(err.contains("--force"), "{err}");
    assert!(err.contains("Nothing was written."), "{err}");
    assert_eq!(fs::read_to_string(&spc).unwrap(), edited);

    let out = assert_ok(&sb.run("install", &["--force"]));
    assert!(
        out.contains(&format!("replaced {}", spc.display())),
        "{out}"
    );
    assert!(
        out.contains("already installed: "),
        "the binary was unchanged: {out}"
    );
    assert_eq!(fs::read_to_string(&spc).unwrap(), original);
    assert!(
        !sb.path("config/aws_rust.spc.bak").exists(),
        "an install-written file is replaced, not kept"
    );

    // a config file install did not write is moved aside, and comes back on uninstall
    fs::write(&spc, "connection \"mine\" {\n  plugin = \"local/aws\"\n}\n").unwrap();
    let err = assert_refused(&sb.run("install", &[]));
    assert!(
        err.contains("was not written by install") && err.contains("--force"),
        "{err}"
    );
    let out = assert_ok(&sb.run("install", &["--force"]));
    assert!(out.contains("aws_rust.spc.bak"), "{out}");
    assert_eq!(fs::read_to_string(&spc).unwrap(), original);
    assert_ok(&sb.run("uninstall", &[]));
    assert!(fs::read_to_string(&spc).unwrap().contains("\"mine\""));
}

#[test]
fn hub_install_moves_another_plugin_aside_only_with_force_and_uninstall_restores_it() {
    let sb = Sandbox::new();
    let hub_dir = sb.path(HUB_DIR);
    fs::create_dir_all(hub_dir.join("docs")).unwrap();
    fs::create_dir_all(sb.path("config")).unwrap();
    let go_plugin = sb.path(HUB_PLUGIN);
    fs::write(&go_plugin, "#!/bin/sh\necho turbot's Go plugin\n").unwrap();
    fs::set_permissions(&go_plugin, fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(hub_dir.join("docs/index.md"), "docs").unwrap();
    let turbot_spc = "connection \"aws\" {\n  plugin = \"aws\"\n}\n";
    fs::write(sb.path(HUB_SPC), turbot_spc).unwrap();
    let before = snapshot(&sb.root());

    let err = assert_refused(&sb.run("install", &["--as", "hub"]));
    assert!(
        err.contains(&go_plugin.display().to_string()) && err.contains("--force"),
        "{err}"
    );
    assert!(
        err.contains(&sb.path(HUB_SPC).display().to_string()),
        "{err}"
    );
    assert_eq!(snapshot(&sb.root()), before, "a refusal changes nothing");

    let out = assert_ok(&sb.run("install", &["--as", "hub", "--force"]));
    let bak = sb.path(&format!("{HUB_PLUGIN}.bak"));
    assert!(
        out.contains(&format!(
            "moved {} aside to {}",
            go_plugin.display(),
            bak.display()
        )),
        "{out}"
    );
    assert!(out.contains("aws.spc.bak"), "{out}");
    assert!(out.contains("from aws.aws_ec2_instance"), "{out}");
    assert_eq!(fs::read(&go_plugin).unwrap(), fs::read(BIN).unwrap());
    assert_eq!(
        fs::read_to_string(&bak).unwrap(),
        "#!/bin/sh\necho turbot's Go plugin\n"
    );
    assert_eq!(
        plugin_files(&hub_dir),
        ["steampipe-plugin-aws.plugin"],
        "exactly one .plugin file"
    );
    let (name, plugin_ref, _) = parse_spc(&sb.path(HUB_SPC));
    assert_eq!((name.as_str(), plugin_ref.as_deref()), ("aws", Some("aws")));

    let out = assert_ok(&sb.run("uninstall", &["--as", "hub"]));
    assert!(
        out.contains(&format!("removed {}", go_plugin.display())),
        "{out}"
    );
    assert!(
        out.contains(&format!("restored {}", go_plugin.display())),
        "{out}"
    );
    assert!(
        out.contains(&format!("restored {}", sb.path(HUB_SPC).display())),
        "{out}"
    );
    assert_eq!(
        snapshot(&sb.root()),
        before,
        "back to turbot's plugin and config"
    );
}

#[test]
fn another_plugin_file_in_the_folder_is_also_moved_aside() {
    let sb = Sandbox::new();
    let hub_dir = sb.path(HUB_DIR);
    fs::create_dir_all(&hub_dir).unwrap();
    fs::write(hub_dir.join("aws.plugin"), "other").unwrap();
    let err = assert_refused(&sb.run("install", &["--as", "hub"]));
    assert!(
        err.contains("exactly one .plugin file") && err.contains("--force"),
        "{err}"
    );
    assert_ok(&sb.run("install", &["--as", "hub", "--force"]));
    assert_eq!(plugin_files(&hub_dir), ["steampipe-plugin-aws.plugin"]);
    assert!(hub_dir.join("aws.plugin.bak").exists());
    assert_ok(&sb.run("uninstall", &["--as", "hub"]));
    assert_eq!(plugin_files(&hub_dir), ["aws.plugin"]);
}

#[test]
fn uninstall_removes_exactly_what_install_wrote() {
    let sb = Sandbox::new();
    // an existing Steampipe install with another plugin and connection
    fs::create_dir_all(sb.path("plugins/local/other")).unwrap();
    fs::write(sb.path("plugins/local/other/other.plugin"), "x").unwrap();
    fs::create_dir_all(sb.path("config")).unwrap();
    fs::write(
        sb.path("config/other.spc"),
        "connection \"o\" {\n  plugin = \"local/other\"\n}\n",
    )
    .unwrap();
    fs::create_dir_all(sb.path("logs")).unwrap();
    let before = snapshot(&sb.root());

    assert_ok(&sb.run("install", &["--regions", "eu-west-1", "--profile", "p"]));
    let out = assert_ok(&sb.run("uninstall", &[]));
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            format!("removed {}", sb.path(LOCAL_SPC).display()),
            format!("removed {}", sb.path(LOCAL_PLUGIN).display()),
            format!(
                "removed empty directory {}",
                sb.path("plugins/local/aws").display()
            ),
        ],
        "{out}"
    );
    assert_eq!(snapshot(&sb.root()), before);

    // a second uninstall finds nothing
    let out = assert_ok(&sb.run("uninstall", &[]));
    assert!(out.starts_with("nothing to uninstall"), "{out}");
    assert_eq!(snapshot(&sb.root()), before);

    // hub: every folder install created goes, `plugins/` and `config/` stay
    let sb = Sandbox::new();
    assert_ok(&sb.run("install", &["--as", "hub"]));
    assert_ok(&sb.run("uninstall", &["--as", "hub"]));
    assert_eq!(
        snapshot(&sb.root()).into_keys().collect::<Vec<_>>(),
        [PathBuf::from("config"), PathBuf::from("plugins")]
    );
}

#[test]
fn uninstall_leaves_a_user_modified_spc_unless_forced() {
    let sb = Sandbox::new();
    assert_ok(&sb.run("install", &[]));
    let spc = sb.path(LOCAL_SPC);
    let mut text = fs::read_to_string(&spc).unwrap();
    text = text.replace("  # profile = \"my-profile\"", "  profile = \"mine\"");
    fs::write(&spc, &text).unwrap();
    let before = snapshot(&sb.root());

    let err = assert_refused(&sb.run("uninstall", &[]));
    assert!(
        err.contains(&spc.display().to_string()) && err.contains("edited"),
        "{err}"
    );
    assert!(
        err.contains("--force") && err.contains("Nothing was removed."),
        "{err}"
    );
    assert_eq!(snapshot(&sb.root()), before);

    let out = assert_ok(&sb.run("uninstall", &["--force"]));
    assert!(out.contains(&format!("removed {}", spc.display())), "{out}");
    assert!(!spc.exists() && !sb.path(LOCAL_PLUGIN).exists());
}

#[test]
fn uninstall_removes_another_build_only_with_force_and_never_a_foreign_binary() {
    let sb = Sandbox::new();
    assert_ok(&sb.run("install", &[]));
    let plugin = sb.path(LOCAL_PLUGIN);
    fs::write(&plugin, format!("an older build {BINARY_MARKER}")).unwrap();
    let err = assert_refused(&sb.run("uninstall", &[]));
    assert!(
        err.contains("another build of this plugin") && err.contains("--force"),
        "{err}"
    );
    assert!(plugin.exists() && sb.path(LOCAL_SPC).exists());
    assert_ok(&sb.run("uninstall", &["--force"]));
    assert!(!plugin.exists());

    let sb = Sandbox::new();
    assert_ok(&sb.run("install", &[]));
    let plugin = sb.path(LOCAL_PLUGIN);
    fs::write(&plugin, "someone else's plugin").unwrap();
    let out = assert_ok(&sb.run("uninstall", &["--force"]));
    assert!(
        out.contains("left in place") && out.contains("not this plugin"),
        "{out}"
    );
    assert_eq!(
        fs::read_to_string(&plugin).unwrap(),
        "someone else's plugin"
    );
    assert!(!sb.path(LOCAL_SPC).exists());
}

#[test]
fn the_install_root_comes_from_steampipe_install_dir_then_home() {
    let sb = Sandbox::new();
    let env_root = sb.dir.path().join("from-env");
    let out = assert_ok(&sb.run_env(&["install"], &[("STEAMPIPE_INSTALL_DIR", &env_root)]));
    assert!(env_root.join(LOCAL_PLUGIN).exists() && env_root.join(LOCAL_SPC).exists());
    assert!(!sb.home().join(".steampipe").exists());
    assert!(
        !out.contains("--install-dir"),
        "Steampipe reads the same variable: {out}"
    );
    assert_ok(&sb.run_env(&["uninstall"], &[("STEAMPIPE_INSTALL_DIR", &env_root)]));
    assert!(!env_root.join(LOCAL_PLUGIN).exists() && !env_root.join(LOCAL_SPC).exists());

    // --install-dir wins over the variable
    let flag_root = sb.dir.path().join("from-flag");
    let out = assert_ok(&sb.run_env(
        &["install", "--install-dir", flag_root.to_str().unwrap()],
        &[("STEAMPIPE_INSTALL_DIR", &env_root)],
    ));
    assert!(flag_root.join(LOCAL_PLUGIN).exists());
    assert!(!env_root.join(LOCAL_PLUGIN).exists());
    assert!(
        out.contains(&format!("--install-dir {}", flag_root.display())),
        "{out}"
    );

    // neither: ~/.steampipe
    let out = assert_ok(&sb.run_env(&["install"], &[]));
    let home_root = sb.home().join(".steampipe");
    assert!(home_root.join(LOCAL_PLUGIN).exists() && home_root.join(LOCAL_SPC).exists());
    assert!(!out.contains("--install-dir"), "{out}");
}

#[test]
fn an_unusable_install_dir_is_a_clear_error() {
    let sb = Sandbox::new();
    let file = sb.dir.path().join("a-file");
    fs::write(&file, "not a directory").unwrap();
    let out = sb.run_env(&["install", "--install-dir", file.to_str().unwrap()], &[]);
    let err = assert_refused(&out);
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains(&file.display().to_string()), "{err}");
    assert!(err.contains("--install-dir"), "{err}");
    assert_eq!(fs::read_to_string(&file).unwrap(), "not a directory");
}
