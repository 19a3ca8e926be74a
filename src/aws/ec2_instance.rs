//! `aws_ec2_instance`: column for column the table of turbot's Go plugin
//! (same 80 columns, order, types, descriptions, JSON shapes and key columns).
//!
//! - `where instance_id = 'i-…'` (or an IN list) → DescribeInstances with
//!   InstanceIds in every queried region, `InvalidInstanceID.*` ignored.
//! - `where instance_state = 'running'` (and 17 more optional key columns) →
//!   DescribeInstances `Filters`.
//! - `where region = 'eu-west-1'` → only that region is called.
//! - a pushed-down `limit n` → `MaxResults` = n clamped to 5..1000, and
//!   pagination stops once n rows are out.
//! - the hydrated columns call DescribeInstanceAttribute, GetLaunchTemplateData
//!   or DescribeInstanceStatus per instance, only when asked for.

use std::sync::Arc;

use aws_sdk_ec2::operation::describe_instance_attribute::DescribeInstanceAttributeOutput;
use aws_sdk_ec2::types::{Filter, Instance, InstanceAttributeName};

use crate::aws::client::AwsConnection;
use crate::aws::common::{self, e, int, json_or_null, list, s, ts};
use crate::aws::ec2_json as j;
use crate::aws::regional::{self, regional_columns, RegionCall, Regional, RegionalTable};
use crate::plugin::{
    BoxError, ColumnType as T, GetRequest, Hydrate, ItemSink, KeyColumn, ListRequest, QualMap,
    QualValue, Timestamp, Value,
};

/// One instance, with the region it came from and the connection's identity.
pub type Ec2Instance = Regional<Instance>;

/// `arn:…:ec2:<region>:<account>:instance/<id>`.
fn arn(x: &Ec2Instance) -> Option<String> {
    x.instance_id
        .as_ref()
        .map(|id| x.arn("ec2", &format!("instance/{id}")))
}

/// The 18 optional List key columns and the DescribeInstances filter each becomes.
pub const LIST_FILTERS: [(&str, &str); 18] = [
    ("hypervisor", "hypervisor"),
    ("iam_instance_profile_arn", "iam-instance-profile.arn"),
    ("image_id", "image-id"),
    ("instance_lifecycle", "instance-lifecycle"),
    ("instance_state", "instance-state-name"),
    ("instance_type", "instance-type"),
    ("monitoring_state", "monitoring-state"),
    ("outpost_arn", "outpost-arn"),
    ("placement_availability_zone", "availability-zone"),
    ("placement_group_name", "placement-group-name"),
    ("public_dns_name", "dns-name"),
    ("ram_disk_id", "ramdisk-id"),
    ("root_device_name", "root-device-name"),
    ("root_device_type", "root-device-type"),
    ("subnet_id", "subnet-id"),
    ("placement_tenancy", "tenancy"),
    ("virtualization_type", "virtualization-type"),
    ("vpc_id", "vpc-id"),
];

/// Error codes a Get ignores (the id lives in another region, or is malformed).
const GET_IGNORED: [&str; 3] = [
    "InvalidInstanceID.NotFound",
    "InvalidInstanceID.Unavailable",
    "InvalidInstanceID.Malformed",
];

/// `state_transition_time`: the time inside the reason's parentheses for a
/// stopped/stopping/shutting-down/terminated instance, else the launch time.
pub fn state_transition_time(i: &Instance) -> Option<Timestamp> {
    let state = i
        .state
        .as_ref()
        .and_then(|s| s.name.as_ref())
        .map(|n| n.as_str());
    let reason = i.state_transition_reason.as_deref().unwrap_or("");
    if !reason.is_empty()
        && matches!(
            state,
            Some("shutting-down" | "stopped" | "stopping" | "terminated")
        )
    {
        if let Some(t) = reason_time(reason) {
            return Some(t);
        }
        tracing::debug!("no time in state transition reason {reason:?}; using the launch time");
    }
    i.launch_time.as_ref().and_then(common::timestamp)
}

fn reason_time(reason: &str) -> Option<Timestamp> {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| regex::Regex::new(r"\((.*?) *\)").expect("regex"));
    let inner = re.captures(reason)?.get(1)?.as_str();
    // AWS writes "GMT"; moto writes "UTC". Both mean Z.
    let text = inner
        .replacen(' ', "T", 1)
        .replace(" GMT", "Z")
        .replace(" UTC", "Z");
    let dt =
        aws_smithy_types::DateTime::from_str(&text, aws_smithy_types::date_time::Format::DateTime)
            .ok()?;
    common::timestamp(&dt)
}

