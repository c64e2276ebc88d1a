//! Mounting a container's root filesystem: the image's unpacked layers as overlayfs lower
//! dirs, with an upper and a work dir per container. Root only. It does not decide where
//! containers live; callers pass the container's directory.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use rustix::mount::{MountFlags, UnmountFlags};

use super::Error;

/// The most bytes the kernel accepts in a mount's data (one page).
const MAX_MOUNT_DATA: usize = 4095;

/// The upper, work and merged directories of one container under `container_dir`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootfsDirs {
    pub upper: PathBuf,
    pub work: PathBuf,
    pub merged: PathBuf,
}

impl RootfsDirs {
    pub fn new(container_dir: &Path) -> RootfsDirs {
        RootfsDirs {
            upper: container_dir.join("upper"),
            work: container_dir.join("work"),
            merged: container_dir.join("rootfs"),
        }
    }
}

/// overlayfs's mount data for these layers (`lowerdirs` top-most first).
pub fn overlay_options(lowerdirs: &[PathBuf], dirs: &RootfsDirs) -> Result<String, Error> {
    let mut lower = Vec::new();
    for dir in lowerdirs {
        lower.push(checked(dir)?);
    }
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        checked(&dirs.upper)?,
        checked(&dirs.work)?
    );
    if options.len() > MAX_MOUNT_DATA {
        return Err(Error::Io {
            path: dirs.merged.clone(),
            source: std::io::Error::other(format!(
                "{} layers need {} bytes of overlay options, over the kernel's {MAX_MOUNT_DATA}",
                lowerdirs.len(),
                options.len()
            )),
        });
    }
    Ok(options)
}

/// A path usable in overlay options: absolute, UTF-8, without `,` `:` or `\`.
fn checked(path: &Path) -> Result<&str, Error> {
    match path.to_str() {
        Some(s) if path.is_absolute() && !s.contains([',', ':', '\\']) => Ok(s),
        _ => Err(Error::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other("overlay paths must be absolute and free of ',', ':' and '\\'"),
        }),
    }
}

/// Creates the container's upper/work/merged dirs and mounts overlayfs on the merged one.
pub fn mount_overlay(lowerdirs: &[PathBuf], container_dir: &Path) -> Result<RootfsDirs, Error> {
    let dirs = RootfsDirs::new(container_dir);
    let options = overlay_options(lowerdirs, &dirs)?;
    if !rustix::process::geteuid().is_root() {
        return Err(Error::NeedsRoot("mounting overlayfs".to_owned()));
    }
    for dir in [&dirs.upper, &dirs.work, &dirs.merged] {
        std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
    }
    let data = CString::new(options).map_err(|err| Error::Io {
        path: dirs.merged.clone(),
        source: std::io::Error::other(err),
    })?;
    rustix::mount::mount(
        "overlay",
        &dirs.merged,
        "overlay",
        MountFlags::empty(),
        data.as_c_str(),
    )
    .map_err(Error::sys(format!(
        "mounting overlay on {}",
        dirs.merged.display()
    )))?;
    Ok(dirs)
}

/// Unmounts a container's root filesystem (lazily if it is still busy); not mounted is fine.
pub fn unmount_overlay(merged: &Path) -> Result<(), Error> {
    if !rustix::process::geteuid().is_root() {
        return Err(Error::NeedsRoot("unmounting overlayfs".to_owned()));
    }
    match rustix::mount::unmount(merged, UnmountFlags::empty()) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOENT) => Ok(()),
        Err(rustix::io::Errno::BUSY) => rustix::mount::unmount(merged, UnmountFlags::DETACH)
            .map_err(Error::sys(format!("unmounting {}", merged.display()))),
        Err(err) => Err(Error::sys(format!("unmounting {}", merged.display()))(err)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn options_list_lower_dirs_top_first_and_refuse_bad_paths() {
        let dirs = RootfsDirs::new(Path::new("/data/c1"));
        let lower = vec![PathBuf::from("/s/top"), PathBuf::from("/s/bottom")];
        assert_eq!(
            overlay_options(&lower, &dirs).unwrap(),
            "lowerdir=/s/top:/s/bottom,upperdir=/data/c1/upper,workdir=/data/c1/work"
        );
        assert!(overlay_options(&[PathBuf::from("/a:b")], &dirs).is_err());
        assert!(overlay_options(&[PathBuf::from("relative")], &dirs).is_err());
        let many: Vec<_> = (0..200)
            .map(|i| PathBuf::from(format!("/very/long/snapshot/path/{i:060}")))
            .collect();
        assert!(overlay_options(&many, &dirs).is_err());
    }
}
