//! The shared AWS config and credentials files, read once per process and
//! handed to each connection cut down to the sections its profile uses.
//!
//! The SDK parses both files for every config it loads and keeps the parsed
//! set for the life of the config. An organisation's files have a profile
//! per account, so with a thousand connections, one per profile, that was a
//! thousand parses of a thousand profiles, kept: over a gigabyte and most of
//! a scan's time. Here the files are split into sections once (again when
//! one changes), and a connection's SDK config gets, as in-memory files, only
//! its profile's sections and what they lead to (`source_profile` chains,
//! `sso_session`, `services`); the SDK still does all the interpreting
//! (static keys, `role_arn`, `credential_process`, SSO...). A profile found
//! in neither file is left to the SDK, with the whole files, so that its own
//! error says so.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

#[allow(deprecated)]
use aws_config::profile::profile_file::{ProfileFileKind, ProfileFiles};

/// One `[...]` section: its header, its text (header and body), and its
/// top-level `key = value` properties.
#[derive(Debug)]
struct Section {
    header: String,
    text: String,
    props: Vec<(String, String)>,
}

impl Section {
    fn prop(&self, key: &str) -> Option<&str> {
        self.props
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Default)]
struct Parsed {
    config: Vec<Section>,
    credentials: Vec<Section>,
}

fn split(text: &str) -> Vec<Section> {
    let mut out: Vec<Section> = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            let header = t
                .trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or_default()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            out.push(Section {
                header,
                text: format!("{line}\n"),
                props: Vec::new(),
            });
            continue;
        }
        let Some(s) = out.last_mut() else { continue };
        s.text.push_str(line);
        s.text.push('\n');
        // Top-level properties only (sub-properties are indented).
        if !line.starts_with([' ', '\t']) {
            if let Some((k, v)) = t.split_once('=') {
                s.props.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
    }
    out
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

fn path_of(var: &str, default: &str) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(p) if !p.is_empty() => {
            let p = PathBuf::from(p);
            match p.strip_prefix("~") {
                Ok(rest) => home().map(|h| h.join(rest)),
                Err(_) => Some(p),
            }
        }
        _ => home().map(|h| h.join(".aws").join(default)),
    }
}

type Stamp = Vec<(PathBuf, Option<SystemTime>, u64)>;

fn stamp(paths: &[PathBuf]) -> Stamp {
    paths
        .iter()
        .map(|p| {
            let m = std::fs::metadata(p).ok();
            (
                p.clone(),
                m.as_ref().and_then(|m| m.modified().ok()),
                m.map(|m| m.len()).unwrap_or(0),
            )
        })
        .collect()
}

/// The files, parsed once while they do not change.
fn parsed() -> Option<Arc<Parsed>> {
    static CACHE: Mutex<Option<(Stamp, Arc<Parsed>)>> = Mutex::new(None);
    let config = path_of("AWS_CONFIG_FILE", "config")?;
    let credentials = path_of("AWS_SHARED_CREDENTIALS_FILE", "credentials")?;
    let now = stamp(&[config.clone(), credentials.clone()]);
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((s, p)) = cache.as_ref() {
        if *s == now {
            return Some(p.clone());
        }
    }
    let read = |p: &PathBuf| std::fs::read_to_string(p).unwrap_or_default();
    let p = Arc::new(Parsed {
        config: split(&read(&config)),
        credentials: split(&read(&credentials)),
    });
    *cache = Some((now, p.clone()));
    Some(p)
}

/// When `profile` is in neither profile file: a sentence saying so, naming
/// the two files, for the error a connection using it gets.
pub fn missing_profile(profile: &str) -> Option<String> {
    let parsed = parsed()?;
    if sections_for(&parsed, profile).is_some() {
        return None;
    }
    let show = |var: &str, default: &str| {
        path_of(var, default).map_or_else(|| format!("${var}"), |p| p.display().to_string())
    };
    Some(format!(
        "profile '{profile}' is in neither the AWS config file ({}) nor the credentials file ({}); add it there, or correct `profile` in the connection config",
        show("AWS_CONFIG_FILE", "config"),
        show("AWS_SHARED_CREDENTIALS_FILE", "credentials")
    ))
}

/// The profile files for a connection using `profile`: only the sections it
/// needs, or `None` (the SDK's default files) when the profile is in
/// neither file.
#[allow(deprecated)]
pub fn files_for(profile: &str) -> Option<ProfileFiles> {
    let parsed = parsed()?;
    let (config, credentials) = sections_for(&parsed, profile)?;
    Some(
        ProfileFiles::builder()
            .with_contents(ProfileFileKind::Config, config)
            .with_contents(ProfileFileKind::Credentials, credentials)
            .build(),
    )
}

