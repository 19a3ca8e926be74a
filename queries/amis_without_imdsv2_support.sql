-- Which of the account's AMIs do not set ImdsSupport = v2.0, and how many live
-- instances run them? An instance launched from an AMI with ImdsSupport v2.0
-- requires IMDSv2 unless its launch parameters, its template or the region's
-- account default say otherwise.
select
  a.image_id,
  a.name,
  a.account_id,
  a.region,
  a.imds_support,
  count(i.instance_id) as live_instances
from
  aws_ec2_ami as a
  left join aws_ec2_instance as i
    on i.image_id = a.image_id
    and i.account_id = a.account_id
    and i.region = a.region
    and i.instance_state <> 'terminated'
where
  a.imds_support is distinct from 'v2.0'
group by
  a.image_id,
  a.name,
  a.account_id,
  a.region,
  a.imds_support
order by
  live_instances desc,
  a.account_id,
  a.region,
  a.image_id;
