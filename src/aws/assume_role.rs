//! Profiles that assume a role (`role_arn` with `source_profile`), when the
//! connection sets `endpoint_url`.
//!
//! aws-config resolves such a profile itself, but its AssumeRole call goes
//! through an STS client built from the provider config
//! (`ProviderConfig::client_config`), which carries the region, retries and
//! the endpoints of the environment and profile files, not the loader's
//! `endpoint_url`. So with `endpoint_url` set (an emulator, a VPC endpoint,
//! a proxy) the role is assumed at `sts.<region>.amazonaws.com` anyway: an
//! emulator's roles fail, and a host with no route to AWS times out. Here the
//! chain of roles is read from the profile files and each role is assumed
//! with aws-config's own `AssumeRoleProvider`, configured with the
//! connection's `SdkConfig` (endpoint included); the credentials at the
//! bottom of the chain (keys, `credential_process`, SSO, ...) still come
//! from aws-config's profile provider.

use std::borrow::Cow;

use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::sts::AssumeRoleProvider;
use aws_config::SdkConfig;
use aws_sdk_sts::config::{Credentials, SharedCredentialsProvider};
use aws_types::os_shim_internal::{Env, Fs};

/// One role of a chain, outermost last.
#[derive(Debug, Clone, PartialEq)]
struct Role {
    arn: String,
    external_id: Option<String>,
    session_name: Option<String>,
}

/// Where the chain starts: the credentials the first role is assumed with.
#[derive(Debug, Clone, PartialEq)]
enum Base {
    /// a profile aws-config resolves by itself (keys, credential_process, SSO)
    Profile(String),
    /// keys in the same profile as its `role_arn` (`source_profile` naming itself)
    Keys {
        access_key: String,
        secret_key: String,
        session_token: Option<String>,
    },
}

/// The role chain of `profile` (default: `AWS_PROFILE`, else `default`),
/// or `None` when it assumes no role or is not one this module resolves
/// (`credential_source`, `web_identity_token_file`: left to aws-config).
async fn chain(env: &Env, profile: Option<&str>) -> Option<(Base, Vec<Role>)> {
    let set = aws_config::profile::load(
        &Fs::real(),
        env,
        // the default files: ~/.aws/config and credentials, or the
        // AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE they are moved to
        &Default::default(),
        profile.map(|p| Cow::Owned(p.to_string())),
    )
    .await
    .ok()?;
    let mut name = set.selected_profile().to_string();
    let mut roles = Vec::new();
    loop {
        let p = set.get_profile(&name)?;
        // Only the selected profile can lack a role here (a source profile
        // without one ends the chain below): then there is nothing to do.
        let arn = p.get("role_arn")?;
        roles.push(Role {
            arn: arn.to_string(),
            external_id: p.get("external_id").map(str::to_string),
            session_name: p.get("role_session_name").map(str::to_string),
        });
        let source = p.get("source_profile")?;
        if source == name {
            let base = Base::Keys {
                access_key: p.get("aws_access_key_id")?.to_string(),
                secret_key: p.get("aws_secret_access_key")?.to_string(),
                session_token: p.get("aws_session_token").map(str::to_string),
            };
            roles.reverse();
            return Some((base, roles));
        }
        if roles.len() > 16 {
            return None; // a loop between profiles: aws-config reports it
        }
        name = source.to_string();
        if set.get_profile(&name)?.get("role_arn").is_none() {
            roles.reverse();
            return Some((Base::Profile(name), roles));
        }
    }
}

/// Credentials for `profile` that assume its roles through `sts` (an
/// `SdkConfig` with the connection's endpoint, region, retries and
/// timeouts), or `None` if the profile assumes no role (then aws-config's
/// own chain is right as it is).
pub(crate) async fn through_endpoint(
    profile: Option<&str>,
    sts: &SdkConfig,
) -> Option<SharedCredentialsProvider> {
    let (base, roles) = chain(&Env::real(), profile).await?;
    let mut creds = match base {
        Base::Profile(name) => SharedCredentialsProvider::new(
            ProfileFileCredentialsProvider::builder()
                .profile_name(name)
                .build(),
        ),
        Base::Keys {
            access_key,
            secret_key,
            session_token,
        } => SharedCredentialsProvider::new(Credentials::new(
            access_key,
            secret_key,
            session_token,
            None,
            "profile",
        )),
    };
    for role in roles {
        let mut b = AssumeRoleProvider::builder(role.arn).configure(sts);
        if let Some(id) = role.external_id {
            b = b.external_id(id);
        }
        if let Some(n) = role.session_name {
            b = b.session_name(n);
        }
        creds = SharedCredentialsProvider::new(b.build_from_provider(creds).await);
    }
    Some(creds)
}

