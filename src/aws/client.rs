//! Per-connection AWS state: the SDK config (credentials, retries, endpoint),
//! one EC2 client per region, and the memoized caller identity, default
//! region and enabled regions. Created lazily on the first query, shared by
//! every scan of the connection.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextMut;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::OrchestratorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;
use tokio::sync::OnceCell;

use crate::aws::assume_role;
use crate::aws::common::CallerIdentity;
use crate::aws::config::AwsConfig;
use crate::aws::errors::{AwsError, ErrorContext, IncompleteAnswer};
use crate::aws::regions;
use crate::plugin::{ConfigError, ConnectionConfig};

pub use crate::aws::config::{attempt_timeout, ATTEMPT_TIMEOUT_ENV};

/// The lazily built clients and memoized answers of one connection.
/// One aws connection as the plugin serves it: its parsed arguments
/// ([`AwsConfig`], reached through `Deref`) and what is built from them on
/// first use, per service and region: the SDK config, the caller identity,
/// the enabled regions, the clients.
#[derive(Debug, Clone)]
pub struct AwsConnection {
    /// the connection's arguments
    pub config: AwsConfig,
    /// clients and memoized answers, built on first use
    state: Arc<ConnectionState>,
}

impl std::ops::Deref for AwsConnection {
    type Target = AwsConfig;
    fn deref(&self) -> &AwsConfig {
        &self.config
    }
}

impl From<AwsConfig> for AwsConnection {
    fn from(config: AwsConfig) -> AwsConnection {
        AwsConnection {
            config,
            state: Default::default(),
        }
    }
}

impl ConnectionConfig for AwsConnection {
    fn parse(connection: &str, hcl: &str) -> Result<Self, ConfigError> {
        AwsConfig::parse(connection, hcl).map(AwsConnection::from)
    }
}

#[derive(Default)]
pub struct ConnectionState {
    default_region: OnceCell<String>,
    sdk: OnceCell<SdkConfig>,
    identity: OnceCell<Arc<CallerIdentity>>,
    role_account: OnceCell<Option<String>>,
    regions: OnceCell<Arc<Vec<String>>>,
    ec2: Mutex<HashMap<String, aws_sdk_ec2::Client>>,
    autoscaling: Mutex<HashMap<String, aws_sdk_autoscaling::Client>>,
    cloudwatch: Mutex<HashMap<String, aws_sdk_cloudwatch::Client>>,
}

impl std::fmt::Debug for ConnectionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionState")
            .field("default_region", &self.default_region.get())
            .field("regions", &self.regions.get())
            .finish_non_exhaustive()
    }
}

impl AwsConnection {
    /// The default region, resolved once (never from the instance metadata service).
    pub async fn default_region(&self) -> String {
        self.state
            .default_region
            .get_or_init(|| async {
                let resolved = resolve_sdk_region(self.profile.as_deref()).await;
                regions::default_region(
                    self.default_region.as_deref(),
                    resolved.as_deref(),
                    self.regions.as_deref(),
                )
            })
            .await
            .clone()
    }

    /// The SDK config: static keys, else the profile, else the default chain;
    /// retries from the connection; the per-attempt timeout of
    /// [`attempt_timeout`]; the endpoint override for every service.
    pub async fn sdk_config(&self) -> &SdkConfig {
        let region = self.default_region().await;
        self.state
            .sdk
            .get_or_init(|| async {
                let retry = RetryConfig::standard()
                    .with_max_attempts(self.max_error_retry_attempts)
                    .with_initial_backoff(Duration::from_millis(self.min_error_retry_delay_ms))
                    .with_max_backoff(Duration::from_secs(300));
                // Merged with the SDK's defaults (a 3.1 s connect timeout).
                let timeouts = TimeoutConfig::builder()
                    .operation_attempt_timeout(attempt_timeout())
                    .build();
                let defaults = || {
                    let mut loader = aws_config::defaults(BehaviorVersion::latest())
                        .http_client(shared_http_client())
                        .region(Region::new(region.clone()))
                        .retry_config(retry.clone())
                        .timeout_config(timeouts.clone());
                    // Only the sections of the files this connection uses,
                    // parsed once per process.
                    let files = match &self.profile {
                        Some(p) => crate::aws::profiles::files_for(p),
                        None => crate::aws::profiles::files_without_profile(),
                    };
                    if let Some(files) = files {
                        loader = loader.profile_files(files);
                    }
                    if let Some(p) = &self.profile {
                        loader = loader.profile_name(p);
                    }
                    if let Some(u) = &self.endpoint_url {
                        loader = loader.endpoint_url(u);
                    }
                    loader
                };
                let mut loader = defaults();
                if let (Some(a), Some(s)) = (&self.access_key, &self.secret_key) {
                    loader = loader.credentials_provider(aws_sdk_ec2::config::Credentials::new(
                        a.expose(),
                        s.expose(),
                        self.session_token.as_ref().map(|t| t.expose().to_string()),
                        None,
                        "steampipe-connection-config",
                    ));
                }
                // aws-config would assume a profile's role at AWS's STS
                // whatever the endpoint (see assume_role.rs). Keys in the
                // environment come first in its chain; then it is not used.
                let env_keys = std::env::var_os("AWS_ACCESS_KEY_ID").is_some_and(|k| !k.is_empty());
                if self.endpoint_url.is_some() && self.access_key.is_none() && !env_keys {
                    let sts = defaults().no_credentials().load().await;
                    let profile = self.profile.as_deref();
                    if let Some(p) = assume_role::through_endpoint(profile, &sts).await {
                        loader = loader.credentials_provider(p);
                    }
                }
                loader.load().await
            })
            .await
    }

