mod "aws_compliance" {
  # Hub metadata
  title         = "AWS Compliance"
  description   = "Run every AWS Compliance control about the EC2 instance metadata service (IMDSv2 on instances, launch templates and launch configurations, and the hop limit) across your AWS accounts and regions, with Powerpipe and Steampipe or with this plugin's own check command."
  color         = "#FF9900"
  documentation = file("./docs/index.md")
  icon          = "/images/mods/turbot/aws-compliance.svg"
  categories    = ["aws", "cis", "compliance", "pci dss", "public cloud", "security"]
  database      = var.database

  opengraph {
    title       = "Powerpipe Mod for AWS Compliance"
    description = "Check that EC2 instances, launch templates and launch configurations require IMDSv2, as AWS Foundational Security Best Practices, CIS, NIST, PCI DSS, HIPAA, FedRAMP, GxP and NYDFS ask."
    image       = "/images/mods/turbot/aws-compliance-social-graphic.png"
  }

  require {
    plugin "aws" {
      min_version = "1.28.0"
    }
  }
}
