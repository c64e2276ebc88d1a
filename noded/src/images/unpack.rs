//! Unpacks one layer tar (plain or gzip) into a directory for overlayfs: OCI whiteouts
//! become overlay whiteouts (`.wh.NAME` -> a 0:0 character device, `.wh..wh..opq` ->
//! `trusted.overlay.opaque=y`), ownership, modes, symlinks, hardlinks and (as root) device
//! nodes are kept, and no entry may write outside the directory. It never follows a
//! symlink inside the layer.

use std::fs::{File, Permissions};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use rustix::fs::{AtFlags, CWD, FileType, Mode, XattrFlags};
use tar::EntryType;

use super::Error;
use super::digest::HashingReader;

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";

/// What a layer entry's name means to the OCI whiteout convention.
#[derive(Debug, PartialEq, Eq)]
pub enum WhiteoutKind {
    /// An ordinary entry.
    None,
    /// `dir/.wh.NAME`: `dir/NAME` is deleted.
    Whiteout(PathBuf),
    /// `dir/.wh..wh..opq`: `dir` hides everything below it in lower layers.
    Opaque(PathBuf),
    /// Other `.wh..wh.` names (aufs metadata): ignored.
    Ignored,
}

/// Classifies a normalised layer path.
pub fn classify_whiteout(path: &Path) -> WhiteoutKind {
    let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
        return WhiteoutKind::None;
    };
    let parent = path.parent().map(Path::to_path_buf).unwrap_or_default();
    if name == OPAQUE_WHITEOUT {
        WhiteoutKind::Opaque(parent)
    } else if name.starts_with(".wh..wh.") {
        WhiteoutKind::Ignored
    } else if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
        if hidden.is_empty() {
            WhiteoutKind::Ignored
        } else {
            WhiteoutKind::Whiteout(parent.join(hidden))
        }
    } else {
        WhiteoutKind::None
    }
}

/// A layer path made relative, with `.` removed; `..` or an empty result is refused.
pub(crate) fn normalise_entry_path(path: &Path) -> Result<Option<PathBuf>, Error> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(Error::PathTraversal(path.display().to_string()));
            }
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Unpacks `layer` (a tar, optionally gzip-compressed) into `dest`. With `diff_id`, the
/// uncompressed stream must hash to it.
pub fn unpack_layer(layer: impl Read, dest: &Path, diff_id: Option<&str>) -> Result<(), Error> {
    let mut buffered = BufReader::new(layer);
    let magic = buffered.fill_buf().map_err(Error::io(dest))?.to_vec();
    let decompressed: Box<dyn Read> = if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(buffered))
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Err(Error::UnsupportedMediaType("zstd-compressed layer".to_owned()));
    } else {
        Box::new(buffered)
    };
    let mut hashing = HashingReader::new(decompressed);
    Unpacker {
        dest,
        root: is_root(),
        dirs: Vec::new(),
    }
    .run(&mut tar::Archive::new(&mut hashing))?;
    let actual = hashing.finish().map_err(Error::io(dest))?;
    if let Some(expected) = diff_id
        && expected != actual
    {
        return Err(Error::DigestMismatch {
            expected: expected.to_owned(),
            actual,
        });
    }
    Ok(())
}

struct Unpacker<'a> {
    dest: &'a Path,
    root: bool,
    /// Directories whose mode and mtime are set last, so read-only ones can be filled.
    dirs: Vec<(PathBuf, u32, u64)>,
}

