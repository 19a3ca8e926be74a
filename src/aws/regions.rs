//! Which regions a connection's queries cover: the `regions` patterns matched
//! against the account's enabled regions (DescribeRegions, memoized per
//! connection), or the partition's known regions when that call fails; and the
//! default region's precedence.

/// The regions of each partition, used when DescribeRegions cannot be called.
const PARTITION_REGIONS: &[(&str, &[&str])] = &[
    (
        "aws",
        &[
            "af-south-1",
            "ap-east-1",
            "ap-east-2",
            "ap-northeast-1",
            "ap-northeast-2",
            "ap-northeast-3",
            "ap-south-1",
            "ap-south-2",
            "ap-southeast-1",
            "ap-southeast-2",
            "ap-southeast-3",
            "ap-southeast-4",
            "ap-southeast-5",
            "ap-southeast-6",
            "ap-southeast-7",
            "ca-central-1",
            "ca-west-1",
            "eu-central-1",
            "eu-central-2",
            "eu-north-1",
            "eu-south-1",
            "eu-south-2",
            "eu-west-1",
            "eu-west-2",
            "eu-west-3",
            "il-central-1",
            "me-central-1",
            "me-south-1",
            "mx-central-1",
            "sa-east-1",
            "us-east-1",
            "us-east-2",
            "us-west-1",
            "us-west-2",
        ],
    ),
    ("aws-cn", &["cn-north-1", "cn-northwest-1"]),
    ("aws-us-gov", &["us-gov-east-1", "us-gov-west-1"]),
    ("aws-iso", &["us-iso-east-1", "us-iso-west-1"]),
    ("aws-iso-b", &["us-isob-east-1"]),
];

/// The partition a region name belongs to.
pub fn partition_of(region: &str) -> &'static str {
    if region.starts_with("us-gov") {
        "aws-us-gov"
    } else if region.starts_with("cn") {
        "aws-cn"
    } else if region.starts_with("us-isob") {
        "aws-iso-b"
    } else if region.starts_with("us-iso") {
        "aws-iso"
    } else {
        "aws"
    }
}

/// The known regions of `partition`.
pub fn partition_regions(partition: &str) -> Vec<String> {
    PARTITION_REGIONS
        .iter()
        .find(|(p, _)| *p == partition)
        .map(|(_, rs)| rs.iter().map(|r| r.to_string()).collect())
        .unwrap_or_default()
}

/// The region a partition falls back to.
fn last_resort_region(partition: &str) -> &'static str {
    match partition {
        "aws-cn" => "cn-northwest-1",
        "aws-us-gov" => "us-gov-west-1",
        "aws-iso" => "us-iso-east-1",
        "aws-iso-b" => "us-isob-east-1",
        _ => "us-east-1",
    }
}

/// The default region: `default_region`, else the SDK-resolved region (env or
/// profile) unless it is `us-east-1`, else the last-resort region of the
/// partition the `regions` patterns point at, else `us-east-1`.
pub fn default_region(
    configured: Option<&str>,
    resolved: Option<&str>,
    patterns: Option<&[String]>,
) -> String {
    if let Some(r) = configured {
        return r.to_string();
    }
    if let Some(r) = resolved.filter(|r| *r != "us-east-1" && !r.is_empty()) {
        return r.to_string();
    }
    if let Some(first) = patterns.and_then(|p| p.iter().find(|p| !p.starts_with('*'))) {
        return last_resort_region(partition_of(first)).to_string();
    }
    "us-east-1".to_string()
}

/// The active regions matching any pattern, sorted and de-duplicated.
pub fn matching(active: &[String], patterns: &[String]) -> Vec<String> {
    let globs: Vec<glob::Pattern> = patterns
        .iter()
        .filter_map(|p| glob::Pattern::new(p).ok())
        .collect();
    let mut out: Vec<String> = active
        .iter()
        .filter(|r| globs.iter().any(|g| g.matches(r)))
        .cloned()
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_select_among_the_active_regions() {
        let active: Vec<String> = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            matching(
                &active,
                &["eu-*".into(), "us-??st-1".into(), "eu-west-1".into()]
            ),
            ["eu-central-1", "eu-west-1", "us-east-1"]
        );
        assert_eq!(matching(&active, &["*".into()]).len(), 4);
        assert!(matching(&active, &["ap-*".into()]).is_empty());
    }

    #[test]
    fn default_region_precedence() {
        assert_eq!(
            default_region(Some("eu-west-2"), Some("us-west-2"), None),
            "eu-west-2"
        );
        assert_eq!(default_region(None, Some("us-west-2"), None), "us-west-2");
        assert_eq!(
            default_region(None, Some("us-east-1"), Some(&["cn-*".into()])),
            "cn-northwest-1"
        );
        assert_eq!(
            default_region(None, None, Some(&["us-gov-west-1".into()])),
            "us-gov-west-1"
        );
        assert_eq!(default_region(None, None, None), "us-east-1");
    }
}
