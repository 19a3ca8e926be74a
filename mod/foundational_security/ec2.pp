locals {
  foundational_security_ec2_common_tags = merge(local.foundational_security_common_tags, {
    service = "AWS/EC2"
  })
}

benchmark "foundational_security_ec2" {
  title         = "EC2"
  documentation = file("./foundational_security/docs/foundational_security_ec2.md")
  children = [
    control.foundational_security_ec2_8
  ]

  tags = merge(local.foundational_security_ec2_common_tags, {
    type = "Benchmark"
  })
}

control "foundational_security_ec2_8" {
  title         = "8 EC2 instances should use IMDSv2"
  description   = "This control checks whether your EC2 instance metadata version is configured with Instance Metadata Service Version 2 (IMDSv2). The control passes if HttpTokens is set to required for IMDSv2. The control fails if HttpTokens is set to optional."
  severity      = "high"
  query         = query.ec2_instance_uses_imdsv2
  documentation = file("./foundational_security/docs/foundational_security_ec2_8.md")

  tags = merge(local.foundational_security_ec2_common_tags, {
    foundational_security_item_id  = "ec2_8"
    foundational_security_category = "network_security"
  })
}
