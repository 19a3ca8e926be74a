//! `enforce`: switches instances to IMDSv2 (`HttpTokens=required`) only
//! when CloudWatch proves they no longer use IMDSv1, and optionally the
//! region defaults; with a dry run by default, a confirmation, an undo file
//! and `--undo`.
//!
//! The readiness rule is the `imds_readiness` benchmark's: an instance that
//! allows IMDSv1 is safe when `MetadataNoToken` has a datapoint on every one
//! of the last N whole days (it is published only while the instance runs,
//! so full coverage proves the instance ran, and was watched, through the
//! window) and every datapoint of the window, today's included, is 0. An
//! instance with IMDSv1 calls, no data or partial data is never touched
//! unless named with `--include`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use aws_sdk_ec2::types::{
    HttpTokensState, InstanceMetadataEndpointState, InstanceMetadataProtocolState,
    InstanceMetadataTagsState, MetadataDefaultHttpTokensState,
};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::aws::ec2_instance_metadata_defaults as defaults;
use crate::aws::ec2_instance_metadata_usage::{self as usage, Window, DAY};
use crate::aws::errors::AwsError;
use crate::aws::regional::RegionCall;
use crate::aws::AwsConnection;
use crate::plugin::limiter::Definition;
use crate::plugin::limiter::ScopeValues;
use crate::plugin::{ConnectionConfig, RateLimiters};

/// Arguments of `enforce`.
#[derive(clap::Args, Debug, Clone)]
pub struct EnforceArgs {
    /// Make the changes (default: print the plan and change nothing).
    #[arg(long)]
    pub apply: bool,
    /// With --apply: do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
    /// Whole days of MetadataNoToken data, all zero, that make an instance safe.
    #[arg(long, default_value_t = 14, value_parser = clap::value_parser!(i64).range(1..=455))]
    pub days: i64,
    /// Also switch this instance (id), whatever its usage says (repeatable).
    #[arg(long = "include", value_name = "INSTANCE_ID")]
    pub include: Vec<String>,
    /// Also set each region's default for new instances to HttpTokens=required.
    #[arg(long)]
    pub set_defaults: bool,
    /// With --set-defaults: the default hop limit to set too (2 where containers run).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..=64))]
    pub hop_limit: Option<i32>,
    /// Where to write the undo file (default: enforce-undo-<timestamp>.json here).
    #[arg(long, value_name = "PATH")]
    pub undo_file: Option<PathBuf>,
    /// Restore the settings an undo file holds, instead of planning.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["include", "set_defaults", "undo_file"])]
    pub undo: Option<PathBuf>,
    /// How many changes are made at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    /// At most this many changes a second per region (EC2 refills its
    /// mutating-action token bucket at 5 a second); the plugin's own rate
    /// limiters apply too.
    #[arg(long, default_value_t = 5.0, value_parser = positive_rate)]
    pub rate: f32,
    /// Regions (comma-separated; wildcards allowed, e.g. 'eu-*'); default: the default region.
    #[arg(long, value_delimiter = ',', value_name = "REGIONS")]
    pub regions: Vec<String>,
    /// The AWS profile.
    #[arg(long)]
    pub profile: Option<String>,
    /// The region for global calls.
    #[arg(long)]
    pub default_region: Option<String>,
    /// An endpoint override for every service (e.g. a local emulator).
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
}

/// An instance's metadata options, as the undo file keeps them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceOptions {
    /// optional | required
    pub http_tokens: String,
    /// the hop limit
    pub hop_limit: Option<i32>,
    /// enabled | disabled
    pub http_endpoint: Option<String>,
    /// enabled | disabled
    pub instance_metadata_tags: Option<String>,
    /// enabled | disabled
    #[serde(default)]
    pub http_protocol_ipv6: Option<String>,
}

/// A region's defaults, as the undo file keeps them (`None`: never set).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefaultOptions {
    /// optional | required | None
    pub http_tokens: Option<String>,
    /// the hop limit, or None
    pub hop_limit: Option<i32>,
}

/// One change, with what it replaces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// ModifyInstanceMetadataOptions
    Instance {
        /// the region
        region: String,
        /// the instance
        instance_id: String,
        /// the settings before
        previous: InstanceOptions,
    },
    /// ModifyInstanceMetadataDefaults
    RegionDefault {
        /// the region
        region: String,
        /// the settings before
        previous: DefaultOptions,
    },
}

