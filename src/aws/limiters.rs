//! The rate limiters turbot's aws plugin v1.31.0 declares (`aws/plugin.go`,
//! `RateLimiters`): `GetRateLimiters` answers these, Steampipe lists them in
//! `steampipe_plugin_limiter`, and a user `limiter` block of the same name
//! replaces one. None matches a call of `aws_ec2_instance` (their `where`
//! names other services); they are here so that the plugin declares what
//! turbot's does, and apply as the tables of those services land.

use crate::plugin::limiter::Definition;

/// (name, fill_rate, bucket_size, max_concurrency, scope, where), in turbot's order.
type Def = (
    &'static str,
    f32,
    i64,
    i64,
    &'static [&'static str],
    &'static str,
);

const CRSA: &[&str] = &["connection", "region", "service", "action"];
const CSA: &[&str] = &["connection", "service", "action"];

#[rustfmt::skip]
const DEFINITIONS: &[Def] = &[
    ("aws_servicequotas_list_aws_default_service_quotas", 5.0, 5, 0, CRSA, "service = 'servicequotas' and action = 'ListAWSDefaultServiceQuotas'"),
    ("aws_servicequotas_list_service_quotas", 5.0, 5, 0, CRSA, "service = 'servicequotas' and action = 'ListServiceQuotas'"),
    ("aws_servicequotas_list_tags_for_resource", 5.0, 5, 0, CRSA, "service = 'servicequotas' and action = 'ListTagsForResource'"),
    ("aws_cloudfront", 5.0, 10, 10, &["connection", "service"], "service = 'cloudfront'"),
    ("aws_kinesis_list_streams_list_stream_consumers_list_tags_for_stream", 5.0, 5, 5, CSA, "service = 'kinesis' and action in ('ListStreamConsumers', 'ListStreams', 'ListTagsForStream')"),
    ("aws_kinesis_describe_stream", 10.0, 10, 10, CSA, "service = 'kinesis' and action in ('DescribeStream')"),
    ("aws_kinesis_describe_stream_summary", 20.0, 20, 20, CSA, "service = 'kinesis' and action in ('DescribeStreamSummary')"),
    ("aws_route53", 5.0, 10, 10, &["connection", "service"], "service = 'route53'"),
    ("aws_waf", 5.0, 10, 10, &["connection", "region", "service"], "service = 'waf'"),
    ("aws_wafv2", 5.0, 10, 10, &["connection", "region", "service"], "service = 'wafv2'"),
    ("aws_iam_policy_get_policy", 35.0, 35, 0, CSA, "service = 'iam' and action = 'GetPolicy'"),
    ("aws_iam_policy_get_policy_version", 35.0, 35, 0, CSA, "service = 'iam' and action = 'GetPolicyVersion'"),
    ("aws_iam_policy_list_entities_for_policy", 40.0, 40, 0, CSA, "service = 'iam' and action = 'ListEntitiesForPolicy'"),
    ("aws_iam_role_get_role", 15.0, 15, 0, CSA, "service = 'iam' and action = 'GetRole'"),
    ("aws_iam_role_list_instance_profiles_for_role", 15.0, 15, 0, CSA, "service = 'iam' and action = 'ListInstanceProfilesForRole'"),
    ("aws_iam_role_list_attached_role_policies", 15.0, 15, 0, CSA, "service = 'iam' and action = 'ListAttachedRolePolicies'"),
    ("aws_iam_role_list_role_policies", 15.0, 15, 0, CSA, "service = 'iam' and action = 'ListRolePolicies'"),
    ("aws_lambda_get_function", 100.0, 100, 0, CRSA, "service = 'lambda' and action = 'GetFunction'"),
    ("aws_lambda_get_policy", 15.0, 15, 0, CRSA, "service = 'lambda' and action = 'GetPolicy'"),
    ("aws_lambda_list_functions_and_get_function_url_config", 10.0, 10, 0, CRSA, "service = 'lambda' and action in ('ListFunctions', 'GetFunctionUrlConfig')"),
];

/// The plugin's rate limiter definitions. Panics on one that does not
/// parse: constants, a programming error `every_definition_parses` catches.
pub fn definitions() -> Vec<Definition> {
    DEFINITIONS
        .iter()
        .map(|(name, fill, bucket, conc, scope, w)| {
            Definition::new(name, *fill, *bucket, *conc, scope, w).unwrap_or_else(|e| panic!("{e}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_definition_parses() {
        assert_eq!(super::definitions().len(), 20);
    }
}
