//! Image references parsed and normalised exactly as Docker and containerd do
//! (github.com/distribution/reference: `ParseNormalizedNamed`, `ParseDockerRef`):
//! `busybox` -> `docker.io/library/busybox:latest`. It owns no state.

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

use super::Error;

const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
const DEFAULT_TAG: &str = "latest";
const NAME_TOTAL_LENGTH_MAX: usize = 255;

const ALPHANUMERIC: &str = "[a-z0-9]+";
const SEPARATOR: &str = "(?:[._]|__|[-]+)";
const DOMAIN_NAME_COMPONENT: &str = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const TAG: &str = r"[\w][\w.-]{0,127}";
const DIGEST: &str = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][[:xdigit:]]{32,}";

fn domain_and_port() -> String {
    let domain_name = format!(r"{DOMAIN_NAME_COMPONENT}(?:\.{DOMAIN_NAME_COMPONENT})*");
    let host = format!(r"(?:{domain_name}|\[(?:[a-fA-F0-9:]+)\])");
    format!("{host}(?::[0-9]+)?")
}

fn remote_name() -> String {
    let path_component = format!("{ALPHANUMERIC}(?:{SEPARATOR}{ALPHANUMERIC})*");
    format!("{path_component}(?:/{path_component})*")
}

#[allow(clippy::expect_used)] // the patterns are constants
static REFERENCE: LazyLock<Regex> = LazyLock::new(|| {
    let name = format!("(?:{}/)?{}", domain_and_port(), remote_name());
    Regex::new(&format!("^({name})(?::({TAG}))?(?:@({DIGEST}))?$")).expect("reference pattern")
});

#[allow(clippy::expect_used)] // the patterns are constants
static ANCHORED_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!("^(?:({})/)?({})$", domain_and_port(), remote_name())).expect("name pattern")
});

#[allow(clippy::expect_used)] // the patterns are constants
static IDENTIFIER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new("^[a-f0-9]{64}$").expect("identifier pattern"));

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
        if IDENTIFIER.is_match(s) {
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
        let Some(captures) = REFERENCE.captures(s) else {
            if s.is_empty() {
                return Err(invalid(s, "repository name must have at least one component"));
            }
            if REFERENCE.is_match(&s.to_lowercase()) {
                return Err(invalid(s, "repository name must be lowercase"));
            }
            return Err(invalid(s, "invalid reference format"));
        };
        let name = captures.get(1).map_or("", |m| m.as_str());
        if name.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(invalid(
                s,
                format!("repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters"),
            ));
        }
        let Some(parts) = ANCHORED_NAME.captures(name) else {
            return Err(invalid(s, "invalid reference format"));
        };
        let digest = captures.get(3).map(|m| m.as_str().to_owned());
        if let Some(digest) = &digest {
            validate_digest(s, digest)?;
        }
        Ok(Reference {
            domain: parts.get(1).map_or("", |m| m.as_str()).to_owned(),
            path: parts.get(2).map_or("", |m| m.as_str()).to_owned(),
            tag: captures.get(2).map(|m| m.as_str().to_owned()),
            digest,
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