impl Change {
    fn label(&self) -> String {
        match self {
            Change::Instance {
                region,
                instance_id,
                ..
            } => format!("{instance_id} ({region})"),
            Change::RegionDefault { region, .. } => format!("default of {region}"),
        }
    }
}

/// The undo file.
#[derive(Debug, Serialize, Deserialize)]
pub struct UndoFile {
    /// what wrote it
    pub written_by: String,
    /// unix seconds
    pub created: i64,
    /// the changes made, with the settings they replaced
    pub changes: Vec<Change>,
}

/// What enforce found for one instance.
#[derive(Debug, Clone)]
struct Found {
    region: String,
    id: String,
    name: Option<String>,
    state: String,
    options: InstanceOptions,
    verdict: Verdict,
}

/// The default version of a launch template and its HttpTokens.
#[derive(Debug, Clone)]
struct Template {
    region: String,
    id: String,
    name: String,
    version: i64,
    http_tokens: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Verdict {
    Required,
    Disabled,
    Safe,
    InUse { calls: f64, last: i64 },
    NoData,
    Partial { days: i64 },
}

fn positive_rate(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(r) if r.is_finite() && r > 0.0 && r <= 1000.0 => Ok(r),
        _ => Err(format!(
            "'{s}' is not a rate between 0 and 1000 changes a second"
        )),
    }
}

/// The limiters every change waits on: the plugin's definitions (as a
/// scan's calls do) and enforce's own, `rate` a second per region.
fn limiters(rate: f32) -> RateLimiters {
    let mut defs = crate::aws::limiters::definitions();
    // `rate` is checked positive by its parser, so this parses.
    if let Ok(d) = Definition::new(
        "enforce_modify",
        rate,
        (rate.ceil() as i64).max(1),
        0,
        &["connection", "region"],
        "",
    ) {
        defs.push(d);
    }
    RateLimiters::from_definitions(defs)
}