    /// The EC2 client for `region` (made once per connection and region).
    pub async fn ec2(&self, region: &str) -> aws_sdk_ec2::Client {
        if let Some(c) = cached(&self.state.ec2, region) {
            return c;
        }
        let conf = aws_sdk_ec2::config::Builder::from(self.sdk_config().await)
            .region(Region::new(region.to_string()))
            .interceptor(CompleteXml)
            .interceptor(ErrorContext)
            .build();
        keep(
            &self.state.ec2,
            region,
            aws_sdk_ec2::Client::from_conf(conf),
        )
    }

    /// The Auto Scaling client for `region` (made once per connection and region).
    pub async fn autoscaling(&self, region: &str) -> aws_sdk_autoscaling::Client {
        if let Some(c) = cached(&self.state.autoscaling, region) {
            return c;
        }
        let conf = aws_sdk_autoscaling::config::Builder::from(self.sdk_config().await)
            .region(Region::new(region.to_string()))
            .interceptor(CompleteXml)
            .interceptor(ErrorContext)
            .build();
        keep(
            &self.state.autoscaling,
            region,
            aws_sdk_autoscaling::Client::from_conf(conf),
        )
    }

    /// The CloudWatch client for `region` (made once per connection and
    /// region). CloudWatch answers in CBOR (Smithy RPC v2), not XML, so the
    /// XML completeness check does not apply.
    pub async fn cloudwatch(&self, region: &str) -> aws_sdk_cloudwatch::Client {
        if let Some(c) = cached(&self.state.cloudwatch, region) {
            return c;
        }
        let conf = aws_sdk_cloudwatch::config::Builder::from(self.sdk_config().await)
            .region(Region::new(region.to_string()))
            .interceptor(ErrorContext)
            .build();
        keep(
            &self.state.cloudwatch,
            region,
            aws_sdk_cloudwatch::Client::from_conf(conf),
        )
    }

    /// STS GetCallerIdentity, once per connection (retried on the next query if it failed).
    pub async fn identity(&self) -> Result<Arc<CallerIdentity>, AwsError> {
        self.state
            .identity
            .get_or_try_init(|| async {
                let region = self.default_region().await;
                let sts = aws_sdk_sts::Client::from_conf(
                    aws_sdk_sts::config::Builder::from(self.sdk_config().await)
                        .interceptor(CompleteXml)
                        .interceptor(ErrorContext)
                        .build(),
                );
                let out = sts.get_caller_identity().send().await.map_err(|e| {
                    AwsError::from_sdk("GetCallerIdentity", &region, e).for_connection(self)
                })?;
                CallerIdentity::from_sts(out.account(), out.arn())
                    .map(Arc::new)
                    .map_err(|m| AwsError::other("GetCallerIdentity", &region, m))
            })
            .await
            .cloned()
    }

    /// The connection's account when it is known without a call: from the
    /// caller identity if already fetched, else from the role its profile
    /// assumes (when that profile is what the credentials come from).
    pub async fn known_account(&self) -> Option<String> {
        if let Some(id) = self.state.identity.get() {
            return Some(id.account_id.clone());
        }
        let env_keys = std::env::var_os("AWS_ACCESS_KEY_ID").is_some_and(|k| !k.is_empty());
        if self.access_key.is_some() || env_keys {
            return None;
        }
        self.state
            .role_account
            .get_or_init(|| assume_role::role_account(self.profile.as_deref()))
            .await
            .clone()
    }

