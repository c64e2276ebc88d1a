//! IP addresses and CIDRs, as k8s.io/apimachinery/pkg/util/validation/ip.go and the
//! k8s.io/utils/net parsers read them.
//!
//! Legacy fields (Service clusterIPs, Endpoints addresses, Node podCIDRs, ...) use the
//! "sloppy" parser of Go 1.16, which accepts IPv4 octets with leading zeros (read as decimal)
//! and IPv4-mapped IPv6 addresses; the strict checks (`is_valid_ip`, `is_valid_cidr`) are
//! those of `net/netip` plus canonical form. The StrictIPCIDRValidation feature gate is off in
//! v1.35, so core validation calls the legacy checks with `strict_validation == false`.

use std::fmt;
use std::net::Ipv6Addr;

use crate::field::{ErrorList, FieldError, Path};

/// Whether upstream's StrictIPCIDRValidation feature gate is on (it is alpha and off in v1.35).
pub const STRICT_IP_CIDR_VALIDATION: bool = false;

/// An IP address as Go's `net.IP` holds it: 16 bytes, IPv4 as IPv4-mapped IPv6.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NetIp(pub [u8; 16]);

const V4_IN_V6_PREFIX: [u8; 12] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

impl NetIp {
    fn from_v4(octets: [u8; 4]) -> NetIp {
        let mut bytes = [0u8; 16];
        bytes[..12].copy_from_slice(&V4_IN_V6_PREFIX);
        bytes[12..].copy_from_slice(&octets);
        NetIp(bytes)
    }

    /// The IPv4 address, for IPv4 and IPv4-mapped IPv6 addresses (Go's `To4`).
    pub fn to_v4(&self) -> Option<[u8; 4]> {
        if self.0[..12] == V4_IN_V6_PREFIX {
            return Some([self.0[12], self.0[13], self.0[14], self.0[15]]);
        }
        None
    }

    /// Whether this is an IPv6 address (not IPv4 or IPv4-mapped).
    pub fn is_ipv6(&self) -> bool {
        self.to_v4().is_none()
    }

    /// `0.0.0.0` or `::`.
    pub fn is_unspecified(&self) -> bool {
        self.to_v4() == Some([0, 0, 0, 0]) || self.0 == [0; 16]
    }

    /// `127.0.0.0/8` or `::1`.
    pub fn is_loopback(&self) -> bool {
        match self.to_v4() {
            Some(v4) => v4[0] == 127,
            None => self.0 == Ipv6Addr::LOCALHOST.octets(),
        }
    }

    /// `169.254.0.0/16` or `fe80::/10`.
    pub fn is_link_local_unicast(&self) -> bool {
        match self.to_v4() {
            Some(v4) => v4[0] == 169 && v4[1] == 254,
            None => self.0[0] == 0xfe && self.0[1] & 0xc0 == 0x80,
        }
    }

    /// `224.0.0.0/24` or `ff02::/16`.
    pub fn is_link_local_multicast(&self) -> bool {
        match self.to_v4() {
            Some(v4) => v4[0] == 224 && v4[1] == 0 && v4[2] == 0,
            None => self.0[0] == 0xff && self.0[1] & 0x0f == 0x02,
        }
    }

    fn masked(&self, prefix: u32, family_bits: u32) -> NetIp {
        let offset = 128 - family_bits;
        let keep = prefix + offset;
        let mut bytes = self.0;
        for (i, byte) in bytes.iter_mut().enumerate() {
            let bit_start = (i as u32) * 8;
            if bit_start < offset {
                continue;
            }
            if bit_start >= keep {
                *byte = 0;
            } else if keep - bit_start < 8 {
                *byte &= 0xffu8 << (8 - (keep - bit_start));
            }
        }
        NetIp(bytes)
    }
}

impl fmt::Display for NetIp {
    /// Go's `net.IP.String`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_v4() {
            Some([a, b, c, d]) => write!(f, "{a}.{b}.{c}.{d}"),
            None => write!(f, "{}", Ipv6Addr::from(self.0)),
        }
    }
}

