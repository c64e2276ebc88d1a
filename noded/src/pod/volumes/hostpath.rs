//! hostPath type checks (upstream's `checkType` in `pkg/volume/hostpath`): `DirectoryOrCreate`
//! and `FileOrCreate` create what is missing (0755 directories, 0644 files), the other types
//! require the path to exist with that file type (symlinks followed), with upstream's messages.
//! An unset type checks nothing.
//!
//! It looks only at the given host path; mounting it is the runtime's job.

use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Why a hostPath is refused; texts are upstream's.
#[derive(Debug, thiserror::Error)]
pub enum HostPathError {
    #[error("hostPath type check failed: {0} is not a directory")]
    NotDirectory(String),
    #[error("hostPath type check failed: {0} is not a file")]
    NotFile(String),
    #[error("hostPath type check failed: {0} is not a socket file")]
    NotSocket(String),
    #[error("hostPath type check failed: {0} is not a character device")]
    NotCharDevice(String),
    #[error("hostPath type check failed: {0} is not a block device")]
    NotBlockDevice(String),
    #[error("{0} is an invalid volume type")]
    InvalidType(String),
    #[error("mkdir {0}: {1}")]
    Create(String, std::io::Error),
}

/// Checks (and for the `...OrCreate` types, creates) `path` for the hostPath `type`.
pub fn check_type(path: &Path, path_type: Option<&str>) -> Result<(), HostPathError> {
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).ok();
    let file_type = meta.as_ref().map(|m| m.file_type());
    match path_type.unwrap_or("") {
        "" => Ok(()),
        "DirectoryOrCreate" if meta.is_none() => {
            std::fs::create_dir_all(path).map_err(|e| HostPathError::Create(shown.clone(), e))?;
            // MkdirAll(0755) under the umask; the leaf gets exactly 0755 as the kubelet's
            // umask (022) would give it.
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| HostPathError::Create(shown, e))
        }
        "DirectoryOrCreate" | "Directory" => match file_type {
            Some(t) if t.is_dir() => Ok(()),
            _ => Err(HostPathError::NotDirectory(shown)),
        },
        "FileOrCreate" if meta.is_none() => {
            let created = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o644)
                .open(path);
            match created {
                Ok(_) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
                Err(e) => Err(HostPathError::Create(shown, e)),
            }
        }
        "FileOrCreate" | "File" => match file_type {
            Some(t) if t.is_file() => Ok(()),
            _ => Err(HostPathError::NotFile(shown)),
        },
        "Socket" => match file_type {
            Some(t) if t.is_socket() => Ok(()),
            _ => Err(HostPathError::NotSocket(shown)),
        },
        "CharDevice" => match file_type {
            Some(t) if t.is_char_device() => Ok(()),
            _ => Err(HostPathError::NotCharDevice(shown)),
        },
        "BlockDevice" => match file_type {
            Some(t) if t.is_block_device() => Ok(()),
            _ => Err(HostPathError::NotBlockDevice(shown)),
        },
        other => Err(HostPathError::InvalidType(other.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn types_and_messages() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let file = root.join("f");
        std::fs::write(&file, "x").unwrap();
        let sock_path = root.join("s.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
        let missing = root.join("missing");

        assert!(check_type(root, Some("Directory")).is_ok());
        assert!(check_type(&file, Some("File")).is_ok());
        assert!(check_type(&sock_path, Some("Socket")).is_ok());
        assert!(check_type(Path::new("/dev/null"), Some("CharDevice")).is_ok());
        assert!(check_type(&missing, None).is_ok());
        assert!(check_type(&missing, Some("")).is_ok());

        let msg = |p: &Path, t: &str| check_type(p, Some(t)).unwrap_err().to_string();
        let f = file.display();
        assert_eq!(
            msg(&file, "Directory"),
            format!("hostPath type check failed: {f} is not a directory")
        );
        assert_eq!(
            msg(root, "File"),
            format!("hostPath type check failed: {} is not a file", root.display())
        );
        assert_eq!(
            msg(&file, "Socket"),
            format!("hostPath type check failed: {f} is not a socket file")
        );
        assert_eq!(
            msg(&file, "CharDevice"),
            format!("hostPath type check failed: {f} is not a character device")
        );
        assert_eq!(
            msg(&file, "BlockDevice"),
            format!("hostPath type check failed: {f} is not a block device")
        );
        assert_eq!(
            msg(&missing, "Directory"),
            format!(
                "hostPath type check failed: {} is not a directory",
                missing.display()
            )
        );
        assert_eq!(msg(&file, "Weird"), "Weird is an invalid volume type");
        // An existing file of the wrong kind is not replaced by the ...OrCreate types.
        assert_eq!(
            msg(&file, "DirectoryOrCreate"),
            format!("hostPath type check failed: {f} is not a directory")
        );
        assert_eq!(
            msg(root, "FileOrCreate"),
            format!("hostPath type check failed: {} is not a file", root.display())
        );
    }

    #[test]
    fn or_create_types_create() {
        let dir = tempfile::tempdir().unwrap();
        let new_dir = dir.path().join("a/b/c");
        check_type(&new_dir, Some("DirectoryOrCreate")).unwrap();
        assert!(new_dir.is_dir());
        assert_eq!(
            std::fs::metadata(&new_dir).unwrap().permissions().mode() & 0o777,
            0o755
        );
        let new_file = dir.path().join("a/file");
        check_type(&new_file, Some("FileOrCreate")).unwrap();
        assert!(new_file.is_file());
        assert_eq!(std::fs::metadata(&new_file).unwrap().len(), 0);
        // FileOrCreate does not create parent directories, as upstream.
        assert!(check_type(&dir.path().join("x/y"), Some("FileOrCreate")).is_err());
    }
}