async fn wait_limiters(limiters: &RateLimiters, region: &str, action: &str) {
    let values: ScopeValues = [
        ("connection", "aws"),
        ("region", region),
        ("service", "ec2"),
        ("action", action),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let l = limiters.resolve(&values);
    let _slots = l.acquire().await;
    l.wait().await;
}

fn fail(code: u8, msg: &str) -> ExitCode {
    eprintln!("Error: {msg}");
    ExitCode::from(code)
}

fn hcl_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

fn connection(args: &EnforceArgs) -> Result<Arc<AwsConnection>, String> {
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
    let regions: Vec<String> = (args.regions.iter())
        .map(|r| r.trim())
        .filter(|r| !r.is_empty())
        .map(hcl_string)
        .collect();
    if !regions.is_empty() {
        lines.push(format!("regions = [{}]", regions.join(", ")));
    }
    let hcl: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let conn = AwsConnection::parse("aws", &hcl).map_err(|e| e.to_string())?;
    conn.usable().map_err(|e| e.to_string())?;
    Ok(Arc::new(conn))
}

/// `YYYY-MM-DD` of unix seconds.
fn date(t: i64) -> String {
    aws_smithy_types::DateTime::from_secs(t)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .map(|s| s[..10].to_string())
        .unwrap_or_default()
}

/// The readiness of an instance that allows IMDSv1 from its days of usage.
fn verdict(days: &[usage::UsageDay], n: i64, today: i64) -> Verdict {
    let in_window = |d: &usage::UsageDay| (today - d.day) / DAY <= n;
    let calls: f64 = (days.iter())
        .filter(|d| in_window(d))
        .filter_map(|d| d.no_token)
        .sum();
    if calls > 0.0 {
        let last = (days.iter())
            .filter(|d| in_window(d) && d.no_token.unwrap_or(0.0) > 0.0)
            .map(|d| d.day)
            .max()
            .unwrap_or(today);
        return Verdict::InUse { calls, last };
    }
    let covered = (days.iter())
        .filter(|d| (1..=n).contains(&((today - d.day) / DAY)) && d.no_token.is_some())
        .count() as i64;
    if covered >= n {
        Verdict::Safe
    } else if days
        .iter()
        .any(|d| in_window(d) && (d.no_token.is_some() || d.rejected.is_some()))
    {
        Verdict::Partial { days: covered }
    } else {
        Verdict::NoData
    }
}

fn text<E: AsRef<str>>(v: Option<&E>) -> Option<String> {
    v.map(|x| x.as_ref().to_string())
}

/// Reads one region: its instances (with their usage) and its defaults.
async fn survey(
    c: RegionCall,
    n: i64,
) -> Result<(Vec<Found>, defaults::Defaults, Vec<Template>), String> {
    let err = |e: AwsError| e.to_string();
    let mut instances = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let o = (c.ec2().await.describe_instances())
            .max_results(1000)
            .set_next_token(token.clone())
            .send()
            .await
            .map_err(|e| err(AwsError::from_sdk("DescribeInstances", &c.region, e)))?;
        for i in (o.reservations.unwrap_or_default().into_iter())
            .flat_map(|r| r.instances.unwrap_or_default())
        {
            let state = text(i.state.as_ref().and_then(|s| s.name.as_ref())).unwrap_or_default();
            if matches!(state.as_str(), "terminated" | "shutting-down") {
                continue;
            }
            let Some(id) = i.instance_id.clone() else {
                continue;
            };
            let mo = i.metadata_options.as_ref();
            let options = InstanceOptions {
                http_tokens: text(mo.and_then(|m| m.http_tokens.as_ref()))
                    .unwrap_or_else(|| "optional".into()),
                hop_limit: mo.and_then(|m| m.http_put_response_hop_limit),
                http_endpoint: text(mo.and_then(|m| m.http_endpoint.as_ref())),
                instance_metadata_tags: text(mo.and_then(|m| m.instance_metadata_tags.as_ref())),
                http_protocol_ipv6: text(mo.and_then(|m| m.http_protocol_ipv6.as_ref())),
            };
            let name = (i.tags.iter().flatten())
                .find(|t| t.key.as_deref() == Some("Name"))
                .and_then(|t| t.value.clone());
            instances.push(Found {
                region: c.region.clone(),
                id,
                name,
                state,
                verdict: Verdict::NoData,
                options,
            });
        }
        match o
            .next_token
            .filter(|t| !t.is_empty() && Some(t) != token.as_ref())
        {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    let open: Vec<String> = (instances.iter())
        .filter(|f| f.options.http_tokens != "required")
        .map(|f| f.id.clone())
        .collect();
    let today = usage::midnight(usage::now());
    let read = if open.is_empty() {
        Vec::new()
    } else {
        usage::usage(&c, &open, Window::last_days(n, usage::now()))
            .await
            .map_err(|e| err(AwsError::from_sdk("GetMetricData", &c.region, e)))?
    };
    let by_id: BTreeMap<String, Vec<usage::UsageDay>> = read.into_iter().collect();
    for f in &mut instances {
        f.verdict = if f.options.http_tokens == "required" {
            Verdict::Required
        } else if f.options.http_endpoint.as_deref() == Some("disabled") {
            Verdict::Disabled
        } else {
            verdict(by_id.get(&f.id).map_or(&[][..], |v| v), n, today)
        };
    }
    let d = defaults::fetch(&c).await.map_err(|e| {
        err(AwsError::from_sdk(
            "GetInstanceMetadataDefaults",
            &c.region,
            e,
        ))
    })?;
    let templates = templates(&c).await?;
    Ok((instances, d, templates))
}

/// The default version of every launch template of the region.
async fn templates(c: &RegionCall) -> Result<Vec<Template>, String> {
    let err = |e: AwsError| e.to_string();
    let mut ids = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let o = (c.ec2().await.describe_launch_templates())
            .max_results(200)
            .set_next_token(token.clone())
            .send()
            .await
            .map_err(|e| err(AwsError::from_sdk("DescribeLaunchTemplates", &c.region, e)))?;
        for t in o.launch_templates.unwrap_or_default() {
            if let Some(id) = t.launch_template_id {
                ids.push(id);
            }
        }
        match o
            .next_token
            .filter(|t| !t.is_empty() && Some(t) != token.as_ref())
        {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    let mut out = Vec::new();
    for id in ids {
        let mut token: Option<String> = None;
        loop {
            let o = (c.ec2().await.describe_launch_template_versions())
                .launch_template_id(&id)
                .max_results(200)
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| {
                    err(AwsError::from_sdk(
                        "DescribeLaunchTemplateVersions",
                        &c.region,
                        e,
                    ))
                })?;
            for v in o.launch_template_versions.unwrap_or_default() {
                if v.default_version != Some(true) {
                    continue;
                }
                out.push(Template {
                    region: c.region.clone(),
                    id: id.clone(),
                    name: v.launch_template_name.unwrap_or_default(),
                    version: v.version_number.unwrap_or_default(),
                    http_tokens: text(
                        (v.launch_template_data.as_ref())
                            .and_then(|d| d.metadata_options.as_ref())
                            .and_then(|m| m.http_tokens.as_ref()),
                    ),
                });
            }
            match o
                .next_token
                .filter(|t| !t.is_empty() && Some(t) != token.as_ref())
            {
                Some(t) => token = Some(t),
                None => break,
            }
        }
    }
    Ok(out)
}

/// Runs `enforce`.
pub fn run(args: EnforceArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(2, &format!("cannot start the async runtime: {e}")),
    };
    runtime.block_on(run_async(args))
}

async fn run_async(args: EnforceArgs) -> ExitCode {
    let conn = match connection(&args) {
        Ok(c) => c,
        Err(e) => return fail(2, &e),
    };
    if let Some(file) = &args.undo {
        return undo(&conn, file, &args).await;
    }
    let regions = conn.query_regions().await;
    let n = args.days;
    let surveys = futures::stream::iter(regions.iter().cloned().map(|region| {
        let c = RegionCall {
            conn: conn.clone(),
            region,
        };
        survey(c, n)
    }))
    .buffered(8)
    .collect::<Vec<_>>()
    .await;
    let mut found = Vec::new();
    let mut region_defaults = Vec::new();
    let mut templates = Vec::new();
    for (region, s) in regions.iter().zip(surveys) {
        match s {
            Ok((f, d, t)) => {
                found.extend(f);
                region_defaults.push((region.clone(), d));
                templates.extend(t);
            }
            Err(e) => {
                return fail(2, &format!("the plan could not be computed: {e}"));
            }
        }
    }
    let include: BTreeSet<&str> = args.include.iter().map(String::as_str).collect();
    for id in &include {
        if !found.iter().any(|f| f.id == *id) {
            return fail(
                2,
                &format!("--include {id}: no such instance (not terminated) in the regions enforce reads ({})", regions.join(", ")),
            );
        }
    }
    // The plan.
    let mut changes = Vec::new();
    println!(
        "IMDSv2 enforcement plan ({} regions, window: the last {n} whole days)",
        regions.len()
    );
    println!();
    println!("Instances:");
    for f in &found {
        let label = match &f.name {
            Some(name) => format!("{} ({name}, {}, {})", f.id, f.region, f.state),
            None => format!("{} ({}, {})", f.id, f.region, f.state),
        };
        let included = include.contains(f.id.as_str());
        let (change, why) = match &f.verdict {
            Verdict::Required => (false, "already requires IMDSv2".to_string()),
            Verdict::Disabled => (
                false,
                "left alone: the metadata service is turned off".into(),
            ),
            Verdict::Safe => (
                true,
                format!("safe: 0 IMDSv1 calls, data on each of the {n} days"),
            ),
            Verdict::InUse { calls, last } => (
                included,
                format!(
                    "in use: {calls} IMDSv1 calls in {n} days, last on {}",
                    date(*last)
                ),
            ),
            Verdict::NoData => (
                included,
                format!("no MetadataNoToken data in {n} days (stopped, or not monitored)"),
            ),
            Verdict::Partial { days } => (
                included,
                format!("data on only {days} of {n} days: not proven safe"),
            ),
        };
        let unsafe_included = included && f.verdict != Verdict::Safe && change;
        let action = if change { "  SWITCH  " } else { "  leave   " };
        let suffix = if unsafe_included {
            " -- INCLUDED BY --include despite this"
        } else if !change
            && matches!(
                f.verdict,
                Verdict::InUse { .. } | Verdict::NoData | Verdict::Partial { .. }
            )
        {
            " (name it with --include to switch it anyway)"
        } else {
            ""
        };
        println!("{action}{label}: {why}{suffix}");
        if change {
            changes.push(Change::Instance {
                region: f.region.clone(),
                instance_id: f.id.clone(),
                previous: f.options.clone(),
            });
        }
    }
    if found.is_empty() {
        println!("  (no instances)");
    }
    println!();
    println!("Region defaults for new instances:");
    let mut requires_after: BTreeSet<String> = BTreeSet::new();
    for (region, d) in &region_defaults {
        let tokens = text(d.http_tokens.as_ref());
        let hop = d.http_put_response_hop_limit;
        let now = format!(
            "http_tokens {}, hop limit {}",
            tokens.as_deref().unwrap_or("not set"),
            hop.map_or("not set".to_string(), |h| h.to_string())
        );
        let managed = text(d.managed_by.as_ref()).as_deref() == Some("declarative-policy");
        let wanted_hop = args.hop_limit.is_none() || args.hop_limit == hop;
        if tokens.as_deref() == Some("required") {
            requires_after.insert(region.clone());
        }
        if tokens.as_deref() == Some("required") && wanted_hop {
            println!("  leave   {region}: {now}: already requires IMDSv2");
        } else if managed {
            println!("  leave   {region}: {now}: set by a declarative policy (change the policy)");
        } else if !args.set_defaults {
            println!(
                "  leave   {region}: {now} (--set-defaults would set http_tokens required{})",
                args.hop_limit
                    .map_or(String::new(), |h| format!(", hop limit {h}"))
            );
        } else {
            println!(
                "  SET     {region}: {now} -> http_tokens required{}",
                args.hop_limit
                    .map_or(String::new(), |h| format!(", hop limit {h}"))
            );
            requires_after.insert(region.clone());
            changes.push(Change::RegionDefault {
                region: region.clone(),
                previous: DefaultOptions {
                    http_tokens: tokens.clone(),
                    hop_limit: hop,
                },
            });
        }
    }
    println!();
    println!("Launch templates (default version; enforce does not change templates):");
    for t in &templates {
        let label = format!("{} {} version {} ({})", t.id, t.name, t.version, t.region);
        let region_required_now = region_defaults.iter().any(|(r, d)| {
            *r == t.region && text(d.http_tokens.as_ref()).as_deref() == Some("required")
        });
        match t.http_tokens.as_deref() {
            Some("required") => println!("  ok      {label}: requires IMDSv2"),
            None if region_required_now => {
                println!("  ok      {label}: sets no HttpTokens; the region default requires IMDSv2")
            }
            None if requires_after.contains(&t.region) => println!(
                "  CHANGES {label}: sets no HttpTokens; its launches will require IMDSv2 once the region default is set"
            ),
            other => println!(
                "  fix     {label}: {}; create a version with MetadataOptions HttpTokens=required (see check control.imds_readiness_launch_template)",
                match other {
                    Some(v) => format!("allows IMDSv1 (HttpTokens {v})"),
                    None => "sets no HttpTokens and the region default does not require IMDSv2"
                        .to_string(),
                }
            ),
        }
    }
    if templates.is_empty() {
        println!("  (no launch templates)");
    }
    let instance_changes = changes
        .iter()
        .filter(|c| matches!(c, Change::Instance { .. }))
        .count();
    println!();
    println!(
        "Plan: switch {instance_changes} instances to HttpTokens=required, set {} region defaults; leave {} instances as they are.",
        changes.len() - instance_changes,
        found.len() - instance_changes
    );
    println!("Launch configurations and AMIs are not changed by enforce either: see `check benchmark.imds_readiness` for their commands.");
    if !args.apply {
        println!("Dry run: nothing was changed. Run with --apply to make these changes.");
        return ExitCode::SUCCESS;
    }
    if changes.is_empty() {
        println!("Nothing to change.");
        return ExitCode::SUCCESS;
    }
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            return fail(
                2,
                "--apply asks for confirmation on a terminal; add --yes to apply without asking",
            );
        }
        print!(
            "Apply these {} changes? Type 'yes' to continue: ",
            changes.len()
        );
        let _ = std::io::stdout().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if answer.trim() != "yes" {
            println!("Not applied.");
            return ExitCode::SUCCESS;
        }
    }
    let path = args.undo_file.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "enforce-undo-{}.json",
            aws_smithy_types::DateTime::from_secs(usage::now())
                .fmt(aws_smithy_types::date_time::Format::DateTime)
                .unwrap_or_default()
                .replace(':', "")
        ))
    });
    let file = UndoFile {
        written_by: format!("steampipe-plugin-aws {} enforce", env!("CARGO_PKG_VERSION")),
        created: usage::now(),
        changes: changes.clone(),
    };
    let json = serde_json::to_string_pretty(&file).unwrap_or_default();
    if let Err(e) = std::fs::write(&path, json + "\n") {
        return fail(
            2,
            &format!(
                "cannot write the undo file {}: {e}; nothing was changed",
                path.display()
            ),
        );
    }
    println!(
        "Undo file: {} (restore with: enforce --undo {})",
        path.display(),
        path.display()
    );
    let results = apply(&conn, &changes, &args, false).await;
    summary(&results)
}