const BIG: u32 = 0xFF_FFFF;

/// Go's `dtoi`: a decimal number at the start of `s`: `(value, length)`.
fn dtoi(s: &[u8]) -> Option<(u32, usize)> {
    let mut n: u32 = 0;
    let mut i = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        n = n * 10 + u32::from(s[i] - b'0');
        if n >= BIG {
            return None;
        }
        i += 1;
    }
    if i == 0 {
        return None;
    }
    Some((n, i))
}

/// Go's `xtoi`: a hexadecimal number at the start of `s`: `(value, length)`.
fn xtoi(s: &[u8]) -> Option<(u32, usize)> {
    let mut n: u32 = 0;
    let mut i = 0;
    while i < s.len() {
        let digit = match s[i] {
            b'0'..=b'9' => s[i] - b'0',
            b'a'..=b'f' => s[i] - b'a' + 10,
            b'A'..=b'F' => s[i] - b'A' + 10,
            _ => break,
        };
        n = n * 16 + u32::from(digit);
        if n >= BIG {
            return None;
        }
        i += 1;
    }
    if i == 0 {
        return None;
    }
    Some((n, i))
}

fn parse_ipv4(s: &[u8], strict: bool) -> Option<[u8; 4]> {
    let mut octets = [0u8; 4];
    let mut rest = s;
    for (i, octet) in octets.iter_mut().enumerate() {
        if i > 0 {
            rest = rest.strip_prefix(b".")?;
        }
        let (n, len) = dtoi(rest)?;
        if n > 0xff || (strict && len > 1 && rest[0] == b'0') {
            return None;
        }
        *octet = n as u8;
        rest = &rest[len..];
    }
    if !rest.is_empty() {
        return None;
    }
    Some(octets)
}

fn parse_ipv6(s: &[u8], strict: bool) -> Option<[u8; 16]> {
    let mut ip = [0u8; 16];
    let mut s = s;
    let mut ellipsis: Option<usize> = None;
    if s.starts_with(b"::") {
        ellipsis = Some(0);
        s = &s[2..];
        if s.is_empty() {
            return Some(ip);
        }
    }
    let mut i = 0;
    while i < 16 {
        let (n, c) = xtoi(s)?;
        if n > 0xffff || (strict && c > 4) {
            return None;
        }
        if c < s.len() && s[c] == b'.' {
            if ellipsis.is_none() && i != 12 {
                return None;
            }
            if i + 4 > 16 {
                return None;
            }
            let v4 = parse_ipv4(s, strict)?;
            ip[i..i + 4].copy_from_slice(&v4);
            s = &[];
            i += 4;
            break;
        }
        ip[i] = (n >> 8) as u8;
        ip[i + 1] = n as u8;
        i += 2;
        s = &s[c..];
        if s.is_empty() {
            break;
        }
        if s[0] != b':' || s.len() == 1 {
            return None;
        }
        s = &s[1..];
        if s[0] == b':' {
            if ellipsis.is_some() {
                return None;
            }
            ellipsis = Some(i);
            s = &s[1..];
            if s.is_empty() {
                break;
            }
        }
    }
    if !s.is_empty() {
        return None;
    }
    if i < 16 {
        let e = ellipsis?;
        let n = 16 - i;
        for j in (e..i).rev() {
            ip[j + n] = ip[j];
        }
        for byte in ip.iter_mut().skip(e).take(n) {
            *byte = 0;
        }
    } else if ellipsis.is_some() {
        return None;
    }
    Some(ip)
}

/// Parses an IP address as upstream's `ParseIPSloppy` does (IPv4 octets may have leading
/// zeros).
pub fn parse_ip_sloppy(s: &str) -> Option<NetIp> {
    parse_ip(s, false)
}

fn parse_ip(s: &str, strict: bool) -> Option<NetIp> {
    let bytes = s.as_bytes();
    match bytes.iter().find(|&&b| b == b'.' || b == b':') {
        Some(b'.') => parse_ipv4(bytes, strict).map(NetIp::from_v4),
        Some(_) => parse_ipv6(bytes, strict).map(NetIp),
        None => None,
    }
}

