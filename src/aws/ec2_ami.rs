//! `aws_ec2_ami`: the AMIs the connection's account owns, column for column
//! the table of turbot's Go plugin v1.31.0 (`table_aws_ec2_ami.go`).
//!
//! - `where image_id = 'ami-…'` → DescribeImages(ImageIds, Owners=[account])
//!   in every queried region, `InvalidAMIID.*` ignored.
//! - otherwise one DescribeImages(Owners=[account], IncludeDisabled) per
//!   region, with no paging (as upstream), and a `Filter` per optional key
//!   column given (`state = 'disabled'` sets IncludeDisabled).
//! - `launch_permissions` calls DescribeImageAttribute(launchPermission) per
//!   image, only when asked for.
//!
//! The columns up to `virtualization_type` are shared with
//! `aws_ec2_ami_shared` ([`image_columns`]).

use std::borrow::Borrow;
use std::sync::Arc;

use aws_sdk_ec2::types::{Filter, Image, ImageAttributeName};

use crate::aws::client::AwsConnection;
use crate::aws::common::{self, akas, e, iso_ts, list, s};
use crate::aws::ec2_json as j;
use crate::aws::regional::{self, regional_columns, RegionCall, Regional, RegionalTable};
use crate::plugin::{
    BoxError, ColumnType as T, GetRequest, ItemSink, KeyColumn, ListRequest, QualMap, QualValue,
    Value,
};

/// One image, with its region and the connection's identity.
pub type Ec2Ami = Regional<Image>;

/// The image inside a table's item.
fn img<R: Borrow<Image>>(x: &Regional<R>) -> &Image {
    x.item.borrow()
}

/// The optional List key columns and the DescribeImages filter each becomes,
/// in the Go plugin's key column order (`ena_support` and `public` also take `<>`).
pub const LIST_FILTERS: [(&str, &str); 15] = [
    ("architecture", "architecture"),
    ("description", "description"),
    ("ena_support", "ena-support"),
    ("hypervisor", "hypervisor"),
    ("image_type", "image-type"),
    ("public", "is-public"),
    ("kernel_id", "kernel-id"),
    ("platform", "platform"),
    ("name", "name"),
    ("ramdisk_id", "ramdisk-id"),
    ("root_device_name", "root-device-name"),
    ("root_device_type", "root-device-type"),
    ("state", "state"),
    ("sriov_net_support", "sriov-net-support"),
    ("virtualization_type", "virtualization-type"),
];

/// The boolean key columns: `=` and `<>`.
const BOOL_KEYS: [&str; 2] = ["ena_support", "public"];

/// Error codes the Get (and `aws_ec2_ami_shared`'s List) ignore.
pub const IGNORED: [&str; 3] = [
    "InvalidAMIID.NotFound",
    "InvalidAMIID.Unavailable",
    "InvalidAMIID.Malformed",
];

/// The optional List key columns, as the Go plugin declares them.
pub fn key_column(name: &str) -> KeyColumn {
    let k = KeyColumn::optional(name);
    if BOOL_KEYS.contains(&name) {
        k.operators(&["=", "<>"])
    } else {
        k
    }
}

/// The DescribeImages filters for the key-column quals, as upstream's
/// `buildAmisWithOwnerFilter` builds them: a filter per column with a qual;
/// its value is the last `=` string (a boolean's value, negated for `<>`);
/// a column whose quals carry no single string (an IN list kept whole) gets a
/// filter with no value, as upstream sends it.
pub fn filters(quals: &QualMap) -> Vec<Filter> {
    let mut out = Vec::new();
    for (column, name) in LIST_FILTERS {
        let qs = quals.on(column);
        if qs.is_empty() {
            continue;
        }
        let value = if BOOL_KEYS.contains(&column) {
            let mut v = None;
            for q in qs {
                if let Some(QualValue::Bool(b)) = q.value {
                    v = Some(if q.operator == "<>" { !b } else { b });
                }
            }
            // fmt.Sprint of a nil interface
            Some(v.map_or("<nil>".to_string(), |b| b.to_string()))
        } else {
            last_value(quals, column).flatten()
        };
        out.push(
            Filter::builder()
                .name(name)
                .set_values(value.map(|v| vec![v]))
                .build(),
        );
    }
    out
}

/// `IncludeDisabled`: true when the last `state` value upstream reads is the
/// string `disabled`. An IN list kept whole never sets it (upstream's branch
/// for a list expects `[]string` and gets `[]*string`), but hides an earlier
/// string.
pub fn include_disabled(quals: &QualMap) -> bool {
    match last_value(quals, "state") {
        Some(Some(s)) => s == "disabled",
        _ => false,
    }
}

