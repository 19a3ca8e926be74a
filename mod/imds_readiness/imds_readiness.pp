# IMDSv2 readiness: OUR ADDITION to turbot's AWS Compliance mod (not generated
# by tools/gen_mod.py, which leaves this directory alone). Upstream's controls
# say which instances *allow* IMDSv1; these say which of them still *use* it,
# from the CloudWatch metric MetadataNoToken (table
# aws_ec2_instance_metadata_usage), so that requiring IMDSv2 breaks nothing.
# The SQL runs unchanged on PostgreSQL (Steampipe) and SQLite (`check`).

variable "imds_readiness_days" {
  type        = number
  description = "The number of whole days (before today) of MetadataNoToken data an instance needs, all of them zero, to be safe to switch to IMDSv2. The usage table reads the last 14 days unless a query asks for more, so values above 14 find no instance safe."
  default     = 14
}

locals {
  imds_readiness_common_tags = merge(local.aws_compliance_common_tags, {
    service        = "AWS/EC2"
    imds_readiness = "true"
  })

  # Every instance that is not terminated, with its readiness: required,
  # refused (required, but IMDSv1 calls were refused in the window:
  # MetadataNoTokenRejected), disabled (no IMDS at all), in_use (IMDSv1 calls in the window), safe
  # (a zero MetadataNoToken datapoint on each of the N whole days and none
  # today), no_data, or partial (zeros on only some days).
  imds_readiness_instances_sql = <<-EOQ
    with usage as (
      select
        u.instance_id,
        u.region,
        u.account_id,
        count(case when u.days_ago between 1 and ${var.imds_readiness_days} and u.metadata_no_token is not null then 1 end) as days_with_data,
        count(case when u.days_ago between 0 and ${var.imds_readiness_days} and u.has_data then 1 end) as any_data,
        coalesce(sum(case when u.days_ago between 0 and ${var.imds_readiness_days} then u.metadata_no_token end), 0) as calls,
        max(case when u.days_ago between 0 and ${var.imds_readiness_days} and u.metadata_no_token > 0 then u.timestamp end) as last_call,
        coalesce(sum(case when u.days_ago between 0 and ${var.imds_readiness_days} then u.metadata_no_token_rejected end), 0) as refused,
        max(case when u.days_ago between 0 and ${var.imds_readiness_days} and u.metadata_no_token_rejected > 0 then u.timestamp end) as last_refused
      from
        aws_ec2_instance_metadata_usage as u
      group by
        u.instance_id,
        u.region,
        u.account_id
    ),
    instances as (
      select
        i.arn,
        i.instance_id,
        i.title,
        i.tags,
        i.partition,
        i.region,
        i.account_id,
        case
          when i.metadata_options ->> 'HttpTokens' = 'required' and coalesce(u.refused, 0) > 0 then 'refused'
          when i.metadata_options ->> 'HttpTokens' = 'required' then 'required'
          when i.metadata_options ->> 'HttpEndpoint' = 'disabled' then 'disabled'
          when coalesce(u.calls, 0) > 0 then 'in_use'
          when coalesce(u.days_with_data, 0) >= ${var.imds_readiness_days} then 'safe'
          when coalesce(u.any_data, 0) = 0 then 'no_data'
          else 'partial'
        end as readiness,
        cast(coalesce(u.calls, 0) as bigint) as calls,
        coalesce(u.days_with_data, 0) as days_with_data,
        substr(cast(u.last_call as text), 1, 10) as last_call,
        cast(coalesce(u.refused, 0) as bigint) as refused,
        substr(cast(u.last_refused as text), 1, 10) as last_refused
      from
        aws_ec2_instance as i
        left join usage as u on u.instance_id = i.instance_id and u.region = i.region and u.account_id = i.account_id
      where
        i.instance_state not in ('terminated', 'shutting-down')
    )
  EOQ
}

benchmark "imds_readiness" {
  title         = "IMDSv2 Readiness"
  description   = "Which instances that allow IMDSv1 still use it (CloudWatch MetadataNoToken), which are safe to switch to IMDSv2, and the region defaults, launch templates and AMIs that let new instances allow IMDSv1. An addition of this plugin to the AWS Compliance mod; it reads CloudWatch, so `check` runs it only when named."
  documentation = file("./imds_readiness/docs/imds_readiness_overview.md")
  children = [
    control.imds_readiness_posture_summary,
    control.imds_readiness_instance,
    control.imds_readiness_region_default,
    control.imds_readiness_launch_template,
    control.imds_readiness_ami
  ]

  tags = merge(local.imds_readiness_common_tags, {
    type = "Benchmark"
  })
}

control "imds_readiness_instance" {
  title         = "EC2 instances that allow IMDSv1 should be switched to IMDSv2 once they make no IMDSv1 calls"
  description   = "Per instance: ok when it requires IMDSv2 (or has IMDS turned off), info when it does but MetadataNoTokenRejected shows refused IMDSv1 calls; alarm 'safe to enforce' when it allows IMDSv1 but MetadataNoToken was 0 on every one of the last N days; alarm 'in use' with the number of IMDSv1 calls and the last day; info when there is no or only partial data (stopped, or not monitored)."
  documentation = file("./imds_readiness/docs/imds_readiness_instance.md")
  query         = query.imds_readiness_instance
  severity      = "high"

  tags = local.imds_readiness_common_tags
}

