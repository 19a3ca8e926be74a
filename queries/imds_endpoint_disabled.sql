-- Which instances have the metadata endpoint switched off entirely? They pass
-- no IMDS checks and fail none, but software on them cannot read its role
-- credentials from IMDS either.
select
  instance_id,
  title,
  account_id,
  region,
  metadata_options ->> 'HttpTokens' as http_tokens
from
  aws_ec2_instance
where
  metadata_options ->> 'HttpEndpoint' = 'disabled'
order by
  instance_id;
