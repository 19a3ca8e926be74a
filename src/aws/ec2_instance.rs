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

use aws_sdk_ec2::types::{Filter, Instance, InstanceAttributeName};
use futures::StreamExt;
use serde_json::Value as Json;

use crate::aws::common::{self, CallerIdentity};
use crate::aws::config::AwsConnection;
use crate::aws::ec2_json as j;
use crate::aws::errors::AwsError;
use crate::plugin::{
    BoxError, ColumnType as T, KeyColumn, QualMap, QualValue, Table, Timestamp, Value,
};

/// One instance, with the region and account it came from.
pub struct Ec2Instance {
    /// the DescribeInstances item
    pub instance: Instance,
    /// the region it was listed in
    pub region: String,
    /// the connection's caller identity
    pub identity: Arc<CallerIdentity>,
}

impl Ec2Instance {
    fn arn(&self) -> Option<String> {
        self.instance.instance_id.as_ref().map(|id| {
            format!(
                "arn:{}:ec2:{}:{}:instance/{id}",
                self.identity.partition, self.region, self.identity.account_id
            )
        })
    }
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

fn s(v: &Option<String>) -> Value {
    Value::from(v.as_deref())
}

/// A Go value-type enum: `""` when AWS leaves it out.
fn e<E: AsRef<str>>(v: Option<&E>) -> Value {
    Value::String(v.map(|x| x.as_ref().to_string()).unwrap_or_default())
}

fn int(v: Option<i32>) -> Value {
    v.map(|i| Value::Int(i as i64)).unwrap_or(Value::Null)
}

fn json_or_null<X>(v: &Option<X>, write: impl Fn(&X, &mut Vec<u8>)) -> Value {
    match v {
        None => Value::Null,
        Some(x) => {
            let mut out = Vec::with_capacity(128);
            write(x, &mut out);
            Value::RawJson(out)
        }
    }
}

/// A list member: absent is JSON `null` (not SQL NULL), as the Go SDK
/// marshals a nil slice.
fn list<X>(v: &Option<Vec<X>>, write: impl Fn(&X, &mut Vec<u8>)) -> Value {
    match v {
        None => Value::RawJson(b"null".to_vec()),
        Some(xs) => {
            let mut out = Vec::with_capacity(2 + 256 * xs.len());
            out.push(b'[');
            for (i, x) in xs.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(x, &mut out);
            }
            out.push(b']');
            Value::RawJson(out)
        }
    }
}

fn ts(v: &Option<aws_smithy_types::DateTime>) -> Value {
    v.as_ref()
        .and_then(common::timestamp)
        .map(Value::Timestamp)
        .unwrap_or(Value::Null)
}

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
    !matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{feff}')
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
    limit.map(|l| l.clamp(5, 1000) as i32).unwrap_or(1000)
}

/// The queried regions, pruned by `region` quals (`=` or IN).
async fn regions_for(conn: &AwsConnection, all_quals: &QualMap) -> Vec<String> {
    let regions = conn.query_regions().await;
    match all_quals.equal_values("region") {
        None => regions.as_ref().clone(),
        Some(wanted) => {
            let wanted: Vec<&str> = wanted.iter().filter_map(|v| v.as_str()).collect();
            regions
                .iter()
                .filter(|r| wanted.contains(&r.as_str()))
                .cloned()
                .collect()
        }
    }
}

