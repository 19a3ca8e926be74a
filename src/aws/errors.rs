//! AWS call errors with their context (operation, region), and the
//! connection's rules for treating some of them as empty results.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::aws::config::AwsConnection;

/// A failed AWS call.
#[derive(Debug, thiserror::Error)]
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
    detail: String,
}

/// Keeps an error text readable: at most 300 characters, on one line.
fn short(s: &str) -> String {
    let one_line: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 300 {
        let cut: String = one_line.chars().take(300).collect();
        format!("{cut}...")
    } else {
        one_line
    }
}

impl AwsError {
    /// Wraps an SDK error.
    pub fn from_sdk<E>(
        operation: &'static str,
        region: &str,
        e: SdkError<E, aws_smithy_runtime_api::http::Response>,
    ) -> AwsError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let code = e.code().map(str::to_string);
        let message = e.message().map(str::to_string);
        let detail = match (&code, &message, &e) {
            (Some(c), Some(m), _) => format!("{c}: {m}"),
            (Some(c), None, _) => c.clone(),
            // An answer that is not an AWS error (an HTML proxy page, a bare
            // 5xx): say what came back, not the whole body.
            (None, _, SdkError::ServiceError(ctx)) => format!(
                "HTTP {} without an AWS error code (not an AWS answer: a proxy or the endpoint failed)",
                ctx.raw().status().as_u16()
            ),
            _ => short(&DisplayErrorContext(&e).to_string()),
        };
        AwsError {
            operation,
            region: region.to_string(),
            code,
            message,
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
            detail: detail.into(),
        }
    }

    /// `Ok(None)` when [`AwsError::is_ignored`] says so (an empty result),
    /// else the error itself.
    pub fn ignored_or<T>(
        self,
        conn: &AwsConnection,
        codes: &[&str],
    ) -> Result<Option<T>, AwsError> {
        if self.is_ignored(conn, codes) {
            Ok(None)
        } else {
            Err(self)
        }
    }

    /// True if `codes` (glob patterns, as Go's `path.Match`) or the
    /// connection's `ignore_error_codes` / `ignore_error_messages` match.
    pub fn is_ignored(&self, conn: &AwsConnection, codes: &[&str]) -> bool {
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
