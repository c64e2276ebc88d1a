//! Image references parsed and normalised exactly as Docker and containerd do
//! (github.com/distribution/reference: `ParseNormalizedNamed`, `ParseDockerRef`):
//! `busybox` -> `docker.io/library/busybox:latest`. It owns no state.

use std::fmt;

use super::Error;

const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
const DEFAULT_TAG: &str = "latest";
const NAME_TOTAL_LENGTH_MAX: usize = 255;
const TAG_LENGTH_MAX: usize = 128;
const DIGEST_HEX_MIN: usize = 32;

// The grammar of distribution/reference, matched by hand (a compiled regex and its per-thread
// caches cost the node megabytes):
//
//   reference      := name [ ":" tag ] [ "@" digest ]
//   name           := [ domain "/" ] remote-name
//   domain         := host [ ":" port ]   host := domain-name | "[" ipv6 "]"
//   domain-name    := component ( "." component )*   component := [a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?
//   remote-name    := path-component ( "/" path-component )*
//   path-component := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
//   tag            := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
//   digest         := algorithm ":" [0-9a-fA-F]{32,}
//   algorithm      := [A-Za-z][A-Za-z0-9]* ( [-_+.] [A-Za-z][A-Za-z0-9]* )*

/// `name [":" tag] ["@" digest]`, each part checked against the grammar.
fn split_reference(s: &str) -> Option<(&str, Option<&str>, Option<&str>)> {
    let (rest, digest) = match s.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (s, None),
    };
    if digest.is_some_and(|digest| !is_digest(digest)) {
        return None;
    }
    // A colon after the last slash starts the tag; one before it is the domain's port.
    let (name, tag) = match rest.rfind(':') {
        Some(colon) if rest.rfind('/').is_none_or(|slash| slash < colon) => {
            (&rest[..colon], Some(&rest[colon + 1..]))
        }
        _ => (rest, None),
    };
    if tag.is_some_and(|tag| !is_tag(tag)) || split_name(name).is_none() {
        return None;
    }
    Some((name, tag, digest))
}

/// A name's domain (empty when the first component is not one) and remote path.
fn split_name(name: &str) -> Option<(&str, &str)> {
    if let Some((domain, path)) = name.split_once('/')
        && is_domain_and_port(domain)
        && is_remote_name(path)
    {
        return Some((domain, path));
    }
    is_remote_name(name).then_some(("", name))
}

fn is_domain_and_port(s: &str) -> bool {
    let (host, port) = match s.strip_prefix('[') {
        Some(bracketed) => {
            let Some((ipv6, port)) = bracketed.split_once(']') else {
                return false;
            };
            if ipv6.is_empty() || !ipv6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
                return false;
            }
            (None, port)
        }
        None => match s.split_once(':') {
            Some((host, _)) => (Some(host), &s[host.len()..]),
            None => (Some(s), ""),
        },
    };
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()));
    port_ok && host.is_none_or(|host| host.split('.').all(is_domain_component))
}

fn is_domain_component(s: &str) -> bool {
    let bytes = s.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        }
        _ => false,
    }
}

fn is_remote_name(s: &str) -> bool {
    s.split('/').all(is_path_component)
}

fn is_path_component(s: &str) -> bool {
    let alphanumeric = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut runs = s.as_bytes().chunk_by(|a, b| alphanumeric(a) == alphanumeric(b));
    let mut expect_alphanumeric = true;
    let mut last_alphanumeric = false;
    for run in runs.by_ref() {
        let ok = if expect_alphanumeric {
            run.iter().all(alphanumeric)
        } else {
            matches!(run, b"." | b"_" | b"__") || run.iter().all(|b| *b == b'-')
        };
        if !ok {
            return false;
        }
        last_alphanumeric = expect_alphanumeric;
        expect_alphanumeric = !expect_alphanumeric;
    }
    last_alphanumeric
}

fn is_tag(s: &str) -> bool {
    let word = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
    s.len() <= TAG_LENGTH_MAX
        && s.as_bytes().first().is_some_and(word)
        && s.bytes().all(|b| word(&b) || b == b'.' || b == b'-')
}

fn is_digest(s: &str) -> bool {
    let Some((algorithm, hex)) = s.split_once(':') else {
        return false;
    };
    let component = |c: &str| {
        c.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
            && c.bytes().all(|b| b.is_ascii_alphanumeric())
    };
    hex.len() >= DIGEST_HEX_MIN
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
        && algorithm.split(['-', '_', '+', '.']).all(component)
}

