//! The aws plugin's connection arguments, exactly those of turbot's plugin
//! (`aws/connection_config.go`): an unknown argument, a value of the wrong
//! type or a bad value is an error that names the connection and the
//! argument. Three values turbot's plugin checks only when a query uses the
//! connection (`regions = []`, `max_error_retry_attempts` or
//! `min_error_retry_delay` below 1, a bad `AWS_MAX_ATTEMPTS`) are checked
//! the same way here: the connection is accepted and each of its scans fails
//! with turbot's message ([`AwsConfig::usable`]), so one bad connection
//! does not stop Steampipe from loading the others.
//!
//! A pure parse: it knows nothing of clients or AWS calls. The connection
//! the plugin serves, [`crate::aws::client::AwsConnection`], owns one
//! `AwsConfig` and its clients.
//!
//! ```hcl
//! connection "aws_prod" {
//!   plugin  = "aws"
//!   regions = ["us-east-1", "eu-*"]
//!   profile = "prod"
//! }
//! ```

use std::fmt;
use std::time::Duration;

use crate::plugin::{Attributes, ConfigError};

/// A secret that never shows in `Debug` or `Display` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret value, for handing to the credentials provider only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// One aws connection's parsed arguments.
#[derive(Debug, Clone)]
pub struct AwsConfig {
    /// region patterns (`*`, `?` wildcards), lower-cased; `None` = the default region only
    pub regions: Option<Vec<String>>,
    /// the region used for global calls and when `regions` is unset
    pub default_region: Option<String>,
    /// named profile
    pub profile: Option<String>,
    /// static access key id
    pub access_key: Option<Secret>,
    /// static secret key
    pub secret_key: Option<Secret>,
    /// static session token
    pub session_token: Option<Secret>,
    /// how many times a call is tried (default 9; `AWS_MAX_ATTEMPTS` also sets it)
    pub max_error_retry_attempts: u32,
    /// the first retry delay in milliseconds (default 25)
    pub min_error_retry_delay_ms: u64,
    /// extra error codes (globs) treated as empty results
    pub ignore_error_codes: Vec<String>,
    /// regexes on error messages treated as empty results
    pub ignore_error_messages: Vec<regex::Regex>,
    /// endpoint override for every service (`AWS_ENDPOINT_URL` also sets it)
    pub endpoint_url: Option<String>,
    /// S3 path-style addressing
    pub s3_force_path_style: bool,
    /// a value turbot's plugin rejects at query time: every scan of this
    /// connection fails with this message
    pub invalid: Option<String>,
}

/// The environment variable that overrides [`attempt_timeout`], in milliseconds.
pub const ATTEMPT_TIMEOUT_ENV: &str = "STEAMPIPE_AWS_ATTEMPT_TIMEOUT_MS";

/// The per-attempt timeout of every AWS call made by a connection: how long
/// one try of an operation (connect, send, wait for and read the answer) may
/// take before the SDK abandons it. A timed-out try is a transient error, so
/// it is retried like a throttled one, up to `max_error_retry_attempts`; so a
/// stalled endpoint can hold a scan for at most about that many timeouts plus
/// the backoff, instead of forever.
///
/// 30 s by default. The environment variable `STEAMPIPE_AWS_ATTEMPT_TIMEOUT_MS`
/// (a positive integer, in milliseconds) overrides it for the whole plugin
/// process; the reliability tests set it to a few hundred milliseconds. An
/// unusable value is ignored, with a warning.
pub fn attempt_timeout() -> Duration {
    const DEFAULT: Duration = Duration::from_secs(30);
    match std::env::var(ATTEMPT_TIMEOUT_ENV) {
        Err(_) => DEFAULT,
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(ms) if ms > 0 => Duration::from_millis(ms),
            _ => {
                tracing::warn!(
                    "{ATTEMPT_TIMEOUT_ENV}={v:?} is not a positive number of milliseconds; using {}s",
                    DEFAULT.as_secs()
                );
                DEFAULT
            }
        },
    }
}

const DEFAULT_RETRY_ATTEMPTS: u32 = 9;
const DEFAULT_RETRY_DELAY_MS: u64 = 25;

fn valid_region_pattern(r: &str) -> bool {
    !r.is_empty()
        && r.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '*' | '?'))
}

