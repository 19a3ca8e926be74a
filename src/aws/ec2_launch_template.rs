//! `aws_ec2_launch_template`: column for column the table of turbot's Go
//! plugin (`table_aws_ec2_launch_template.go`).
//!
//! - List only: DescribeLaunchTemplates in every queried region, `MaxResults`
//!   200 (or a smaller pushed-down limit); `launch_template_name` and
//!   `launch_template_id` quals become `LaunchTemplateNames` /
//!   `LaunchTemplateIds`. An unknown name or id ends the region quietly.
//! - The IMDS settings are not here: they are per version, in
//!   `aws_ec2_launch_template_version.launch_template_data`.

use aws_sdk_ec2::types::LaunchTemplate;

use crate::aws::client::AwsConnection;
use crate::aws::common::{self, list, s, ts};
use crate::aws::ec2_json as j;
use crate::aws::regional::{self, regional_columns, Page, RegionCall, Regional, RegionalTable};
use crate::plugin::{BoxError, ColumnType as T, ItemSink, KeyColumn, ListRequest, QualMap, Value};

/// Errors that end a region quietly (the name or id lives elsewhere).
pub const LIST_IGNORED: [&str; 3] = [
    "InvalidLaunchTemplateName.NotFoundException",
    "InvalidLaunchTemplateId.NotFound",
    "InvalidLaunchTemplateId.Malformed",
];

/// `MaxResults`: 200, or a smaller pushed-down limit.
pub fn max_results(limit: Option<u64>) -> i32 {
    regional::page_size(limit, 0, 200)
}

/// One page of DescribeLaunchTemplates for the name/id `=` quals.
pub async fn describe(
    c: &RegionCall,
    quals: &QualMap,
    page_size: i32,
    token: Option<String>,
) -> Result<Page<LaunchTemplate>, aws_sdk_ec2::error::SdkError<DescribeError>> {
    let q = |col| {
        quals
            .equals(col)
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    let o = (c.ec2().await.describe_launch_templates())
        .set_launch_template_names(q("launch_template_name").map(|n| vec![n]))
        .set_launch_template_ids(q("launch_template_id").map(|i| vec![i]))
        .max_results(page_size)
        .set_next_token(token)
        .send()
        .await?;
    Ok((o.launch_templates.unwrap_or_default(), o.next_token))
}

type DescribeError =
    aws_sdk_ec2::operation::describe_launch_templates::DescribeLaunchTemplatesError;

async fn list_templates(
    req: ListRequest<AwsConnection>,
    sink: ItemSink<Regional<LaunchTemplate>>,
) -> Result<(), BoxError> {
    let quals = req.quals.clone();
    let page_size = max_results(req.limit);
    regional::list(
        req,
        sink,
        "DescribeLaunchTemplates",
        &LIST_IGNORED,
        move |c, token| {
            let quals = quals.clone();
            async move { describe(&c, &quals, page_size, token).await }
        },
    )
    .await
}

/// The table.
pub fn table() -> RegionalTable<LaunchTemplate> {
    let mut t =
        RegionalTable::<LaunchTemplate>::new("aws_ec2_launch_template", "AWS EC2 Launch Template");
    t.column(
        "launch_template_name",
        T::String,
        "The name of the launch template.",
        |x| s(&x.launch_template_name),
    );
    t.column(
        "launch_template_id",
        T::String,
        "The ID of the launch template.",
        |x| s(&x.launch_template_id),
    );
    t.column(
        "create_time",
        T::Timestamp,
        "The time launch template was created.",
        |x| ts(&x.create_time),
    );
    t.column(
        "created_by",
        T::String,
        "The principal that created the launch template.",
        |x| s(&x.created_by),
    );
    t.column(
        "default_version_number",
        T::Int,
        "The version number of the default version of the launch template.",
        |x| x.default_version_number.map_or(Value::Null, Value::from),
    );
    // (sic: upstream's description)
    t.column(
        "latest_version_number",
        T::Int,
        "The name of the Application-Layer Protocol Negotiation (ALPN) policy.",
        |x| x.latest_version_number.map_or(Value::Null, Value::from),
    );
    t.column(
        "tags_src",
        T::Json,
        "The tags for the launch template.",
        |x| list(&x.tags, j::write_tag),
    );
    t.column("title", T::String, regional::TITLE, |x| {
        s(&x.launch_template_name)
    });
    t.column("tags", T::Json, regional::TAGS, |x| {
        Value::Json(common::tags_map(x.tags.as_deref()))
    });
    t.column("akas", T::Json, regional::AKAS, |x| {
        common::akas(
            (x.launch_template_id.as_ref())
                .map(|id| x.arn("ec2", &format!("launch-template/{id}"))),
        )
    })
    .reports_hydrate("launchTemplateAkas");
    regional_columns(&mut t);
    let keys = ["launch_template_name", "launch_template_id"];
    t.list(keys.map(KeyColumn::optional).to_vec(), list_templates);
    t
}
