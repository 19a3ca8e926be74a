-- Which instances were launched from a launch template version that still
-- allows IMDSv1? Fixing the instance is not enough: the next instance that
-- version launches (an Auto Scaling group scaling out, a replacement) allows
-- IMDSv1 again. EC2 tags an instance launched from a template with the
-- template's id and version. (An unset HttpTokens comes as '' or NULL, as
-- turbot's plugin gives it.)
select
  i.instance_id,
  i.account_id,
  i.region,
  v.launch_template_id,
  v.launch_template_name,
  v.version_number,
  v.default_version,
  coalesce(nullif(v.launch_template_data -> 'MetadataOptions' ->> 'HttpTokens', ''), 'not set') as template_http_tokens,
  i.metadata_options ->> 'HttpTokens' as instance_http_tokens
from
  aws_ec2_instance as i
  join aws_ec2_launch_template_version as v
    on v.launch_template_id = i.tags ->> 'aws:ec2launchtemplate:id'
    and v.version_number::text = i.tags ->> 'aws:ec2launchtemplate:version'
    and v.account_id = i.account_id
    and v.region = i.region
where
  i.instance_state <> 'terminated'
  and (v.launch_template_data -> 'MetadataOptions' ->> 'HttpTokens') is distinct from 'required'
order by
  i.account_id,
  i.region,
  i.instance_id;
