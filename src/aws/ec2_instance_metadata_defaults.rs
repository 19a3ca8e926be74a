//! `aws_ec2_instance_metadata_defaults`: the per-region account defaults of
//! the instance metadata service (EC2 `GetInstanceMetadataDefaults`), one row
//! per queried region. Not in turbot's plugin: our addition for the IMDSv2
//! readiness benchmark and `enforce`.
//!
//! A setting that was never made (or was set to `no-preference`) is left out
//! of AWS's answer, so its column is NULL: NULL `http_tokens` means new
//! instances get what the AMI or the launch parameters say, not `required`.

use aws_sdk_ec2::types::InstanceMetadataDefaultsResponse;

use crate::aws::client::AwsConnection;
use crate::aws::common::int;
use crate::aws::regional::{self, regional_columns, RegionCall, Regional, RegionalTable};
use crate::plugin::{BoxError, ColumnType as T, ItemSink, ListRequest, Value};

/// The account defaults of one region (all `None`: nothing was ever set).
pub type Defaults = InstanceMetadataDefaultsResponse;

/// GetInstanceMetadataDefaults in one region: the `AccountLevel` member,
/// empty when AWS leaves it out.
pub async fn fetch(
    c: &RegionCall,
) -> Result<
    Defaults,
    aws_sdk_ec2::error::SdkError<
        aws_sdk_ec2::operation::get_instance_metadata_defaults::GetInstanceMetadataDefaultsError,
    >,
> {
    let o = c
        .ec2()
        .await
        .get_instance_metadata_defaults()
        .send()
        .await?;
    Ok(o.account_level
        .unwrap_or_else(|| Defaults::builder().build()))
}

async fn list_defaults(
    req: ListRequest<AwsConnection>,
    sink: ItemSink<Regional<Defaults>>,
) -> Result<(), BoxError> {
    regional::list(
        req,
        sink,
        "GetInstanceMetadataDefaults",
        &[],
        |c, _token| async move { fetch(&c).await.map(|d| (vec![d], None)) },
    )
    .await
}

fn text<E: AsRef<str>>(v: Option<&E>) -> Value {
    Value::from(v.map(|x| x.as_ref()))
}

/// The table.
pub fn table() -> RegionalTable<Defaults> {
    let mut t = RegionalTable::<Defaults>::new(
        "aws_ec2_instance_metadata_defaults",
        "AWS EC2 Instance Metadata Defaults",
    );
    t.column(
        "http_tokens",
        T::String,
        "Whether new instances require IMDSv2 tokens by default (optional or required); NULL when never set (no preference).",
        |x| text(x.http_tokens.as_ref()),
    );
    t.column(
        "http_put_response_hop_limit",
        T::Int,
        "The default maximum number of network hops for the metadata token response; NULL when never set.",
        |x| int(x.http_put_response_hop_limit),
    );
    t.column(
        "http_endpoint",
        T::String,
        "Whether the instance metadata service is enabled on new instances by default (enabled or disabled); NULL when never set.",
        |x| text(x.http_endpoint.as_ref()),
    );
    t.column(
        "instance_metadata_tags",
        T::String,
        "Whether instance tags are readable from the instance metadata by default (enabled or disabled); NULL when never set.",
        |x| text(x.instance_metadata_tags.as_ref()),
    );
    t.column(
        "managed_by",
        T::String,
        "Who manages these defaults: account (set in the account) or declarative-policy (an AWS Organizations declarative policy, which the account cannot change).",
        |x| text(x.managed_by.as_ref()),
    );
    t.column(
        "managed_exception_message",
        T::String,
        "The message a declarative policy shows when these defaults cannot be changed in the account.",
        |x| Value::from(x.managed_exception_message.as_deref()),
    );
    t.column(
        "http_tokens_enforced",
        T::String,
        "Whether launching or switching instances to IMDSv1 is refused in this region (enabled or disabled); NULL when never set.",
        |x| text(x.http_tokens_enforced.as_ref()),
    );
    t.column("title", T::String, regional::TITLE, |x| {
        Value::from(format!("{} IMDS defaults", x.region))
    });
    regional_columns(&mut t);
    t.list(Vec::new(), list_defaults);
    t
}