/// The account of `profile`'s credentials when it assumes a role: the
/// account in the outermost `role_arn` (AssumeRole credentials act in the
/// role's account), known without a call.
pub(crate) async fn role_account(profile: Option<&str>) -> Option<String> {
    let (_, roles) = chain(&Env::real(), profile).await?;
    account_of_role(&roles.last()?.arn)
}

/// `arn:PARTITION:iam::ACCOUNT:role/NAME` -> ACCOUNT.
fn account_of_role(arn: &str) -> Option<String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", _, "iam", "", account, resource]
            if account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && resource.starts_with("role/") =>
        {
            Some(account.to_string())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `chain` for a config file's text.
    async fn chain_of(config: &str, profile: &str) -> Option<(Base, Vec<Role>)> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config");
        std::fs::write(&file, config).unwrap();
        let none = dir.path().join("none");
        let env = Env::from_slice(&[
            ("AWS_CONFIG_FILE", file.to_str().unwrap()),
            ("AWS_SHARED_CREDENTIALS_FILE", none.to_str().unwrap()),
        ]);
        chain(&env, Some(profile)).await
    }

    #[tokio::test]
    async fn a_role_chain_is_read_down_to_the_credentials_it_starts_from() {
        let config = "[profile base]\naws_access_key_id = AKID\naws_secret_access_key = s\n\
                      [profile a]\nrole_arn = arn:aws:iam::111111111111:role/a\nsource_profile = base\nexternal_id = x\n\
                      [profile b]\nrole_arn = arn:aws:iam::222222222222:role/b\nsource_profile = a\nrole_session_name = me\n\
                      [profile self]\nrole_arn = arn:aws:iam::333333333333:role/s\nsource_profile = self\naws_access_key_id = K\naws_secret_access_key = S\n\
                      [profile proc]\ncredential_process = echo\n\
                      [profile loop1]\nrole_arn = arn:aws:iam::1:role/l\nsource_profile = loop2\n\
                      [profile loop2]\nrole_arn = arn:aws:iam::2:role/l\nsource_profile = loop1\n";
        let role = |arn: &str, ext: Option<&str>, name: Option<&str>| Role {
            arn: arn.into(),
            external_id: ext.map(Into::into),
            session_name: name.map(Into::into),
        };
        assert_eq!(
            chain_of(config, "b").await,
            Some((
                Base::Profile("base".into()),
                vec![
                    role("arn:aws:iam::111111111111:role/a", Some("x"), None),
                    role("arn:aws:iam::222222222222:role/b", None, Some("me")),
                ]
            ))
        );
        assert_eq!(
            chain_of(config, "self").await,
            Some((
                Base::Keys {
                    access_key: "K".into(),
                    secret_key: "S".into(),
                    session_token: None
                },
                vec![role("arn:aws:iam::333333333333:role/s", None, None)]
            ))
        );
        assert_eq!(chain_of(config, "base").await, None, "no role");
        assert_eq!(chain_of(config, "proc").await, None, "no role");
        assert_eq!(chain_of(config, "missing").await, None);
        assert_eq!(chain_of(config, "loop1").await, None);
    }

    #[test]
    fn the_account_of_a_role_is_read_from_its_arn() {
        assert_eq!(
            account_of_role("arn:aws:iam::111111111111:role/a/b"),
            Some("111111111111".into())
        );
        assert_eq!(
            account_of_role("arn:aws-cn:iam::222222222222:role/x"),
            Some("222222222222".into())
        );
        for bad in [
            "arn:aws:iam::1111:role/x",
            "arn:aws:iam::111111111111:user/x",
            "arn:aws:sts::111111111111:role/x",
            "not an arn",
        ] {
            assert_eq!(account_of_role(bad), None, "{bad}");
        }
    }
}