/// A 64-character lower-case hex string: an image ID, never a repository name.
fn is_identifier(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A parsed, normalised image reference: `domain/path[:tag][@digest]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<String>,
}

fn invalid(reference: &str, reason: impl Into<String>) -> Error {
    Error::InvalidReference {
        reference: reference.to_owned(),
        reason: reason.into(),
    }
}

impl Reference {
    /// `ParseNormalizedNamed`: adds `docker.io` and `library/` but no default tag.
    pub fn parse_normalized(s: &str) -> Result<Reference, Error> {
        if is_identifier(s) {
            return Err(invalid(
                s,
                format!("invalid repository name ({s}), cannot specify 64-byte hexadecimal strings"),
            ));
        }
        let (domain, remainder) = split_docker_domain(s);
        let remote = remainder
            .split_once(':')
            .map_or(remainder.as_str(), |(name, _)| name);
        if remote.to_lowercase() != remote {
            return Err(invalid(
                s,
                format!("invalid reference format: repository name ({remote}) must be lowercase"),
            ));
        }
        Reference::parse(&format!("{domain}/{remainder}"))
    }

    /// `ParseDockerRef`: normalised, `:latest` when there is neither tag nor digest, and
    /// the tag dropped when there is a digest.
    pub fn parse_docker_ref(s: &str) -> Result<Reference, Error> {
        let mut reference = Reference::parse_normalized(s)?;
        if reference.digest.is_some() {
            reference.tag = None;
        } else if reference.tag.is_none() {
            reference.tag = Some(DEFAULT_TAG.to_owned());
        }
        Ok(reference)
    }

    /// `reference.Parse` of an already fully qualified string.
    fn parse(s: &str) -> Result<Reference, Error> {
        let Some((name, tag, digest)) = split_reference(s) else {
            if s.is_empty() {
                return Err(invalid(s, "repository name must have at least one component"));
            }
            if split_reference(&s.to_lowercase()).is_some() {
                return Err(invalid(s, "repository name must be lowercase"));
            }
            return Err(invalid(s, "invalid reference format"));
        };
        if name.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(invalid(
                s,
                format!("repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters"),
            ));
        }
        let Some((domain, path)) = split_name(name) else {
            return Err(invalid(s, "invalid reference format"));
        };
        if let Some(digest) = digest {
            validate_digest(s, digest)?;
        }
        Ok(Reference {
            domain: domain.to_owned(),
            path: path.to_owned(),
            tag: tag.map(str::to_owned),
            digest: digest.map(str::to_owned),
        })
    }

    /// The registry host (and port).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path inside the registry.
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// `domain/path`, the repository as crictl's IMAGE column shows it.
    pub fn name(&self) -> String {
        if self.domain.is_empty() {
            self.path.clone()
        } else {
            format!("{}/{}", self.domain, self.path)
        }
    }

    /// The short form Docker prints (`busybox:latest`).
    pub fn familiar(&self) -> String {
        let mut out = if self.domain == DEFAULT_DOMAIN {
            match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
                Some(rest) if !rest.contains('/') => rest.to_owned(),
                _ => self.path.clone(),
            }
        } else {
            self.name()
        };
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(digest);
        }
        out
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

fn split_docker_domain(name: &str) -> (String, String) {
    let Some((maybe_domain, maybe_remote)) = name.split_once('/') else {
        return (DEFAULT_DOMAIN.to_owned(), format!("{OFFICIAL_REPO_PREFIX}{name}"));
    };
    let (domain, mut remote) = if maybe_domain == LEGACY_DEFAULT_DOMAIN {
        (DEFAULT_DOMAIN.to_owned(), maybe_remote.to_owned())
    } else if maybe_domain == "localhost"
        || maybe_domain.contains(['.', ':'])
        || maybe_domain.to_lowercase() != maybe_domain
    {
        (maybe_domain.to_owned(), maybe_remote.to_owned())
    } else {
        (DEFAULT_DOMAIN.to_owned(), name.to_owned())
    };
    if domain == DEFAULT_DOMAIN && !remote.contains('/') {
        remote = format!("{OFFICIAL_REPO_PREFIX}{remote}");
    }
    (domain, remote)
}

/// go-digest's validation: known algorithms with their exact hex lengths.
fn validate_digest(reference: &str, digest: &str) -> Result<(), Error> {
    let (algorithm, hex) = digest.split_once(':').unwrap_or((digest, ""));
    let len = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(invalid(reference, "unsupported digest algorithm")),
    };
    if !hex
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(invalid(reference, "invalid checksum digest format"));
    }
    if hex.len() != len {
        return Err(invalid(reference, "invalid checksum digest length"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn docker_ref_normalisation_table() {
        let cases = [
            ("busybox", "docker.io/library/busybox:latest"),
            ("busybox:1.36", "docker.io/library/busybox:1.36"),
            ("library/busybox", "docker.io/library/busybox:latest"),
            ("docker.io/busybox", "docker.io/library/busybox:latest"),
            ("index.docker.io/busybox", "docker.io/library/busybox:latest"),
            ("index.docker.io/foo/bar:v1", "docker.io/foo/bar:v1"),
            ("foo/bar", "docker.io/foo/bar:latest"),
            ("foo/bar/baz", "docker.io/foo/bar/baz:latest"),
            ("quay.io/coreos/etcd:v3.5", "quay.io/coreos/etcd:v3.5"),
            ("localhost/app", "localhost/app:latest"),
            ("localhost:5000/app:dev", "localhost:5000/app:dev"),
            ("127.0.0.1:5000/team/app", "127.0.0.1:5000/team/app:latest"),
            ("[::1]:5000/app", "[::1]:5000/app:latest"),
            ("registry:5000/app", "registry:5000/app:latest"),
            ("Registry.Example/app", "Registry.Example/app:latest"),
            ("a_b__c--d.e/x", "a_b__c--d.e/x:latest"),
            (&format!("busybox@{D}"), &format!("docker.io/library/busybox@{D}")),
            // ParseDockerRef drops the tag when a digest pins the image.
            (
                &format!("busybox:1.36@{D}"),
                &format!("docker.io/library/busybox@{D}"),
            ),
            (
                &format!("localhost:5000/app@{D}"),
                &format!("localhost:5000/app@{D}"),
            ),
        ];
        for (input, want) in cases {
            let got = Reference::parse_docker_ref(input).unwrap_or_else(|err| panic!("{input}: {err}"));
            assert_eq!(got.to_string(), want, "{input}");
        }
    }

    #[test]
    fn grammar_edges() {
        for valid in [
            "a/b",
            "a-b/c--d",
            "a/b__c",
            "a.b/c.d",
            "x:5000/y",
            "[::1]/y",
            "a0/9z:Tag_.-1",
        ] {
            assert!(split_reference(valid).is_some(), "{valid}");
        }
        for invalid in [
            "a/b..c", "a/-b", "a/b-", "a/b___c", "a/b/", "/a", "a//b", "-x.io/a", "x.io:/a", "[]/a", "a:b:c",
            "a/b:.t", "a/B",
        ] {
            assert!(split_reference(invalid).is_none(), "{invalid}");
        }
        // A first component that is no domain is part of the remote name.
        assert_eq!(split_name("a_b/c"), Some(("", "a_b/c")));
        assert_eq!(split_name("A.io/c"), Some(("A.io", "c")));
        assert!(is_tag(&"t".repeat(128)) && !is_tag(&"t".repeat(129)));
        assert!(is_digest(D) && is_digest("sha256+b64:0123456789abcdef0123456789abcdef"));
        assert!(!is_digest("sha256:0123") && !is_digest("1sha:0123456789abcdef0123456789abcdef"));
    }

    #[test]
    fn normalised_parts_and_familiar_form() {
        let r = Reference::parse_normalized("busybox").unwrap();
        assert_eq!(
            (r.domain(), r.path(), r.tag(), r.digest()),
            ("docker.io", "library/busybox", None, None)
        );
        assert_eq!(r.to_string(), "docker.io/library/busybox");
        let r = Reference::parse_docker_ref("localhost:5000/a/b:t").unwrap();
        assert_eq!(
            (r.domain(), r.path(), r.tag()),
            ("localhost:5000", "a/b", Some("t"))
        );
        assert_eq!(r.name(), "localhost:5000/a/b");
        assert_eq!(
            Reference::parse_docker_ref("docker.io/library/busybox")
                .unwrap()
                .familiar(),
            "busybox:latest"
        );
        assert_eq!(
            Reference::parse_docker_ref("foo/bar").unwrap().familiar(),
            "foo/bar:latest"
        );
    }

    #[test]
    fn invalid_references_are_rejected_with_docker_messages() {
        let cases = [
            ("", "invalid reference format"),
            ("Busybox", "must be lowercase"),
            ("docker.io/Foo/bar", "must be lowercase"),
            ("busybox:", "invalid reference format"),
            ("busybox:-tag", "invalid reference format"),
            ("bus box", "invalid reference format"),
            ("busybox@sha256:abc", "invalid reference format"),
            (
                "busybox@md5:0123456789abcdef0123456789abcdef",
                "unsupported digest algorithm",
            ),
            (
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                "cannot specify 64-byte hexadecimal strings",
            ),
        ];
        for (input, want) in cases {
            let err = Reference::parse_docker_ref(input).expect_err(input).to_string();
            assert!(err.contains(want), "{input:?}: {err}");
        }
        let long = format!("a/{}", "b".repeat(300));
        let err = Reference::parse_docker_ref(&long).unwrap_err().to_string();
        assert!(err.contains("must not be more than 255 characters"), "{err}");
    }
}
