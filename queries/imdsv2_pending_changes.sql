-- Which instances have had their metadata options changed, but not yet
-- applied? The compliance control counts them as alarms until they are.
select
  instance_id,
  title,
  account_id,
  region,
  metadata_options ->> 'HttpTokens' as http_tokens,
  metadata_options ->> 'State' as state
from
  aws_ec2_instance
where
  metadata_options ->> 'State' = 'pending'
order by
  instance_id;