/// `net/netip.ParseAddr`: no leading zeros, at most four hex digits per group; a zone is
/// accepted. Returns the address and whether it is IPv4 (not IPv4-mapped IPv6).
fn parse_addr_strict(s: &str) -> Option<(NetIp, bool)> {
    let bytes = s.as_bytes();
    match bytes.iter().find(|&&b| b == b'.' || b == b':') {
        Some(b'.') => parse_ipv4(bytes, true).map(|v4| (NetIp::from_v4(v4), true)),
        Some(_) => {
            let addr = s
                .split_once('%')
                .map_or(s, |(addr, zone)| if zone.is_empty() { "" } else { addr });
            parse_ipv6(addr.as_bytes(), true).map(|ip| (NetIp(ip), false))
        }
        None => None,
    }
}

/// netip's `Addr.String`: IPv4-mapped IPv6 as `::ffff:a.b.c.d`.
fn netip_string(ip: &NetIp, is4: bool) -> String {
    match (is4, ip.to_v4()) {
        (true, _) => ip.to_string(),
        (false, Some([a, b, c, d])) => format!("::ffff:{a}.{b}.{c}.{d}"),
        (false, None) => ip.to_string(),
    }
}

/// A parsed CIDR as `ParseCIDRSloppy` returns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetCidr {
    /// The address as written.
    pub ip: NetIp,
    /// The network address (`ip` with the host bits cleared).
    pub network: NetIp,
    /// The prefix length.
    pub prefix: u32,
    /// 32 for IPv4 CIDRs, 128 for IPv6 ones.
    pub bits: u32,
}

impl fmt::Display for NetCidr {
    /// Go's `IPNet.String`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.bits == 128 && self.network.to_v4().is_some() {
            return write!(f, "{}/{}", self.network, self.prefix.saturating_sub(96));
        }
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

fn parse_cidr(s: &str, strict: bool) -> Option<NetCidr> {
    let (addr, mask) = s.split_once('/')?;
    let (ip, bits) = match parse_ipv4(addr.as_bytes(), strict) {
        Some(v4) => (NetIp::from_v4(v4), 32),
        None => (NetIp(parse_ipv6(addr.as_bytes(), strict)?), 128),
    };
    let (prefix, len) = dtoi(mask.as_bytes())?;
    if len != mask.len() || prefix > bits || (strict && len > 1 && mask.starts_with('0')) {
        return None;
    }
    Some(NetCidr {
        ip,
        network: ip.masked(prefix, bits),
        prefix,
        bits,
    })
}

/// Parses a CIDR as upstream's `ParseCIDRSloppy` does.
pub fn parse_cidr_sloppy(s: &str) -> Option<NetCidr> {
    parse_cidr(s, false)
}

fn parse_ip_field(path: &Path, value: &str, strict: bool) -> (Option<NetIp>, ErrorList) {
    let Some(ip) = parse_ip_sloppy(value) else {
        return (
            None,
            vec![FieldError::invalid(
                path,
                value,
                "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
            )],
        );
    };
    let mut errs = ErrorList::new();
    if strict {
        match parse_addr_strict(value) {
            None => errs.push(FieldError::invalid(path, value, "must not have leading 0s")),
            Some((addr, is4)) => {
                if !is4 && addr.to_v4().is_some() {
                    errs.push(FieldError::invalid(
                        path,
                        value,
                        "must not be an IPv4-mapped IPv6 address",
                    ));
                }
            }
        }
    }
    (Some(ip), errs)
}

/// An IP address in a field that has always accepted "sloppy" values; values in
/// `valid_old_ips` (the old object's) are accepted unchecked.
pub fn is_valid_ip_for_legacy_field(
    path: &Path,
    value: &str,
    strict_validation: bool,
    valid_old_ips: &[String],
) -> ErrorList {
    if valid_old_ips.iter().any(|old| old == value) {
        return Vec::new();
    }
    parse_ip_field(path, value, strict_validation).1
}

