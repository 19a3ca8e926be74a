-- Which accounts and regions still have instances that accept IMDSv1
-- (HttpTokens optional), and how many? Terminated instances are left out.
select
  account_id,
  region,
  count(*) as imdsv1_instances
from
  aws_ec2_instance
where
  metadata_options ->> 'HttpTokens' = 'optional'
  and instance_state <> 'terminated'
group by
  account_id,
  region
order by
  imdsv1_instances desc,
  account_id,
  region;
