//! Pod addresses from the node's pod range, as leases kept on disk so that they survive
//! restarts: one file per leased address naming its owner (a pod UID), and the last address
//! handed out, so that addresses are reused as late as possible (like CNI's host-local).
//!
//! Owns the lease directory only; it configures no interface.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::cidr::Ipv4Cidr;

/// Why an address could not be leased or released.
#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    #[error("no addresses left in {0}")]
    Exhausted(Ipv4Cidr),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> IpamError {
    let what = what.into();
    move |source| IpamError::Io { what, source }
}

const LAST_RESERVED: &str = "last_reserved_ip";

/// The leases of one pod range. The range's first address is the gateway (the bridge's
/// address); its network and broadcast addresses are never leased.
#[derive(Debug)]
pub struct Ipam {
    dir: PathBuf,
    range: Ipv4Cidr,
    lock: Mutex<()>,
}

impl Ipam {
    /// The leases of `range`, kept under `root` (one directory per range).
    pub fn new(root: &Path, range: Ipv4Cidr) -> Self {
        let dir = root.join(format!("{}-{}", range.network(), range.prefix()));
        Self {
            dir,
            range,
            lock: Mutex::new(()),
        }
    }

    pub fn range(&self) -> Ipv4Cidr {
        self.range
    }

    /// The gateway of the range (its first address).
    pub fn gateway(&self) -> Option<Ipv4Addr> {
        self.range.nth(1)
    }

    /// The address leased to `owner`, leasing the next free one when it has none.
    pub fn allocate(&self, owner: &str) -> Result<Ipv4Addr, IpamError> {
        let _guard = self
            .lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        std::fs::create_dir_all(&self.dir).map_err(io(format!("creating {}", self.dir.display())))?;
        let leases = self.read_leases()?;
        if let Some((addr, _)) = leases.iter().find(|(_, o)| o == owner) {
            return Ok(*addr);
        }
        let size: u64 = 1 << (32 - u32::from(self.range.prefix()));
        // Usable offsets: 2 ..= size-2 (0 network, 1 gateway, size-1 broadcast).
        if size < 4 {
            return Err(IpamError::Exhausted(self.range));
        }
        let first = 2u64;
        let last = size - 2;
        let taken: std::collections::HashSet<Ipv4Addr> = leases.iter().map(|(a, _)| *a).collect();
        let start = std::fs::read_to_string(self.dir.join(LAST_RESERVED))
            .ok()
            .and_then(|text| text.trim().parse::<Ipv4Addr>().ok())
            .and_then(|addr| self.range.offset(addr))
            .map_or(first, |offset| u64::from(offset) + 1);
        let count = last - first + 1;
        for step in 0..count {
            let offset = first + (start.saturating_sub(first) + step) % count;
            let Some(addr) = u32::try_from(offset).ok().and_then(|o| self.range.nth(o)) else {
                continue;
            };
            if taken.contains(&addr) {
                continue;
            }
            let path = self.dir.join(addr.to_string());
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut file) => {
                    use std::io::Write;
                    file.write_all(owner.as_bytes())
                        .and_then(|()| file.sync_all())
                        .map_err(io(format!("writing {}", path.display())))?;
                }
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(err) => return Err(io(format!("creating {}", path.display()))(err)),
            }
            let last_path = self.dir.join(LAST_RESERVED);
            std::fs::write(&last_path, addr.to_string())
                .map_err(io(format!("writing {}", last_path.display())))?;
            return Ok(addr);
        }
        Err(IpamError::Exhausted(self.range))
    }

    /// Releases every address leased to `owner`; returns them.
    pub fn release(&self, owner: &str) -> Result<Vec<Ipv4Addr>, IpamError> {
        let _guard = self
            .lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut released = Vec::new();
        for (addr, leased_to) in self.read_leases()? {
            if leased_to == owner {
                let path = self.dir.join(addr.to_string());
                match std::fs::remove_file(&path) {
                    Ok(()) => released.push(addr),
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                    Err(err) => return Err(io(format!("removing {}", path.display()))(err)),
                }
            }
        }
        Ok(released)
    }

    /// Every lease: address and owner.
    pub fn leases(&self) -> Result<Vec<(Ipv4Addr, String)>, IpamError> {
        let _guard = self
            .lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.read_leases()
    }

    fn read_leases(&self) -> Result<Vec<(Ipv4Addr, String)>, IpamError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(io(format!("reading {}", self.dir.display()))(err)),
        };
        let mut leases = Vec::new();
        for entry in entries.flatten() {
            let Some(addr) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<Ipv4Addr>().ok())
            else {
                continue;
            };
            // An empty file is a lease being written: its address is taken all the same.
            let owner = std::fs::read_to_string(entry.path()).unwrap_or_default();
            leases.push((addr, owner.trim().to_owned()));
        }
        leases.sort();
        Ok(leases)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipam(dir: &Path, range: &str) -> Ipam {
        Ipam::new(dir, range.parse().unwrap())
    }

    #[test]
    fn leases_are_stable_per_owner_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let first = ipam(dir.path(), "10.244.1.0/24");
        let a = first.allocate("pod-a").unwrap();
        let b = first.allocate("pod-b").unwrap();
        assert_eq!(a, Ipv4Addr::new(10, 244, 1, 2));
        assert_eq!(b, Ipv4Addr::new(10, 244, 1, 3));
        assert_eq!(first.allocate("pod-a").unwrap(), a);
        drop(first);
        let again = ipam(dir.path(), "10.244.1.0/24");
        assert_eq!(again.allocate("pod-b").unwrap(), b);
        assert_eq!(
            again.leases().unwrap(),
            vec![(a, "pod-a".to_owned()), (b, "pod-b".to_owned())]
        );
    }

    #[test]
    fn released_addresses_are_reused_last() {
        let dir = tempfile::tempdir().unwrap();
        let ipam = ipam(dir.path(), "10.244.1.0/29");
        // Usable: .2 .. .6 (5 addresses).
        let a = ipam.allocate("a").unwrap();
        ipam.allocate("b").unwrap();
        assert_eq!(ipam.release("a").unwrap(), vec![a]);
        assert!(ipam.release("a").unwrap().is_empty());
        let next: Vec<_> = ["c", "d", "e", "f"]
            .iter()
            .map(|o| ipam.allocate(o).unwrap())
            .collect();
        assert_eq!(
            next,
            [4, 5, 6, 2].map(|n| Ipv4Addr::new(10, 244, 1, n)).to_vec(),
            "the released .2 comes back only after the rest of the range"
        );
        assert!(matches!(ipam.allocate("g"), Err(IpamError::Exhausted(_))));
        assert_eq!(ipam.gateway(), Some(Ipv4Addr::new(10, 244, 1, 1)));
    }
}