async fn list_instances(
    req: crate::plugin::ListRequest<AwsConnection>,
    sink: crate::plugin::ItemSink<Ec2Instance>,
) -> Result<(), BoxError> {
    let conn = req.connection.clone();
    conn.usable()?;
    let identity = conn.identity().await?;
    let regions = regions_for(&conn, &req.all_quals).await;
    let filters = filters(&req.quals);
    let page_size = max_results(req.limit);
    tracing::debug!(
        connection = req.connection_name,
        regions = regions.len(),
        filters = filters.len(),
        page_size,
        "DescribeInstances"
    );
    let runs = regions.into_iter().map(|region| {
        let conn = conn.clone();
        let sink = sink.clone();
        let filters = filters.clone();
        let identity = identity.clone();
        async move {
            let client = conn.ec2(&region).await;
            let mut pages = client
                .describe_instances()
                .set_filters((!filters.is_empty()).then_some(filters))
                .max_results(page_size)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = match page {
                    Ok(p) => p,
                    Err(err) => {
                        let err = AwsError::from_sdk("DescribeInstances", &region, err);
                        if err.is_ignored(&conn, &[]) {
                            tracing::debug!("ignored: {err}");
                            return Ok(());
                        }
                        return Err(BoxError::from(err));
                    }
                };
                for reservation in page.reservations.unwrap_or_default() {
                    for instance in reservation.instances.unwrap_or_default() {
                        sink.push(Ec2Instance {
                            instance,
                            region: region.clone(),
                            identity: identity.clone(),
                        })
                        .await?;
                    }
                }
                // A pushed-down limit met: no further page (as the Go SDK's
                // RowsRemaining check).
                if !sink.wants_more().await {
                    break;
                }
            }
            Ok::<(), BoxError>(())
        }
    });
    let mut runs = futures::stream::iter(runs).buffer_unordered(32);
    while let Some(r) = runs.next().await {
        r?;
    }
    Ok(())
}

async fn get_instance(
    req: crate::plugin::GetRequest<AwsConnection>,
) -> Result<Option<Ec2Instance>, BoxError> {
    let id = match req.quals.equals("instance_id") {
        Some(QualValue::String(id)) => id.clone(),
        other => return Err(format!("instance_id must be a string, got {other:?}").into()),
    };
    let conn = req.connection.clone();
    conn.usable()?;
    let identity = conn.identity().await?;
    let regions = regions_for(&conn, &req.all_quals).await;
    let lookups = regions.into_iter().map(|region| {
        let conn = conn.clone();
        let id = id.clone();
        async move {
            let out = conn
                .ec2(&region)
                .await
                .describe_instances()
                .instance_ids(id)
                .send()
                .await;
            match out {
                Ok(o) => Ok(o
                    .reservations
                    .unwrap_or_default()
                    .into_iter()
                    .flat_map(|r| r.instances.unwrap_or_default())
                    .next()
                    .map(|i| (i, region))),
                Err(err) => AwsError::from_sdk("DescribeInstances", &region, err)
                    .ignored_or(&conn, &GET_IGNORED),
            }
        }
    });
    let mut lookups = futures::stream::iter(lookups).buffer_unordered(32);
    while let Some(r) = lookups.next().await {
        if let Some((instance, region)) = r? {
            return Ok(Some(Ec2Instance {
                instance,
                region,
                identity,
            }));
        }
    }
    Ok(None)
}

/// The output of one hydrate call; `None` when its error was ignored.
type Attr =
    Option<aws_sdk_ec2::operation::describe_instance_attribute::DescribeInstanceAttributeOutput>;

async fn attribute(
    conn: Arc<AwsConnection>,
    item: Arc<Ec2Instance>,
    name: InstanceAttributeName,
) -> Result<Attr, BoxError> {
    let Some(id) = item.instance.instance_id.clone() else {
        return Ok(None);
    };
    match conn
        .ec2(&item.region)
        .await
        .describe_instance_attribute()
        .instance_id(id)
        .attribute(name)
        .send()
        .await
    {
        Ok(o) => Ok(Some(o)),
        Err(err) => Ok(
            AwsError::from_sdk("DescribeInstanceAttribute", &item.region, err)
                .ignored_or(&conn, &[])?,
        ),
    }
}

fn attr_value<'a>(
    h: &'a crate::plugin::Hydrated,
    name: &str,
) -> Option<&'a aws_sdk_ec2::operation::describe_instance_attribute::DescribeInstanceAttributeOutput>
{
    h.get::<Attr>(name).and_then(|a| a.as_ref())
}

