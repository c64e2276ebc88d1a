//! The reference index, `images.json`: normalised image references -> target descriptors.
//! Every change is a read-modify-write under an exclusive `flock` on `images.lock` (other
//! processes, e.g. `rudder images import` beside a running noded) and an in-process mutex,
//! published by writing a temp file and renaming it. It knows nothing of blobs.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rustix::fs::{FlockOperation, flock};
use serde::{Deserialize, Serialize};

use super::Error;

/// What a reference points at: a manifest or an index blob.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Target {
    pub(crate) media_type: String,
    pub(crate) digest: String,
    pub(crate) size: u64,
}

#[derive(Default, Serialize, Deserialize)]
struct IndexFile {
    images: BTreeMap<String, Target>,
}

pub(crate) struct Refs {
    path: PathBuf,
    lock_path: PathBuf,
    tmp_dir: PathBuf,
    mutex: Mutex<()>,
}

impl Refs {
    pub(crate) fn new(root: &Path, tmp_dir: PathBuf) -> Refs {
        Refs {
            path: root.join("images.json"),
            lock_path: root.join("images.lock"),
            tmp_dir,
            mutex: Mutex::new(()),
        }
    }

    /// All references, read under a shared lock.
    pub(crate) fn all(&self) -> Result<BTreeMap<String, Target>, Error> {
        let _guard = self
            .mutex
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _lock = self.lock(FlockOperation::LockShared)?;
        Ok(self.read()?.images)
    }

    /// Applies `change` to the references under the exclusive lock and saves them.
    pub(crate) fn update<T>(
        &self,
        change: impl FnOnce(&mut BTreeMap<String, Target>) -> T,
    ) -> Result<T, Error> {
        let _guard = self
            .mutex
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _lock = self.lock(FlockOperation::LockExclusive)?;
        let mut index = self.read()?;
        let out = change(&mut index.images);
        let bytes = serde_json::to_vec_pretty(&index).map_err(Error::json("encoding images.json"))?;
        let tmp = super::store::temp_path(&self.tmp_dir, "images.json");
        let mut file = File::create(&tmp).map_err(Error::io(&tmp))?;
        file.write_all(&bytes)
            .and_then(|()| file.sync_all())
            .map_err(Error::io(&tmp))?;
        std::fs::rename(&tmp, &self.path).map_err(Error::io(&self.path))?;
        Ok(out)
    }

    fn lock(&self, operation: FlockOperation) -> Result<File, Error> {
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock_path)
            .map_err(Error::io(&self.lock_path))?;
        flock(&file, operation).map_err(Error::sys(format!("locking {}", self.lock_path.display())))?;
        Ok(file)
    }

    fn read(&self) -> Result<IndexFile, Error> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(Error::json(self.path.display())),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(IndexFile::default()),
            Err(err) => Err(Error::io(&self.path)(err)),
        }
    }
}
