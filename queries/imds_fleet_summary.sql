-- What is the IMDS posture of the fleet, account by account and region by
-- region: how many instances require IMDSv2, still allow IMDSv1, have a
-- pending change, have the endpoint disabled, or report no options at all?
select
  account_id,
  region,
  count(*) as instances,
  count(*) filter (where metadata_options ->> 'HttpTokens' = 'required' and metadata_options ->> 'State' = 'applied') as imdsv2_required,
  count(*) filter (where metadata_options ->> 'HttpTokens' = 'optional') as imdsv1_allowed,
  count(*) filter (where metadata_options ->> 'State' = 'pending') as change_pending,
  count(*) filter (where metadata_options ->> 'HttpEndpoint' = 'disabled') as endpoint_disabled,
  count(*) filter (where metadata_options is null) as no_metadata_options
from
  aws_ec2_instance
where
  instance_state <> 'terminated'
group by
  account_id,
  region
order by
  account_id,
  region;