/// An IP address in a new field: strictly parsed and in canonical form.
pub fn is_valid_ip(path: &Path, value: &str) -> ErrorList {
    let (ip, errs) = parse_ip_field(path, value, true);
    if !errs.is_empty() {
        return errs;
    }
    match ip {
        Some(ip) if ip.to_string() != value => vec![FieldError::invalid(
            path,
            value,
            format!("must be in canonical form ({:?})", ip.to_string()),
        )],
        _ => errs,
    }
}

/// Warnings for an IP address that a legacy field accepted but that is not in standard form.
pub fn get_warnings_for_ip(path: &Path, value: &str) -> Vec<String> {
    let Some(ip) = parse_ip_sloppy(value) else {
        return Vec::new();
    };
    match parse_addr_strict(value) {
        None => vec![format!(
            "{path}: non-standard IP address {value:?} will be considered invalid in a future Kubernetes release: use {:?}",
            ip.to_string()
        )],
        Some((addr, is4)) if !is4 && addr.to_v4().is_some() => vec![format!(
            "{path}: non-standard IP address {value:?} will be considered invalid in a future Kubernetes release: use {:?}",
            ip.to_string()
        )],
        Some((addr, is4)) => {
            let canonical = netip_string(&addr, is4);
            if !is4 && !value.contains('%') && canonical != value {
                return vec![format!(
                    "{path}: IPv6 address {value:?} should be in RFC 5952 canonical format ({canonical:?})"
                )];
            }
            Vec::new()
        }
    }
}

fn parse_cidr_field(path: &Path, value: &str, strict: bool) -> (Option<NetCidr>, ErrorList) {
    let Some(cidr) = parse_cidr_sloppy(value) else {
        return (
            None,
            vec![FieldError::invalid(
                path,
                value,
                "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
            )],
        );
    };
    let mut errs = ErrorList::new();
    if strict {
        match strict_prefix(value) {
            None => errs.push(FieldError::invalid(
                path,
                value,
                "must not have leading 0s in IP or prefix length",
            )),
            Some((addr, is4, prefix)) => {
                let bits = if is4 { 32 } else { 128 };
                if !is4 && addr.to_v4().is_some() {
                    errs.push(FieldError::invalid(
                        path,
                        value,
                        "must not have an IPv4-mapped IPv6 address",
                    ));
                } else if addr.masked(prefix, bits) != addr {
                    errs.push(FieldError::invalid(
                        path,
                        value,
                        "must not have bits set beyond the prefix length",
                    ));
                }
            }
        }
    }
    (Some(cidr), errs)
}

/// `net/netip.ParsePrefix`: `(address, is IPv4, prefix length)`.
fn strict_prefix(value: &str) -> Option<(NetIp, bool, u32)> {
    let (addr, mask) = value.split_once('/')?;
    if addr.contains('%') {
        return None;
    }
    let (ip, is4) = parse_addr_strict(addr)?;
    if mask.is_empty()
        || !mask.bytes().all(|b| b.is_ascii_digit())
        || (mask.len() > 1 && mask.starts_with('0'))
    {
        return None;
    }
    let prefix: u32 = mask.parse().ok()?;
    if prefix > if is4 { 32 } else { 128 } {
        return None;
    }
    Some((ip, is4, prefix))
}

/// A CIDR in a field that has always accepted "sloppy" values; values in `valid_old_cidrs`
/// are accepted unchecked.
pub fn is_valid_cidr_for_legacy_field(
    path: &Path,
    value: &str,
    strict_validation: bool,
    valid_old_cidrs: &[String],
) -> ErrorList {
    if valid_old_cidrs.iter().any(|old| old == value) {
        return Vec::new();
    }
    parse_cidr_field(path, value, strict_validation).1
}

/// A CIDR in a new field: strictly parsed and in canonical form.
pub fn is_valid_cidr(path: &Path, value: &str) -> ErrorList {
    let (cidr, errs) = parse_cidr_field(path, value, true);
    if !errs.is_empty() {
        return errs;
    }
    match cidr {
        Some(cidr) if cidr.to_string() != value => vec![FieldError::invalid(
            path,
            value,
            format!("must be in canonical form ({:?})", cidr.to_string()),
        )],
        _ => errs,
    }
}