/// The config and credentials text `profile` needs; `None` if neither file has it.
fn sections_for(parsed: &Parsed, profile: &str) -> Option<(String, String)> {
    let mut config = String::new();
    let mut credentials = String::new();
    let mut seen = BTreeSet::new();
    let mut todo = vec![format!("profile {profile}")];
    let mut found = false;
    while let Some(want) = todo.pop() {
        if !seen.insert(want.clone()) {
            continue;
        }
        let mut refs = Vec::new();
        let profile_name = want.strip_prefix("profile ");
        for s in &parsed.config {
            let matches =
                s.header == want || (profile_name == Some("default") && s.header == "default");
            if matches {
                config.push_str(&s.text);
                refs.push(s);
            }
        }
        if let Some(name) = profile_name {
            for s in parsed.credentials.iter().filter(|s| s.header == name) {
                credentials.push_str(&s.text);
                refs.push(s);
            }
        }
        if want == format!("profile {profile}") {
            found = !refs.is_empty();
        }
        for s in refs {
            if let Some(p) = s.prop("source_profile") {
                todo.push(format!("profile {p}"));
            }
            if let Some(p) = s.prop("sso_session") {
                todo.push(format!("sso-session {p}"));
            }
            if let Some(p) = s.prop("services") {
                todo.push(format!("services {p}"));
            }
        }
    }
    found.then_some((config, credentials))
}

/// The profile files for a connection without a `profile` (the SDK then
/// reads `AWS_PROFILE`, else `default`): that profile's sections, or none
/// when the files do not have it (as the SDK would find nothing either).
#[allow(deprecated)]
pub fn files_without_profile() -> Option<ProfileFiles> {
    let selected = std::env::var("AWS_PROFILE")
        .ok()
        .filter(|p| !p.trim().is_empty())
        .unwrap_or_else(|| "default".to_string());
    parsed()?;
    Some(files_for(&selected).unwrap_or_else(|| {
        ProfileFiles::builder()
            .with_contents(ProfileFileKind::Config, "")
            .with_contents(ProfileFileKind::Credentials, "")
            .build()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_split_with_their_top_level_properties() {
        let s = split(
            "[default]\nregion = us-east-1\n[profile a]\nrole_arn = arn:x\nsource_profile = b\ns3 =\n  max_concurrent_requests = 5\n[ sso-session  corp ]\nsso_region=eu-west-1\n",
        );
        let headers: Vec<&str> = s.iter().map(|x| x.header.as_str()).collect();
        assert_eq!(headers, ["default", "profile a", "sso-session corp"]);
        assert_eq!(s[1].prop("source_profile"), Some("b"));
        assert_eq!(s[1].prop("max_concurrent_requests"), None);
        assert!(s[1].text.contains("  max_concurrent_requests = 5\n"));
        assert_eq!(s[2].prop("sso_region"), Some("eu-west-1"));
    }

    #[test]
    fn a_profile_gets_its_sections_and_what_they_lead_to() {
        let parsed = Parsed {
            config: split(
                "[default]
region = us-east-1
[profile a]
role_arn = arn:aws:iam::1:role/r
source_profile = base
[profile base]
sso_session = corp
[sso-session corp]
sso_region = eu-west-1
[profile other]
region = eu-west-2
[profile loop]
source_profile = loop
",
            ),
            credentials: split(
                "[base]
aws_access_key_id = AKIDBASE
[other]
aws_access_key_id = AKIDOTHER
[solo]
aws_access_key_id = AKIDSOLO
",
            ),
        };
        let (config, creds) = sections_for(&parsed, "a").unwrap();
        assert_eq!(
            config,
            "[profile a]
role_arn = arn:aws:iam::1:role/r
source_profile = base
[profile base]
sso_session = corp
[sso-session corp]
sso_region = eu-west-1
"
        );
        assert_eq!(
            creds,
            "[base]
aws_access_key_id = AKIDBASE
"
        );
        // Only in the credentials file; the default profile; a loop ends.
        assert_eq!(sections_for(&parsed, "solo").unwrap().0, "");
        assert_eq!(
            sections_for(&parsed, "default").unwrap().0,
            "[default]
region = us-east-1
"
        );
        assert!(sections_for(&parsed, "loop").is_some());
        assert!(sections_for(&parsed, "missing").is_none());
    }
}
