//! `aws_ec2_ami_shared`: any AMI the connection can see (public, private,
//! shared with it), column for column the table of turbot's Go plugin
//! v1.31.0 (`table_aws_ec2_ami_shared.go`).
//!
//! - List only, and only with `owner_id`, `image_id` or `image_ids` given
//!   (else "please provide either owner_id, image_id or image_ids"; as
//!   upstream, `owner_ids` alone is refused too).
//! - DescribeImages with Owners (`owner_id`, or the `owner_ids` JSON array),
//!   ImageIds (`image_id`, or the `image_ids` JSON array) and a `Filter` per
//!   other key column, paged with MaxResults 1000 (or the pushed-down limit),
//!   no MaxResults when ImageIds are given (AWS refuses the pair).
//!   `InvalidAMIID.*` errors end a region's listing quietly.
//! - `image_ids` and `owner_ids` echo their quals; every key column matches
//!   the query cache exactly, as upstream's `CacheMatchExact`.

use std::borrow::Borrow;

use aws_sdk_ec2::types::Image;

use crate::aws::client::AwsConnection;
use crate::aws::ec2_ami::{self as ami, image_columns, OwnerAlias, IGNORED};
use crate::aws::regional::{self, Regional, RegionalTable};
use crate::plugin::{
    BoxError, ColumnType as T, ItemSink, KeyColumn, ListRequest, QualMap, QualValue, Value,
};

/// An image and the `image_ids` / `owner_ids` quals it was listed with.
pub struct SharedImage {
    /// the API item
    pub image: Image,
    /// the `image_ids` qual, as given
    pub image_ids: Value,
    /// the `owner_ids` qual, as given
    pub owner_ids: Value,
}

impl Borrow<Image> for SharedImage {
    fn borrow(&self) -> &Image {
        &self.image
    }
}

/// The key columns in upstream's order: the AMI filters plus the owner and
/// image ones.
const KEYS: [&str; 19] = [
    "owner_id",
    "owner_ids",
    "architecture",
    "description",
    "ena_support",
    "hypervisor",
    "image_id",
    "image_ids",
    "image_type",
    "public",
    "kernel_id",
    "name",
    "platform",
    "ramdisk_id",
    "root_device_name",
    "root_device_type",
    "state",
    "sriov_net_support",
    "virtualization_type",
];

/// The `=` qual on a jsonb key column: its value for the column (FromQual),
/// and the strings it holds, or the error upstream gives when it is not a
/// JSON array of strings.
fn json_list(
    quals: &QualMap,
    column: &str,
    example: &str,
) -> Result<(Value, Option<Vec<String>>), BoxError> {
    let Some(v) = quals.equals(column) else {
        return Ok((Value::Null, None));
    };
    let QualValue::Json(j) = v else {
        return Ok((Value::Null, None));
    };
    // Upstream's message names 'image_ids' for both columns.
    let bad = || {
        format!(
            "unable to parse the 'image_ids' query parameter the value must be in the format '{example}'"
        )
    };
    // `null` unmarshals to no list, as Go's json.Unmarshal leaves a nil slice.
    let items: Option<Vec<String>> = serde_json::from_value(j.clone()).map_err(|_| bad())?;
    Ok((Value::Json(j.clone()), items))
}

async fn list_shared(
    req: ListRequest<AwsConnection>,
    sink: ItemSink<Regional<SharedImage>>,
) -> Result<(), BoxError> {
    let text = |c: &str| {
        req.quals
            .equals(c)
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
    };
    let (owner_id, image_id) = (text("owner_id"), text("image_id"));
    let has_image_ids = matches!(req.quals.equals("image_ids"), Some(QualValue::Json(_)));
    if owner_id.is_none() && image_id.is_none() && !has_image_ids {
        return Err("please provide either owner_id, image_id or image_ids".into());
    }
    let mut owners = owner_id.map(|o| vec![o.to_string()]);
    let mut image_ids = image_id.map(|i| vec![i.to_string()]);
    let (image_ids_col, ids) = json_list(
        &req.quals,
        "image_ids",
        r#"["ami-000165ee3e0c1d6c7", "ami-0002ab43c99ec70ec"]"#,
    )?;
    if ids.is_some() {
        image_ids = ids;
    }
    let (owner_ids_col, ids) = json_list(
        &req.quals,
        "owner_ids",
        r#"["123456789089", "345345678567"]"#,
    )?;
    if ids.is_some() {
        owners = ids;
    }
    let filters = ami::filters(&req.quals);
    let filters = (!filters.is_empty()).then_some(filters);
    // MaxResults: 1000 or the limit; none with ImageIds (AWS refuses the pair).
    let max = match req.limit {
        _ if image_ids.is_some() => None,
        Some(0) => None,
        l => Some(regional::page_size(l, 1, 1000)),
    };
    regional::list(req, sink, "DescribeImages", &IGNORED, move |c, token| {
        let (owners, image_ids, filters) = (owners.clone(), image_ids.clone(), filters.clone());
        let (image_ids_col, owner_ids_col) = (image_ids_col.clone(), owner_ids_col.clone());
        async move {
            let o = (c.ec2().await.describe_images())
                .set_owners(owners)
                .set_image_ids(image_ids)
                .set_filters(filters)
                .set_max_results(max)
                .set_next_token(token)
                .send()
                .await?;
            let items = (o.images.unwrap_or_default().into_iter())
                .map(|image| SharedImage {
                    image,
                    image_ids: image_ids_col.clone(),
                    owner_ids: owner_ids_col.clone(),
                })
                .collect();
            Ok((items, o.next_token))
        }
    })
    .await
}

/// The table.
pub fn table() -> RegionalTable<SharedImage> {
    let mut t = RegionalTable::<SharedImage>::new(
        "aws_ec2_ami_shared",
        "AWS EC2 AMI - All public, private, and shared AMIs",
    );
    image_columns(&mut t, OwnerAlias::Hydrated);
    t.column(
        "image_ids",
        T::Json,
        "The ID of the AMIs in the form of array of strings.",
        |x| x.image_ids.clone(),
    );
    t.column(
        "owner_ids",
        T::Json,
        "The AWS account IDs of the image owners.",
        |x| x.owner_ids.clone(),
    );
    ami::block_device_mappings(&mut t);
    ami::state_reason(&mut t);
    ami::product_codes(&mut t);
    ami::standard_columns(&mut t);
    let keys = KEYS.iter().map(|c| match *c {
        // Owners accepts aliases (amazon, self…) that are no row's owner_id.
        "owner_id" => KeyColumn::optional(c).cache_exact().api_matched(),
        "owner_ids" | "image_id" | "image_ids" => KeyColumn::optional(c).cache_exact(),
        _ => ami::key_column(c),
    });
    t.list(keys.collect(), list_shared);
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::TableDef;

    #[test]
    fn the_table_declares_upstreams_columns_and_keys() {
        let t = table();
        t.validate().unwrap();
        let schema = TableDef::schema(&t);
        let names: Vec<&str> = schema.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names.len(), 39 + 3);
        assert_eq!(
            &names[27..33],
            [
                "image_ids",
                "owner_ids",
                "block_device_mappings",
                "state_reason",
                "product_codes",
                "tags_src"
            ]
        );
        let keys = &schema.list_call_key_column_list;
        assert_eq!(keys.len(), 19);
        assert_eq!(keys[1].name, "owner_ids");
        assert_eq!(keys[1].cache_match, "exact");
        assert_eq!(keys[4].operators, ["=", "<>"]);
        assert!(schema.get_call_key_column_list.is_empty());
    }
}
