//! subPath resolution (upstream's `makeMounts` checks and `pkg/volume/util/subpath` on
//! Linux): a subPath must be relative without `..`; a missing subPath directory is created
//! without following symlinks out of the volume; the final path may pass through symlinks
//! only if it resolves inside the volume, and is then opened component by component with
//! `O_NOFOLLOW`, so a symlink swapped in afterwards cannot redirect it. The runtime
//! bind-mounts the returned descriptor (`/proc/self/fd/N`).
//!
//! It never mounts anything itself.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{Mode, SFlag, fstat};

/// Why a subPath is refused; texts are upstream's.
#[derive(Debug, thiserror::Error)]
pub enum SubPathError {
    #[error("error SubPath `{0}` must not be an absolute path")]
    Absolute(String),
    #[error("unable to provision SubPath `{0}`: must not contain '..'")]
    Backstep(String),
    #[error("path {0} is outside of allowed base {1}")]
    OutsideBase(String, String),
    #[error("subpath {0:?} not within volume path {1:?}")]
    NotWithinVolume(String, String),
    #[error("error resolving symlinks in {0:?}: {1}")]
    Resolve(String, std::io::Error),
    #[error("cannot create directory {0}: {1}")]
    Create(String, std::io::Error),
    #[error("cannot open {0}: {1}")]
    Open(String, nix::Error),
    #[error("unexpected symlink found {0}")]
    Symlink(String),
}

/// The checks `makeMounts` makes on a (possibly expanded) subPath.
pub fn validate_subpath(subpath: &str) -> Result<(), SubPathError> {
    if subpath.starts_with('/') {
        return Err(SubPathError::Absolute(subpath.to_owned()));
    }
    if subpath.split('/').any(|part| part == "..") {
        return Err(SubPathError::Backstep(subpath.to_owned()));
    }
    Ok(())
}

fn within(path: &Path, base: &Path) -> bool {
    path.starts_with(base)
}

fn resolve(path: &Path) -> Result<PathBuf, SubPathError> {
    std::fs::canonicalize(path).map_err(|e| SubPathError::Resolve(path.display().to_string(), e))
}

/// Creates `volume/subpath` as a directory with `perm` (upstream's `SafeMakeDir`): the
/// existing part may contain symlinks only if they resolve inside the volume; the missing
/// components are created one by one and must not turn into symlinks.
pub fn safe_make_dir(volume: &Path, subpath: &str, perm: u32) -> Result<(), SubPathError> {
    validate_subpath(subpath)?;
    let base = resolve(volume)?;
    let full = volume.join(subpath);
    // The longest existing prefix.
    let mut existing = volume.to_path_buf();
    let mut missing = Vec::new();
    for component in Path::new(subpath).components() {
        let Component::Normal(name) = component else {
            continue;
        };
        if missing.is_empty() && std::fs::symlink_metadata(existing.join(name)).is_ok() {
            existing.push(name);
        } else {
            missing.push(name.to_owned());
        }
    }
    let resolved = resolve(&existing)?;
    if !within(&resolved, &base) {
        return Err(SubPathError::OutsideBase(
            full.display().to_string(),
            base.display().to_string(),
        ));
    }
    let mut current = resolved;
    for name in missing {
        current.push(&name);
        match std::fs::create_dir(&current) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(SubPathError::Create(current.display().to_string(), e)),
        }
        let meta = std::fs::symlink_metadata(&current)
            .map_err(|e| SubPathError::Create(current.display().to_string(), e))?;
        if meta.file_type().is_symlink() || !meta.is_dir() {
            return Err(SubPathError::Symlink(current.display().to_string()));
        }
        std::fs::set_permissions(&current, std::fs::Permissions::from_mode(perm))
            .map_err(|e| SubPathError::Create(current.display().to_string(), e))?;
    }
    Ok(())
}

/// A subPath resolved inside its volume: the path and a descriptor (`O_PATH`) on it.
#[derive(Debug)]
pub struct SafeSubPath {
    pub path: PathBuf,
    pub fd: OwnedFd,
}

impl SafeSubPath {
    /// The path the runtime bind-mounts from, valid while `fd` is open.
    pub fn proc_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
    }
}

