//! AWS call errors with their context (operation, region, endpoint, tries),
//! worded for a person, and the connection's rules for treating some of
//! them as empty results.
//!
//! Every failed call reads `OPERATION in REGION: WHAT HAPPENED`, one line:
//!
//! ```text
//! DescribeInstances in us-east-1: could not connect to http://127.0.0.1:42989 (connection refused), 3 attempts
//! DescribeInstances in us-east-1: UnauthorizedOperation: You are not authorized to perform this operation. (HTTP 403 from https://ec2.us-east-1.amazonaws.com/); the credentials may not call ec2:DescribeInstances: grant it, or list the code in ignore_error_codes
//! ```
//!
//! The plugin layer puts the connection name in front (`aws_prod: ...`, as
//! the Steampipe SDK does). The SDK's own error, with its `Debug` detail, is
//! logged at TRACE and never shown.
//!
//! Where the call went and how many tries it took are not in the SDK's
//! errors: the [`ErrorContext`] interceptor (installed on every client of
//! `client.rs`) records them on the failed answer, or, when there is no
//! answer (connect failures, timeouts), replaces the transport error with a
//! [`TransportFailure`] that carries them and the readable reason.

use std::error::Error as StdError;
use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextMut,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::{Metadata, OrchestratorError};
use aws_smithy_runtime_api::client::result::{ConnectorError, SdkError};
use aws_smithy_runtime_api::client::retries::RequestAttempts;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::aws::config::{attempt_timeout, AwsConfig};

/// What kind of failure an [`AwsError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// the endpoint refused the TCP connection, or it could not be opened
    Connect,
    /// the endpoint's host name does not resolve
    Dns,
    /// the TLS handshake failed
    Tls,
    /// the connection was opened but closed (or reset) before an answer
    Closed,
    /// no answer within the per-attempt timeout (or the connect timeout)
    Timeout,
    /// AWS throttled the call on every try
    Throttled,
    /// the credentials may not make this call
    AccessDenied,
    /// the session credentials have expired
    ExpiredCredentials,
    /// AWS does not accept the credentials
    InvalidCredentials,
    /// no credentials could be found or loaded
    NoCredentials,
    /// another AWS error code
    Service,
    /// an HTTP error that is not an AWS answer (an HTML page, a bare 5xx)
    NotAws,
    /// an answer that stops before its end
    Truncated,
    /// an answer that could not be read
    Unreadable,
    /// anything else
    Other,
}

/// A failed AWS call.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{operation} in {region}: {detail}")]
pub struct AwsError {
    /// the API operation, e.g. `DescribeInstances`
    pub operation: &'static str,
    /// the region called
    pub region: String,
    /// the AWS error code, when the service answered with one
    pub code: Option<String>,
    /// the AWS error message
    pub message: Option<String>,
    /// the kind of failure, where the call went and how many tries it took
    /// (boxed: an `AwsError` travels in `Result`s)
    call: Box<(Failure, CallContext)>,
    detail: String,
}

/// Keeps a text readable: at most `max` characters, on one line, with
/// anything shaped like an AWS access key id masked.
fn short(s: &str, max: usize) -> String {
    let one_line: String = redact(&s.split_whitespace().collect::<Vec<_>>().join(" "));
    if one_line.chars().count() > max {
        let cut: String = one_line.chars().take(max).collect();
        format!("{cut}...")
    } else {
        one_line
    }
}

/// Masks AWS access key ids (`AKIA...`, `ASIA...`: 20 upper-case letters
/// and digits) in text that came from a server, should it echo one.
fn redact(s: &str) -> String {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(r"\b(A3T[A-Z0-9]|AKIA|ASIA|AIDA|AROA|AGPA|ANPA|ANVA|AIPA)[A-Z0-9]{12,}\b")
            .expect("access key pattern")
    });
    re.replace_all(s, "${1}****").into_owned()
}

/// An endpoint as shown to a person: no user info, query or fragment.
fn show_endpoint(uri: &str) -> String {
    let (scheme, rest) = uri.split_once("://").unwrap_or(("", uri));
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let host = authority.rsplit('@').next().unwrap_or(authority);
    let path = if path == "/" { "" } else { path };
    if scheme.is_empty() {
        format!("{host}{path}")
    } else {
        format!("{scheme}://{host}{path}")
    }
}

