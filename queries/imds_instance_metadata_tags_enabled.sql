-- Which instances expose their tags through the instance metadata service?
-- Anything that can read IMDS on them can then read every tag value.
select
  instance_id,
  title,
  account_id,
  region,
  tags
from
  aws_ec2_instance
where
  metadata_options ->> 'InstanceMetadataTags' = 'enabled'
order by
  instance_id;
