-- Which instances let an IMDS token travel more than one network hop? A hop
-- limit above 1 lets containers (and anything one hop away) reach the
-- metadata service with a token.
select
  instance_id,
  title,
  account_id,
  region,
  (metadata_options ->> 'HttpPutResponseHopLimit')::int as hop_limit
from
  aws_ec2_instance
where
  (metadata_options ->> 'HttpPutResponseHopLimit')::int > 1
order by
  hop_limit desc,
  instance_id;
