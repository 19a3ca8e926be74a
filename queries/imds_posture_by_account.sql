-- The whole IMDS picture, account by account: how many instances, default
-- launch template versions, launch configurations and AMIs require IMDSv2,
-- out of how many. Each source is counted on its own and joined by account.
with instances as (
  select
    account_id,
    count(*) as total,
    count(*) filter (where metadata_options ->> 'HttpTokens' = 'required' and metadata_options ->> 'State' = 'applied') as imdsv2
  from
    aws_ec2_instance
  where
    instance_state <> 'terminated'
  group by
    account_id
), templates as (
  select
    account_id,
    count(*) as total,
    count(*) filter (where launch_template_data -> 'MetadataOptions' ->> 'HttpTokens' = 'required') as imdsv2
  from
    aws_ec2_launch_template_version
  where
    default_version
  group by
    account_id
), configurations as (
  select
    account_id,
    count(*) as total,
    count(*) filter (where metadata_options_http_tokens = 'required') as imdsv2
  from
    aws_ec2_launch_configuration
  group by
    account_id
), images as (
  select
    account_id,
    count(*) as total,
    count(*) filter (where imds_support = 'v2.0') as imdsv2
  from
    aws_ec2_ami
  group by
    account_id
), accounts as (
  select account_id from instances
  union select account_id from templates
  union select account_id from configurations
  union select account_id from images
)
select
  a.account_id,
  coalesce(i.imdsv2, 0) || ' / ' || coalesce(i.total, 0) as instances_imdsv2,
  coalesce(t.imdsv2, 0) || ' / ' || coalesce(t.total, 0) as default_template_versions_imdsv2,
  coalesce(c.imdsv2, 0) || ' / ' || coalesce(c.total, 0) as launch_configurations_imdsv2,
  coalesce(m.imdsv2, 0) || ' / ' || coalesce(m.total, 0) as amis_imdsv2
from
  accounts as a
  left join instances as i on i.account_id = a.account_id
  left join templates as t on t.account_id = a.account_id
  left join configurations as c on c.account_id = a.account_id
  left join images as m on m.account_id = a.account_id
order by
  a.account_id;