/// `user_data`: base64-decoded; NULL if it is not base64; the original text if
/// the bytes are not UTF-8; otherwise without non-printable characters
/// (newlines included), as the Go plugin cleans it.
pub fn decode_user_data(b64: &str) -> Option<String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(_) => return Some(b64.to_string()),
    };
    Some(text.chars().filter(|c| is_print(*c)).collect())
}

/// Go's `unicode.IsPrint`, as the cleaning uses it: graphic characters and the
/// ASCII space; no controls, no other spaces, no format characters.
fn is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    !matches!(
        c,
        '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}'
            | '\u{feff}'
    )
}

/// The DescribeInstances filters for the `=` quals on the List key columns.
pub fn filters(quals: &QualMap) -> Vec<Filter> {
    LIST_FILTERS
        .iter()
        .filter_map(|(column, name)| {
            let v = quals.equals(column)?.as_str()?;
            Some(Filter::builder().name(*name).values(v).build())
        })
        .collect()
}

/// `MaxResults` for a pushed-down limit: the limit, kept within 5..1000.
pub fn max_results(limit: Option<u64>) -> i32 {
    regional::page_size(limit, 5, 1000)
}

async fn list_instances(
    req: ListRequest<AwsConnection>,
    sink: ItemSink<Ec2Instance>,
) -> Result<(), BoxError> {
    let filters = filters(&req.quals);
    let filters = (!filters.is_empty()).then_some(filters);
    let page_size = max_results(req.limit);
    regional::list(req, sink, "DescribeInstances", &[], move |c, token| {
        let filters = filters.clone();
        async move {
            let o = (c.ec2().await.describe_instances())
                .set_filters(filters)
                .max_results(page_size)
                .set_next_token(token)
                .send()
                .await?;
            let instances = (o.reservations.unwrap_or_default().into_iter())
                .flat_map(|r| r.instances.unwrap_or_default())
                .collect();
            Ok((instances, o.next_token))
        }
    })
    .await
}

async fn get_instance(req: GetRequest<AwsConnection>) -> Result<Option<Ec2Instance>, BoxError> {
    let id = match req.quals.equals("instance_id") {
        Some(QualValue::String(id)) => id.clone(),
        other => {
            return Err(format!(
                "instance_id must be a string, got {}",
                QualValue::describe(other)
            )
            .into())
        }
    };
    regional::get(req, "DescribeInstances", &GET_IGNORED, |c| {
        let id = id.clone();
        async move {
            let o = c
                .ec2()
                .await
                .describe_instances()
                .instance_ids(id)
                .send()
                .await?;
            Ok((o.reservations.unwrap_or_default().into_iter())
                .flat_map(|r| r.instances.unwrap_or_default())
                .next())
        }
    })
    .await
}

/// What one DescribeInstanceAttribute call returned; `None` when its error
/// was ignored.
type Attr = Option<DescribeInstanceAttributeOutput>;

/// Declares the hydrate that reads attribute `name` of an instance.
fn attribute(
    t: &mut RegionalTable<Instance>,
    hydrate: &'static str,
    name: InstanceAttributeName,
) -> Hydrate<Attr> {
    let h = t.hydrate(hydrate, move |req, x: Arc<Ec2Instance>| {
        let name = name.clone();
        async move {
            let c = RegionCall::of(&req, &x);
            let Some(id) = x.instance_id.clone() else {
                return Ok(None);
            };
            let out = (c.ec2().await.describe_instance_attribute())
                .instance_id(id)
                .attribute(name)
                .send()
                .await;
            c.answer("DescribeInstanceAttribute", &[], out)
        }
    });
    t.hydrate_tags(&h, &tags("DescribeInstanceAttribute"));
    h
}

/// The rate-limiter tags of turbot's plugin for an EC2 call.
fn tags(action: &'static str) -> [(&'static str, &'static str); 2] {
    [("service", "ec2"), ("action", action)]
}

