//! fsGroup ownership of a volume (upstream's `SetVolumeOwnership` on Linux): every entry gets
//! the group, files gain group read (and write unless the volume is read-only), directories
//! also gain setgid and group/owner execute; symlinks get the group but keep their mode.
//!
//! Changing a group is only possible as root (or for a group the process is in); callers run
//! it as root. It walks only the directory it is given.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

const RW_MASK: u32 = 0o660;
const RO_MASK: u32 = 0o440;
const EXEC_MASK: u32 = 0o110;
const SETGID: u32 = 0o2000;

/// Why ownership could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum OwnershipError {
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
}

/// Applies `fs_group` to `dir` and everything below it (symlinks are not followed).
pub fn set_volume_ownership(dir: &Path, fs_group: u32, read_only: bool) -> Result<(), OwnershipError> {
    walk(dir, &mut |path| change(path, fs_group, read_only))
}

/// Upstream's `requiresPermissionChange` (for `fsGroupChangePolicy: OnRootMismatch`): whether
/// the volume's root lacks the group, the setgid bit or the group permissions.
pub fn requires_permission_change(dir: &Path, fs_group: u32, read_only: bool) -> bool {
    let Ok(meta) = std::fs::metadata(dir) else {
        return true;
    };
    if meta.gid() != fs_group || !meta.is_dir() {
        return true;
    }
    let wanted = if read_only { RO_MASK } else { RW_MASK } | EXEC_MASK;
    meta.mode() & wanted != wanted || meta.mode() & SETGID == 0
}

fn walk(path: &Path, f: &mut dyn FnMut(&Path) -> Result<(), OwnershipError>) -> Result<(), OwnershipError> {
    let meta =
        std::fs::symlink_metadata(path).map_err(|e| OwnershipError::Io(path.display().to_string(), e))?;
    f(path)?;
    if meta.is_dir() {
        let entries =
            std::fs::read_dir(path).map_err(|e| OwnershipError::Io(path.display().to_string(), e))?;
        for entry in entries {
            let entry = entry.map_err(|e| OwnershipError::Io(path.display().to_string(), e))?;
            walk(&entry.path(), f)?;
        }
    }
    Ok(())
}

fn change(path: &Path, fs_group: u32, read_only: bool) -> Result<(), OwnershipError> {
    // Upstream logs and goes on when lchown or chmod fail; so does this.
    if let Err(e) = std::os::unix::fs::lchown(path, None, Some(fs_group)) {
        tracing::warn!(path = %path.display(), error = %e, "lchown failed");
    }
    let meta =
        std::fs::symlink_metadata(path).map_err(|e| OwnershipError::Io(path.display().to_string(), e))?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let mut mask = if read_only { RO_MASK } else { RW_MASK };
    if meta.is_dir() {
        mask |= SETGID | EXEC_MASK;
    }
    let mode = (meta.mode() & 0o7777) | mask;
    if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)) {
        tracing::warn!(path = %path.display(), error = %e, "chmod failed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn modes_follow_upstream_masks() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("d")).unwrap();
        std::fs::set_permissions(root.join("d"), std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::write(root.join("d/f"), "x").unwrap();
        std::fs::set_permissions(root.join("d/f"), std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::symlink("d/f", root.join("link")).unwrap();
        let gid = nix::unistd::getegid().as_raw();
        set_volume_ownership(root, gid, true).unwrap();
        let mode = |p: &str| std::fs::symlink_metadata(root.join(p)).unwrap().mode() & 0o7777;
        assert_eq!(mode("d"), 0o2750);
        assert_eq!(mode("d/f"), 0o640);
        set_volume_ownership(root, gid, false).unwrap();
        assert_eq!(mode("d/f"), 0o660);
        assert_eq!(mode("d"), 0o2770);
    }

    #[test]
    fn the_root_decides_whether_a_change_is_needed() {
        let dir = tempfile::tempdir().unwrap();
        let gid = nix::unistd::getegid().as_raw();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(requires_permission_change(dir.path(), gid, false));
        set_volume_ownership(dir.path(), gid, false).unwrap();
        assert!(!requires_permission_change(dir.path(), gid, false));
        assert!(requires_permission_change(dir.path(), gid + 1, false));
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o2750)).unwrap();
        assert!(requires_permission_change(dir.path(), gid, false));
        assert!(!requires_permission_change(dir.path(), gid, true));
    }

    #[test]
    fn group_changes_as_root() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), "x").unwrap();
        set_volume_ownership(dir.path(), 4321, true).unwrap();
        assert_eq!(std::fs::metadata(dir.path().join("f")).unwrap().gid(), 4321);
        assert_eq!(std::fs::metadata(dir.path()).unwrap().gid(), 4321);
    }
}