/// Makes `changes` (or, with `restore`, puts their previous settings back),
/// `concurrency` at a time; one line per change; the results in order.
async fn apply(
    conn: &Arc<AwsConnection>,
    changes: &[Change],
    args: &EnforceArgs,
    restore: bool,
) -> Vec<(Change, Result<(), String>)> {
    let limiters = &limiters(args.rate);
    let runs = changes.iter().cloned().map(|change| {
        let conn = conn.clone();
        let hop_limit = args.hop_limit;
        async move {
            let (region, action) = match &change {
                Change::Instance { region, .. } => (region, "ModifyInstanceMetadataOptions"),
                Change::RegionDefault { region, .. } => (region, "ModifyInstanceMetadataDefaults"),
            };
            wait_limiters(limiters, region, action).await;
            let r = make(&conn, &change, hop_limit, restore).await;
            match &r {
                Ok(()) => println!("  ok      {}", describe(&change, restore, hop_limit)),
                Err(e) => println!("  FAILED  {}: {e}", describe(&change, restore, hop_limit)),
            }
            (change, r)
        }
    });
    futures::stream::iter(runs)
        .buffer_unordered(args.concurrency as usize)
        .collect()
        .await
}

fn describe(change: &Change, restore: bool, hop_limit: Option<i32>) -> String {
    match change {
        Change::Instance { previous, .. } if restore => format!(
            "{}: HttpTokens required -> {}",
            change.label(),
            previous.http_tokens
        ),
        Change::Instance { previous, .. } => format!(
            "{}: HttpTokens {} -> required",
            change.label(),
            previous.http_tokens
        ),
        Change::RegionDefault { previous, .. } if restore => format!(
            "{}: http_tokens -> {}, hop limit -> {}",
            change.label(),
            previous.http_tokens.as_deref().unwrap_or("no preference"),
            previous
                .hop_limit
                .map_or("no preference".into(), |h| h.to_string())
        ),
        Change::RegionDefault { previous, .. } => format!(
            "{}: http_tokens {} -> required{}",
            change.label(),
            previous.http_tokens.as_deref().unwrap_or("not set"),
            hop_limit.map_or(String::new(), |h| format!(", hop limit {h}"))
        ),
    }
}

