//! `aws_ec2_launch_template_version`: column for column the table of
//! turbot's Go plugin (`table_aws_ec2_launch_template_version.go`). The IMDS
//! settings of a version are `launch_template_data -> 'MetadataOptions'`.
//!
//! - List: as the Go plugin's `ParentHydrate`, DescribeLaunchTemplates per
//!   region (as `aws_ec2_launch_template` lists), then
//!   DescribeLaunchTemplateVersions for each template, `MaxResults` 200 (or
//!   a smaller pushed-down limit), with Filters from the `default_version`,
//!   `ebs_optimized`, `image_id`, `instance_type`, `kernel_id` and
//!   `ram_disk_id` quals. A template that does not match the
//!   `launch_template_id`/`launch_template_name` quals is skipped; a query
//!   giving both that match one template is an error, as upstream.
//! - Get: `launch_template_id` and `version_number` →
//!   DescribeLaunchTemplateVersions(LaunchTemplateId, Versions=[n]) in every
//!   queried region, `InvalidLaunchTemplateId.NotFound` and
//!   `.VersionNotFound` ignored.

use aws_sdk_ec2::types::{Filter, LaunchTemplateVersion, ResponseLaunchTemplateData};

use crate::aws::client::AwsConnection;
use crate::aws::common::{e, s, ts};
use crate::aws::ec2_instance::decode_user_data;
use crate::aws::ec2_json as j;
use crate::aws::ec2_launch_template as lt;
use futures::StreamExt;

use crate::aws::regional::{
    self, regional_columns, RegionCall, RegionSink, Regional, RegionalTable,
};
use crate::plugin::{
    BoxError, ColumnType as T, GetRequest, ItemSink, KeyColumn, ListRequest, QualMap, QualValue,
    Value,
};

type Version = Regional<LaunchTemplateVersion>;

/// The List key columns that become DescribeLaunchTemplateVersions filters,
/// in the order the Go plugin declares them.
const FILTERS: [(&str, &str); 6] = [
    ("default_version", "is-default-version"),
    ("ebs_optimized", "ebs-optimized"),
    ("image_id", "image-id"),
    ("instance_type", "instance-type"),
    ("kernel_id", "kernel-id"),
    ("ram_disk_id", "ram-disk-id"),
];

/// Errors a Get ignores.
const GET_IGNORED: [&str; 2] = [
    "InvalidLaunchTemplateId.NotFound",
    "InvalidLaunchTemplateId.VersionNotFound",
];

/// The filters for the quals, as `buildEc2LaunchTemplateVersionFilter`: a
/// bool qual's value (negated for `<>`), a string qual's value; a qual
/// whose value is neither gives a filter without values (the SDK splits an
/// IN list into one call per value before this).
fn filters(quals: &QualMap) -> Vec<Filter> {
    FILTERS
        .iter()
        .filter(|(col, _)| !quals.on(col).is_empty())
        .map(|(col, name)| {
            let mut f = Filter::builder().name(*name);
            for q in quals.on(col) {
                match (&q.value, q.operator.as_str()) {
                    (Some(QualValue::Bool(b)), "<>") => f = f.values((!b).to_string()),
                    (Some(QualValue::Bool(b)), _) => f = f.values(b.to_string()),
                    (Some(QualValue::String(v)), _) if !v.is_empty() => f = f.values(v),
                    _ => {}
                }
            }
            f.build()
        })
        .collect()
}

/// How many templates of one region have their versions listed at once (the
/// Go SDK starts one child List per parent item).
const TEMPLATE_CONCURRENCY: usize = 10;

/// What the child List needs besides the template.
struct VersionQuery {
    page_size: i32,
    filters: Option<Vec<Filter>>,
    name: Option<String>,
}