fn show_duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// Where a call went and how it went, recorded by [`ErrorContext`].
#[derive(Debug, Clone, Default)]
pub(crate) struct CallContext {
    endpoint: Option<String>,
    attempts: Option<u32>,
    /// the IAM service prefix, e.g. `ec2`
    service: Option<String>,
}

impl CallContext {
    /// `, 3 attempts` when the call was retried.
    fn attempts_suffix(&self) -> String {
        match self.attempts {
            Some(n) if n > 1 => format!(", {n} attempts"),
            _ => String::new(),
        }
    }
}

/// The endpoint of the last try, kept in the operation's config bag.
#[derive(Debug, Clone)]
struct SentTo(String);

impl Storable for SentTo {
    type Storer = StoreReplace<Self>;
}

/// A call that got no answer (it could not connect, or timed out), worded
/// for a person; it takes the place of the transport error once the call's
/// tries are over, so it never changes how a try is retried.
#[derive(Debug)]
pub(crate) struct TransportFailure {
    failure: Failure,
    text: String,
    context: CallContext,
}

impl fmt::Display for TransportFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl StdError for TransportFailure {}

/// Each error of a chain; an `io::Error`'s wrapped error counts as the next link.
fn chain<'a>(e: &'a (dyn StdError + 'static)) -> Vec<&'a (dyn StdError + 'static)> {
    let mut out = Vec::new();
    let mut cur = Some(e);
    while let Some(x) = cur {
        out.push(x);
        if out.len() > 32 {
            break;
        }
        cur = match x
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => x.source(),
        };
    }
    out
}

