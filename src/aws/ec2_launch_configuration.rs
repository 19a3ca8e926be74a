//! `aws_ec2_launch_configuration`: column for column the table of turbot's Go
//! plugin (Auto Scaling DescribeLaunchConfigurations).
//!
//! - `where name = 'web'` → DescribeLaunchConfigurations with
//!   LaunchConfigurationNames in every queried region; ResourceNotFoundException
//!   and ValidationError are ignored. A name found in two regions is an error,
//!   as the Go SDK's Get says ("the key column is not globally unique").
//! - otherwise → DescribeLaunchConfigurations with `MaxRecords` 100, or a
//!   pushed-down limit (at least 1), paging until the limit is met.
//! - `where region = 'eu-west-1'` → only that region is called.

use aws_sdk_autoscaling::types::LaunchConfiguration;

use crate::aws::autoscaling_json as j;
use crate::aws::client::AwsConnection;
use crate::aws::common::{self, e, int, list, s, strings, ts};
use crate::aws::ec2_instance::decode_user_data;
use crate::aws::regional::{self, regional_columns, Regional, RegionalTable};
use crate::plugin::{
    BoxError, ColumnType as T, GetRequest, ItemSink, KeyColumn, ListRequest, QualValue, Value,
};

/// One launch configuration, with its region and the connection's identity.
pub type Ec2LaunchConfiguration = Regional<LaunchConfiguration>;

/// Error codes a Get ignores.
const GET_IGNORED: [&str; 2] = ["ResourceNotFoundException", "ValidationError"];

/// `MaxRecords` for a pushed-down limit: the limit, kept within 1..100.
pub fn max_records(limit: Option<u64>) -> i32 {
    regional::page_size(limit, 1, 100)
}

async fn list_launch_configurations(
    req: ListRequest<AwsConnection>,
    sink: ItemSink<Ec2LaunchConfiguration>,
) -> Result<(), BoxError> {
    let page_size = max_records(req.limit);
    let op = "DescribeLaunchConfigurations";
    regional::list(req, sink, op, &[], move |c, token| async move {
        let o = (c.autoscaling().await.describe_launch_configurations())
            .max_records(page_size)
            .set_next_token(token)
            .send()
            .await?;
        Ok((o.launch_configurations.unwrap_or_default(), o.next_token))
    })
    .await
}

async fn get_launch_configuration(
    req: GetRequest<AwsConnection>,
) -> Result<Option<Ec2LaunchConfiguration>, BoxError> {
    let name = match req.quals.equals("name") {
        Some(QualValue::String(n)) => n.clone(),
        other => {
            return Err(format!("name must be a string, got {}", QualValue::describe(other)).into())
        }
    };
    let op = "DescribeLaunchConfigurations";
    regional::get(req, op, &GET_IGNORED, |c| {
        let name = name.clone();
        async move {
            let o = (c.autoscaling().await.describe_launch_configurations())
                .launch_configuration_names(name)
                .send()
                .await?;
            Ok(o.launch_configurations
                .unwrap_or_default()
                .into_iter()
                .next())
        }
    })
    .await
}

