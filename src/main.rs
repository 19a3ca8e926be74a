//! The `steampipe-plugin-aws` binary: a Steampipe plugin when started by a
//! go-plugin host (the magic cookie is set), otherwise a small CLI.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use steampipe_plugin_aws::{aws, goplugin, logging};

#[derive(Parser)]
#[command(
    version,
    about = "Steampipe plugin for AWS (aws_ec2_instance), written in Rust"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Print the plugin's schema (tables, columns, key columns) as JSON, as GetSchema answers it.
    Schema,
    /// Run the bundled aws_compliance controls (IMDSv2) by themselves, as `powerpipe control run` would.
    Check(Box<steampipe_plugin_aws::check::cli::CheckArgs>),
    /// Switch instances to IMDSv2 (HttpTokens=required) that CloudWatch proves no longer use IMDSv1; a dry run unless --apply.
    Enforce(Box<steampipe_plugin_aws::enforce::EnforceArgs>),
    /// Install this binary into Steampipe, with a connection config (.spc) file.
    Install(steampipe_plugin_aws::install::InstallArgs),
    /// Remove what `install` wrote.
    Uninstall(steampipe_plugin_aws::install::UninstallArgs),
}

fn main() -> ExitCode {
    if std::env::var_os(goplugin::MAGIC_COOKIE_KEY).is_some() || std::env::args_os().len() == 1 {
        if !goplugin::cookie_present() {
            eprintln!("{}", goplugin::NOT_A_PROGRAM);
            return ExitCode::from(1);
        }
        logging::init();
        steampipe_plugin_aws::memory::limit_arenas();
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(r) => r,
            Err(e) => {
                goplugin::startup_failed(&format!("cannot start the async runtime: {e}"));
                return ExitCode::from(1);
            }
        };
        let served = runtime.block_on(async {
            let plugin = aws::plugin();
            let service = steampipe_plugin_aws::pb::steampipe::wrapper_plugin_server::WrapperPluginServer::new(plugin)
                .max_decoding_message_size(64 << 20)
                .max_encoding_message_size(usize::MAX);
            goplugin::serve(service).await
        });
        // Exit at once, without dropping the runtime: a scan the host
        // abandoned must not hold the process.
        std::process::exit(if served.is_ok() { 0 } else { 1 });
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            // `check` follows Powerpipe: flags its command line rejects exit 255.
            let is_check = std::env::args().nth(1).as_deref() == Some("check");
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::SUCCESS
                }
                _ if is_check => ExitCode::from(255),
                _ => ExitCode::from(2),
            };
        }
    };
    match cli.command {
        Some(Command::Schema) => {
            let schema = aws::plugin().schema();
            println!("{}", schema_json(&schema));
            ExitCode::SUCCESS
        }
        Some(Command::Check(args)) => steampipe_plugin_aws::check::cli::run(*args),
        Some(Command::Enforce(args)) => steampipe_plugin_aws::enforce::run(*args),
        Some(Command::Install(args)) => steampipe_plugin_aws::install::run_install(args),
        Some(Command::Uninstall(args)) => steampipe_plugin_aws::install::run_uninstall(args),
        None => {
            eprintln!("{}", goplugin::NOT_A_PROGRAM);
            ExitCode::from(1)
        }
    }
}

fn schema_json(schema: &steampipe_plugin_aws::pb::steampipe::Schema) -> String {
    use steampipe_plugin_aws::pb::steampipe::ColumnType;
    let mut tables: Vec<_> = schema.schema.iter().collect();
    tables.sort_by(|a, b| a.0.cmp(b.0));
    let tables: Vec<serde_json::Value> = tables
        .into_iter()
        .map(|(name, t)| {
            serde_json::json!({
                "table": name,
                "description": t.description,
                "columns": t.columns.iter().map(|c| serde_json::json!({
                    "name": c.name,
                    "type": ColumnType::try_from(c.r#type).map(|t| t.as_str_name()).unwrap_or("UNKNOWN"),
                    "description": c.description,
                })).collect::<Vec<_>>(),
                "get_key_columns": t.get_call_key_column_list.iter().map(|k| &k.name).collect::<Vec<_>>(),
                "list_key_columns": t.list_call_key_column_list.iter().map(|k| &k.name).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::to_string_pretty(&serde_json::json!({
        "sdk_version": schema.sdk_version,
        "protocol_version": schema.protocol_version,
        "mode": schema.mode,
        "tables": tables,
    }))
    .unwrap_or_default()
}