/// The last link's text that says something (libraries wrap with generic words).
fn leaf_text(links: &[&(dyn StdError + 'static)]) -> String {
    links
        .iter()
        .rev()
        .map(|l| l.to_string())
        .find(|t| !t.trim().is_empty())
        .unwrap_or_default()
}

/// Why a call got no answer, from its transport error chain.
fn transport_reason(
    links: &[&(dyn StdError + 'static)],
    connector_timeout: bool,
    endpoint: &str,
) -> (Failure, String) {
    let text: Vec<String> = links.iter().map(|l| l.to_string().to_lowercase()).collect();
    let any = |needle: &str| text.iter().any(|t| t.contains(needle));
    let io_kind = |k: std::io::ErrorKind| {
        links.iter().any(|l| {
            l.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == k)
        })
    };
    if let Some(tls) = links.iter().find_map(|l| l.downcast_ref::<rustls::Error>()) {
        let why = match tls {
            rustls::Error::InvalidMessage(_) => {
                "TLS handshake failed: the server did not answer in TLS; is it an http:// endpoint?"
                    .to_string()
            }
            other => format!("TLS handshake failed: {other}"),
        };
        return (
            Failure::Tls,
            format!("could not connect to {endpoint} ({why})"),
        );
    }
    if any("dns error") || any("failed to lookup address") || any("name or service not known") {
        return (
            Failure::Dns,
            format!("could not connect to {endpoint} (its host name does not resolve)"),
        );
    }
    if io_kind(std::io::ErrorKind::ConnectionRefused) {
        return (
            Failure::Connect,
            format!("could not connect to {endpoint} (connection refused)"),
        );
    }
    if connector_timeout {
        return (
            Failure::Timeout,
            format!("could not connect to {endpoint} (no connection within the connect timeout)"),
        );
    }
    if io_kind(std::io::ErrorKind::ConnectionReset)
        || io_kind(std::io::ErrorKind::UnexpectedEof)
        || io_kind(std::io::ErrorKind::BrokenPipe)
        || any("connection closed before message completed")
        || any("connection reset")
    {
        return (
            Failure::Closed,
            format!("{endpoint} closed the connection without an answer"),
        );
    }
    if any("tcp connect error") || any("client error (connect)") {
        return (
            Failure::Connect,
            format!(
                "could not connect to {endpoint} ({})",
                short(&leaf_text(links), 200)
            ),
        );
    }
    (
        Failure::Other,
        format!(
            "no answer from {endpoint} ({})",
            short(&leaf_text(links), 200)
        ),
    )
}

/// Hints by AWS error code.
fn classify_code(code: &str) -> Failure {
    const THROTTLED: &[&str] = &[
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "SlowDown",
        "EC2ThrottledException",
        "BandwidthLimitExceeded",
        "ProvisionedThroughputExceededException",
        "PriorRequestNotComplete",
        "RequestLimitExceededException",
    ];
    const DENIED: &[&str] = &[
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "UnauthorizedAccess",
        "AuthorizationError",
        "Forbidden",
        "NotAuthorized",
    ];
    const EXPIRED: &[&str] = &[
        "ExpiredToken",
        "ExpiredTokenException",
        "TokenRefreshRequired",
    ];
    const INVALID: &[&str] = &[
        "AuthFailure",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "MissingAuthenticationToken",
        "InvalidAccessKeyId",
        "InvalidSignatureException",
        "InvalidToken",
    ];
    if THROTTLED.contains(&code) {
        Failure::Throttled
    } else if DENIED.contains(&code) {
        Failure::AccessDenied
    } else if EXPIRED.contains(&code) {
        Failure::ExpiredCredentials
    } else if INVALID.contains(&code) {
        Failure::InvalidCredentials
    } else {
        Failure::Service
    }
}

/// What an answer that is not AWS's looks like: its content type and, for
/// an HTML page, its title.
fn describe_body(headers: &aws_smithy_runtime_api::http::Headers, body: Option<&[u8]>) -> String {
    let ctype = headers
        .get("content-type")
        .map(|c| c.split(';').next().unwrap_or(c).trim().to_string())
        .filter(|c| !c.is_empty());
    let title = body.and_then(|b| {
        let text = String::from_utf8_lossy(&b[..b.len().min(4096)]).into_owned();
        let lower = text.to_lowercase();
        let start = lower.find("<title>")? + "<title>".len();
        let end = start + lower[start..].find("</title>")?;
        Some(short(&text[start..end], 80)).filter(|t| !t.is_empty())
    });
    match (ctype, title) {
        (Some(c), Some(t)) => format!("a {c} page \"{t}\""),
        (None, Some(t)) => format!("a page \"{t}\""),
        (Some(c), None) => c,
        (None, None) => "an empty or unknown body".to_string(),
    }
}

impl AwsError {
    /// Wraps an SDK error. The SDK's full error goes to the TRACE log.
    pub fn from_sdk<E>(
        operation: &'static str,
        region: &str,
        e: SdkError<E, aws_smithy_runtime_api::http::Response>,
    ) -> AwsError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        // DisplayErrorContext ends with the error's Debug form.
        tracing::trace!(
            operation,
            region,
            "AWS call failed: {}",
            DisplayErrorContext(&e)
        );
        let code = e.code().map(str::to_string);
        let message = e.message().map(|m| short(m, 400));
        let raw = e.raw_response();
        let mut context = raw
            .and_then(|r| r.extension::<CallContext>().cloned())
            .unwrap_or_default();
        let links = chain(&e);
        let transport = links
            .iter()
            .find_map(|l| l.downcast_ref::<TransportFailure>());
        if let Some(t) = transport {
            context = t.context.clone();
        }
        let at = context
            .endpoint
            .as_deref()
            .map(|ep| format!(" from {ep}"))
            .unwrap_or_default();
        let tries = context.attempts_suffix();
        let (failure, detail) = match (&code, transport, &e) {
            (Some(c), _, _) => {
                let failure = classify_code(c);
                let status = raw
                    .map(|r| format!("HTTP {}{at}{tries}", r.status().as_u16()))
                    .unwrap_or_else(|| format!("{}{tries}", at.trim_start()));
                let service = context
                    .service
                    .clone()
                    .unwrap_or_else(|| "the service".into());
                let hint = match failure {
                    Failure::Throttled => "; AWS throttled every try: raise max_error_retry_attempts or min_error_retry_delay in the connection config".to_string(),
                    Failure::AccessDenied => format!("; the credentials may not call {service}:{operation}: grant it, or list the code in ignore_error_codes"),
                    Failure::ExpiredCredentials => "; the session credentials have expired: renew them (e.g. `aws sso login`, or a new session_token)".to_string(),
                    Failure::InvalidCredentials => "; AWS does not accept these credentials: check access_key and secret_key, or the profile".to_string(),
                    _ => String::new(),
                };
                let text = match &message {
                    Some(m) => format!("{c}: {m}"),
                    None => c.clone(),
                };
                let status = if status.is_empty() {
                    String::new()
                } else {
                    format!(" ({status})")
                };
                (failure, format!("{text}{status}{hint}"))
            }
            (None, Some(t), _) => (t.failure, format!("{}{tries}", t.text)),
            // An answer that is not an AWS error (an HTML proxy page, a bare
            // 5xx): say what came back, not the whole body.
            (None, None, SdkError::ServiceError(ctx)) if ctx.raw().status().is_success() => (
                Failure::Unreadable,
                format!(
                    "unreadable answer{at} (HTTP {}, {}: not an AWS answer){tries}",
                    ctx.raw().status().as_u16(),
                    describe_body(ctx.raw().headers(), ctx.raw().body().bytes())
                ),
            ),
            (None, None, SdkError::ServiceError(ctx)) => (
                Failure::NotAws,
                format!(
                    "HTTP {} without an AWS error code{at} ({}: not an AWS answer; a proxy or the endpoint failed){tries}",
                    ctx.raw().status().as_u16(),
                    describe_body(ctx.raw().headers(), ctx.raw().body().bytes())
                ),
            ),
            (None, None, SdkError::ResponseError(ctx)) => {
                if let Some(inc) = links
                    .iter()
                    .find_map(|l| l.downcast_ref::<IncompleteAnswer>())
                {
                    (
                        Failure::Truncated,
                        format!(
                            "incomplete XML answer{at} ({} bytes without the closing </{}>){tries}",
                            inc.len, inc.root
                        ),
                    )
                } else {
                    (
                        Failure::Unreadable,
                        format!(
                            "unreadable answer{at} (HTTP {}, {}: {}){tries}",
                            ctx.raw().status().as_u16(),
                            describe_body(ctx.raw().headers(), ctx.raw().body().bytes()),
                            short(&leaf_text(&links), 200)
                        ),
                    )
                }
            }
            (None, None, SdkError::TimeoutError(_)) => (
                Failure::Timeout,
                format!(
                    "no answer{at} within {}{tries}",
                    show_duration(attempt_timeout())
                ),
            ),
            (None, None, _) => {
                let leaf = short(&leaf_text(&links), 300);
                let lower = leaf.to_lowercase();
                if lower.contains("no credentials found") {
                    (
                        Failure::NoCredentials,
                        "no AWS credentials found (none in the environment, the profile files, web identity, the container or instance metadata); set access_key and secret_key or profile in the connection config, or the AWS_* environment variables".to_string(),
                    )
                } else if lower.contains("credential") || lower.contains("profile") {
                    (
                        Failure::NoCredentials,
                        format!("no usable AWS credentials ({leaf}); set access_key and secret_key or profile in the connection, or the AWS_* environment variables"),
                    )
                } else {
                    (Failure::Other, format!("{leaf}{tries}"))
                }
            }
        };
        AwsError {
            operation,
            region: region.to_string(),
            code,
            message,
            call: Box::new((failure, context)),
            detail,
        }
    }

    /// An error found in an answer rather than returned by the SDK.
    pub fn other(operation: &'static str, region: &str, detail: impl Into<String>) -> AwsError {
        AwsError {
            operation,
            region: region.to_string(),
            code: None,
            message: None,
            call: Box::new((Failure::Other, CallContext::default())),
            detail: detail.into(),
        }
    }

    /// The error as `conn` should show it: "no credentials" for a connection
    /// whose `profile` is in neither profile file says that instead.
    pub fn for_connection(mut self, conn: &AwsConfig) -> AwsError {
        if self.failure() == Failure::NoCredentials {
            if let Some(why) = conn
                .profile
                .as_deref()
                .and_then(crate::aws::profiles::missing_profile)
            {
                self.detail = why;
            }
        }
        self
    }

    /// What kind of failure this is.
    pub fn failure(&self) -> Failure {
        self.call.0
    }

    /// Where the call went (scheme, host, port, path; no credentials), when
    /// it got that far.
    pub fn endpoint(&self) -> Option<&str> {
        self.call.1.endpoint.as_deref()
    }

    /// How many times the call was tried, when known.
    pub fn attempts(&self) -> Option<u32> {
        self.call.1.attempts
    }

    /// What happened, without the operation and region in front.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// `Ok(None)` when [`AwsError::is_ignored`] says so (an empty result),
    /// else the error itself.
    pub fn ignored_or<T>(self, conn: &AwsConfig, codes: &[&str]) -> Result<Option<T>, AwsError> {
        if self.is_ignored(conn, codes) {
            Ok(None)
        } else {
            Err(self.for_connection(conn))
        }
    }

    /// True if `codes` (glob patterns, as Go's `path.Match`) or the
    /// connection's `ignore_error_codes` / `ignore_error_messages` match.
    pub fn is_ignored(&self, conn: &AwsConfig, codes: &[&str]) -> bool {
        if let Some(code) = &self.code {
            let matches = |p: &str| {
                glob::Pattern::new(p)
                    .map(|g| g.matches(code))
                    .unwrap_or(false)
            };
            if codes.iter().any(|p| matches(p))
                || conn.ignore_error_codes.iter().any(|p| matches(p))
            {
                return true;
            }
        }
        if let Some(message) = &self.message {
            if conn
                .ignore_error_messages
                .iter()
                .any(|re| re.is_match(message))
            {
                return true;
            }
        }
        false
    }
}

/// A 200 answer whose XML document stops before its root element closes
/// (raised by the `CompleteXml` interceptor of `client.rs`).
#[derive(Debug)]
pub(crate) struct IncompleteAnswer {
    pub(crate) len: usize,
    pub(crate) root: String,
}

impl fmt::Display for IncompleteAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "incomplete XML answer: {} bytes without the closing </{}>",
            self.len, self.root
        )
    }
}