/// The table.
pub fn table() -> RegionalTable<Instance> {
    let mut t = RegionalTable::<Instance>::new("aws_ec2_instance", "AWS EC2 Instance");
    use InstanceAttributeName as A;
    let termination = attribute(
        &mut t,
        "getInstanceDisableAPITerminationData",
        A::DisableApiTermination,
    );
    let shutdown = attribute(
        &mut t,
        "getInstanceInitiatedShutdownBehavior",
        A::InstanceInitiatedShutdownBehavior,
    );
    let kernel = attribute(&mut t, "getInstanceKernelID", A::Kernel);
    let ramdisk = attribute(&mut t, "getInstanceRAMDiskID", A::Ramdisk);
    let sriov = attribute(&mut t, "getInstanceSriovNetSupport", A::SriovNetSupport);
    let user_data = attribute(&mut t, "getInstanceUserData", A::UserData);
    let template_data = t.hydrate(
        "getEc2LaunchTemplateData",
        |req, x: Arc<Ec2Instance>| async move {
            let c = RegionCall::of(&req, &x);
            let Some(id) = x.instance_id.clone() else {
                return Ok(None);
            };
            let out = c
                .ec2()
                .await
                .get_launch_template_data()
                .instance_id(id)
                .send()
                .await;
            Ok(c.answer("GetLaunchTemplateData", &[], out)?.and_then(|o| {
                o.launch_template_data
                    .as_ref()
                    .map(j::response_launch_template_data)
            }))
        },
    );
    let status = t.hydrate("getInstanceStatus", |req, x: Arc<Ec2Instance>| async move {
        let c = RegionCall::of(&req, &x);
        let Some(id) = x.instance_id.clone() else {
            return Ok(None);
        };
        let out = (c.ec2().await.describe_instance_status())
            .instance_ids(id)
            .include_all_instances(true)
            .send()
            .await;
        Ok(c.answer("DescribeInstanceStatus", &[], out)?
            .and_then(|o| o.instance_statuses?.first().map(j::instance_status)))
    });
    t.hydrate_tags(&template_data, &tags("GetLaunchTemplateData"));
    t.hydrate_tags(&status, &tags("DescribeInstanceStatus"));
    t.column("instance_id", T::String, "The ID of the instance.", |x| {
        s(&x.instance_id)
    });
    t.column(
        "arn",
        T::String,
        "The Amazon Resource Name (ARN) specifying the instance.",
        |x| Value::from(arn(x)),
    )
    .reports_hydrate("getEc2InstanceARN");
    t.column("instance_type", T::String, "The instance type.", |x| {
        e(x.instance_type.as_ref())
    });
    t.column(
        "instance_state",
        T::String,
        "The state of the instance (pending | running | shutting-down | terminated | \
         stopping | stopped).",
        |x| {
            x.state
                .as_ref()
                .map(|st| e(st.name.as_ref()))
                .unwrap_or(Value::Null)
        },
    );
    t.column(
        "monitoring_state",
        T::String,
        "Indicates whether detailed monitoring is enabled (disabled | enabled).",
        |x| {
            x.monitoring
                .as_ref()
                .map(|m| e(m.state.as_ref()))
                .unwrap_or(Value::Null)
        },
    );
    t.hydrated_column(
        "disable_api_termination",
        T::Bool,
        "If the value is true, instance can't be terminated through the Amazon EC2 \
         console, CLI, or API.",
        termination,
        |_, o| {
            // Default false, as the Go plugin declares it.
            Value::Bool(
                o.as_ref()
                    .and_then(|o| o.disable_api_termination.as_ref())
                    .and_then(|v| v.value)
                    .unwrap_or(false),
            )
        },
    )
    .default_value(false);
    t.column(
        "ami_launch_index",
        T::Int,
        "The AMI launch index, which can be used to find this instance in the launch \
         group.",
        |x| int(x.ami_launch_index),
    );
    t.column(
        "architecture",
        T::String,
        "The architecture of the image.",
        |x| e(x.architecture.as_ref()),
    );
    t.column(
        "boot_mode",
        T::String,
        "The boot mode of the instance.",
        |x| e(x.boot_mode.as_ref()),
    );
    t.column(
        "current_instance_boot_mode",
        T::String,
        "The boot mode that is used to boot the instance at launch or start.",
        |x| e(x.current_instance_boot_mode.as_ref()),
    );
    t.column(
        "ipv6_address",
        T::String,
        "The IPv6 address assigned to the instance.",
        |x| s(&x.ipv6_address),
    );
    t.column(
        "capacity_reservation_id",
        T::String,
        "The ID of the Capacity Reservation.",
        |x| s(&x.capacity_reservation_id),
    );
    t.column(
        "capacity_reservation_specification",
        T::Json,
        "Information about the Capacity Reservation targeting option.",
        |x| {
            json_or_null(
                &x.capacity_reservation_specification,
                j::write_capacity_reservation_specification_response,
            )
        },
    );
    t.column(
        "client_token",
        T::String,
        "The idempotency token you provided when you launched the instance, if \
         applicable.",
        |x| s(&x.client_token),
    );
    t.column(
        "cpu_options_core_count",
        T::Int,
        "The number of CPU cores for the instance.",
        |x| int(x.cpu_options.as_ref().and_then(|c| c.core_count)),
    );
    t.column(
        "cpu_options_threads_per_core",
        T::Int,
        "The number of threads per CPU core.",
        |x| int(x.cpu_options.as_ref().and_then(|c| c.threads_per_core)),
    );
    t.column(
        "ebs_optimized",
        T::Bool,
        "Indicates whether the instance is optimized for Amazon EBS I/O. This \
         optimization provides dedicated throughput to Amazon EBS and an optimized \
         configuration stack to provide optimal I/O performance. This optimization \
         isn't available with all instance types.",
        |x| Value::from(x.ebs_optimized),
    );
    t.column(
        "ena_support",
        T::Bool,
        "Specifies whether enhanced networking with ENA is enabled.",
        |x| Value::from(x.ena_support),
    );
    t.column(
        "hypervisor",
        T::String,
        "The hypervisor type of the instance. The value xen is used for both Xen and \
         Nitro hypervisors.",
        |x| e(x.hypervisor.as_ref()),
    );
    t.column(
        "iam_instance_profile_arn",
        T::String,
        "The Amazon Resource Name (ARN) of IAM instance profile associated with the \
         instance, if applicable.",
        |x| Value::from(x.iam_instance_profile.as_ref().and_then(|p| p.arn.clone())),
    );
    t.column(
        "iam_instance_profile_id",
        T::String,
        "The ID of the instance profile associated with the instance, if applicable.",
        |x| Value::from(x.iam_instance_profile.as_ref().and_then(|p| p.id.clone())),
    );
    t.column(
        "image_id",
        T::String,
        "The ID of the AMI used to launch the instance.",
        |x| s(&x.image_id),
    );
    t.hydrated_column(
        "instance_initiated_shutdown_behavior",
        T::String,
        "Indicates whether an instance stops or terminates when you initiate shutdown \
         from the instance (using the operating system command for system shutdown).",
        shutdown,
        |_, o| {
            Value::from(
                o.as_ref()
                    .and_then(|o| o.instance_initiated_shutdown_behavior.as_ref())
                    .and_then(|v| v.value.clone()),
            )
        },
    );
    t.column(
        "instance_lifecycle",
        T::String,
        "Indicates whether this is a spot instance or a scheduled instance.",
        |x| e(x.instance_lifecycle.as_ref()),
    );
    t.hydrated_column("kernel_id", T::String, "The kernel ID", kernel, |_, o| {
        Value::from(
            o.as_ref()
                .and_then(|o| o.kernel_id.as_ref())
                .and_then(|v| v.value.clone()),
        )
    });
    t.column(
        "key_name",
        T::String,
        "The name of the key pair, if this instance was launched with an associated key \
         pair.",
        |x| s(&x.key_name),
    );
    t.column(
        "launch_time",
        T::Timestamp,
        "The time the instance was launched.",
        |x| ts(&x.launch_time),
    );
    t.column(
        "outpost_arn",
        T::String,
        "The Amazon Resource Name (ARN) of the Outpost, if applicable.",
        |x| s(&x.outpost_arn),
    );
    t.column(
        "placement_affinity",
        T::String,
        "The affinity setting for the instance on the Dedicated Host.",
        |x| Value::from(x.placement.as_ref().and_then(|p| p.affinity.clone())),
    );
    t.column(
        "placement_availability_zone",
        T::String,
        "The Availability Zone of the instance.",
        |x| {
            Value::from(
                x.placement
                    .as_ref()
                    .and_then(|p| p.availability_zone.clone()),
            )
        },
    );
    t.column(
        "placement_group_id",
        T::String,
        "The ID of the placement group that the instance is in.",
        |x| Value::from(x.placement.as_ref().and_then(|p| p.group_id.clone())),
    );
    t.column(
        "placement_group_name",
        T::String,
        "The name of the placement group the instance is in.",
        |x| Value::from(x.placement.as_ref().and_then(|p| p.group_name.clone())),
    );
    t.column(
        "placement_host_id",
        T::String,
        "The ID of the Dedicated Host on which the instance resides.",
        |x| Value::from(x.placement.as_ref().and_then(|p| p.host_id.clone())),
    );
    t.column(
        "placement_host_resource_group_arn",
        T::String,
        "The ARN of the host resource group in which to launch the instances.",
        |x| {
            Value::from(
                x.placement
                    .as_ref()
                    .and_then(|p| p.host_resource_group_arn.clone()),
            )
        },
    );
    t.column(
        "placement_partition_number",
        T::Int,
        "The ARN of the host resource group in which to launch the instances.",
        |x| int(x.placement.as_ref().and_then(|p| p.partition_number)),
    );
    t.column(
        "placement_tenancy",
        T::String,
        "The tenancy of the instance (if the instance is running in a VPC). An instance \
         with a tenancy of dedicated runs on single-tenant hardware.",
        |x| {
            x.placement
                .as_ref()
                .map(|p| e(p.tenancy.as_ref()))
                .unwrap_or(Value::Null)
        },
    );
    t.column(
        "platform",
        T::String,
        "The value is 'Windows' for Windows instances; otherwise blank.",
        |x| e(x.platform.as_ref()),
    );
    t.column(
        "platform_details",
        T::String,
        "The platform details value for the instance.",
        |x| s(&x.platform_details),
    );
    t.column(
        "private_ip_address",
        T::IpAddr,
        "The private IPv4 address assigned to the instance.",
        |x| s(&x.private_ip_address),
    );
    t.column(
        "private_dns_name",
        T::String,
        "The private DNS hostname name assigned to the instance. This DNS hostname can \
         only be used inside the Amazon EC2 network. This name is not available until \
         the instance enters the running state.",
        |x| s(&x.private_dns_name),
    );
    t.column(
        "public_dns_name",
        T::String,
        "The public DNS name assigned to the instance. This name is not available until \
         the instance enters the running state.",
        |x| s(&x.public_dns_name),
    );
    t.column(
        "public_ip_address",
        T::IpAddr,
        "The public IPv4 address, or the Carrier IP address assigned to the instance, \
         if applicable.",
        |x| s(&x.public_ip_address),
    );
    t.hydrated_column(
        "ram_disk_id",
        T::String,
        "The RAM disk ID.",
        ramdisk,
        |_, o| {
            Value::from(
                o.as_ref()
                    .and_then(|o| o.ramdisk_id.as_ref())
                    .and_then(|v| v.value.clone()),
            )
        },
    );
    t.column(
        "root_device_name",
        T::String,
        "The device name of the root device volume (for example, /dev/sda1).",
        |x| s(&x.root_device_name),
    );
    t.column(
        "root_device_type",
        T::String,
        "The root device type used by the AMI. The AMI can use an EBS volume or an \
         instance store volume.",
        |x| e(x.root_device_type.as_ref()),
    );
    t.column(
        "source_dest_check",
        T::Bool,
        "Specifies whether to enable an instance launched in a VPC to perform NAT. This \
         controls whether source/destination checking is enabled on the instance.",
        |x| Value::from(x.source_dest_check),
    );
    t.column(
        "spot_instance_request_id",
        T::String,
        "If the request is a Spot Instance request, the ID of the request.",
        |x| s(&x.spot_instance_request_id),
    );
    t.hydrated_column(
        "sriov_net_support",
        T::String,
        "Indicates whether enhanced networking with the Intel 82599 Virtual Function \
         interface is enabled.",
        sriov,
        |_, o| {
            Value::from(
                o.as_ref()
                    .and_then(|o| o.sriov_net_support.as_ref())
                    .and_then(|v| v.value.clone()),
            )
        },
    );
    t.column(
        "state_code",
        T::Int,
        "The reason code for the state change.",
        |x| int(x.state.as_ref().and_then(|st| st.code)),
    );
    t.column(
        "state_transition_reason",
        T::String,
        "The reason for the most recent state transition.",
        |x| s(&x.state_transition_reason),
    );
    t.column(
        "state_transition_time",
        T::Timestamp,
        "The date and time, the instance state was last modified.",
        |x| Value::from(state_transition_time(x)),
    );
    t.column(
        "subnet_id",
        T::String,
        "The ID of the subnet in which the instance is running.",
        |x| s(&x.subnet_id),
    );
    t.column(
        "tpm_support",
        T::String,
        "If the instance is configured for NitroTPM support, the value is v2.0.",
        |x| s(&x.tpm_support),
    );
    t.column(
        "usage_operation",
        T::String,
        "The usage operation value for the instance.",
        |x| s(&x.usage_operation),
    );
    t.column(
        "usage_operation_update_time",
        T::String,
        "The time that the usage operation was last updated.",
        |x| {
            Value::from(
                x.usage_operation_update_time
                    .as_ref()
                    .and_then(common::rfc3339),
            )
        },
    );
    t.hydrated_column(
        "user_data",
        T::String,
        "The user data of the instance.",
        user_data,
        |_, o| {
            // No user data decodes as "": the Go plugin's transform runs on a nil value too.
            Value::from(decode_user_data(
                o.as_ref()
                    .and_then(|o| o.user_data.as_ref())
                    .and_then(|v| v.value.as_deref())
                    .unwrap_or(""),
            ))
        },
    );
    t.column(
        "virtualization_type",
        T::String,
        "The virtualization type of the instance.",
        |x| e(x.virtualization_type.as_ref()),
    );
    t.column(
        "vpc_id",
        T::String,
        "The ID of the VPC in which the instance is running.",
        |x| s(&x.vpc_id),
    );
    t.column(
        "block_device_mappings",
        T::Json,
        "Block device mapping entries for the instance.",
        |x| {
            list(
                &x.block_device_mappings,
                j::write_instance_block_device_mapping,
            )
        },
    );
    t.column(
        "elastic_gpu_associations",
        T::Json,
        "The Elastic GPU associated with the instance.",
        |x| {
            list(
                &x.elastic_gpu_associations,
                j::write_elastic_gpu_association,
            )
        },
    );
    t.column(
        "elastic_inference_accelerator_associations",
        T::Json,
        "The elastic inference accelerator associated with the instance.",
        |x| {
            list(
                &x.elastic_inference_accelerator_associations,
                j::write_elastic_inference_accelerator_association,
            )
        },
    );
    t.column(
        "enclave_options",
        T::Json,
        "Indicates whether the instance is enabled for Amazon Web Services Nitro \
         Enclaves.",
        |x| json_or_null(&x.enclave_options, j::write_enclave_options),
    );
    t.column(
        "hibernation_options",
        T::Json,
        "Indicates whether the instance is enabled for hibernation.",
        |x| json_or_null(&x.hibernation_options, j::write_hibernation_options),
    );
    t.column(
        "state_reason",
        T::Json,
        "The reason for the most recent state transition.",
        |x| json_or_null(&x.state_reason, j::write_state_reason),
    );
    t.hydrated_column(
        "launch_template_data",
        T::Json,
        "The configuration data of the specified instance.",
        template_data,
        |_, o| o.clone().map(Value::Json).unwrap_or(Value::Null),
    );
    t.column(
        "licenses",
        T::Json,
        "The license configurations for the instance.",
        |x| list(&x.licenses, j::write_license_configuration),
    );
    t.column(
        "maintenance_options",
        T::Json,
        "The metadata options for the instance.",
        |x| {
            json_or_null(
                &x.maintenance_options,
                j::write_instance_maintenance_options,
            )
        },
    );
    t.column(
        "metadata_options",
        T::Json,
        "The metadata options for the instance.",
        |x| {
            json_or_null(
                &x.metadata_options,
                j::write_instance_metadata_options_response,
            )
        },
    );
    t.column(
        "network_interfaces",
        T::Json,
        "The network interfaces for the instance.",
        |x| list(&x.network_interfaces, j::write_instance_network_interface),
    );
    t.column(
        "private_dns_name_options",
        T::Json,
        "The options for the instance hostname.",
        |x| {
            json_or_null(
                &x.private_dns_name_options,
                j::write_private_dns_name_options_response,
            )
        },
    );
    t.column(
        "product_codes",
        T::Json,
        "The product codes attached to this instance, if applicable.",
        |x| list(&x.product_codes, j::write_product_code),
    );
    t.column(
        "security_groups",
        T::Json,
        "The security groups for the instance.",
        |x| list(&x.security_groups, j::write_group_identifier),
    );
    t.hydrated_column(
        "instance_status",
        T::Json,
        "The status of an instance. Instance status includes scheduled events, status \
         checks and instance state information.",
        status,
        |_, o| o.clone().map(Value::Json).unwrap_or(Value::Null),
    );
    t.column(
        "tags_src",
        T::Json,
        "A list of tags assigned to the instance.",
        |x| list(&x.tags, j::write_tag),
    );
    t.column("title", T::String, regional::TITLE, |x| {
        Value::from(common::title(x.tags.as_deref(), x.instance_id.as_deref()))
    });
    t.column("tags", T::Json, regional::TAGS, |x| {
        Value::Json(common::tags_map(x.tags.as_deref()))
    });
    t.column(
        "akas",
        T::Json,
        "Array of globally unique identifier strings (also known as) for the resource.",
        |x| common::akas(arn(x)),
    )
    .reports_hydrate("getEc2InstanceARN");
    regional_columns(&mut t);
    t.get(vec![KeyColumn::required("instance_id")], get_instance);
    t.get_tags("getEc2Instance", &tags("DescribeInstances"));
    t.list_tags("listEc2Instance", &tags("DescribeInstances"));
    let list_keys = LIST_FILTERS.iter().map(|(c, _)| KeyColumn::optional(c));
    t.list(list_keys.collect(), list_instances)
        // One page of instances may wait while the next page is fetched.
        .read_ahead(max_results(None) as usize);
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_data_is_decoded_and_cleaned_as_the_go_plugin_does() {
        use base64::Engine;
        let b64 =
            base64::engine::general_purpose::STANDARD.encode("#!/bin/bash\necho hi\tthere\r\n");
        assert_eq!(
            decode_user_data(&b64).as_deref(),
            Some("#!/bin/bashecho hithere")
        );
        assert_eq!(decode_user_data("not base64!"), None);
        let binary = base64::engine::general_purpose::STANDARD.encode([0xff, 0xfe, 0x00]);
        assert_eq!(decode_user_data(&binary), Some(binary.clone()));
    }

    #[test]
    fn state_transition_time_reads_the_reason_of_a_stopped_instance() {
        use aws_sdk_ec2::types::{InstanceState, InstanceStateName};
        let launch = aws_smithy_types::DateTime::from_secs(1_600_000_000);
        let mut i = Instance::builder()
            .state(
                InstanceState::builder()
                    .name(InstanceStateName::Stopped)
                    .code(80)
                    .build(),
            )
            .state_transition_reason("User initiated (2019-09-12 16:38:34 GMT)")
            .launch_time(launch)
            .build();
        assert_eq!(state_transition_time(&i), Timestamp::new(1_568_306_314, 0));
        i.state_transition_reason = Some("User initiated (2019-09-12 16:38:35 UTC)".into());
        assert_eq!(state_transition_time(&i), Timestamp::new(1_568_306_315, 0));
        i.state = Some(
            InstanceState::builder()
                .name(InstanceStateName::Running)
                .code(16)
                .build(),
        );
        assert_eq!(state_transition_time(&i), Timestamp::new(1_600_000_000, 0));
    }

    #[test]
    fn max_results_is_the_limit_clamped_to_5_through_1000() {
        assert_eq!(max_results(None), 1000);
        assert_eq!(max_results(Some(1)), 5);
        assert_eq!(max_results(Some(42)), 42);
        assert_eq!(max_results(Some(5000)), 1000);
    }

    #[test]
    fn the_table_declares_80_columns_in_the_go_plugins_order() {
        use crate::plugin::TableDef;
        let t = table();
        t.validate().unwrap();
        let schema = TableDef::schema(&t);
        assert_eq!(schema.columns.len(), 83);
        assert_eq!(schema.columns[0].name, "instance_id");
        assert_eq!(schema.columns[67].name, "metadata_options");
        assert_eq!(schema.columns[79].name, "account_id");
        assert_eq!(schema.list_call_key_column_list.len(), 18);
    }
}