/// What upstream's `getQualsValueByColumn(.., "string")` leaves for
/// `column`: over its quals, the last non-empty string (`Some(Some)`) or IN
/// list holding a non-empty string (`Some(None)`); `None` if neither.
fn last_value(quals: &QualMap, column: &str) -> Option<Option<String>> {
    let mut v = None;
    for q in quals.on(column) {
        match &q.value {
            Some(QualValue::String(s)) if !s.is_empty() => v = Some(Some(s.clone())),
            Some(QualValue::List(l))
                if l.iter().any(|x| x.as_str().is_some_and(|s| !s.is_empty())) =>
            {
                v = Some(None)
            }
            _ => {}
        }
    }
    v
}

/// `arn:<partition>:ec2:<region>:<owner>:image/<id>`: the image owner's
/// account, not the connection's.
fn arn<R: Borrow<Image>>(x: &Regional<R>) -> Option<String> {
    let i = img(x);
    Some(format!(
        "arn:{}:ec2:{}:{}:image/{}",
        x.identity.partition,
        x.region,
        i.owner_id.as_deref()?,
        i.image_id.as_deref()?
    ))
}

/// `image_owner_alias` as `aws_ec2_ami_shared` declares it.
pub enum OwnerAlias {
    /// the alias, else NULL, which the column's default makes `self`
    DefaultSelf,
    /// hydrate `getImageOwnerAlias`: the alias, else the owner's account when
    /// it is not the connection's, else `self`
    Hydrated,
}

/// The columns both AMI tables declare, `name` to `virtualization_type`.
pub fn image_columns<R>(t: &mut RegionalTable<R>, alias: OwnerAlias)
where
    R: Borrow<Image> + Send + Sync + 'static,
{
    t.column(
        "name",
        T::String,
        "The name of the AMI that was provided during image creation.",
        |x| s(&img(x).name),
    );
    t.column("image_id", T::String, "The ID of the AMI.", |x| {
        s(&img(x).image_id)
    });
    t.column(
        "state",
        T::String,
        "The current state of the AMI. If the state is available, the image is \
         successfully registered and can be used to launch an instance.",
        |x| e(img(x).state.as_ref()),
    );
    t.column("image_type", T::String, "The type of image.", |x| {
        e(img(x).image_type.as_ref())
    });
    t.column(
        "image_location",
        T::String,
        "The location of the AMI.",
        |x| s(&img(x).image_location),
    );
    t.column("boot_mode", T::String, "The boot mode of the image.", |x| {
        e(img(x).boot_mode.as_ref())
    });
    t.column(
        "source_instance_id",
        T::String,
        "The ID of the instance that the AMI was created from if the AMI was created \
         using CreateImage.",
        |x| s(&img(x).source_instance_id),
    );
    t.column(
        "tpm_support",
        T::String,
        "If the image is configured for NitroTPM support, the value is v2.0.",
        |x| e(img(x).tpm_support.as_ref()),
    );
    t.column(
        "creation_date",
        T::Timestamp,
        "The date and time when the image was created.",
        |x| iso_ts(&img(x).creation_date),
    );
    t.column(
        "deprecation_time",
        T::Timestamp,
        "The date and time to deprecate the AMI.",
        // NullIfZeroValue: "" is NULL too.
        |x| iso_ts(&img(x).deprecation_time.clone().filter(|t| !t.is_empty())),
    );
    t.column(
        "architecture",
        T::String,
        "The architecture of the image.",
        |x| e(img(x).architecture.as_ref()),
    );
    t.column(
        "description",
        T::String,
        "The description of the AMI that was provided during image creation.",
        |x| s(&img(x).description),
    );
    t.column(
        "ena_support",
        T::Bool,
        "Specifies whether enhanced networking with ENA is enabled.",
        |x| Value::from(img(x).ena_support),
    );
    t.column(
        "hypervisor",
        T::String,
        "The hypervisor type of the image.",
        |x| e(img(x).hypervisor.as_ref()),
    );
    let owner_alias_description = "The AWS account alias (for example, amazon, self) or the \
                                   AWS account ID of the AMI owner.";
    match alias {
        OwnerAlias::DefaultSelf => {
            t.column(
                "image_owner_alias",
                T::String,
                owner_alias_description,
                |x| s(&img(x).image_owner_alias),
            )
            .default_value("self");
        }
        OwnerAlias::Hydrated => {
            t.column(
                "image_owner_alias",
                T::String,
                owner_alias_description,
                |x| {
                    let i = img(x);
                    match (&i.image_owner_alias, &i.owner_id) {
                        (Some(alias), _) => Value::from(alias.clone()),
                        (None, Some(owner)) if *owner != x.identity.account_id => {
                            Value::from(owner.clone())
                        }
                        (None, _) => Value::from("self"),
                    }
                },
            )
            .reports_hydrate("getImageOwnerAlias");
        }
    }
    t.column(
        "imds_support",
        T::String,
        "If v2.0, it indicates that IMDSv2 is specified in the AMI.",
        |x| e(img(x).imds_support.as_ref()),
    );
    t.column(
        "kernel_id",
        T::String,
        "The kernel associated with the image, if any. Only applicable for machine \
         images.",
        |x| s(&img(x).kernel_id),
    );
    t.column(
        "owner_id",
        T::String,
        "The AWS account ID of the image owner.",
        |x| s(&img(x).owner_id),
    );
    t.column(
        "platform",
        T::String,
        "This value is set to windows for Windows AMIs; otherwise, it is blank.",
        // NullIfZero: an absent platform is NULL, not "".
        |x| {
            Value::from(
                img(x)
                    .platform
                    .as_ref()
                    .map(|p| p.as_str())
                    .filter(|p| !p.is_empty()),
            )
        },
    );
    t.column(
        "platform_details",
        T::String,
        "The platform details associated with the billing code of the AMI. For more \
         information, see Obtaining Billing Information \
         (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ami-billing-info.html) in \
         the Amazon Elastic Compute Cloud User Guide.",
        |x| s(&img(x).platform_details),
    );
    t.column(
        "public",
        T::Bool,
        "Indicates whether the image has public launch permissions. The value is true \
         if this image has public launch permissions or false if it has only implicit \
         and explicit launch permissions.",
        |x| Value::from(img(x).public),
    );
    t.column(
        "ramdisk_id",
        T::String,
        "The RAM disk associated with the image, if any. Only applicable for machine \
         images.",
        |x| s(&img(x).ramdisk_id),
    );
    t.column(
        "root_device_name",
        T::String,
        "The device name of the root device volume (for example, /dev/sda1).",
        |x| s(&img(x).root_device_name),
    );
    t.column(
        "root_device_type",
        T::String,
        "The type of root device used by the AMI. The AMI can use an EBS volume or an \
         instance store volume.",
        |x| e(img(x).root_device_type.as_ref()),
    );
    t.column(
        "sriov_net_support",
        T::String,
        "Specifies whether enhanced networking with the Intel 82599 Virtual Function \
         interface is enabled.",
        |x| s(&img(x).sriov_net_support),
    );
    t.column(
        "usage_operation",
        T::String,
        "The operation of the Amazon EC2 instance and the billing code that is \
         associated with the AMI. For the list of UsageOperation codes, see Platform \
         Details and [Usage Operation Billing Codes](https://docs.aws.amazon.com/AWSEC2/\
         latest/UserGuide/ami-billing-info.html#billing-info) in the Amazon Elastic \
         Compute Cloud User Guide.",
        |x| s(&img(x).usage_operation),
    );
    t.column(
        "virtualization_type",
        T::String,
        "The type of virtualization of the AMI.",
        |x| e(img(x).virtualization_type.as_ref()),
    );
}

