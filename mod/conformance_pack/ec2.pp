query "ec2_instance_uses_imdsv2" {
  sql = <<-EOQ
    select
      arn as resource,
      case
        when metadata_options ->> 'HttpTokens' = 'required' and metadata_options ->> 'State' = 'applied' then 'ok'
        else 'alarm'
      end as status,
      case
        when metadata_options ->> 'HttpTokens' = 'required' and metadata_options ->> 'State' = 'applied' then title || ' configured to use Instance Metadata Service Version 2 (IMDSv2).'
        else title || ' not configured to use Instance Metadata Service Version 2 (IMDSv2).'
      end as reason
      ${local.tag_dimensions_sql}
      ${local.common_dimensions_sql}
    from
      aws_ec2_instance;
  EOQ
}
