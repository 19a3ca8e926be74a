//! Per-connection AWS state: the SDK config (credentials, retries, endpoint),
//! one EC2 client per region, and the memoized caller identity, default
//! region and enabled regions. Created lazily on the first query, shared by
//! every scan of the connection.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use tokio::sync::OnceCell;

use crate::aws::common::CallerIdentity;
use crate::aws::config::AwsConnection;
use crate::aws::errors::AwsError;
use crate::aws::regions;

/// The lazily built clients and memoized answers of one connection.
#[derive(Default)]
pub struct ConnectionState {
    default_region: OnceCell<String>,
    sdk: OnceCell<SdkConfig>,
    identity: OnceCell<Arc<CallerIdentity>>,
    regions: OnceCell<Arc<Vec<String>>>,
    ec2: Mutex<HashMap<String, aws_sdk_ec2::Client>>,
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
    /// retries from the connection; the endpoint override for every service.
    pub async fn sdk_config(&self) -> &SdkConfig {
        let region = self.default_region().await;
        self.state
            .sdk
            .get_or_init(|| async {
                let retry = RetryConfig::standard()
                    .with_max_attempts(self.max_error_retry_attempts)
                    .with_initial_backoff(Duration::from_millis(self.min_error_retry_delay_ms))
                    .with_max_backoff(Duration::from_secs(300));
                let mut loader = aws_config::defaults(BehaviorVersion::latest())
                    .region(Region::new(region))
                    .retry_config(retry);
                if let Some(p) = &self.profile {
                    loader = loader.profile_name(p);
                }
                if let (Some(a), Some(s)) = (&self.access_key, &self.secret_key) {
                    loader = loader.credentials_provider(aws_sdk_ec2::config::Credentials::new(
                        a.expose(),
                        s.expose(),
                        self.session_token.as_ref().map(|t| t.expose().to_string()),
                        None,
                        "steampipe-connection-config",
                    ));
                }
                if let Some(u) = &self.endpoint_url {
                    loader = loader.endpoint_url(u);
                }
                loader.load().await
            })
            .await
    }

    /// The EC2 client for `region`.
    pub async fn ec2(&self, region: &str) -> aws_sdk_ec2::Client {
        if let Some(c) = self.state.ec2.lock().expect("ec2 clients").get(region) {
            return c.clone();
        }
        let conf = aws_sdk_ec2::config::Builder::from(self.sdk_config().await)
            .region(Region::new(region.to_string()))
            .build();
        let client = aws_sdk_ec2::Client::from_conf(conf);
        self.state
            .ec2
            .lock()
            .expect("ec2 clients")
            .entry(region.to_string())
            .or_insert(client)
            .clone()
    }

    /// STS GetCallerIdentity, once per connection (retried on the next query if it failed).
    pub async fn identity(&self) -> Result<Arc<CallerIdentity>, AwsError> {
        self.state
            .identity
            .get_or_try_init(|| async {
                let region = self.default_region().await;
                let sts = aws_sdk_sts::Client::new(self.sdk_config().await);
                let out = sts
                    .get_caller_identity()
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk("GetCallerIdentity", &region, e))?;
                CallerIdentity::from_sts(out.account(), out.arn())
                    .map(Arc::new)
                    .map_err(|m| AwsError::other("GetCallerIdentity", &region, m))
            })
            .await
            .cloned()
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
            .build();
        let out = aws_sdk_ec2::Client::from_conf(conf)
            .describe_regions()
            .all_regions(true)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("DescribeRegions", default, e))?;
        Ok(out
            .regions()
            .iter()
            .filter(|r| r.opt_in_status() != Some("not-opted-in"))
            .filter_map(|r| r.region_name().map(str::to_string))
            .collect())
    }
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
    if let Some(p) = profile {
        provider = provider.profile_name(p);
    }
    use aws_config::meta::region::ProvideRegion;
    provider.build().region().await.map(|r| r.to_string())
}