macro_rules! attribute_hydrate {
    ($table:expr, $name:literal, $attr:expr) => {
        $table.hydrate($name, |req, item: Arc<Ec2Instance>| {
            attribute(req.connection, item, $attr)
        })
    };
}

/// The table.
pub fn table() -> Table<AwsConnection, Ec2Instance> {
    let t = Table::<AwsConnection, Ec2Instance>::new("aws_ec2_instance", "AWS EC2 Instance")
        .column("instance_id", T::String, "The ID of the instance.", |x: &Ec2Instance| s(&x.instance.instance_id))
        .column("arn", T::String, "The Amazon Resource Name (ARN) specifying the instance.", |x: &Ec2Instance| Value::from(x.arn()))
        .reports_hydrate("getEc2InstanceARN")
        .column("instance_type", T::String, "The instance type.", |x: &Ec2Instance| e(x.instance.instance_type.as_ref()))
        .column("instance_state", T::String, "The state of the instance (pending | running | shutting-down | terminated | stopping | stopped).", |x: &Ec2Instance| {
            x.instance.state.as_ref().map(|st| e(st.name.as_ref())).unwrap_or(Value::Null)
        })
        .column("monitoring_state", T::String, "Indicates whether detailed monitoring is enabled (disabled | enabled).", |x: &Ec2Instance| {
            x.instance.monitoring.as_ref().map(|m| e(m.state.as_ref())).unwrap_or(Value::Null)
        })
        .hydrated_column("disable_api_termination", T::Bool, "If the value is true, instance can't be terminated through the Amazon EC2 console, CLI, or API.", "getInstanceDisableAPITerminationData", |_x: &Ec2Instance, h| {
            // Default false, as the Go plugin declares it.
            Value::Bool(attr_value(h, "getInstanceDisableAPITerminationData").and_then(|o| o.disable_api_termination.as_ref()).and_then(|v| v.value).unwrap_or(false))
        })
        .default_value(false)
        .column("ami_launch_index", T::Int, "The AMI launch index, which can be used to find this instance in the launch group.", |x: &Ec2Instance| int(x.instance.ami_launch_index))
        .column("architecture", T::String, "The architecture of the image.", |x: &Ec2Instance| e(x.instance.architecture.as_ref()))
        .column("boot_mode", T::String, "The boot mode of the instance.", |x: &Ec2Instance| e(x.instance.boot_mode.as_ref()))
        .column("current_instance_boot_mode", T::String, "The boot mode that is used to boot the instance at launch or start.", |x: &Ec2Instance| e(x.instance.current_instance_boot_mode.as_ref()))
        .column("ipv6_address", T::String, "The IPv6 address assigned to the instance.", |x: &Ec2Instance| s(&x.instance.ipv6_address))
        .column("capacity_reservation_id", T::String, "The ID of the Capacity Reservation.", |x: &Ec2Instance| s(&x.instance.capacity_reservation_id))
        .column("capacity_reservation_specification", T::Json, "Information about the Capacity Reservation targeting option.", |x: &Ec2Instance| json_or_null(&x.instance.capacity_reservation_specification, j::write_capacity_reservation_specification_response))
        .column("client_token", T::String, "The idempotency token you provided when you launched the instance, if applicable.", |x: &Ec2Instance| s(&x.instance.client_token))
        .column("cpu_options_core_count", T::Int, "The number of CPU cores for the instance.", |x: &Ec2Instance| int(x.instance.cpu_options.as_ref().and_then(|c| c.core_count)))
        .column("cpu_options_threads_per_core", T::Int, "The number of threads per CPU core.", |x: &Ec2Instance| int(x.instance.cpu_options.as_ref().and_then(|c| c.threads_per_core)))
        .column("ebs_optimized", T::Bool, "Indicates whether the instance is optimized for Amazon EBS I/O. This optimization provides dedicated throughput to Amazon EBS and an optimized configuration stack to provide optimal I/O performance. This optimization isn't available with all instance types.", |x: &Ec2Instance| Value::from(x.instance.ebs_optimized))
        .column("ena_support", T::Bool, "Specifies whether enhanced networking with ENA is enabled.", |x: &Ec2Instance| Value::from(x.instance.ena_support))
        .column("hypervisor", T::String, "The hypervisor type of the instance. The value xen is used for both Xen and Nitro hypervisors.", |x: &Ec2Instance| e(x.instance.hypervisor.as_ref()))
        .column("iam_instance_profile_arn", T::String, "The Amazon Resource Name (ARN) of IAM instance profile associated with the instance, if applicable.", |x: &Ec2Instance| Value::from(x.instance.iam_instance_profile.as_ref().and_then(|p| p.arn.clone())))
        .column("iam_instance_profile_id", T::String, "The ID of the instance profile associated with the instance, if applicable.", |x: &Ec2Instance| Value::from(x.instance.iam_instance_profile.as_ref().and_then(|p| p.id.clone())))
        .column("image_id", T::String, "The ID of the AMI used to launch the instance.", |x: &Ec2Instance| s(&x.instance.image_id))
        .hydrated_column("instance_initiated_shutdown_behavior", T::String, "Indicates whether an instance stops or terminates when you initiate shutdown from the instance (using the operating system command for system shutdown).", "getInstanceInitiatedShutdownBehavior", |_x: &Ec2Instance, h| {
            Value::from(attr_value(h, "getInstanceInitiatedShutdownBehavior").and_then(|o| o.instance_initiated_shutdown_behavior.as_ref()).and_then(|v| v.value.clone()))
        })
        .column("instance_lifecycle", T::String, "Indicates whether this is a spot instance or a scheduled instance.", |x: &Ec2Instance| e(x.instance.instance_lifecycle.as_ref()))
        .hydrated_column("kernel_id", T::String, "The kernel ID", "getInstanceKernelID", |_x: &Ec2Instance, h| {
            Value::from(attr_value(h, "getInstanceKernelID").and_then(|o| o.kernel_id.as_ref()).and_then(|v| v.value.clone()))
        })
        .column("key_name", T::String, "The name of the key pair, if this instance was launched with an associated key pair.", |x: &Ec2Instance| s(&x.instance.key_name))
        .column("launch_time", T::Timestamp, "The time the instance was launched.", |x: &Ec2Instance| ts(&x.instance.launch_time))
        .column("outpost_arn", T::String, "The Amazon Resource Name (ARN) of the Outpost, if applicable.", |x: &Ec2Instance| s(&x.instance.outpost_arn))
        .column("placement_affinity", T::String, "The affinity setting for the instance on the Dedicated Host.", |x: &Ec2Instance| Value::from(x.instance.placement.as_ref().and_then(|p| p.affinity.clone())))
        .column("placement_availability_zone", T::String, "The Availability Zone of the instance.", |x: &Ec2Instance| Value::from(x.instance.placement.as_ref().and_then(|p| p.availability_zone.clone())))
        .column("placement_group_id", T::String, "The ID of the placement group that the instance is in.", |x: &Ec2Instance| Value::from(x.instance.placement.as_ref().and_then(|p| p.group_id.clone())))
        .column("placement_group_name", T::String, "The name of the placement group the instance is in.", |x: &Ec2Instance| Value::from(x.instance.placement.as_ref().and_then(|p| p.group_name.clone())))
        .column("placement_host_id", T::String, "The ID of the Dedicated Host on which the instance resides.", |x: &Ec2Instance| Value::from(x.instance.placement.as_ref().and_then(|p| p.host_id.clone())))
        .column("placement_host_resource_group_arn", T::String, "The ARN of the host resource group in which to launch the instances.", |x: &Ec2Instance| Value::from(x.instance.placement.as_ref().and_then(|p| p.host_resource_group_arn.clone())))
        .column("placement_partition_number", T::Int, "The ARN of the host resource group in which to launch the instances.", |x: &Ec2Instance| int(x.instance.placement.as_ref().and_then(|p| p.partition_number)))
        .column("placement_tenancy", T::String, "The tenancy of the instance (if the instance is running in a VPC). An instance with a tenancy of dedicated runs on single-tenant hardware.", |x: &Ec2Instance| {
            x.instance.placement.as_ref().map(|p| e(p.tenancy.as_ref())).unwrap_or(Value::Null)
        })
        .column("platform", T::String, "The value is 'Windows' for Windows instances; otherwise blank.", |x: &Ec2Instance| e(x.instance.platform.as_ref()))
        .column("platform_details", T::String, "The platform details value for the instance.", |x: &Ec2Instance| s(&x.instance.platform_details))
        .column("private_ip_address", T::IpAddr, "The private IPv4 address assigned to the instance.", |x: &Ec2Instance| s(&x.instance.private_ip_address))
        .column("private_dns_name", T::String, "The private DNS hostname name assigned to the instance. This DNS hostname can only be used inside the Amazon EC2 network. This name is not available until the instance enters the running state.", |x: &Ec2Instance| s(&x.instance.private_dns_name))
        .column("public_dns_name", T::String, "The public DNS name assigned to the instance. This name is not available until the instance enters the running state.", |x: &Ec2Instance| s(&x.instance.public_dns_name))
        .column("public_ip_address", T::IpAddr, "The public IPv4 address, or the Carrier IP address assigned to the instance, if applicable.", |x: &Ec2Instance| s(&x.instance.public_ip_address))
        .hydrated_column("ram_disk_id", T::String, "The RAM disk ID.", "getInstanceRAMDiskID", |_x: &Ec2Instance, h| {
            Value::from(attr_value(h, "getInstanceRAMDiskID").and_then(|o| o.ramdisk_id.as_ref()).and_then(|v| v.value.clone()))
        })
        .column("root_device_name", T::String, "The device name of the root device volume (for example, /dev/sda1).", |x: &Ec2Instance| s(&x.instance.root_device_name))
        .column("root_device_type", T::String, "The root device type used by the AMI. The AMI can use an EBS volume or an instance store volume.", |x: &Ec2Instance| e(x.instance.root_device_type.as_ref()))
        .column("source_dest_check", T::Bool, "Specifies whether to enable an instance launched in a VPC to perform NAT. This controls whether source/destination checking is enabled on the instance.", |x: &Ec2Instance| Value::from(x.instance.source_dest_check))
        .column("spot_instance_request_id", T::String, "If the request is a Spot Instance request, the ID of the request.", |x: &Ec2Instance| s(&x.instance.spot_instance_request_id))
        .hydrated_column("sriov_net_support", T::String, "Indicates whether enhanced networking with the Intel 82599 Virtual Function interface is enabled.", "getInstanceSriovNetSupport", |_x: &Ec2Instance, h| {
            Value::from(attr_value(h, "getInstanceSriovNetSupport").and_then(|o| o.sriov_net_support.as_ref()).and_then(|v| v.value.clone()))
        })
        .column("state_code", T::Int, "The reason code for the state change.", |x: &Ec2Instance| int(x.instance.state.as_ref().and_then(|st| st.code)))
        .column("state_transition_reason", T::String, "The reason for the most recent state transition.", |x: &Ec2Instance| s(&x.instance.state_transition_reason))
        .column("state_transition_time", T::Timestamp, "The date and time, the instance state was last modified.", |x: &Ec2Instance| Value::from(state_transition_time(&x.instance)))
        .column("subnet_id", T::String, "The ID of the subnet in which the instance is running.", |x: &Ec2Instance| s(&x.instance.subnet_id))
        .column("tpm_support", T::String, "If the instance is configured for NitroTPM support, the value is v2.0.", |x: &Ec2Instance| s(&x.instance.tpm_support))
        .column("usage_operation", T::String, "The usage operation value for the instance.", |x: &Ec2Instance| s(&x.instance.usage_operation))
        .column("usage_operation_update_time", T::String, "The time that the usage operation was last updated.", |x: &Ec2Instance| Value::from(x.instance.usage_operation_update_time.as_ref().and_then(common::rfc3339)))
        .hydrated_column("user_data", T::String, "The user data of the instance.", "getInstanceUserData", |_x: &Ec2Instance, h| {
            // No user data decodes as "": the Go plugin's transform runs on a nil value too.
            Value::from(decode_user_data(attr_value(h, "getInstanceUserData").and_then(|o| o.user_data.as_ref()).and_then(|v| v.value.as_deref()).unwrap_or("")))
        })
        .column("virtualization_type", T::String, "The virtualization type of the instance.", |x: &Ec2Instance| e(x.instance.virtualization_type.as_ref()))
        .column("vpc_id", T::String, "The ID of the VPC in which the instance is running.", |x: &Ec2Instance| s(&x.instance.vpc_id))
        .column("block_device_mappings", T::Json, "Block device mapping entries for the instance.", |x: &Ec2Instance| list(&x.instance.block_device_mappings, j::write_instance_block_device_mapping))
        .column("elastic_gpu_associations", T::Json, "The Elastic GPU associated with the instance.", |x: &Ec2Instance| list(&x.instance.elastic_gpu_associations, j::write_elastic_gpu_association))
        .column("elastic_inference_accelerator_associations", T::Json, "The elastic inference accelerator associated with the instance.", |x: &Ec2Instance| list(&x.instance.elastic_inference_accelerator_associations, j::write_elastic_inference_accelerator_association))
        .column("enclave_options", T::Json, "Indicates whether the instance is enabled for Amazon Web Services Nitro Enclaves.", |x: &Ec2Instance| json_or_null(&x.instance.enclave_options, j::write_enclave_options))
        .column("hibernation_options", T::Json, "Indicates whether the instance is enabled for hibernation.", |x: &Ec2Instance| json_or_null(&x.instance.hibernation_options, j::write_hibernation_options))
        .column("state_reason", T::Json, "The reason for the most recent state transition.", |x: &Ec2Instance| json_or_null(&x.instance.state_reason, j::write_state_reason))
        .hydrated_column("launch_template_data", T::Json, "The configuration data of the specified instance.", "getEc2LaunchTemplateData", |_x: &Ec2Instance, h| {
            h.get::<Option<Json>>("getEc2LaunchTemplateData").cloned().flatten().map(Value::Json).unwrap_or(Value::Null)
        })
        .column("licenses", T::Json, "The license configurations for the instance.", |x: &Ec2Instance| list(&x.instance.licenses, j::write_license_configuration))
        .column("maintenance_options", T::Json, "The metadata options for the instance.", |x: &Ec2Instance| json_or_null(&x.instance.maintenance_options, j::write_instance_maintenance_options))
        .column("metadata_options", T::Json, "The metadata options for the instance.", |x: &Ec2Instance| json_or_null(&x.instance.metadata_options, j::write_instance_metadata_options_response))
        .column("network_interfaces", T::Json, "The network interfaces for the instance.", |x: &Ec2Instance| list(&x.instance.network_interfaces, j::write_instance_network_interface))
        .column("private_dns_name_options", T::Json, "The options for the instance hostname.", |x: &Ec2Instance| json_or_null(&x.instance.private_dns_name_options, j::write_private_dns_name_options_response))
        .column("product_codes", T::Json, "The product codes attached to this instance, if applicable.", |x: &Ec2Instance| list(&x.instance.product_codes, j::write_product_code))
        .column("security_groups", T::Json, "The security groups for the instance.", |x: &Ec2Instance| list(&x.instance.security_groups, j::write_group_identifier))
        .hydrated_column("instance_status", T::Json, "The status of an instance. Instance status includes scheduled events, status checks and instance state information.", "getInstanceStatus", |_x: &Ec2Instance, h| {
            h.get::<Option<Json>>("getInstanceStatus").cloned().flatten().map(Value::Json).unwrap_or(Value::Null)
        })
        .column("tags_src", T::Json, "A list of tags assigned to the instance.", |x: &Ec2Instance| list(&x.instance.tags, j::write_tag))
        .column("title", T::String, "Title of the resource.", |x: &Ec2Instance| Value::from(common::title(x.instance.tags.as_deref(), x.instance.instance_id.as_deref())))
        .column("tags", T::Json, "A map of tags for the resource.", |x: &Ec2Instance| Value::Json(common::tags_map(x.instance.tags.as_deref())))
        .column("akas", T::Json, "Array of globally unique identifier strings (also known as) for the resource.", |x: &Ec2Instance| {
            x.arn().map(|a| Value::Json(Json::Array(vec![Json::String(a)]))).unwrap_or(Value::Null)
        })
        .reports_hydrate("getEc2InstanceARN")
        .column("partition", T::String, "The AWS partition in which the resource is located (aws, aws-cn, or aws-us-gov).", |x: &Ec2Instance| Value::from(x.identity.partition.clone()))
        .reports_hydrate("getCommonColumns")
        .column("region", T::String, "The AWS Region in which the resource is located.", |x: &Ec2Instance| Value::from(x.region.clone()))
        .reports_hydrate("getCommonColumns")
        .column("account_id", T::String, "The AWS Account ID in which the resource is located.", |x: &Ec2Instance| Value::from(x.identity.account_id.clone()))
        .reports_hydrate("getCommonColumns");

    let t = attribute_hydrate!(
        t,
        "getInstanceDisableAPITerminationData",
        InstanceAttributeName::DisableApiTermination
    );
    let t = attribute_hydrate!(
        t,
        "getInstanceInitiatedShutdownBehavior",
        InstanceAttributeName::InstanceInitiatedShutdownBehavior
    );
    let t = attribute_hydrate!(t, "getInstanceKernelID", InstanceAttributeName::Kernel);
    let t = attribute_hydrate!(t, "getInstanceRAMDiskID", InstanceAttributeName::Ramdisk);
    let t = attribute_hydrate!(
        t,
        "getInstanceSriovNetSupport",
        InstanceAttributeName::SriovNetSupport
    );
    let t = attribute_hydrate!(t, "getInstanceUserData", InstanceAttributeName::UserData);
    t.hydrate(
        "getEc2LaunchTemplateData",
        |req, item: Arc<Ec2Instance>| async move {
            let Some(id) = item.instance.instance_id.clone() else {
                return Ok::<Option<Json>, BoxError>(None);
            };
            match req
                .connection
                .ec2(&item.region)
                .await
                .get_launch_template_data()
                .instance_id(id)
                .send()
                .await
            {
                Ok(o) => Ok(o
                    .launch_template_data
                    .as_ref()
                    .map(j::response_launch_template_data)),
                Err(err) => Ok(
                    AwsError::from_sdk("GetLaunchTemplateData", &item.region, err)
                        .ignored_or(&req.connection, &[])?,
                ),
            }
        },
    )
    .hydrate(
        "getInstanceStatus",
        |req, item: Arc<Ec2Instance>| async move {
            let Some(id) = item.instance.instance_id.clone() else {
                return Ok::<Option<Json>, BoxError>(None);
            };
            match req
                .connection
                .ec2(&item.region)
                .await
                .describe_instance_status()
                .instance_ids(id)
                .include_all_instances(true)
                .send()
                .await
            {
                Ok(o) => Ok(o
                    .instance_statuses
                    .as_deref()
                    .and_then(|s| s.first())
                    .map(j::instance_status)),
                Err(err) => Ok(
                    AwsError::from_sdk("DescribeInstanceStatus", &item.region, err)
                        .ignored_or(&req.connection, &[])?,
                ),
            }
        },
    )
    .get(vec![KeyColumn::required("instance_id")], get_instance)
    .list(
        LIST_FILTERS
            .iter()
            .map(|(c, _)| KeyColumn::optional(c))
            .collect(),
        list_instances,
    )
    // One page of instances may wait while the next page is fetched.
    .read_ahead(max_results(None) as usize)
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
