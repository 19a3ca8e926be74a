locals {
  foundational_security_common_tags = merge(local.aws_compliance_common_tags, {
    aws_foundational_security = "true"
  })
}

benchmark "foundational_security" {
  title         = "AWS Foundational Security Best Practices"
  description   = "The AWS Foundational Security Best Practices standard is a set of controls that detect when your deployed accounts and resources deviate from security best practices."
  documentation = file("./foundational_security/docs/foundational_security_overview.md")
  children = [
    benchmark.foundational_security_ec2
  ]

  tags = merge(local.foundational_security_common_tags, {
    type = "Benchmark"
  })
}
