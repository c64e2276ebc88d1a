//! The atomic writer (upstream's `pkg/volume/util/atomic_writer.go`): a volume's files live in
//! a timestamped directory `..YYYY_MM_DD_HH_MM_SS.<random>`; the `..data` symlink names the
//! current one and is swapped with one `rename(2)`, so readers see either the old or the new
//! set of files, never a mix. User-visible names are relative symlinks through `..data`.
//!
//! It owns only the target directory's contents; the payload and ownership policy come from
//! the caller.

use std::collections::{BTreeMap, BTreeSet};
use std::io::ErrorKind;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

const DATA_DIR_NAME: &str = "..data";
const NEW_DATA_DIR_NAME: &str = "..data_tmp";
const MAX_FILE_NAME_LENGTH: usize = 255;
const MAX_PATH_LENGTH: usize = 4096;

/// One file of a payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileProjection {
    pub data: Vec<u8>,
    /// Permission bits, e.g. `0o644`.
    pub mode: u32,
    /// Owner to set (projected service account tokens with runAsUser).
    pub fs_user: Option<u32>,
}

/// Why a write failed; path validation texts are upstream's.
#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    #[error("invalid path: must not be empty: {0:?}")]
    EmptyPath(String),
    #[error("invalid path: must be relative path: {0}")]
    AbsolutePath(String),
    #[error("invalid path: must be less than or equal to {MAX_PATH_LENGTH} characters")]
    PathTooLong,
    #[error("invalid path: must not contain '..': {0}")]
    Backstep(String),
    #[error("invalid path: filenames must be less than or equal to {MAX_FILE_NAME_LENGTH} characters")]
    NameTooLong,
    #[error("invalid path: must not start with '..': {0}")]
    DotDotPrefix(String),
    #[error("stat {0}: no such file or directory")]
    NoTarget(String),
    #[error("{context}: {path}: {source}")]
    Io {
        context: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Perms(String),
}