impl Unpacker<'_> {
    fn run<R: Read>(&mut self, archive: &mut tar::Archive<R>) -> Result<(), Error> {
        let entries = archive.entries().map_err(Error::io(self.dest))?;
        for entry in entries {
            let mut entry = entry.map_err(Error::io(self.dest))?;
            let raw_path = entry.path().map_err(Error::io(self.dest))?.into_owned();
            let Some(rel) = normalise_entry_path(&raw_path)? else {
                continue;
            };
            self.entry(&mut entry, &rel)?;
        }
        for (path, mode, mtime) in self.dirs.iter().rev() {
            std::fs::set_permissions(path, Permissions::from_mode(*mode)).map_err(Error::io(path))?;
            set_mtime(path, *mtime);
        }
        Ok(())
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>, rel: &Path) -> Result<(), Error> {
        let header = entry.header();
        let kind = header.entry_type();
        if matches!(
            kind,
            EntryType::XGlobalHeader | EntryType::XHeader | EntryType::GNULongName | EntryType::GNULongLink
        ) {
            return Ok(());
        }
        match classify_whiteout(rel) {
            WhiteoutKind::None => {}
            WhiteoutKind::Ignored => return Ok(()),
            WhiteoutKind::Whiteout(hidden) => {
                let path = self.prepare_parent(&hidden)?;
                remove_existing(&path)?;
                if !self.root {
                    return Err(Error::NeedsRoot(format!("the whiteout {}", rel.display())));
                }
                rustix::fs::mknodat(
                    CWD,
                    &path,
                    FileType::CharacterDevice,
                    Mode::empty(),
                    rustix::fs::makedev(0, 0),
                )
                .map_err(Error::sys(format!("creating the whiteout {}", path.display())))?;
                return Ok(());
            }
            WhiteoutKind::Opaque(dir) => {
                let path = if dir.as_os_str().is_empty() {
                    self.dest.to_path_buf()
                } else {
                    let path = self.prepare_parent(&dir)?;
                    if !path.is_dir() {
                        remove_existing(&path)?;
                        std::fs::create_dir(&path).map_err(Error::io(&path))?;
                    }
                    path
                };
                if !self.root {
                    return Err(Error::NeedsRoot(format!("the opaque whiteout {}", rel.display())));
                }
                rustix::fs::lsetxattr(&path, "trusted.overlay.opaque", b"y", XattrFlags::empty())
                    .map_err(Error::sys(format!("marking {} opaque", path.display())))?;
                return Ok(());
            }
        }
        let path = self.prepare_parent(rel)?;
        let mode = header.mode().map_err(Error::io(&path))? & 0o7777;
        let uid = header.uid().map_err(Error::io(&path))?;
        let gid = header.gid().map_err(Error::io(&path))?;
        let mtime = header.mtime().unwrap_or(0);
        match kind {
            EntryType::Directory => {
                if !path.symlink_metadata().is_ok_and(|meta| meta.is_dir()) {
                    remove_existing(&path)?;
                    std::fs::create_dir(&path).map_err(Error::io(&path))?;
                }
                self.chown(&path, uid, gid)?;
                self.dirs.push((path, mode, mtime));
                return Ok(());
            }
            EntryType::Regular | EntryType::Continuous => {
                remove_existing(&path)?;
                let mut file = File::options()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .map_err(Error::io(&path))?;
                std::io::copy(entry, &mut file).map_err(Error::io(&path))?;
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(Error::io(&path))?
                    .ok_or_else(|| {
                        Error::PathTraversal(format!("{} (symlink without target)", rel.display()))
                    })?
                    .into_owned();
                remove_existing(&path)?;
                std::os::unix::fs::symlink(&target, &path).map_err(Error::io(&path))?;
                self.chown(&path, uid, gid)?;
                return Ok(());
            }
            EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(Error::io(&path))?
                    .ok_or_else(|| {
                        Error::PathTraversal(format!("{} (hardlink without target)", rel.display()))
                    })?
                    .into_owned();
                let target_rel = normalise_entry_path(&target)?.ok_or_else(|| {
                    Error::PathTraversal(format!("{} -> {}", rel.display(), target.display()))
                })?;
                let target_path = self.prepare_parent(&target_rel)?;
                remove_existing(&path)?;
                std::fs::hard_link(&target_path, &path).map_err(Error::io(&path))?;
                return Ok(());
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                remove_existing(&path)?;
                let file_type = match kind {
                    EntryType::Char => FileType::CharacterDevice,
                    EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                if file_type != FileType::Fifo && !self.root {
                    tracing::debug!(path = %path.display(), "skipping a device node: not root");
                    return Ok(());
                }
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                rustix::fs::mknodat(
                    CWD,
                    &path,
                    file_type,
                    Mode::from_raw_mode(mode),
                    rustix::fs::makedev(major, minor),
                )
                .map_err(Error::sys(format!("creating {}", path.display())))?;
            }
            other => {
                tracing::debug!(path = %path.display(), kind = ?other, "skipping an unsupported tar entry");
                return Ok(());
            }
        }
        self.chown(&path, uid, gid)?;
        std::fs::set_permissions(&path, Permissions::from_mode(mode)).map_err(Error::io(&path))?;
        set_mtime(&path, mtime);
        Ok(())
    }

    /// The absolute path of `rel`, after creating its missing parents and checking that
    /// none of them is a symlink (which could lead outside the layer). Checked for every
    /// entry: an earlier entry may have replaced a directory with a symlink.
    fn prepare_parent(&self, rel: &Path) -> Result<PathBuf, Error> {
        let mut current = self.dest.to_path_buf();
        let parts: Vec<_> = rel.components().collect();
        for component in &parts[..parts.len().saturating_sub(1)] {
            current.push(component);
            match current.symlink_metadata() {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => return Err(Error::PathTraversal(rel.display().to_string())),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                    std::fs::create_dir(&current).map_err(Error::io(&current))?;
                }
                Err(err) => return Err(Error::io(&current)(err)),
            }
        }
        Ok(self.dest.join(rel))
    }

    fn chown(&self, path: &Path, uid: u64, gid: u64) -> Result<(), Error> {
        if !self.root {
            return Ok(());
        }
        let (Ok(uid), Ok(gid)) = (u32::try_from(uid), u32::try_from(gid)) else {
            return Err(Error::PathTraversal(format!(
                "{} (owner {uid}:{gid} out of range)",
                path.display()
            )));
        };
        rustix::fs::chownat(
            CWD,
            path,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(Error::sys(format!("chown {}", path.display())))
    }
}