/// Warnings for a CIDR that a legacy field accepted but that is ambiguous or non-standard.
pub fn get_warnings_for_cidr(path: &Path, value: &str) -> Vec<String> {
    let Some(cidr) = parse_cidr_sloppy(value) else {
        return Vec::new();
    };
    let mut warnings = Vec::new();
    if cidr.ip != cidr.network {
        let single = format!(
            "{}/{}",
            cidr.ip,
            if cidr.ip.to_v4().is_some() { 32 } else { cidr.bits }
        );
        warnings.push(format!(
            "{path}: CIDR value {value:?} is ambiguous in this context (should be {:?} or {single:?}?)",
            cidr.to_string()
        ));
    }
    match strict_prefix(value) {
        None => warnings.push(format!(
            "{path}: non-standard CIDR value {value:?} will be considered invalid in a future Kubernetes release: use {:?}",
            cidr.to_string()
        )),
        Some((addr, is4, _)) if !is4 && addr.to_v4().is_some() => warnings.push(format!(
            "{path}: non-standard CIDR value {value:?} will be considered invalid in a future Kubernetes release: use {:?}",
            cidr.to_string()
        )),
        Some((addr, is4, prefix)) => {
            let canonical = format!("{}/{prefix}", netip_string(&addr, is4));
            if warnings.is_empty() && !is4 && canonical != value {
                warnings.push(format!(
                    "{path}: IPv6 CIDR value {value:?} should be in RFC 5952 canonical format ({canonical:?})"
                ));
            }
        }
    }
    warnings
}

/// An interface address (`10.9.8.7/24`): a CIDR whose address part is kept, in canonical
/// form.
pub fn is_valid_interface_address(path: &Path, value: &str) -> ErrorList {
    let Some(cidr) = parse_cidr_sloppy(value) else {
        return vec![FieldError::invalid(
            path,
            value,
            "must be a valid address in CIDR form, (e.g. 10.9.8.7/24 or 2001:db8::1/64)",
        )];
    };
    let prefix = if cidr.ip.to_v4().is_some() && cidr.bits == 128 {
        cidr.prefix.saturating_sub(96)
    } else {
        cidr.prefix
    };
    let canonical = format!("{}/{prefix}", cidr.ip);
    if canonical != value {
        return vec![FieldError::invalid(
            path,
            value,
            format!("must be in canonical form ({canonical:?})"),
        )];
    }
    Vec::new()
}

/// An address of an Endpoints object (and, for historical reasons, a Service external IP):
/// parseable, and not unspecified, loopback, link-local or link-local multicast.
pub fn validate_endpoint_ip(value: &str, path: &Path) -> ErrorList {
    let Some(ip) = parse_ip_sloppy(value) else {
        return vec![FieldError::invalid(path, value, "must be a valid IP address")];
    };
    let mut errs = ErrorList::new();
    if ip.is_unspecified() {
        errs.push(FieldError::invalid(
            path,
            value,
            format!("may not be unspecified ({value})"),
        ));
    }
    if ip.is_loopback() {
        errs.push(FieldError::invalid(
            path,
            value,
            "may not be in the loopback range (127.0.0.0/8, ::1/128)",
        ));
    }
    if ip.is_link_local_unicast() {
        errs.push(FieldError::invalid(
            path,
            value,
            "may not be in the link-local range (169.254.0.0/16, fe80::/10)",
        ));
    }
    if ip.is_link_local_multicast() {
        errs.push(FieldError::invalid(
            path,
            value,
            "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)",
        ));
    }
    errs
}

/// Whether the string is an IPv6 address (`netutils.IsIPv6String`).
pub fn is_ipv6_string(value: &str) -> bool {
    parse_ip_sloppy(value).is_some_and(|ip| ip.is_ipv6())
}