async fn make(
    conn: &Arc<AwsConnection>,
    change: &Change,
    hop_limit: Option<i32>,
    restore: bool,
) -> Result<(), String> {
    match change {
        Change::Instance {
            region,
            instance_id,
            previous,
        } => {
            // Every other setting is sent as it was: the switch changes only
            // HttpTokens (and an emulator that resets what is not sent keeps them too).
            let tokens = if restore {
                previous.http_tokens.as_str()
            } else {
                "required"
            };
            conn.ec2(region)
                .await
                .modify_instance_metadata_options()
                .instance_id(instance_id)
                .http_tokens(HttpTokensState::from(tokens))
                .set_http_put_response_hop_limit(previous.hop_limit)
                .set_http_endpoint(
                    previous
                        .http_endpoint
                        .as_deref()
                        .map(InstanceMetadataEndpointState::from),
                )
                .set_instance_metadata_tags(
                    previous
                        .instance_metadata_tags
                        .as_deref()
                        .map(InstanceMetadataTagsState::from),
                )
                .set_http_protocol_ipv6(
                    previous
                        .http_protocol_ipv6
                        .as_deref()
                        .map(InstanceMetadataProtocolState::from),
                )
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    AwsError::from_sdk("ModifyInstanceMetadataOptions", region, e).to_string()
                })
        }
        Change::RegionDefault { region, previous } => {
            let call = conn.ec2(region).await.modify_instance_metadata_defaults();
            let call = if restore {
                call.http_tokens(MetadataDefaultHttpTokensState::from(
                    previous.http_tokens.as_deref().unwrap_or("no-preference"),
                ))
                .http_put_response_hop_limit(previous.hop_limit.unwrap_or(-1))
            } else {
                call.http_tokens(MetadataDefaultHttpTokensState::Required)
                    .set_http_put_response_hop_limit(hop_limit)
            };
            // (the endpoint and tags defaults are not touched)
            call.send().await.map(|_| ()).map_err(|e| {
                AwsError::from_sdk("ModifyInstanceMetadataDefaults", region, e).to_string()
            })
        }
    }
}

