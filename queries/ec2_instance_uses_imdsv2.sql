-- The SQL of aws_compliance.control.foundational_security_ec2_8 (query.ec2_instance_uses_imdsv2)
-- rendered with the default dimensions (region, account_id): one row per instance, status ok or alarm.
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
  
  , region, account_id
from
  aws_ec2_instance;