fn io(context: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> WriterError {
    let path = path.display().to_string();
    move |source| WriterError::Io {
        context,
        path,
        source,
    }
}

/// Upstream's `validatePath`.
pub fn validate_path(target: &str) -> Result<(), WriterError> {
    if target.is_empty() {
        return Err(WriterError::EmptyPath(target.to_owned()));
    }
    if target.starts_with('/') {
        return Err(WriterError::AbsolutePath(target.to_owned()));
    }
    if target.len() > MAX_PATH_LENGTH {
        return Err(WriterError::PathTooLong);
    }
    let items: Vec<&str> = target.split('/').collect();
    for item in &items {
        if *item == ".." {
            return Err(WriterError::Backstep(target.to_owned()));
        }
        if item.len() > MAX_FILE_NAME_LENGTH {
            return Err(WriterError::NameTooLong);
        }
    }
    if items[0].starts_with("..") && items[0].len() > 2 {
        return Err(WriterError::DotDotPrefix(target.to_owned()));
    }
    Ok(())
}

/// Go's `filepath.Clean` for relative paths without `..` (validated before).
fn clean(path: &str) -> String {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    if parts.is_empty() {
        ".".to_owned()
    } else {
        parts.join("/")
    }
}

/// A hook run on a new timestamped directory (by name) before it is published.
pub type SetPerms<'a> = &'a dyn Fn(&str) -> Result<(), WriterError>;

/// Writes payloads into one target directory.
#[derive(Debug)]
pub struct AtomicWriter {
    target_dir: PathBuf,
    log_context: String,
}

impl AtomicWriter {
    /// A writer for an existing directory; `log_context` names it in logs
    /// (`pod ns/name volume v`).
    pub fn new(target_dir: impl Into<PathBuf>, log_context: impl Into<String>) -> Result<Self, WriterError> {
        let target_dir = target_dir.into();
        if !target_dir.exists() {
            return Err(WriterError::NoTarget(target_dir.display().to_string()));
        }
        Ok(AtomicWriter {
            target_dir,
            log_context: log_context.into(),
        })
    }

    /// Makes the directory hold exactly `payload` (paths relative to it). Writes a new
    /// timestamped directory only when a file's content changed or a path disappeared;
    /// `set_perms` runs on the new directory's name before it is published.
    pub fn write(
        &self,
        payload: &BTreeMap<String, FileProjection>,
        set_perms: Option<SetPerms<'_>>,
    ) -> Result<(), WriterError> {
        let payload = validate_payload(payload)?;
        let data_dir = self.target_dir.join(DATA_DIR_NAME);
        let old_ts_dir = match std::fs::read_link(&data_dir) {
            Ok(link) => Some(link),
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(io("reading link for data directory", &data_dir)(e)),
        };
        let old_ts_path = old_ts_dir.as_ref().map(|d| self.target_dir.join(d));

        let mut paths_to_remove = BTreeSet::new();
        let mut should_write = true;
        let mut remove_old = old_ts_path.clone();
        if let Some(old) = &old_ts_path {
            paths_to_remove = paths_to_remove_under(&payload, old)?;
            if !should_write_payload(&payload, old)? && paths_to_remove.is_empty() {
                tracing::debug!(context = %self.log_context, "write not required");
                should_write = false;
                remove_old = None;
            }
        }

        if should_write {
            let ts_dir = self.new_timestamp_dir()?;
            let ts_name = ts_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if let Err(e) = write_payload_to_dir(&payload, &ts_dir) {
                let _ = std::fs::remove_dir_all(&ts_dir);
                return Err(e);
            }
            if let Some(set_perms) = set_perms {
                set_perms(&ts_name)?;
            }
            let new_data_dir = self.target_dir.join(NEW_DATA_DIR_NAME);
            // A leftover from an interrupted write would make symlink(2) fail.
            let _ = std::fs::remove_file(&new_data_dir);
            if let Err(e) = symlink(&ts_name, &new_data_dir) {
                let _ = std::fs::remove_dir_all(&ts_dir);
                return Err(io("creating symbolic link for atomic update", &new_data_dir)(e));
            }
            if let Err(e) = std::fs::rename(&new_data_dir, &data_dir) {
                let _ = std::fs::remove_file(&new_data_dir);
                let _ = std::fs::remove_dir_all(&ts_dir);
                return Err(io("renaming symbolic link for data directory", &new_data_dir)(e));
            }
            tracing::debug!(context = %self.log_context, dir = %ts_name, "published new data directory");
        }

        self.create_user_visible_files(&payload)?;
        self.remove_user_visible_paths(&paths_to_remove)?;
        if let Some(old) = remove_old {
            std::fs::remove_dir_all(&old)
                .or_else(ignore_not_found)
                .map_err(io("removing old data directory", &old))?;
        }
        Ok(())
    }

    fn new_timestamp_dir(&self) -> Result<PathBuf, WriterError> {
        let prefix = jiff::Timestamp::now()
            .strftime("..%Y_%m_%d_%H_%M_%S.")
            .to_string();
        let mut last = None;
        for _ in 0..10_000 {
            let dir = self.target_dir.join(format!("{prefix}{}", random_u32()));
            match std::fs::create_dir(&dir) {
                Ok(()) => {
                    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
                        .map_err(io("setting mode on new temp directory", &dir))?;
                    return Ok(dir);
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => return Err(io("creating new temp directory", &dir)(e)),
            }
        }
        Err(io("creating new temp directory", &self.target_dir)(
            last.unwrap_or_else(|| std::io::Error::from(ErrorKind::AlreadyExists)),
        ))
    }

    fn create_user_visible_files(
        &self,
        payload: &BTreeMap<String, FileProjection>,
    ) -> Result<(), WriterError> {
        for path in payload.keys() {
            let link_name = path.split('/').next().unwrap_or(path);
            let visible = self.target_dir.join(link_name);
            match std::fs::read_link(&visible) {
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    let target = Path::new(DATA_DIR_NAME).join(link_name);
                    symlink(&target, &visible).map_err(io("creating visible symlink", &visible))?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn remove_user_visible_paths(&self, paths: &BTreeSet<String>) -> Result<(), WriterError> {
        let mut last = Ok(());
        for path in paths.iter().filter(|p| !p.contains('/')) {
            let full = self.target_dir.join(path);
            if let Err(e) = remove(&full) {
                tracing::warn!(context = %self.log_context, path = %full.display(), error = %e, "pruning old user-visible path");
                last = Err(io("pruning old user-visible path", &full)(e));
            }
        }
        last
    }
}

fn ignore_not_found(e: std::io::Error) -> std::io::Result<()> {
    if e.kind() == ErrorKind::NotFound {
        Ok(())
    } else {
        Err(e)
    }
}

/// `os.Remove`: a file, symlink or empty directory.
fn remove(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) => Err(e),
    }
}

fn random_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    (hasher.finish() & 0xffff_ffff) as u32
}

fn validate_payload(
    payload: &BTreeMap<String, FileProjection>,
) -> Result<BTreeMap<String, FileProjection>, WriterError> {
    let mut clean_payload = BTreeMap::new();
    for (path, content) in payload {
        validate_path(path)?;
        clean_payload.insert(clean(path), content.clone());
    }
    Ok(clean_payload)
}

fn should_write_payload(
    payload: &BTreeMap<String, FileProjection>,
    old_ts_dir: &Path,
) -> Result<bool, WriterError> {
    for (path, projection) in payload {
        let full = old_ts_dir.join(path);
        match std::fs::symlink_metadata(&full) {
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(true),
            _ => {}
        }
        let on_disk = std::fs::read(&full).map_err(io("reading current file", &full))?;
        if on_disk != projection.data {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Paths under the old data directory that the new payload no longer has (a file or one of
/// its parent directories counts as kept).
fn paths_to_remove_under(
    payload: &BTreeMap<String, FileProjection>,
    old_ts_dir: &Path,
) -> Result<BTreeSet<String>, WriterError> {
    let mut current = BTreeSet::new();
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<String>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let path = entry.path();
            if let Ok(rel) = path.strip_prefix(root) {
                out.insert(rel.to_string_lossy().into_owned());
            }
            if entry.file_type()?.is_dir() {
                walk(root, &path, out)?;
            }
        }
        Ok(())
    }
    match walk(old_ts_dir, old_ts_dir, &mut current) {
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(BTreeSet::new()),
        Err(e) => return Err(io("walking old data directory", old_ts_dir)(e)),
        Ok(()) => {}
    }
    let mut new_paths = BTreeSet::new();
    for file in payload.keys() {
        let mut sub = file.as_str();
        loop {
            new_paths.insert(sub.to_owned());
            match sub.rfind('/') {
                Some(i) => sub = &sub[..i],
                None => break,
            }
        }
    }
    Ok(current.difference(&new_paths).cloned().collect())
}

fn write_payload_to_dir(payload: &BTreeMap<String, FileProjection>, dir: &Path) -> Result<(), WriterError> {
    for (path, projection) in payload {
        let full = dir.join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).map_err(io("creating directory", parent))?;
        }
        std::fs::write(&full, &projection.data).map_err(io("writing file", &full))?;
        std::fs::set_permissions(&full, std::fs::Permissions::from_mode(projection.mode))
            .map_err(io("changing file mode", &full))?;
        if let Some(uid) = projection.fs_user {
            std::os::unix::fs::chown(&full, Some(uid), None).map_err(io("changing file owner", &full))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn file(data: &str, mode: u32) -> FileProjection {
        FileProjection {
            data: data.as_bytes().to_vec(),
            mode,
            fs_user: None,
        }
    }

    fn payload(items: &[(&str, &str)]) -> BTreeMap<String, FileProjection> {
        items
            .iter()
            .map(|(p, d)| ((*p).to_owned(), file(d, 0o644)))
            .collect()
    }

    fn data_target(dir: &Path) -> String {
        std::fs::read_link(dir.join("..data"))
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn path_validation_texts() {
        let cases = [
            ("", "invalid path: must not be empty: \"\""),
            ("/abs", "invalid path: must be relative path: /abs"),
            ("a/../b", "invalid path: must not contain '..': a/../b"),
            ("..data/x", "invalid path: must not start with '..': ..data/x"),
        ];
        for (path, want) in cases {
            assert_eq!(validate_path(path).unwrap_err().to_string(), want);
        }
        assert!(validate_path("..").is_err());
        assert!(validate_path("a/..b").is_ok());
        assert_eq!(
            validate_path(&"x".repeat(256)).unwrap_err().to_string(),
            "invalid path: filenames must be less than or equal to 255 characters"
        );
    }

    #[test]
    fn writes_swaps_and_prunes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let writer = AtomicWriter::new(root, "test").unwrap();
        let mut first = payload(&[("a", "one"), ("sub/b", "two"), ("sub/deep/c", "three")]);
        first.get_mut("a").unwrap().mode = 0o400;
        writer.write(&first, None).unwrap();

        let ts1 = data_target(root);
        let re_ok = ts1.starts_with("..") && {
            let parts: Vec<&str> = ts1[2..].split('.').collect();
            parts.len() == 2
                && parts[0].len() == 19
                && parts[0].split('_').count() == 6
                && parts[1].chars().all(|c| c.is_ascii_digit())
        };
        assert!(re_ok, "timestamped dir name {ts1}");
        assert_eq!(
            entries(root),
            vec![ts1.clone(), "..data".to_owned(), "a".into(), "sub".into()]
        );
        assert_eq!(std::fs::read_link(root.join("a")).unwrap(), Path::new("..data/a"));
        assert_eq!(
            std::fs::read_link(root.join("sub")).unwrap(),
            Path::new("..data/sub")
        );
        assert_eq!(std::fs::read_to_string(root.join("sub/deep/c")).unwrap(), "three");
        assert_eq!(
            std::fs::metadata(root.join("a")).unwrap().permissions().mode() & 0o7777,
            0o400
        );
        assert_eq!(
            std::fs::metadata(root.join(&ts1)).unwrap().permissions().mode() & 0o777,
            0o755
        );

        // Same content: nothing is rewritten.
        writer.write(&first, None).unwrap();
        assert_eq!(data_target(root), ts1);

        // Changed content and a removed top-level name: a new directory, the old one gone.
        let second = payload(&[("a", "uno"), ("new", "x")]);
        writer.write(&second, None).unwrap();
        let ts2 = data_target(root);
        assert_ne!(ts1, ts2);
        assert_eq!(
            entries(root),
            vec![ts2, "..data".to_owned(), "a".into(), "new".into()]
        );
        assert_eq!(std::fs::read_to_string(root.join("a")).unwrap(), "uno");
        assert!(!root.join(&ts1).exists());

        // Removing a path alone (same content for the rest) also rewrites.
        let third = payload(&[("a", "uno")]);
        writer.write(&third, None).unwrap();
        assert_eq!(
            entries(root),
            vec![data_target(root), "..data".to_owned(), "a".into()]
        );

        // Paths are cleaned.
        writer.write(&payload(&[("./x//y", "z")]), None).unwrap();
        assert_eq!(std::fs::read_to_string(root.join("x/y")).unwrap(), "z");
        assert!(!root.join("a").exists());
    }

    #[test]
    fn set_perms_runs_before_publishing_and_errors_propagate() {
        let dir = tempfile::tempdir().unwrap();
        let writer = AtomicWriter::new(dir.path(), "test").unwrap();
        let seen = std::cell::RefCell::new(None);
        let hook = |name: &str| -> Result<(), WriterError> {
            // The new directory is not yet what ..data names.
            assert!(std::fs::read_link(dir.path().join("..data")).is_err());
            *seen.borrow_mut() = Some(name.to_owned());
            Ok(())
        };
        writer.write(&payload(&[("k", "v")]), Some(&hook)).unwrap();
        assert_eq!(seen.borrow().clone().unwrap(), data_target(dir.path()));

        let err = writer.write(&payload(&[("/etc/passwd", "v")]), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid path: must be relative path: /etc/passwd"
        );
        assert!(AtomicWriter::new(dir.path().join("missing"), "t").is_err());
    }
}