/// Resolves `volume/subpath` (upstream's `PrepareSafeSubpath` up to the bind mount).
pub fn resolve_subpath(volume: &Path, subpath: &str) -> Result<SafeSubPath, SubPathError> {
    validate_subpath(subpath)?;
    let base = resolve(volume)?;
    let full = volume.join(subpath);
    let resolved = resolve(&full)?;
    if !within(&resolved, &base) {
        return Err(SubPathError::NotWithinVolume(
            full.display().to_string(),
            volume.display().to_string(),
        ));
    }
    let fd = open_beneath(&base, &resolved)?;
    Ok(SafeSubPath { path: resolved, fd })
}

/// Upstream's `doSafeOpen`: opens `path` below `base` one component at a time, refusing
/// symlinks.
fn open_beneath(base: &Path, path: &Path) -> Result<OwnedFd, SubPathError> {
    let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut fd = nix::fcntl::open(base, flags | OFlag::O_DIRECTORY, Mode::empty())
        .map_err(|e| SubPathError::Open(base.display().to_string(), e))?;
    let rest = path.strip_prefix(base).unwrap_or(Path::new(""));
    let mut current = base.to_path_buf();
    for component in rest.components() {
        let Component::Normal(name) = component else {
            continue;
        };
        current.push(name);
        let next = openat(&fd, name, flags, Mode::empty())
            .map_err(|e| SubPathError::Open(current.display().to_string(), e))?;
        let stat = fstat(&next).map_err(|e| SubPathError::Open(current.display().to_string(), e))?;
        if SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFLNK {
            return Err(SubPathError::Symlink(current.display().to_string()));
        }
        fd = next;
    }
    Ok(fd)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn validation_texts() {
        assert_eq!(
            validate_subpath("/etc").unwrap_err().to_string(),
            "error SubPath `/etc` must not be an absolute path"
        );
        assert_eq!(
            validate_subpath("a/../b").unwrap_err().to_string(),
            "unable to provision SubPath `a/../b`: must not contain '..'"
        );
        assert!(validate_subpath("a/..b/c").is_ok());
    }

    #[test]
    fn resolves_inside_and_refuses_escapes() {
        let dir = tempfile::tempdir().unwrap();
        let volume = dir.path().join("vol");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(volume.join("data/inner")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(volume.join("data/inner/f"), "ok").unwrap();
        symlink("data/inner", volume.join("good")).unwrap();
        symlink(&outside, volume.join("evil")).unwrap();
        symlink("../../outside", volume.join("data/up")).unwrap();

        let s = resolve_subpath(&volume, "data/inner/f").unwrap();
        assert_eq!(std::fs::read_to_string(s.proc_path()).unwrap(), "ok");
        let s = resolve_subpath(&volume, "good").unwrap();
        assert_eq!(s.path, std::fs::canonicalize(volume.join("data/inner")).unwrap());

        let err = resolve_subpath(&volume, "evil").unwrap_err();
        assert!(matches!(err, SubPathError::NotWithinVolume(..)), "{err}");
        assert!(err.to_string().starts_with("subpath \""));
        assert!(matches!(
            resolve_subpath(&volume, "data/up").unwrap_err(),
            SubPathError::NotWithinVolume(..)
        ));
        assert!(matches!(
            resolve_subpath(&volume, "../outside").unwrap_err(),
            SubPathError::Backstep(..)
        ));
    }

    #[test]
    fn make_dir_stays_inside() {
        let dir = tempfile::tempdir().unwrap();
        let volume = dir.path().join("vol");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&volume).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        symlink(&outside, volume.join("evil")).unwrap();

        safe_make_dir(&volume, "a/b/c", 0o750).unwrap();
        assert!(volume.join("a/b/c").is_dir());
        assert_eq!(
            std::fs::metadata(volume.join("a/b/c"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o750
        );

        let err = safe_make_dir(&volume, "evil/x", 0o755).unwrap_err();
        assert!(matches!(err, SubPathError::OutsideBase(..)), "{err}");
        assert!(!outside.join("x").exists());
    }
}