/// `block_device_mappings`.
pub fn block_device_mappings<R: Borrow<Image> + Send + Sync + 'static>(t: &mut RegionalTable<R>) {
    t.column(
        "block_device_mappings",
        T::Json,
        "Any block device mapping entries.",
        |x| list(&img(x).block_device_mappings, j::write_block_device_mapping),
    );
}

/// `product_codes`.
pub fn product_codes<R: Borrow<Image> + Send + Sync + 'static>(t: &mut RegionalTable<R>) {
    t.column(
        "product_codes",
        T::Json,
        "Any product codes associated with the AMI.",
        |x| list(&img(x).product_codes, j::write_product_code),
    );
}

/// `state_reason`.
pub fn state_reason<R: Borrow<Image> + Send + Sync + 'static>(t: &mut RegionalTable<R>) {
    t.column(
        "state_reason",
        T::Json,
        "The reason for the state change.",
        |x| common::json_or_null(&img(x).state_reason, j::write_state_reason),
    );
}

/// `tags_src`, `title`, `tags` and `akas`, then the regional columns.
pub fn standard_columns<R: Borrow<Image> + Send + Sync + 'static>(t: &mut RegionalTable<R>) {
    t.column(
        "tags_src",
        T::Json,
        "A list of tags attached to the AMI.",
        |x| list(&img(x).tags, j::write_tag),
    );
    t.column("title", T::String, regional::TITLE, |x| {
        let i = img(x);
        s(&i.name.clone().or_else(|| i.image_id.clone()))
    });
    t.column("tags", T::Json, regional::TAGS, |x| {
        Value::Json(common::tags_map(img(x).tags.as_deref()))
    });
    t.column("akas", T::Json, regional::AKAS, |x| akas(arn(x)))
        .reports_hydrate("getAwsEc2AmiAkas");
    regional_columns(t);
}