/// Every page of one template's versions into `sink`.
async fn template_versions(
    c: &RegionCall,
    sink: &RegionSink<LaunchTemplateVersion>,
    q: &VersionQuery,
    template_id: String,
) -> Result<(), BoxError> {
    let mut token: Option<String> = None;
    loop {
        let sent = token.clone();
        let call = (c.ec2().await.describe_launch_template_versions())
            .max_results(q.page_size)
            .set_filters(q.filters.clone())
            .set_next_token(token);
        let call = match &q.name {
            Some(n) => call.launch_template_name(n),
            None => call.launch_template_id(&template_id),
        };
        let r = call.send().await;
        let Some(o) = c.answer("DescribeLaunchTemplateVersions", &[], r)? else {
            return Ok(());
        };
        for v in o.launch_template_versions.unwrap_or_default() {
            sink.push(v).await?;
        }
        // StopOnDuplicateToken, as upstream's paginators.
        let next = (o.next_token).filter(|t| !t.is_empty() && Some(t) != sent.as_ref());
        match next {
            Some(t) if sink.wants_more().await => token = Some(t),
            _ => return Ok(()),
        }
    }
}

async fn list_versions(
    req: ListRequest<AwsConnection>,
    sink: ItemSink<Version>,
) -> Result<(), BoxError> {
    let quals = req.quals.clone();
    let eq = |col| {
        quals
            .equals(col)
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    let (id, name) = (eq("launch_template_id"), eq("launch_template_name"));
    let filters = filters(&quals);
    let q = VersionQuery {
        page_size: lt::max_results(req.limit),
        filters: (!filters.is_empty()).then_some(filters),
        name: name.clone(),
    };
    let (q, id, quals) = (&q, &id, &quals);
    regional::list_with(req, sink, |c, sink| async move {
        let mut token: Option<String> = None;
        loop {
            let sent = token.clone();
            let r = lt::describe(&c, quals, q.page_size, token).await;
            let Some((templates, next)) =
                c.answer("DescribeLaunchTemplates", &lt::LIST_IGNORED[..2], r)?
            else {
                return Ok(());
            };
            // Templates the id/name quals name (the API was asked for them;
            // a template matching both is upstream's error).
            let ids: Vec<String> = (templates.into_iter())
                .filter(|t| id.is_none() || t.launch_template_id == *id)
                .filter(|t| q.name.is_none() || t.launch_template_name == q.name)
                .filter_map(|t| t.launch_template_id)
                .collect();
            if id.is_some() && q.name.is_some() && !ids.is_empty() {
                return Err(
                    "both 'LaunchtemplateName' and 'LaunchTemplateId' cannot be \
                            passed in the where clause"
                        .into(),
                );
            }
            let runs = ids
                .into_iter()
                .map(|tid| template_versions(&c, &sink, q, tid));
            let mut runs = futures::stream::iter(runs).buffer_unordered(TEMPLATE_CONCURRENCY);
            while let Some(r) = runs.next().await {
                r?;
            }
            match next.filter(|t| !t.is_empty() && Some(t) != sent.as_ref()) {
                Some(t) if sink.wants_more().await => token = Some(t),
                _ => return Ok(()),
            }
        }
    })
    .await
}

async fn get_version(req: GetRequest<AwsConnection>) -> Result<Option<Version>, BoxError> {
    let id = match req.quals.equals("launch_template_id") {
        Some(QualValue::String(id)) => id.clone(),
        other => {
            return Err(format!(
                "launch_template_id must be a string, got {}",
                QualValue::describe(other)
            )
            .into())
        }
    };
    let version = match req.quals.equals("version_number") {
        Some(QualValue::Int(n)) => *n,
        other => {
            return Err(format!(
                "version_number must be an integer, got {}",
                QualValue::describe(other)
            )
            .into())
        }
    };
    regional::get(req, "DescribeLaunchTemplateVersions", &GET_IGNORED, |c| {
        let id = id.clone();
        async move {
            let o = (c.ec2().await.describe_launch_template_versions())
                .launch_template_id(id)
                .versions(version.to_string())
                .send()
                .await?;
            Ok(o.launch_template_versions
                .and_then(|v| v.into_iter().next()))
        }
    })
    .await
}

/// A member of `LaunchTemplateData`: NULL without the data.
fn data<V: Into<Value>>(x: &Version, f: impl Fn(&ResponseLaunchTemplateData) -> V) -> Value {
    x.launch_template_data
        .as_ref()
        .map_or(Value::Null, |d| f(d).into())
}

/// A string list in a STRING column, as Go's `%+v` prints it: `[a b]`.
fn go_list(v: &Option<Vec<String>>) -> String {
    format!("[{}]", v.as_deref().unwrap_or_default().join(" "))
}

/// The table.
pub fn table() -> RegionalTable<LaunchTemplateVersion> {
    let mut t = RegionalTable::<LaunchTemplateVersion>::new(
        "aws_ec2_launch_template_version",
        "AWS EC2 Launch Template Version",
    );
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
        "The time the version was created.",
        |x| ts(&x.create_time),
    );
    t.column(
        "created_by",
        T::String,
        "The principal that created the version.",
        |x| s(&x.created_by),
    );
    t.column(
        "default_version",
        T::Bool,
        "Indicates whether the version is the default version.",
        |x| x.default_version.map_or(Value::Null, Value::from),
    );
    t.column(
        "disable_api_stop",
        T::Bool,
        "Indicates whether the instance is enabled for stop protection.",
        |x| data(x, |d| d.disable_api_stop.map_or(Value::Null, Value::from)),
    );
    t.column(
        "disable_api_termination",
        T::Bool,
        "If set to true, indicates that the instance cannot be terminated using the \
         Amazon EC2 console, command line tool, or API.",
        |x| {
            data(x, |d| {
                d.disable_api_termination.map_or(Value::Null, Value::from)
            })
        },
    );
    t.column(
        "ebs_optimized",
        T::Bool,
        "Indicates whether the instance is optimized for Amazon EBS I/O.",
        |x| data(x, |d| d.ebs_optimized.map_or(Value::Null, Value::from)),
    );
    t.column(
        "image_id",
        T::String,
        "The ID of the AMI or a Systems Manager parameter.",
        |x| data(x, |d| s(&d.image_id)),
    );
    t.column("instance_type", T::String, "The instance type.", |x| {
        data(x, |d| e(d.instance_type.as_ref()))
    });
    t.column(
        "kernel_id",
        T::String,
        "The ID of the kernel, if applicable.",
        |x| data(x, |d| s(&d.kernel_id)),
    );
    t.column("key_name", T::String, "The name of the key pair.", |x| {
        data(x, |d| s(&d.key_name))
    });
    t.column(
        "ram_disk_id",
        T::String,
        "The ID of the RAM disk, if applicable.",
        |x| data(x, |d| s(&d.ram_disk_id)),
    );
    t.column(
        "security_groups",
        T::String,
        "The security group names.",
        |x| data(x, |d| go_list(&d.security_groups)),
    );
    t.column(
        "security_group_ids",
        T::String,
        "The security group IDs.",
        |x| data(x, |d| go_list(&d.security_group_ids)),
    );
    t.column(
        "version_description",
        T::String,
        "The description for the version.",
        |x| s(&x.version_description),
    );
    t.column("version_number", T::Int, "The version number.", |x| {
        x.version_number.map_or(Value::Null, Value::from)
    });
    // base64DecodedData: no user data decodes to "".
    t.column(
        "user_data",
        T::String,
        "The user data of the launch template.",
        |x| {
            let b64 = x
                .launch_template_data
                .as_ref()
                .and_then(|d| d.user_data.as_deref());
            Value::from(decode_user_data(b64.unwrap_or_default()))
        },
    );
    t.column(
        "launch_template_data",
        T::Json,
        "Information about the launch template.",
        |x| {
            (x.launch_template_data.as_ref()).map_or(Value::Null, |d| {
                Value::Json(j::response_launch_template_data(d))
            })
        },
    );
    t.column("title", T::String, regional::TITLE, |x| {
        s(&x.launch_template_name)
    });
    regional_columns(&mut t);
    let keys = ["launch_template_id", "version_number"];
    t.get(keys.map(KeyColumn::required).to_vec(), get_version);
    let mut list_keys = vec![
        KeyColumn::optional("launch_template_id"),
        KeyColumn::optional("launch_template_name"),
    ];
    list_keys.extend(FILTERS.iter().map(|(c, _)| KeyColumn::optional(c)));
    t.list(list_keys, list_versions);
    t
}