control "imds_readiness_region_default" {
  title         = "Each region's instance metadata default should require IMDSv2"
  description   = "Per region: ok when GetInstanceMetadataDefaults says new instances require IMDSv2 (HttpTokens = required); info when a declarative policy owns the default; alarm otherwise (optional or never set)."
  documentation = file("./imds_readiness/docs/imds_readiness_region_default.md")
  query         = query.imds_readiness_region_default
  severity      = "medium"

  tags = local.imds_readiness_common_tags
}

control "imds_readiness_launch_template" {
  title         = "The default version of each launch template should require IMDSv2, itself or through the region default"
  description   = "Per launch template (default version): ok when it sets HttpTokens = required, or sets none and the region default requires IMDSv2; alarm otherwise."
  documentation = file("./imds_readiness/docs/imds_readiness_launch_template.md")
  query         = query.imds_readiness_launch_template
  severity      = "medium"

  tags = local.imds_readiness_common_tags
}

control "imds_readiness_ami" {
  title         = "AMIs owned by the account should be registered with ImdsSupport v2.0"
  description   = "Per AMI of the account: ok when imds_support = 'v2.0' (instances launched from it require IMDSv2 unless told otherwise); info when it is not but the region default requires IMDSv2; alarm otherwise."
  documentation = file("./imds_readiness/docs/imds_readiness_ami.md")
  query         = query.imds_readiness_ami
  severity      = "low"

  tags = local.imds_readiness_common_tags
}

control "imds_readiness_posture_summary" {
  title         = "IMDSv2 posture per region"
  description   = "Per account and region with instances: how many require IMDSv2, are safe to switch, still use IMDSv1, or have no full data, and the region default. ok when every instance requires IMDSv2 (or has IMDS off), info otherwise."
  documentation = file("./imds_readiness/docs/imds_readiness_posture_summary.md")
  query         = query.imds_readiness_posture_summary

  tags = local.imds_readiness_common_tags
}

query "imds_readiness_instance" {
  sql = <<-EOQ
    ${local.imds_readiness_instances_sql}
    select
      arn as resource,
      case
        when readiness in ('required', 'disabled') then 'ok'
        when readiness in ('safe', 'in_use') then 'alarm'
        else 'info'
      end as status,
      case readiness
        when 'required' then title || ' requires IMDSv2.'
        when 'refused' then title || ' requires IMDSv2, but ' || refused || ' IMDSv1 calls were refused in ${var.imds_readiness_days} days, last on ' || last_refused || ': something on it still calls IMDSv1.'
        when 'disabled' then title || ' has the instance metadata service turned off.'
        when 'safe' then title || ' allows IMDSv1; safe to enforce: 0 IMDSv1 calls in ${var.imds_readiness_days} days.'
        when 'in_use' then title || ' allows IMDSv1; in use: ' || calls || ' IMDSv1 calls in ${var.imds_readiness_days} days, last on ' || last_call || '.'
        when 'no_data' then title || ' allows IMDSv1; no MetadataNoToken data in ${var.imds_readiness_days} days (stopped, or not monitored).'
        else title || ' allows IMDSv1; MetadataNoToken data on only ' || days_with_data || ' of ${var.imds_readiness_days} days: not proven safe.'
      end as reason,
      case
        when readiness = 'refused' then refused
        when readiness in ('required', 'disabled') then null
        else calls
      end as imdsv1_calls,
      case readiness
        when 'refused' then 'find the caller (AWS IMDS Packet Analyzer) and update it; to roll back meanwhile: aws ec2 modify-instance-metadata-options --region ' || region || ' --instance-id ' || instance_id || ' --http-tokens optional'
        when 'safe' then 'aws ec2 modify-instance-metadata-options --region ' || region || ' --instance-id ' || instance_id || ' --http-tokens required'
        when 'in_use' then 'update the software making IMDSv1 calls first (AWS IMDS Packet Analyzer finds it), then: aws ec2 modify-instance-metadata-options --region ' || region || ' --instance-id ' || instance_id || ' --http-tokens required'
        else null
      end as remediation
      ${local.tag_dimensions_sql}
      ${local.common_dimensions_sql}
    from
      instances;
  EOQ
}

query "imds_readiness_region_default" {
  sql = <<-EOQ
    select
      'arn:' || partition || ':ec2:' || region || ':' || account_id || ':account' as resource,
      case
        when http_tokens = 'required' then 'ok'
        when managed_by = 'declarative-policy' then 'info'
        else 'alarm'
      end as status,
      case
        when http_tokens = 'required' then region || ': new instances require IMDSv2 by default (hop limit ' || coalesce(cast(http_put_response_hop_limit as text), 'not set') || ').'
        when managed_by = 'declarative-policy' then region || ': the default (' || coalesce(http_tokens, 'no preference') || ') is set by a declarative policy.'
        else region || ': new instances allow IMDSv1 by default (http_tokens ' || coalesce(http_tokens, 'not set') || ').'
      end as reason,
      case
        when http_tokens = 'required' or managed_by = 'declarative-policy' then null
        else 'aws ec2 modify-instance-metadata-defaults --region ' || region || ' --http-tokens required --http-put-response-hop-limit 2'
      end as remediation
      ${local.common_dimensions_sql}
    from
      aws_ec2_instance_metadata_defaults;
  EOQ
}