async fn list_amis(
    req: ListRequest<AwsConnection>,
    sink: ItemSink<Ec2Ami>,
) -> Result<(), BoxError> {
    let filters = filters(&req.quals);
    let filters = (!filters.is_empty()).then_some(filters);
    let include_disabled = include_disabled(&req.quals);
    req.connection.usable()?;
    let account = req.connection.identity().await?.account_id.clone();
    regional::list(req, sink, "DescribeImages", &[], move |c, _| {
        let (filters, account) = (filters.clone(), account.clone());
        async move {
            let o = (c.ec2().await.describe_images())
                .include_disabled(include_disabled)
                .set_filters(filters)
                .owners(account)
                .send()
                .await?;
            // One call, no paging: upstream reads only the first page.
            Ok((o.images.unwrap_or_default(), None))
        }
    })
    .await
}

async fn get_ami(req: GetRequest<AwsConnection>) -> Result<Option<Ec2Ami>, BoxError> {
    let id = match req.quals.equals("image_id") {
        Some(QualValue::String(id)) => id.clone(),
        other => {
            return Err(format!(
                "image_id must be a string, got {}",
                QualValue::describe(other)
            )
            .into())
        }
    };
    req.connection.usable()?;
    let account = req.connection.identity().await?.account_id.clone();
    regional::get(req, "DescribeImages", &IGNORED, |c| {
        let (id, account) = (id.clone(), account.clone());
        async move {
            let o = (c.ec2().await.describe_images())
                .image_ids(id)
                .owners(account)
                .send()
                .await?;
            Ok(o.images.unwrap_or_default().into_iter().next())
        }
    })
    .await
}

/// The table.
pub fn table() -> RegionalTable<Image> {
    let mut t = RegionalTable::<Image>::new("aws_ec2_ami", "AWS EC2 AMI");
    let permissions = t.hydrate(
        "getAwsEc2AmiLaunchPermissionData",
        |req, x: Arc<Ec2Ami>| async move {
            let c = RegionCall::of(&req, &x);
            let out = (c.ec2().await.describe_image_attribute())
                .set_image_id(x.image_id.clone())
                .attribute(ImageAttributeName::LaunchPermission)
                .send()
                .await;
            c.answer("DescribeImageAttribute", &[], out)
        },
    );
    image_columns(&mut t, OwnerAlias::DefaultSelf);
    block_device_mappings(&mut t);
    product_codes(&mut t);
    state_reason(&mut t);
    t.hydrated_column(
        "launch_permissions",
        T::Json,
        "The users and groups that have the permissions for creating instances from the \
         AMI.",
        permissions,
        |_, o| match o {
            Some(o) => list(&o.launch_permissions, j::write_launch_permission),
            None => Value::Null,
        },
    );
    standard_columns(&mut t);
    t.get(vec![KeyColumn::required("image_id")], get_ami);
    let keys = LIST_FILTERS.iter().map(|(c, _)| key_column(c));
    t.list(keys.collect(), list_amis);
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::{Qual, TableDef};

    fn q(column: &str, op: &str, v: QualValue) -> Qual {
        Qual {
            column: column.into(),
            operator: op.into(),
            value: Some(v),
        }
    }

    #[test]
    fn quals_become_the_filters_upstream_sends() {
        let quals = QualMap::from_quals([
            q("name", "=", QualValue::String("web".into())),
            q("public", "<>", QualValue::Bool(true)),
            q(
                "state",
                "=",
                QualValue::List(vec![
                    QualValue::String("available".into()),
                    QualValue::String("disabled".into()),
                ]),
            ),
        ]);
        let f = filters(&quals);
        let got: Vec<(String, Option<Vec<String>>)> = f
            .iter()
            .map(|f| (f.name.clone().unwrap(), f.values.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("is-public".to_string(), Some(vec!["false".to_string()])),
                ("name".to_string(), Some(vec!["web".to_string()])),
                ("state".to_string(), None),
            ]
        );
        assert!(!include_disabled(&quals), "a list never sets it");
        let quals = QualMap::from_quals([q("state", "=", QualValue::String("disabled".into()))]);
        assert!(include_disabled(&quals));
    }

    #[test]
    fn the_table_declares_upstreams_columns_and_keys() {
        let t = table();
        t.validate().unwrap();
        let schema = TableDef::schema(&t);
        let names: Vec<&str> = schema.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names.len(), 38 + 3);
        assert_eq!(names[15], "imds_support");
        assert_eq!(names[30], "launch_permissions");
        assert_eq!(names[37], "account_id");
        assert_eq!(schema.list_call_key_column_list.len(), 15);
    }
}
