//! IPv4 CIDR blocks (`10.244.0.0/16`): parsing, membership and address arithmetic.
//!
//! Owns nothing but the arithmetic; it knows no interfaces and no Kubernetes objects.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 network: its first address and prefix length, with the host bits cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv4Cidr {
    network: Ipv4Addr,
    prefix: u8,
}

/// Why a CIDR did not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid CIDR address: {0}")]
pub struct InvalidCidr(pub String);

impl Ipv4Cidr {
    /// The network `addr/prefix` (host bits of `addr` are cleared).
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Self, InvalidCidr> {
        if prefix > 32 {
            return Err(InvalidCidr(format!("{addr}/{prefix}")));
        }
        Ok(Self {
            network: Ipv4Addr::from(u32::from(addr) & mask(prefix)),
            prefix,
        })
    }

    /// `addr/prefix` with the prefix capped at 32, for constants.
    pub const fn masked(addr: Ipv4Addr, prefix: u8) -> Self {
        let prefix = if prefix > 32 { 32 } else { prefix };
        Self {
            network: Ipv4Addr::from_bits(addr.to_bits() & mask(prefix)),
            prefix,
        }
    }

    pub fn network(&self) -> Ipv4Addr {
        self.network
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The last address of the block.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !mask(self.prefix))
    }

    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & mask(self.prefix) == u32::from(self.network)
    }

    /// Whether every address of `other` is in this block.
    pub fn covers(&self, other: &Ipv4Cidr) -> bool {
        other.prefix >= self.prefix && self.contains(other.network)
    }

    /// The `n`th address of the block (0 is the network address), if the block has one.
    pub fn nth(&self, n: u32) -> Option<Ipv4Addr> {
        let size = 1u64 << (32 - u32::from(self.prefix));
        (u64::from(n) < size).then(|| Ipv4Addr::from(u32::from(self.network) + n))
    }

    /// The offset of `addr` in the block.
    pub fn offset(&self, addr: Ipv4Addr) -> Option<u32> {
        self.contains(addr)
            .then(|| u32::from(addr) - u32::from(self.network))
    }
}

const fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix as u32)
    }
}

impl FromStr for Ipv4Cidr {
    type Err = InvalidCidr;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidCidr(text.to_owned());
        let (addr, prefix) = text.split_once('/').ok_or_else(invalid)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| invalid())?;
        if prefix.is_empty() || prefix.len() > 2 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        let prefix: u8 = prefix.parse().map_err(|_| invalid())?;
        Self::new(addr, prefix).map_err(|_| invalid())
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_clears_host_bits() {
        let cidr: Ipv4Cidr = "10.244.3.7/24".parse().unwrap();
        assert_eq!(cidr.to_string(), "10.244.3.0/24");
        assert_eq!(cidr.broadcast(), Ipv4Addr::new(10, 244, 3, 255));
        assert_eq!(cidr.nth(1), Some(Ipv4Addr::new(10, 244, 3, 1)));
        assert_eq!(cidr.nth(256), None);
        assert_eq!(cidr.offset(Ipv4Addr::new(10, 244, 3, 9)), Some(9));
        assert_eq!(cidr.offset(Ipv4Addr::new(10, 244, 4, 9)), None);
        for bad in [
            "10.0.0.0",
            "10.0.0.0/33",
            "10.0.0.0/",
            "x/8",
            "10.0.0.0/+8",
            "fd00::/64",
        ] {
            assert!(bad.parse::<Ipv4Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn containment() {
        let cluster: Ipv4Cidr = "10.244.0.0/16".parse().unwrap();
        let node: Ipv4Cidr = "10.244.7.0/24".parse().unwrap();
        assert!(cluster.covers(&node));
        assert!(!node.covers(&cluster));
        assert!(cluster.contains(Ipv4Addr::new(10, 244, 255, 255)));
        assert!(!cluster.contains(Ipv4Addr::new(10, 245, 0, 0)));
        let all: Ipv4Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(Ipv4Addr::new(1, 2, 3, 4)));
        assert_eq!(all.broadcast(), Ipv4Addr::BROADCAST);
    }
}