/// Removes whatever is at `path` (a directory with its contents), never following symlinks.
fn remove_existing(path: &Path) -> Result<(), Error> {
    match path.symlink_metadata() {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path).map_err(Error::io(path)),
        Ok(_) => std::fs::remove_file(path).map_err(Error::io(path)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(Error::io(path)(err)),
    }
}

/// Best effort: a wrong mtime breaks nothing a container relies on.
fn set_mtime(path: &Path, mtime: u64) {
    let time = SystemTime::UNIX_EPOCH + Duration::from_secs(mtime);
    if let Ok(file) = File::open(path) {
        let _ = file.set_modified(time);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    /// A tar header with a raw name, so tests can write names the tar crate refuses.
    fn raw_entry(
        builder: &mut tar::Builder<Vec<u8>>,
        name: &str,
        kind: EntryType,
        link: Option<&str>,
        data: &[u8],
    ) {
        let mut header = tar::Header::new_ustar();
        header.as_mut_bytes()[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(link) = link {
            header.as_mut_bytes()[157..157 + link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_entry_type(kind);
        header.set_mode(if kind == EntryType::Directory {
            0o755
        } else {
            0o644
        });
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_size(data.len() as u64);
        header.set_cksum();
        builder.append(&header, data).unwrap();
    }

    fn layer(entries: &[(&str, EntryType, Option<&str>, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, kind, link, data) in entries {
            raw_entry(&mut builder, name, *kind, *link, data);
        }
        builder.into_inner().unwrap()
    }

    #[test]
    fn whiteout_names_are_classified() {
        assert_eq!(classify_whiteout(Path::new("etc/passwd")), WhiteoutKind::None);
        assert_eq!(
            classify_whiteout(Path::new("etc/.wh.passwd")),
            WhiteoutKind::Whiteout("etc/passwd".into())
        );
        assert_eq!(
            classify_whiteout(Path::new(".wh.tmp")),
            WhiteoutKind::Whiteout("tmp".into())
        );
        assert_eq!(
            classify_whiteout(Path::new("var/.wh..wh..opq")),
            WhiteoutKind::Opaque("var".into())
        );
        assert_eq!(
            classify_whiteout(Path::new(".wh..wh..opq")),
            WhiteoutKind::Opaque("".into())
        );
        assert_eq!(
            classify_whiteout(Path::new(".wh..wh.plnk")),
            WhiteoutKind::Ignored
        );
        assert_eq!(classify_whiteout(Path::new("etc/.whiteout")), WhiteoutKind::None);
    }

    #[test]
    fn entry_paths_are_normalised_and_traversal_refused() {
        assert_eq!(
            normalise_entry_path(Path::new("./a/./b")).unwrap(),
            Some("a/b".into())
        );
        assert_eq!(
            normalise_entry_path(Path::new("/etc/passwd")).unwrap(),
            Some("etc/passwd".into())
        );
        assert_eq!(normalise_entry_path(Path::new("./")).unwrap(), None);
        assert!(matches!(
            normalise_entry_path(Path::new("a/../../etc")),
            Err(Error::PathTraversal(_))
        ));
    }

    #[test]
    fn traversal_through_dotdot_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("layer");
        std::fs::create_dir(&dest).unwrap();
        let tar = layer(&[("../escaped", EntryType::Regular, None, b"x")]);
        let err = unpack_layer(&tar[..], &dest, None).unwrap_err();
        assert!(matches!(err, Error::PathTraversal(_)), "{err}");
        assert!(!dir.path().join("escaped").exists());
    }

    #[test]
    fn traversal_through_a_symlink_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("layer");
        let outside = dir.path().join("outside");
        std::fs::create_dir(&dest).unwrap();
        std::fs::create_dir(&outside).unwrap();
        let tar = layer(&[
            ("link", EntryType::Symlink, Some(outside.to_str().unwrap()), b""),
            ("link/file", EntryType::Regular, None, b"x"),
        ]);
        let err = unpack_layer(&tar[..], &dest, None).unwrap_err();
        assert!(matches!(err, Error::PathTraversal(_)), "{err}");
        assert!(!outside.join("file").exists());
        let tar = layer(&[("hard", EntryType::Link, Some("../../etc/passwd"), b"")]);
        let err = unpack_layer(&tar[..], &dest, None).unwrap_err();
        assert!(matches!(err, Error::PathTraversal(_)), "{err}");
    }

    #[test]
    fn files_links_and_modes_are_kept_and_diff_id_checked() {
        let dir = tempfile::tempdir().unwrap();
        let tar = layer(&[
            ("bin/", EntryType::Directory, None, b""),
            ("bin/tool", EntryType::Regular, None, b"#!/bin/sh\n"),
            ("bin/alias", EntryType::Symlink, Some("tool"), b""),
            ("bin/hard", EntryType::Link, Some("bin/tool"), b""),
            ("etc/deep/file", EntryType::Regular, None, b"deep"),
        ]);
        let diff_id = super::super::sha256_digest(&tar);
        let dest = dir.path().join("ok");
        std::fs::create_dir(&dest).unwrap();
        unpack_layer(&tar[..], &dest, Some(&diff_id)).unwrap();
        assert_eq!(std::fs::read(dest.join("bin/tool")).unwrap(), b"#!/bin/sh\n");
        assert_eq!(
            std::fs::read_link(dest.join("bin/alias")).unwrap(),
            Path::new("tool")
        );
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            dest.join("bin/hard").metadata().unwrap().ino(),
            dest.join("bin/tool").metadata().unwrap().ino()
        );
        assert_eq!(dest.join("bin/tool").metadata().unwrap().mode() & 0o7777, 0o644);
        assert_eq!(std::fs::read(dest.join("etc/deep/file")).unwrap(), b"deep");

        let gz = {
            use std::io::Write;
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(&tar).unwrap();
            encoder.finish().unwrap()
        };
        let dest = dir.path().join("gz");
        std::fs::create_dir(&dest).unwrap();
        unpack_layer(&gz[..], &dest, Some(&diff_id)).unwrap();
        assert!(
            dest.join("bin/alias")
                .symlink_metadata()
                .unwrap()
                .file_type()
                .is_symlink()
        );

        let dest = dir.path().join("bad");
        std::fs::create_dir(&dest).unwrap();
        let wrong = super::super::sha256_digest(b"not this layer");
        let err = unpack_layer(&tar[..], &dest, Some(&wrong)).unwrap_err();
        assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    }

    #[test]
    fn whiteouts_become_overlay_whiteouts_as_root() {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let tar = layer(&[
            ("etc/.wh.passwd", EntryType::Regular, None, b""),
            ("var/.wh..wh..opq", EntryType::Regular, None, b""),
            ("var/kept", EntryType::Regular, None, b"k"),
        ]);
        unpack_layer(&tar[..], dir.path(), None).unwrap();
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let meta = dir.path().join("etc/passwd").symlink_metadata().unwrap();
        assert!(meta.file_type().is_char_device());
        assert_eq!(meta.rdev(), 0);
        assert!(!dir.path().join("etc/.wh.passwd").exists());
        let mut value = [0u8; 4];
        let n = rustix::fs::lgetxattr(dir.path().join("var"), "trusted.overlay.opaque", &mut value).unwrap();
        assert_eq!(&value[..n], b"y");
        assert!(!dir.path().join("var/.wh..wh..opq").exists());
        assert_eq!(std::fs::read(dir.path().join("var/kept")).unwrap(), b"k");
    }
}