    /// The regions this connection queries: the default region when `regions`
    /// is unset, else the enabled regions matching its patterns.
    pub async fn query_regions(&self) -> Arc<Vec<String>> {
        self.state
            .regions
            .get_or_init(|| async {
                let default = self.default_region().await;
                let Some(patterns) = &self.regions else {
                    return Arc::new(vec![default]);
                };
                let active = match self.enabled_regions(&default).await {
                    Ok(list) => list,
                    Err(e) => {
                        let partition = regions::partition_of(&default);
                        tracing::warn!(
                            "DescribeRegions failed ({e}); assuming every region of partition {partition}"
                        );
                        regions::partition_regions(partition)
                    }
                };
                Arc::new(regions::matching(&active, patterns))
            })
            .await
            .clone()
    }

    async fn enabled_regions(&self, default: &str) -> Result<Vec<String>, AwsError> {
        // A low-retry client: this only chooses regions and has a fallback.
        let conf = aws_sdk_ec2::config::Builder::from(self.sdk_config().await)
            .region(Region::new(default.to_string()))
            .retry_config(RetryConfig::standard().with_max_attempts(2))
            .interceptor(CompleteXml)
            .interceptor(ErrorContext)
            .build();
        let out = aws_sdk_ec2::Client::from_conf(conf)
            .describe_regions()
            .all_regions(true)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("DescribeRegions", default, e).for_connection(self))?;
        Ok(out
            .regions()
            .iter()
            .filter(|r| r.opt_in_status() != Some("not-opted-in"))
            .filter_map(|r| r.region_name().map(str::to_string))
            .collect())
    }
}

/// The one HTTP client of the process, shared by every connection, region
/// and service: the SDK's default (hyper 1, rustls on aws-lc, the trusted
/// roots of the system, a proxy from the environment), built once. Left to
/// itself the SDK builds one per service client, each with its own
/// connection pool and TLS configuration (the parsed trusted roots): with a
/// thousand connections that was over a gigabyte and most of a scan's time.
/// Its connectors are kept per connector settings (the timeouts), so
/// connections with other timeouts still get theirs.
fn shared_http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::{proxy::ProxyConfig, tls, Builder, ConnectorBuilder};
    static CLIENT: std::sync::OnceLock<aws_smithy_runtime_api::client::http::SharedHttpClient> =
        std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| {
            Builder::new().build_with_connector_fn(|settings, components| {
                let mut b = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(
                    tls::rustls_provider::CryptoMode::AwsLc,
                ));
                b.set_connector_settings(settings.cloned());
                if let Some(c) = components {
                    b.set_sleep_impl(c.sleep_impl());
                }
                b.set_proxy_config(Some(ProxyConfig::from_env()));
                b.build()
            })
        })
        .clone()
}

/// A client made earlier for `region`. (A poisoned lock only means another
/// thread panicked while inserting: the map itself is still whole.)
fn cached<T: Clone>(m: &Mutex<HashMap<String, T>>, region: &str) -> Option<T> {
    m.lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(region)
        .cloned()
}

/// Keeps `client` for `region`, or the one another task made meanwhile.
fn keep<T: Clone>(m: &Mutex<HashMap<String, T>>, region: &str, client: T) -> T {
    m.lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(region.to_string())
        .or_insert(client)
        .clone()
}

/// AWS_REGION / AWS_DEFAULT_REGION, then the profile's region. Deliberately not
/// the instance metadata service: a plugin on a laptop must not wait on it.
async fn resolve_sdk_region(profile: Option<&str>) -> Option<String> {
    for var in ["AWS_REGION", "AWS_DEFAULT_REGION"] {
        if let Ok(v) = std::env::var(var) {
            if !v.trim().is_empty() {
                return Some(v.trim().to_string());
            }
        }
    }
    let mut provider = aws_config::profile::ProfileFileRegionProvider::builder();
    let files = match profile {
        Some(p) => crate::aws::profiles::files_for(p),
        None => crate::aws::profiles::files_without_profile(),
    };
    if let Some(files) = files {
        provider = provider.profile_files(files);
    }
    if let Some(p) = profile {
        provider = provider.profile_name(p);
    }
    use aws_config::meta::region::ProvideRegion;
    provider.build().region().await.map(|r| r.to_string())
}

/// Rejects a successful answer whose XML body stops before its root element
/// closes, as a retryable response error.
///
/// The SDK's XML decoder recovers silently from a document that ends early:
/// a DescribeInstances answer cut in half (with a Content-Length that matches
/// the cut body, so the transport sees nothing wrong) parses as a shorter,
/// successful page, and the scan would end with some rows missing and no
/// error. Every answer of the query protocol (EC2, STS) is one XML document,
/// so one that does not end with its root's end tag is incomplete; it is
/// turned into a response error, which the retry strategy retries like a cut
/// connection and which, once the tries run out, fails the scan.
#[derive(Debug)]
struct CompleteXml;