/// The table.
pub fn table() -> RegionalTable<LaunchConfiguration> {
    let mut t = RegionalTable::<LaunchConfiguration>::new(
        "aws_ec2_launch_configuration",
        "AWS EC2 Launch Configuration",
    );
    t.column(
        "name",
        T::String,
        "The name of the launch configuration.",
        |x| s(&x.launch_configuration_name),
    );
    t.column(
        "launch_configuration_arn",
        T::String,
        "The Amazon Resource Name (ARN) of the launch configuration.",
        |x| s(&x.launch_configuration_arn),
    );
    t.column(
        "created_time",
        T::Timestamp,
        "The creation date and time for the launch configuration.",
        |x| ts(&x.created_time),
    );
    t.column(
        "image_id",
        T::String,
        "The ID of the Amazon Machine Image (AMI) to use to launch EC2 instances.",
        |x| s(&x.image_id),
    );
    t.column(
        "instance_type",
        T::String,
        "The instance type for the instances.",
        |x| s(&x.instance_type),
    );
    t.column(
        "associate_public_ip_address",
        T::Bool,
        "For Auto Scaling groups that are running in a VPC, specifies whether to assign a \
         public IP address to the group's instances.",
        |x| Value::from(x.associate_public_ip_address),
    )
    .default_value(false);
    t.column(
        "kernel_id",
        T::String,
        "The ID of the kernel associated with the AMI.",
        |x| s(&x.kernel_id),
    );
    t.column(
        "key_name",
        T::String,
        "The name of the key pair to be associated with instances.",
        |x| s(&x.key_name),
    );
    // Always NULL, as in the Go plugin: its FromGo transform looks for a
    // field `RamdiskID`, and the SDK's is `RamdiskId` (docs/tables).
    t.column(
        "ramdisk_id",
        T::String,
        "The ID of the RAM disk associated with the AMI.",
        |_| Value::Null,
    );
    t.column(
        "ebs_optimized",
        T::Bool,
        "Specifies whether the launch configuration is optimized for EBS I/O (true) or not \
         (false).",
        |x| Value::from(x.ebs_optimized),
    )
    .default_value(false);
    t.column(
        "classic_link_vpc_id",
        T::String,
        "The ID of a ClassicLink-enabled VPC to link EC2-Classic instances to.",
        |x| s(&x.classic_link_vpc_id),
    );
    t.column(
        "spot_price",
        T::String,
        "The maximum hourly price to be paid for any Spot Instance launched to fulfill the \
         request. Spot Instances are launched when the price you specified exceeds the \
         current Spot price.",
        |x| s(&x.spot_price),
    );
    t.column(
        "user_data",
        T::String,
        "The Base64-encoded user data to make available to the launched EC2 instances.",
        // No user data decodes as "": the Go plugin's transform runs on nil too.
        |x| Value::from(decode_user_data(x.user_data.as_deref().unwrap_or(""))),
    );
    t.column(
        "placement_tenancy",
        T::String,
        "The tenancy of the instance, either default or dedicated. An instance with \
         dedicated tenancy runs on isolated, single-tenant hardware and can only be \
         launched into a VPC.",
        |x| s(&x.placement_tenancy),
    );
    t.column(
        "iam_instance_profile",
        T::String,
        "The name or the Amazon Resource Name (ARN) of the instance profile associated \
         with the IAM role for the instance.",
        |x| s(&x.iam_instance_profile),
    );
    t.column(
        "instance_monitoring_enabled",
        T::Bool,
        "Describes whether detailed monitoring is enabled for the Auto Scaling instances.",
        |x| Value::from(x.instance_monitoring.as_ref().and_then(|m| m.enabled)),
    )
    .default_value(false);
    // The three metadata columns are NULL without MetadataOptions; with it,
    // an absent enum member is "" (a Go value type), an absent hop limit NULL.
    t.column(
        "metadata_options_http_endpoint",
        T::String,
        "This parameter enables or disables the HTTP metadata endpoint on instances. If \
         the parameter is not specified, the default state is enabled.",
        |x| {
            (x.metadata_options.as_ref())
                .map(|m| e(m.http_endpoint.as_ref()))
                .unwrap_or(Value::Null)
        },
    );
    t.column(
        "metadata_options_put_response_hop_limit",
        T::Int,
        "The desired HTTP PUT response hop limit for instance metadata requests. The \
         larger the number, the further instance metadata requests can travel.",
        |x| int((x.metadata_options.as_ref()).and_then(|m| m.http_put_response_hop_limit)),
    );
    t.column(
        "metadata_options_http_tokens",
        T::String,
        "The state of token usage for your instance metadata requests. If the parameter \
         is not specified in the request, the default state is optional.",
        |x| {
            (x.metadata_options.as_ref())
                .map(|m| e(m.http_tokens.as_ref()))
                .unwrap_or(Value::Null)
        },
    );
    t.column(
        "block_device_mappings",
        T::Json,
        "A block device mapping, which specifies the block devices for the instance.",
        |x| list(&x.block_device_mappings, j::write_block_device_mapping),
    );
    t.column(
        "classic_link_vpc_security_groups",
        T::Json,
        "The IDs of one or more security groups for the VPC specified in ClassicLinkVPCId.",
        |x| strings(&x.classic_link_vpc_security_groups),
    );
    t.column(
        "security_groups",
        T::Json,
        "A list that contains the security groups to assign to the instances in the Auto \
         Scaling group.",
        |x| strings(&x.security_groups),
    );
    t.column("title", T::String, regional::TITLE, |x| {
        s(&x.launch_configuration_name)
    });
    // arnToAkas: a missing ARN is [""].
    t.column("akas", T::Json, regional::AKAS, |x| {
        common::akas(Some(x.launch_configuration_arn.clone().unwrap_or_default()))
    });
    regional_columns(&mut t);
    t.get(vec![KeyColumn::required("name")], get_launch_configuration);
    t.list(vec![], list_launch_configurations)
        .read_ahead(max_records(None) as usize);
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_records_is_the_limit_clamped_to_1_through_100() {
        assert_eq!(max_records(None), 100);
        assert_eq!(max_records(Some(0)), 1);
        assert_eq!(max_records(Some(7)), 7);
        assert_eq!(max_records(Some(500)), 100);
    }

    #[test]
    fn the_table_declares_the_go_plugins_columns_in_order() {
        use crate::plugin::TableDef;
        let t = table();
        t.validate().unwrap();
        let schema = TableDef::schema(&t);
        let names: Vec<&str> = schema.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names.len(), 30, "24 of its own, 3 regional, 3 the SDK adds");
        assert_eq!(names[0], "name");
        assert_eq!(names[17], "metadata_options_put_response_hop_limit");
        assert_eq!(names[24..27], ["partition", "region", "account_id"]);
        assert_eq!(schema.get_call_key_column_list[0].name, "name");
        assert!(schema.list_call_key_column_list.is_empty());
    }
}