query "imds_readiness_launch_template" {
  sql = <<-EOQ
    select
      v.launch_template_id as resource,
      case
        when v.launch_template_data -> 'MetadataOptions' ->> 'HttpTokens' = 'required' then 'ok'
        when v.launch_template_data -> 'MetadataOptions' ->> 'HttpTokens' is null and d.http_tokens = 'required' then 'ok'
        else 'alarm'
      end as status,
      case
        when v.launch_template_data -> 'MetadataOptions' ->> 'HttpTokens' = 'required' then v.title || ' version ' || v.version_number || ' requires IMDSv2.'
        when v.launch_template_data -> 'MetadataOptions' ->> 'HttpTokens' is null and d.http_tokens = 'required' then v.title || ' version ' || v.version_number || ' sets no HttpTokens; the region default requires IMDSv2.'
        when v.launch_template_data -> 'MetadataOptions' ->> 'HttpTokens' is null then v.title || ' version ' || v.version_number || ' sets no HttpTokens and the region default does not require IMDSv2.'
        else v.title || ' version ' || v.version_number || ' allows IMDSv1 (HttpTokens ' || (v.launch_template_data -> 'MetadataOptions' ->> 'HttpTokens') || ').'
      end as reason,
      case
        when v.launch_template_data -> 'MetadataOptions' ->> 'HttpTokens' = 'required' then null
        when v.launch_template_data -> 'MetadataOptions' ->> 'HttpTokens' is null and d.http_tokens = 'required' then null
        else 'aws ec2 create-launch-template-version --region ' || v.region || ' --launch-template-id ' || v.launch_template_id || ' --source-version ' || v.version_number || ' --launch-template-data ''{"MetadataOptions":{"HttpTokens":"required","HttpEndpoint":"enabled"}}'' and make it the default: aws ec2 modify-launch-template --region ' || v.region || ' --launch-template-id ' || v.launch_template_id || ' --default-version <the new version>'
      end as remediation
      ${replace(local.common_dimensions_qualifier_sql, "__QUALIFIER__", "v.")}
    from
      aws_ec2_launch_template_version as v
      left join aws_ec2_instance_metadata_defaults as d on d.region = v.region and d.account_id = v.account_id
    where
      v.default_version;
  EOQ
}

query "imds_readiness_ami" {
  sql = <<-EOQ
    select
      'arn:' || a.partition || ':ec2:' || a.region || ':' || a.account_id || ':image/' || a.image_id as resource,
      case
        when a.imds_support = 'v2.0' then 'ok'
        when d.http_tokens = 'required' then 'info'
        else 'alarm'
      end as status,
      case
        when a.imds_support = 'v2.0' then a.title || ' is registered with ImdsSupport v2.0.'
        when d.http_tokens = 'required' then a.title || ' has no ImdsSupport v2.0; the region default requires IMDSv2.'
        else a.title || ' has no ImdsSupport v2.0: instances launched from it allow IMDSv1 unless their launch parameters require tokens.'
      end as reason,
      case
        when a.imds_support = 'v2.0' then null
        else 'aws ec2 modify-image-attribute --region ' || a.region || ' --image-id ' || a.image_id || ' --imds-support v2.0'
      end as remediation
      ${replace(local.common_dimensions_qualifier_sql, "__QUALIFIER__", "a.")}
    from
      aws_ec2_ami as a
      left join aws_ec2_instance_metadata_defaults as d on d.region = a.region and d.account_id = a.account_id;
  EOQ
}

query "imds_readiness_posture_summary" {
  sql = <<-EOQ
    ${local.imds_readiness_instances_sql}
    select
      'arn:' || partition || ':ec2:' || region || ':' || account_id || ':account' as resource,
      case
        when count(*) = sum(case when readiness in ('required', 'disabled') then 1 else 0 end) then 'ok'
        else 'info'
      end as status,
      region || ': ' || count(*) || case when count(*) = 1 then ' instance: ' else ' instances: ' end
        || sum(case when readiness in ('required', 'refused', 'disabled') then 1 else 0 end) || ' require IMDSv2 (' || sum(case when readiness = 'refused' then 1 else 0 end) || ' with refused IMDSv1 calls), '
        || sum(case when readiness = 'safe' then 1 else 0 end) || ' safe to enforce, '
        || sum(case when readiness = 'in_use' then 1 else 0 end) || ' still use IMDSv1, '
        || sum(case when readiness in ('no_data', 'partial') then 1 else 0 end) || ' without ${var.imds_readiness_days} days of data.' as reason
      ${local.common_dimensions_sql}
    from
      instances
    group by
      partition,
      region,
      account_id;
  EOQ
}