impl AwsConfig {
    /// Parses one connection's HCL arguments (`connection` names it in errors).
    pub fn parse(connection: &str, hcl: &str) -> Result<AwsConfig, ConfigError> {
        let mut a = Attributes::parse(connection, hcl)?;
        let err = |attr: &str, msg: String| ConfigError::attribute(connection, attr, msg);
        // The first value turbot's plugin would reject at query time.
        let mut invalid: Option<String> = None;
        let mut defer = |msg: String| {
            if invalid.is_none() {
                tracing::warn!("connection '{connection}': {msg}");
                invalid = Some(msg);
            }
        };

        let regions = match a.strings("regions")? {
            None => None,
            Some(list) if list.is_empty() => {
                defer(format!(
                    "connection {connection} has invalid value for \"regions\", it must contain at least 1 region."
                ));
                None
            }
            Some(list) => {
                let mut out = Vec::with_capacity(list.len());
                for r in list {
                    let lower = r.trim().to_ascii_lowercase();
                    if !valid_region_pattern(&lower) {
                        return Err(err(
                            "regions",
                            format!("'{r}' is not a region name or pattern (letters, digits, '-', '*', '?')"),
                        ));
                    }
                    out.push(lower);
                }
                Some(out)
            }
        };
        let default_region = match a.string("default_region")? {
            Some(r) if !valid_region_pattern(&r) || r.contains(['*', '?']) => {
                return Err(err("default_region", format!("'{r}' is not a region name")))
            }
            other => other,
        };
        let profile = a.string("profile")?;
        let access_key = a.string("access_key")?.map(Secret);
        let secret_key = a.string("secret_key")?.map(Secret);
        let session_token = a.string("session_token")?.map(Secret);
        if access_key.is_some() != secret_key.is_some() {
            let (given, missing) = if access_key.is_some() {
                ("access_key", "secret_key")
            } else {
                ("secret_key", "access_key")
            };
            return Err(err(
                given,
                format!("is set without {missing}; set both or neither"),
            ));
        }
        if session_token.is_some() && access_key.is_none() {
            return Err(err(
                "session_token",
                "is set without access_key and secret_key".into(),
            ));
        }
        let env_attempts = std::env::var("AWS_MAX_ATTEMPTS").ok();
        let max_error_retry_attempts = match a.int("max_error_retry_attempts")? {
            Some(n) if n < 1 => {
                defer("connection config has invalid value for \"max_error_retry_attempts\", it must be greater than or equal to 1".into());
                DEFAULT_RETRY_ATTEMPTS
            }
            Some(n) => u32::try_from(n)
                .map_err(|_| err("max_error_retry_attempts", format!("{n} is too large")))?,
            None => match env_attempts {
                Some(v) => match v.trim().parse::<u32>().ok().filter(|n| *n >= 1) {
                    Some(n) => n,
                    None => {
                        defer("invalid value for environment variable \"AWS_MAX_ATTEMPTS\". It should be an integer value greater than or equal to 1".into());
                        DEFAULT_RETRY_ATTEMPTS
                    }
                },
                None => DEFAULT_RETRY_ATTEMPTS,
            },
        };
        let min_error_retry_delay_ms = match a.int("min_error_retry_delay")? {
            Some(n) if n < 1 => {
                defer("connection config has invalid value for \"min_error_retry_delay\", it must be greater than or equal to 1".into());
                DEFAULT_RETRY_DELAY_MS
            }
            Some(n) => n as u64,
            None => DEFAULT_RETRY_DELAY_MS,
        };
        let ignore_error_codes = a.strings("ignore_error_codes")?.unwrap_or_default();
        let mut ignore_error_messages = Vec::new();
        for m in a.strings("ignore_error_messages")?.unwrap_or_default() {
            let re = regex::Regex::new(&m).map_err(|e| {
                err(
                    "ignore_error_messages",
                    format!("'{m}' is not a valid regular expression: {e}"),
                )
            })?;
            ignore_error_messages.push(re);
        }
        let endpoint_url = match a.string("endpoint_url")? {
            Some(u) => Some(check_url(connection, "endpoint_url", &u)?),
            None => match std::env::var("AWS_ENDPOINT_URL") {
                Ok(u) if !u.trim().is_empty() => {
                    Some(check_url(connection, "endpoint_url", u.trim())?)
                }
                _ => None,
            },
        };
        let s3_force_path_style = a.bool("s3_force_path_style")?.unwrap_or(false);
        a.finish()?;
        Ok(AwsConfig {
            regions,
            default_region,
            profile,
            access_key,
            secret_key,
            session_token,
            max_error_retry_attempts,
            min_error_retry_delay_ms,
            ignore_error_codes,
            ignore_error_messages,
            endpoint_url,
            s3_force_path_style,
            invalid,
        })
    }
}