impl Intercept for CompleteXml {
    fn name(&self) -> &'static str {
        "CompleteXml"
    }

    fn modify_before_attempt_completion(
        &self,
        context: &mut FinalizerInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let incomplete = match (context.output_or_error(), context.response()) {
            // An answer the decoder already refused is checked too: cut
            // before its first element ends, it is a failed parse with no
            // error code, which the retry strategy would not retry.
            (Some(_), Some(response)) if response.status().is_success() => response
                .body()
                .bytes()
                .and_then(|body| incomplete_xml(body).map(|root| (root, body.len()))),
            _ => None,
        };
        let Some((root, len)) = incomplete else {
            return Ok(());
        };
        tracing::debug!("discarding an incomplete answer ({len} bytes, no </{root}>)");
        // The error keeps the raw response; not its body, so that half a page
        // of instances never ends up in the error message.
        if let Some(response) = context.response_mut() {
            *response.body_mut() = SdkBody::empty();
        }
        if let Some(out) = context.output_or_error_mut() {
            *out = Err(OrchestratorError::response(Box::new(IncompleteAnswer {
                len,
                root,
            })));
        }
        Ok(())
    }
}

/// `Some(root element name)` if `body`, an XML document, ends before its
/// root element is closed; `None` if it is complete (or empty: nothing to check).
fn incomplete_xml(body: &[u8]) -> Option<String> {
    // Bytes, not text: only the two ends are looked at, so a page of several
    // megabytes is neither copied nor validated here (the parser does that).
    fn trim(mut b: &[u8]) -> &[u8] {
        while let [first, rest @ ..] = b {
            if !first.is_ascii_whitespace() {
                break;
            }
            b = rest;
        }
        while let [rest @ .., last] = b {
            if !last.is_ascii_whitespace() {
                break;
            }
            b = rest;
        }
        b
    }
    fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
        hay.windows(needle.len()).position(|w| w == needle)
    }
    let text = trim(body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body));
    if text.is_empty() {
        return None;
    }
    // Skip the XML declaration, processing instructions, comments and a doctype.
    let mut rest = text;
    loop {
        rest = trim(rest);
        let skip_to: &[u8] = if rest.starts_with(b"<?") {
            b"?>"
        } else if rest.starts_with(b"<!--") {
            b"-->"
        } else if rest.starts_with(b"<!") {
            b">"
        } else {
            break;
        };
        match find(rest, skip_to) {
            Some(i) => rest = &rest[i + skip_to.len()..],
            None => return Some(String::new()),
        }
    }
    let Some(start) = rest.strip_prefix(b"<") else {
        return Some(String::new());
    };
    let name_len = start
        .iter()
        .position(|c| c.is_ascii_whitespace() || *c == b'/' || *c == b'>')
        .unwrap_or(start.len());
    let name = &start[..name_len];
    if name.is_empty() {
        return Some(String::new());
    }
    let closed = (text.ends_with(b">")
        && text[..text.len() - 1].ends_with(name)
        && text[..text.len() - 1 - name.len()].ends_with(b"</"))
        || (text.ends_with(b"/>") && !start[name_len..].contains(&b'<'));
    (!closed).then(|| String::from_utf8_lossy(name).into_owned())
}

#[cfg(test)]
mod tests {
    use super::incomplete_xml;

    #[test]
    fn only_a_document_whose_root_closes_is_complete() {
        let full = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DescribeInstancesResponse xmlns=\"x\"><reservationSet><item/></reservationSet></DescribeInstancesResponse>\n";
        assert_eq!(incomplete_xml(full.as_bytes()), None);
        for cut in 1..full.trim_end().len() {
            assert!(
                incomplete_xml(&full.as_bytes()[..cut]).is_some(),
                "cut at {cut}: {:?}",
                &full[..cut]
            );
        }
        assert_eq!(incomplete_xml(b"<a:Root x='1'/>"), None);
        assert_eq!(incomplete_xml(b"<!-- c --><Root></Root>"), None);
        assert_eq!(incomplete_xml(b""), None);
        assert_eq!(
            incomplete_xml(b"\xef\xbb\xbf \n<R a='x'>\xc3\xa9</R>\r\n"),
            None
        );
        assert_eq!(incomplete_xml(b"<R><x/>"), Some("R".into()));
        assert_eq!(incomplete_xml(b"<R></RR>"), Some("R".into()));
        assert_eq!(incomplete_xml(b"<RR></R>"), Some("RR".into()));
    }
}
