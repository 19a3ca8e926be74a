mod "aws_compliance" {
  # Hub metadata
  title         = "AWS Compliance"
  description   = "Run the AWS Foundational Security Best Practices control for EC2 instance metadata (IMDSv2) across your AWS accounts and regions, with Powerpipe and Steampipe or with this plugin's own check command."
  color         = "#FF9900"
  documentation = file("./docs/index.md")
  icon          = "/images/mods/turbot/aws-compliance.svg"
  categories    = ["aws", "cis", "compliance", "pci dss", "public cloud", "security"]
  database      = var.database

  opengraph {
    title       = "Powerpipe Mod for AWS Compliance"
    description = "Check that EC2 instances require IMDSv2, as the AWS Foundational Security Best Practices control EC2.8 asks."
    image       = "/images/mods/turbot/aws-compliance-social-graphic.png"
  }

  require {
    plugin "aws" {
      min_version = "1.28.0"
    }
  }
}