impl AwsConfig {
    /// `Err` with turbot's message when the connection has a value turbot's
    /// plugin rejects at query time; every scan of the connection calls this
    /// first.
    pub fn usable(&self) -> Result<(), crate::plugin::BoxError> {
        match &self.invalid {
            Some(msg) => Err(msg.clone().into()),
            None => Ok(()),
        }
    }
}

fn check_url(connection: &str, attr: &str, u: &str) -> Result<String, ConfigError> {
    let rest = u
        .strip_prefix("http://")
        .or_else(|| u.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.starts_with('/') => Ok(u.to_string()),
        _ => Err(ConfigError::attribute(
            connection,
            attr,
            format!("'{u}' is not an http:// or https:// URL"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(hcl: &str) -> Result<AwsConfig, ConfigError> {
        AwsConfig::parse("aws_test", hcl)
    }

    #[test]
    fn every_argument_of_the_go_plugin_is_accepted() {
        let c = parse(
            "access_key = \"AKIAEXAMPLE\"\ndefault_region = \"eu-west-1\"\nendpoint_url = \"http://127.0.0.1:5000\"\n\
             ignore_error_codes = [\"AccessDenied*\"]\nignore_error_messages = [\"^not authorized\"]\n\
             max_error_retry_attempts = 3\nmin_error_retry_delay = 100\nprofile = \"p\"\nregions = [\"US-east-1\", \"eu-*\"]\n\
             s3_force_path_style = true\nsecret_key = \"s3cr3t\"\nsession_token = \"tok\"\n",
        )
        .unwrap();
        assert_eq!(c.regions, Some(vec!["us-east-1".into(), "eu-*".into()]));
        assert_eq!(c.max_error_retry_attempts, 3);
        assert_eq!(c.min_error_retry_delay_ms, 100);
        assert!(c.s3_force_path_style);
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("s3cr3t") && !dbg.contains("AKIAEXAMPLE") && !dbg.contains("tok\""));
    }

    #[test]
    fn values_turbot_checks_at_query_time_are_accepted_and_fail_every_scan() {
        let cases = [
            (
                "regions = []\n",
                "connection aws_test has invalid value for \"regions\", it must contain at least 1 region.",
            ),
            (
                "max_error_retry_attempts = 0\n",
                "connection config has invalid value for \"max_error_retry_attempts\", it must be greater than or equal to 1",
            ),
            (
                "min_error_retry_delay = -5\n",
                "connection config has invalid value for \"min_error_retry_delay\", it must be greater than or equal to 1",
            ),
        ];
        for (hcl, want) in cases {
            let c = parse(hcl).unwrap();
            assert_eq!(c.usable().unwrap_err().to_string(), want, "{hcl}");
        }
        assert!(parse("regions = [\"us-east-1\"]\n")
            .unwrap()
            .usable()
            .is_ok());
    }

    #[test]
    fn bad_values_name_the_connection_and_argument() {
        let cases = [
            (
                "regions = \"us-east-1\"\n",
                "attribute 'regions': expected a list of strings",
            ),
            ("bogus = 1\n", "attribute 'bogus': unsupported argument"),
            (
                "ignore_error_messages = [\"(\"]\n",
                "attribute 'ignore_error_messages': '(' is not a valid regular expression",
            ),
            (
                "endpoint_url = \"localhost:4566\"\n",
                "attribute 'endpoint_url'",
            ),
            (
                "access_key = \"a\"\n",
                "attribute 'access_key': is set without secret_key",
            ),
            (
                "regions = [\"us east\"]\n",
                "attribute 'regions': 'us east' is not a region",
            ),
        ];
        for (hcl, want) in cases {
            let e = parse(hcl).unwrap_err().to_string();
            assert!(e.starts_with("connection 'aws_test': "), "{e}");
            assert!(e.contains(want), "{hcl:?} gave {e}");
        }
    }

    #[test]
    fn an_empty_config_means_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.regions, None);
        assert_eq!(c.min_error_retry_delay_ms, 25);
    }
}