/// Whether the addresses include both families (`netutils.IsDualStackIPStrings`); `None` if
/// one does not parse.
pub fn is_dual_stack_ip_strings(values: &[String]) -> Option<bool> {
    let mut v4 = false;
    let mut v6 = false;
    for value in values {
        let ip = parse_ip_sloppy(value)?;
        if ip.is_ipv6() {
            v6 = true;
        } else {
            v4 = true;
        }
    }
    Some(v4 && v6)
}

/// Whether the CIDRs include both families (`netutils.IsDualStackCIDRStrings`); `None` if
/// one does not parse.
pub fn is_dual_stack_cidr_strings(values: &[String]) -> Option<bool> {
    let mut v4 = false;
    let mut v6 = false;
    for value in values {
        let cidr = parse_cidr_sloppy(value)?;
        if cidr.ip.is_ipv6() {
            v6 = true;
        } else {
            v4 = true;
        }
    }
    Some(v4 && v6)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(errs: ErrorList) -> Vec<String> {
        #![allow(clippy::needless_pass_by_value)]
        errs.iter().map(|e| e.body()).collect()
    }

    #[test]
    fn sloppy_parsing_accepts_what_go_1_16_accepted() {
        let cases: &[(&str, Option<&str>)] = &[
            ("10.0.0.1", Some("10.0.0.1")),
            ("010.000.0.01", Some("10.0.0.1")),
            ("256.0.0.1", None),
            ("1.2.3", None),
            ("1.2.3.4.", None),
            ("::", Some("::")),
            ("::1", Some("::1")),
            ("2001:DB8::1", Some("2001:db8::1")),
            ("2001:db8:0:0:0:0:0:1", Some("2001:db8::1")),
            ("1:0:1:1:1:1:1:1", Some("1:0:1:1:1:1:1:1")),
            ("::ffff:1.2.3.4", Some("1.2.3.4")),
            ("::1.2.3.4", Some("::102:304")),
            ("1::2::3", None),
            ("1:2:3:4:5:6:7:8:9", None),
            ("1:2:3:4:5:6:7::8", None),
            ("fe80::1%eth0", None),
            ("", None),
            ("abc", None),
            ("00001::", Some("1::")),
        ];
        for (input, expected) in cases {
            assert_eq!(
                parse_ip_sloppy(input).map(|ip| ip.to_string()).as_deref(),
                *expected,
                "input {input:?}"
            );
        }
    }

    #[test]
    fn legacy_and_strict_ip_checks() {
        let p = Path::new("spec").child("clusterIPs").index(0);
        assert!(is_valid_ip_for_legacy_field(&p, "010.0.0.1", false, &[]).is_empty());
        assert_eq!(
            rendered(is_valid_ip_for_legacy_field(&p, "x", false, &[])),
            ["Invalid value: \"x\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"]
        );
        assert!(is_valid_ip_for_legacy_field(&p, "x", false, &["x".to_owned()]).is_empty());
        assert_eq!(
            rendered(is_valid_ip_for_legacy_field(&p, "010.0.0.1", true, &[])),
            ["Invalid value: \"010.0.0.1\": must not have leading 0s"]
        );
        assert_eq!(
            rendered(is_valid_ip(&p, "::ffff:1.2.3.4")),
            ["Invalid value: \"::ffff:1.2.3.4\": must not be an IPv4-mapped IPv6 address"]
        );
        assert_eq!(
            rendered(is_valid_ip(&p, "2001:DB8::1")),
            ["Invalid value: \"2001:DB8::1\": must be in canonical form (\"2001:db8::1\")"]
        );
        assert!(is_valid_ip(&p, "10.0.0.1").is_empty());
    }

    #[test]
    fn ip_warnings() {
        let p = Path::new("spec").child("externalIPs").index(0);
        assert_eq!(
            get_warnings_for_ip(&p, "010.0.0.1"),
            [
                "spec.externalIPs[0]: non-standard IP address \"010.0.0.1\" will be considered invalid in a future Kubernetes release: use \"10.0.0.1\""
            ]
        );
        assert_eq!(
            get_warnings_for_ip(&p, "2001:DB8::1"),
            [
                "spec.externalIPs[0]: IPv6 address \"2001:DB8::1\" should be in RFC 5952 canonical format (\"2001:db8::1\")"
            ]
        );
        assert!(get_warnings_for_ip(&p, "10.0.0.1").is_empty());
        assert!(get_warnings_for_ip(&p, "2001:db8::1").is_empty());
    }

    #[test]
    fn cidrs() {
        let p = Path::new("spec").child("podCIDRs").index(0);
        assert_eq!(parse_cidr_sloppy("10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(
            parse_cidr_sloppy("2001:db8::1/64").unwrap().to_string(),
            "2001:db8::/64"
        );
        assert_eq!(parse_cidr_sloppy("10.0.0.0/33"), None);
        assert!(is_valid_cidr_for_legacy_field(&p, "10.0.0.0/08", false, &[]).is_empty());
        assert_eq!(
            rendered(is_valid_cidr_for_legacy_field(&p, "10.0.0.0", false, &[])),
            ["Invalid value: \"10.0.0.0\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"]
        );
        assert_eq!(
            rendered(is_valid_cidr(&p, "10.0.0.1/8")),
            ["Invalid value: \"10.0.0.1/8\": must not have bits set beyond the prefix length"]
        );
        assert_eq!(
            rendered(is_valid_cidr(&p, "10.0.0.0/08")),
            ["Invalid value: \"10.0.0.0/08\": must not have leading 0s in IP or prefix length"]
        );
        assert!(is_valid_cidr(&p, "10.0.0.0/8").is_empty());
        assert_eq!(
            get_warnings_for_cidr(&p, "10.0.0.1/8"),
            [
                "spec.podCIDRs[0]: CIDR value \"10.0.0.1/8\" is ambiguous in this context (should be \"10.0.0.0/8\" or \"10.0.0.1/32\"?)"
            ]
        );
        assert_eq!(
            get_warnings_for_cidr(&p, "2001:DB8::/64"),
            [
                "spec.podCIDRs[0]: IPv6 CIDR value \"2001:DB8::/64\" should be in RFC 5952 canonical format (\"2001:db8::/64\")"
            ]
        );
        assert!(is_valid_interface_address(&p, "10.9.8.7/24").is_empty());
        assert_eq!(
            is_dual_stack_cidr_strings(&["10.0.0.0/8".into(), "fd00::/64".into()]),
            Some(true)
        );
    }

    #[test]
    fn endpoint_ips() {
        let p = Path::new("ip");
        let cases: &[(&str, &[&str])] = &[
            ("10.1.2.3", &[]),
            (
                "0.0.0.0",
                &["Invalid value: \"0.0.0.0\": may not be unspecified (0.0.0.0)"],
            ),
            (
                "127.0.0.1",
                &["Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)"],
            ),
            (
                "169.254.1.1",
                &[
                    "Invalid value: \"169.254.1.1\": may not be in the link-local range (169.254.0.0/16, fe80::/10)",
                ],
            ),
            (
                "fe80::1",
                &[
                    "Invalid value: \"fe80::1\": may not be in the link-local range (169.254.0.0/16, fe80::/10)",
                ],
            ),
            (
                "224.0.0.1",
                &[
                    "Invalid value: \"224.0.0.1\": may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)",
                ],
            ),
            ("bad", &["Invalid value: \"bad\": must be a valid IP address"]),
        ];
        for (value, expected) in cases {
            assert_eq!(rendered(validate_endpoint_ip(value, &p)), *expected, "{value}");
        }
        assert!(is_ipv6_string("::1"));
        assert!(!is_ipv6_string("::ffff:1.2.3.4"));
        assert_eq!(
            is_dual_stack_ip_strings(&["1.1.1.1".into(), "::1".into()]),
            Some(true)
        );
        assert_eq!(
            is_dual_stack_ip_strings(&["1.1.1.1".into(), "2.2.2.2".into()]),
            Some(false)
        );
    }
}
