//! Bootstrap tokens (`abcdef.0123456789abcdef`), as kube-apiserver's bootstrap token
//! authenticator reads them: the Secret `kube-system/bootstrap-token-<id>` of type
//! `bootstrap.kubernetes.io/token` with `token-secret`, `usage-bootstrap-authentication:
//! true`, no passed `expiration`; the user is `system:bootstrap:<id>` in
//! `system:bootstrappers` and the Secret's `auth-extra-groups`.
//!
//! Pure decisions over the Secret's data; the Secret comes through
//! [`crate::authn::BoundObjects`]. It also makes the tokens `rudder server` hands out.

use std::collections::BTreeMap;

/// The namespace of bootstrap token Secrets.
pub const NAMESPACE: &str = "kube-system";
/// The Secret type.
pub const SECRET_TYPE: &str = "bootstrap.kubernetes.io/token";
/// The group of every bootstrap token user.
pub const BOOTSTRAPPERS: &str = "system:bootstrappers";
/// The prefix of bootstrap users' names.
pub const USER_PREFIX: &str = "system:bootstrap:";

/// A token's id and secret, if `token` has the bootstrap token form.
pub fn parse(token: &str) -> Option<(&str, &str)> {
    let (id, secret) = token.split_once('.')?;
    let lower_alnum =
        |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    (lower_alnum(id, 6) && lower_alnum(secret, 16)).then_some((id, secret))
}

/// The Secret name of token `id`.
pub fn secret_name(id: &str) -> String {
    format!("bootstrap-token-{id}")
}

/// A Secret as authentication needs it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretState {
    pub type_: String,
    pub data: BTreeMap<String, Vec<u8>>,
    pub deleting: bool,
}

/// The user of a bootstrap token whose Secret is `secret`, at `now` (Unix seconds); `None`
/// when the Secret does not make the token valid.
pub fn user(id: &str, token_secret: &str, secret: &SecretState, now: i64) -> Option<(String, Vec<String>)> {
    if secret.type_ != SECRET_TYPE || secret.deleting {
        return None;
    }
    let field = |key: &str| secret.data.get(key).and_then(|v| std::str::from_utf8(v).ok());
    let stored = field("token-secret")?;
    if !constant_time_eq(stored.as_bytes(), token_secret.as_bytes()) {
        return None;
    }
    if field("token-id").is_some_and(|stored_id| stored_id != id) {
        return None;
    }
    if let Some(expiration) = field("expiration") {
        let expires = expiration.parse::<jiff::Timestamp>().ok()?;
        if expires.as_second() <= now {
            return None;
        }
    }
    if field("usage-bootstrap-authentication") != Some("true") {
        return None;
    }
    let mut groups = vec![BOOTSTRAPPERS.to_owned()];
    for group in field("auth-extra-groups").unwrap_or_default().split(',') {
        let group = group.trim();
        if group.is_empty() {
            continue;
        }
        // Upstream refuses the token when an extra group is outside system:bootstrappers:.
        if !group.starts_with("system:bootstrappers:") {
            return None;
        }
        groups.push(group.to_owned());
    }
    Some((format!("{USER_PREFIX}{id}"), groups))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A new random token: six and sixteen characters of `[a-z0-9]`.
pub fn generate() -> Result<(String, String), ring::error::Unspecified> {
    use ring::rand::SecureRandom;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let rng = ring::rand::SystemRandom::new();
    let mut random = [0u8; 22];
    rng.fill(&mut random)?;
    let text: String = random
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect();
    Ok((text[..6].to_owned(), text[6..].to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(entries: &[(&str, &str)]) -> SecretState {
        SecretState {
            type_: SECRET_TYPE.to_owned(),
            data: entries
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.as_bytes().to_vec()))
                .collect(),
            deleting: false,
        }
    }

    #[test]
    fn tokens_have_the_bootstrap_form() {
        assert_eq!(
            parse("abcdef.0123456789abcdef"),
            Some(("abcdef", "0123456789abcdef"))
        );
        for bad in [
            "abcdef0123456789abcdef",
            "ABCDEF.0123456789abcdef",
            "abcde.0123456789abcdef",
            "abcdef.0123456789abcde",
            "",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        let (id, secret) = generate().unwrap();
        assert!(parse(&format!("{id}.{secret}")).is_some());
    }

    #[test]
    fn the_secret_decides() {
        let valid = [
            ("token-id", "abcdef"),
            ("token-secret", "0123456789abcdef"),
            ("usage-bootstrap-authentication", "true"),
            ("auth-extra-groups", "system:bootstrappers:rudder:nodes"),
        ];
        let (name, groups) = user("abcdef", "0123456789abcdef", &secret(&valid), 0).unwrap();
        assert_eq!(name, "system:bootstrap:abcdef");
        assert_eq!(
            groups,
            ["system:bootstrappers", "system:bootstrappers:rudder:nodes"]
        );
        assert_eq!(user_of(&valid, "0123456789abcdeX", 0), None, "wrong secret");
        let mut expired = valid.to_vec();
        expired.push(("expiration", "2026-01-01T00:00:00Z"));
        assert_eq!(user_of(&expired, "0123456789abcdef", 1_800_000_000), None);
        assert!(user_of(&expired, "0123456789abcdef", 1_700_000_000).is_some());
        assert_eq!(
            user_of(&valid[..3 - 1], "0123456789abcdef", 0),
            None,
            "no authentication usage"
        );
        let mut foreign = valid.to_vec();
        foreign[3] = ("auth-extra-groups", "system:masters");
        assert_eq!(user_of(&foreign, "0123456789abcdef", 0), None);
        let mut other_type = secret(&valid);
        other_type.type_ = "Opaque".to_owned();
        assert_eq!(user("abcdef", "0123456789abcdef", &other_type, 0), None);
    }

    fn user_of(entries: &[(&str, &str)], token_secret: &str, now: i64) -> Option<(String, Vec<String>)> {
        user("abcdef", token_secret, &secret(entries), now)
    }
}