fn summary(results: &[(Change, Result<(), String>)]) -> ExitCode {
    let failed: Vec<&(Change, Result<(), String>)> =
        results.iter().filter(|(_, r)| r.is_err()).collect();
    println!();
    println!(
        "Summary: {} changed, {} failed.",
        results.len() - failed.len(),
        failed.len()
    );
    for (c, r) in &failed {
        if let Err(e) = r {
            println!("  failed: {}: {e}", c.label());
        }
    }
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

async fn undo(conn: &Arc<AwsConnection>, file: &PathBuf, args: &EnforceArgs) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            return fail(
                2,
                &format!("cannot read the undo file {}: {e}", file.display()),
            )
        }
    };
    let undo: UndoFile = match serde_json::from_str(&text) {
        Ok(u) => u,
        Err(e) => {
            return fail(
                2,
                &format!("{} is not an enforce undo file: {e}", file.display()),
            )
        }
    };
    println!(
        "Restoring {} settings from {}",
        undo.changes.len(),
        file.display()
    );
    let results = apply(conn, &undo.changes, args, true).await;
    summary(&results)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn days(today: i64, sums: &[(i64, Option<f64>)]) -> Vec<usage::UsageDay> {
        sums.iter()
            .map(|(ago, v)| usage::UsageDay {
                instance_id: "i-1".into(),
                day: today - ago * DAY,
                no_token: *v,
                rejected: None,
                window: Window::last_days(3, today + 100),
                today,
            })
            .collect()
    }

    #[test]
    fn safe_needs_a_zero_on_every_day_of_the_window() {
        let t = 100 * DAY;
        let full = [(3, Some(0.0)), (2, Some(0.0)), (1, Some(0.0))];
        assert_eq!(verdict(&days(t, &full), 3, t), Verdict::Safe);
        // Today's partial day may have no datapoint yet, but a call today counts.
        let mut today_call = full.to_vec();
        today_call.push((0, Some(1.0)));
        assert_eq!(
            verdict(&days(t, &today_call), 3, t),
            Verdict::InUse {
                calls: 1.0,
                last: t
            }
        );
        // A missing day: it did not run (or was not watched) all along.
        let gap = [(3, Some(0.0)), (2, None), (1, Some(0.0))];
        assert_eq!(verdict(&days(t, &gap), 3, t), Verdict::Partial { days: 2 });
        assert_eq!(verdict(&days(t, &[(1, None)]), 3, t), Verdict::NoData);
        assert_eq!(verdict(&[], 3, t), Verdict::NoData);
        // A call outside the window does not count.
        let old = [
            (4, Some(9.0)),
            (3, Some(0.0)),
            (2, Some(0.0)),
            (1, Some(0.0)),
        ];
        assert_eq!(verdict(&days(t, &old), 3, t), Verdict::Safe);
        let used = [(3, Some(0.0)), (2, Some(2.0)), (1, Some(0.0))];
        assert_eq!(
            verdict(&days(t, &used), 3, t),
            Verdict::InUse {
                calls: 2.0,
                last: t - 2 * DAY
            }
        );
    }
}