impl StdError for IncompleteAnswer {}

/// Records where each call went and how many tries it took, for
/// [`AwsError::from_sdk`]; see the module doc.
#[derive(Debug)]
pub(crate) struct ErrorContext;

impl Intercept for ErrorContext {
    fn name(&self) -> &'static str {
        "ErrorContext"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let endpoint = show_endpoint(context.request().uri());
        cfg.interceptor_state().store_put(SentTo(endpoint));
        Ok(())
    }

    fn modify_before_completion(
        &self,
        context: &mut FinalizerInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let failed = matches!(context.output_or_error(), Some(Err(_)));
        if !failed {
            return Ok(());
        }
        let call = CallContext {
            endpoint: cfg.load::<SentTo>().map(|s| s.0.clone()),
            attempts: cfg.load::<RequestAttempts>().map(|a| a.attempts()),
            service: cfg.load::<Metadata>().map(|m| m.service().to_lowercase()),
        };
        if let Some(response) = context.response_mut() {
            response.add_extension(call);
            return Ok(());
        }
        let Some(endpoint) = call.endpoint.clone() else {
            // Never sent (no credentials, a bad endpoint): the error says why.
            return Ok(());
        };
        let Some(out) = context.output_or_error_mut() else {
            return Ok(());
        };
        let Err(err) = out else {
            return Ok(());
        };
        let replacement = if let Some(c) = err.as_connector_error() {
            // The transport's own error is replaced below; its detail stays here.
            tracing::trace!(
                endpoint,
                attempts = call.attempts,
                "AWS call got no answer: {c:?}"
            );
            let links = chain(c);
            let (failure, text) = transport_reason(&links, c.is_timeout(), &endpoint);
            let failure = TransportFailure {
                failure,
                text,
                context: call,
            };
            let source: BoxError = Box::new(failure);
            let rebuilt = if c.is_timeout() {
                ConnectorError::timeout(source)
            } else if c.is_io() {
                ConnectorError::io(source)
            } else if c.is_user() {
                ConnectorError::user(source)
            } else {
                ConnectorError::other(source, c.as_other())
            };
            OrchestratorError::connector(rebuilt)
        } else if err.is_timeout_error() {
            tracing::trace!(
                endpoint,
                attempts = call.attempts,
                "AWS call timed out: {err:?}"
            );
            OrchestratorError::timeout(Box::new(TransportFailure {
                failure: Failure::Timeout,
                text: format!(
                    "no answer from {endpoint} within {}",
                    show_duration(attempt_timeout())
                ),
                context: call,
            }))
        } else {
            return Ok(());
        };
        *err = replacement;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_shown_without_credentials_or_query() {
        assert_eq!(
            show_endpoint("https://user:pw@ec2.us-east-1.amazonaws.com/?Action=X"),
            "https://ec2.us-east-1.amazonaws.com"
        );
        assert_eq!(
            show_endpoint("http://127.0.0.1:4566/"),
            "http://127.0.0.1:4566"
        );
        assert_eq!(show_endpoint("http://h:1/p#f"), "http://h:1/p");
    }

    #[test]
    fn access_key_ids_are_masked_and_text_is_one_line() {
        assert_eq!(
            short("key AKIAIOSFODNN7EXAMPLE\nis  bad", 300),
            "key AKIA**** is bad"
        );
        assert_eq!(short("ASIAABCDEFGHIJKLMNOP.", 300), "ASIA****.");
        assert_eq!(short(&"x".repeat(10), 4), "xxxx...");
    }
}
