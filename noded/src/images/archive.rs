//! Importing image archives into the store: OCI image layouts (`oci-layout`, `index.json`,
//! `blobs/`) and `docker save` archives (`manifest.json`, layer tars), the latter converted
//! to OCI manifests so the store holds one format; and the idempotent import of
//! `DATA_DIR/images/*.tar` at start. It never unpacks layers (that happens when a container
//! first needs them) and never talks to a registry.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use oci_spec::image::ImageIndex;
use serde::{Deserialize, Serialize};

use super::Error;
use super::reference::Reference;
use super::refs::Target;
use super::store::{MEDIA_OCI_MANIFEST, Store, temp_path};
use super::unpack::normalise_entry_path;

/// containerd's annotation with an image's full name.
pub(crate) const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
/// The OCI annotation with a reference (by the spec, usually just a tag).
pub(crate) const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// The largest metadata file (index.json, manifest.json, ...) read from an archive.
const MAX_METADATA: u64 = 16 << 20;

/// One image an archive held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedImage {
    /// Its normalised names; empty when the archive did not name it.
    pub names: Vec<String>,
    /// The manifest or index the names point at.
    pub target_digest: String,
    /// The image ID.
    pub config_digest: String,
}

struct BlobInfo {
    digest: String,
    size: u64,
    gzip: bool,
}

/// What one pass over an archive collected.
#[derive(Default)]
struct Contents {
    metadata: HashMap<String, Vec<u8>>,
    blobs: HashMap<String, BlobInfo>,
    symlinks: HashMap<String, String>,
}

impl Contents {
    /// The blob stored for a file of the archive, through its symlinks (docker save links
    /// repeated layers).
    fn blob(&self, name: &str) -> Option<&BlobInfo> {
        let mut name = name.trim_start_matches("./").to_owned();
        for _hop in 0..16 {
            if let Some(blob) = self.blobs.get(&name) {
                return Some(blob);
            }
            name = self.symlinks.get(&name)?.clone();
        }
        None
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn is_metadata(name: &str) -> bool {
    matches!(
        name,
        "index.json" | "oci-layout" | "manifest.json" | "repositories"
    ) || name.ends_with("/json")
        || name.ends_with("/VERSION")
}

impl Store {
    /// Imports every image of an archive (plain or gzip-compressed tar) and names them.
    pub fn import_archive(&self, path: &Path) -> Result<Vec<ImportedImage>, Error> {
        let contents = self.read_archive(path)?;
        let invalid = |reason: String| Error::InvalidArchive {
            archive: path.to_path_buf(),
            reason,
        };
        if let Some(index_json) = contents.metadata.get("index.json") {
            let index = ImageIndex::from_reader(&index_json[..])
                .map_err(Error::oci(format!("{}: index.json", path.display())))?;
            let mut imported = Vec::new();
            for descriptor in index.manifests() {
                let names = match descriptor.annotations() {
                    Some(annotations) => names_from_annotations(annotations)?,
                    None => Vec::new(),
                };
                let target = Target {
                    media_type: descriptor.media_type().to_string(),
                    digest: descriptor.digest().to_string(),
                    size: descriptor.size(),
                };
                imported.push(self.register(names, target)?);
            }
            return Ok(imported);
        }
        let Some(manifest_json) = contents.metadata.get("manifest.json") else {
            return Err(invalid(
                "neither an OCI image layout (index.json) nor a docker archive (manifest.json)".to_owned(),
            ));
        };
        let entries: Vec<DockerManifestEntry> = serde_json::from_slice(manifest_json)
            .map_err(Error::json(format!("{}: manifest.json", path.display())))?;
        let mut imported = Vec::new();
        for entry in entries {
            let config = contents.blob(&entry.config).ok_or_else(|| {
                invalid(format!(
                    "manifest.json names {} which the archive lacks",
                    entry.config
                ))
            })?;
            let mut layers = Vec::new();
            for layer in &entry.layers {
                let blob = contents
                    .blob(layer)
                    .ok_or_else(|| invalid(format!("manifest.json names {layer} which the archive lacks")))?;
                let media_type = if blob.gzip {
                    "application/vnd.oci.image.layer.v1.tar+gzip"
                } else {
                    "application/vnd.oci.image.layer.v1.tar"
                };
                layers.push(
                    serde_json::json!({"mediaType": media_type, "digest": blob.digest, "size": blob.size}),
                );
            }
            let manifest = serde_json::json!({
                "schemaVersion": 2,
                "mediaType": MEDIA_OCI_MANIFEST,
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": config.digest,
                    "size": config.size,
                },
                "layers": layers,
            });
            let bytes = serde_json::to_vec(&manifest).map_err(Error::json("encoding a manifest"))?;
            let (digest, size) = self.write_blob_bytes(&bytes)?;
            let names = entry
                .repo_tags
                .unwrap_or_default()
                .iter()
                .map(|tag| Reference::parse_docker_ref(tag).map(|r| r.to_string()))
                .collect::<Result<Vec<_>, _>>()?;
            let target = Target {
                media_type: MEDIA_OCI_MANIFEST.to_owned(),
                digest,
                size,
            };
            imported.push(self.register(names, target)?);
        }
        Ok(imported)
    }

    /// Checks that a target resolves to a complete image for this node, then names it.
    fn register(&self, names: Vec<String>, target: Target) -> Result<ImportedImage, Error> {
        let image = self.resolve(&target)?;
        if !names.is_empty() {
            self.tag(&names, &target)?;
        }
        tracing::info!(names = ?names, digest = %target.digest, "imported image");
        Ok(ImportedImage {
            names,
            target_digest: target.digest,
            config_digest: image.config_digest,
        })
    }

    /// One pass over the archive: metadata files in memory, every other file into the
    /// blob store (verified when its name is its digest).
    fn read_archive(&self, path: &Path) -> Result<Contents, Error> {
        let file = File::open(path).map_err(Error::io(path))?;
        let mut buffered = BufReader::new(file);
        let gzip = buffered
            .fill_buf()
            .map_err(Error::io(path))?
            .starts_with(&[0x1f, 0x8b]);
        let reader: Box<dyn Read> = if gzip {
            Box::new(flate2::read::MultiGzDecoder::new(buffered))
        } else {
            Box::new(buffered)
        };
        let mut archive = tar::Archive::new(reader);
        let mut contents = Contents::default();
        for entry in archive.entries().map_err(Error::io(path))? {
            let mut entry = entry.map_err(Error::io(path))?;
            let raw = entry.path().map_err(Error::io(path))?.into_owned();
            let Some(rel) = normalise_entry_path(&raw)? else {
                continue;
            };
            let Some(name) = rel.to_str().map(str::to_owned) else {
                continue;
            };
            match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    if is_metadata(&name) {
                        let mut bytes = Vec::new();
                        (&mut entry)
                            .take(MAX_METADATA)
                            .read_to_end(&mut bytes)
                            .map_err(Error::io(path))?;
                        contents.metadata.insert(name, bytes);
                        continue;
                    }
                    let expected = name
                        .strip_prefix("blobs/sha256/")
                        .map(|hex| format!("sha256:{hex}"));
                    let (digest, size) = self.write_blob(expected.as_deref(), &mut entry)?;
                    let mut magic = [0u8; 2];
                    let gzip = self
                        .open_blob(&digest)?
                        .read_exact(&mut magic)
                        .is_ok_and(|()| magic == [0x1f, 0x8b]);
                    contents.blobs.insert(name, BlobInfo { digest, size, gzip });
                }
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    let Some(target) = entry.link_name().map_err(Error::io(path))? else {
                        continue;
                    };
                    let joined = if entry.header().entry_type() == tar::EntryType::Symlink {
                        rel.parent().unwrap_or(Path::new("")).join(target)
                    } else {
                        target.into_owned()
                    };
                    if let Some(target) = normalise_dots(&joined).and_then(|p| p.to_str().map(str::to_owned))
                    {
                        contents.symlinks.insert(name, target);
                    }
                }
                _ => {}
            }
        }
        Ok(contents)
    }
}

/// `a/b/../c` -> `a/c`; `None` when it climbs above the archive's root.
fn normalise_dots(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::Normal(part) => out.push(part),
            std::path::Component::ParentDir if !out.pop() => return None,
            _ => {}
        }
    }
    Some(out)
}

/// An OCI index entry's names: containerd's full-name annotation, else the OCI ref name
/// when it is a reference rather than a bare tag (a bare tag names no repository).
fn names_from_annotations(annotations: &HashMap<String, String>) -> Result<Vec<String>, Error> {
    if let Some(name) = annotations.get(ANNOTATION_IMAGE_NAME) {
        return Ok(vec![Reference::parse_docker_ref(name)?.to_string()]);
    }
    match annotations.get(ANNOTATION_REF_NAME) {
        Some(name) if name.contains(['/', ':', '@']) => {
            Ok(vec![Reference::parse_docker_ref(name)?.to_string()])
        }
        _ => Ok(Vec::new()),
    }
}

#[derive(Default, Serialize, Deserialize)]
struct AutoImported {
    files: BTreeMap<String, FileStamp>,
}

#[derive(PartialEq, Eq, Serialize, Deserialize)]
struct FileStamp {
    size: u64,
    modified_ns: u128,
}

fn stamp(path: &Path) -> Result<FileStamp, Error> {
    let meta = std::fs::metadata(path).map_err(Error::io(path))?;
    let modified_ns = meta
        .modified()
        .ok()
        .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |elapsed| elapsed.as_nanos());
    Ok(FileStamp {
        size: meta.len(),
        modified_ns,
    })
}

/// Each archive `auto_import` tried, with its outcome.
pub type AutoImportResults = Vec<(PathBuf, Result<Vec<ImportedImage>, Error>)>;

/// Imports the archives in `dir` (`*.tar`, `*.tar.gz`, `*.tgz`) that are new or changed
/// since the last call, in name order. A bad archive is reported and skipped; it is
/// retried next time.
pub fn auto_import(store: &Store, dir: &Path) -> Result<AutoImportResults, Error> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(Error::io(dir)(err)),
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            path.is_file() && [".tar", ".tar.gz", ".tgz"].iter().any(|ext| name.ends_with(ext))
        })
        .collect();
    files.sort();
    let record_path = store.root().join("auto-imported.json");
    let mut record: AutoImported = match std::fs::read(&record_path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_default(),
        Err(_) => AutoImported::default(),
    };
    let mut results = Vec::new();
    for file in files {
        let key = file.to_string_lossy().into_owned();
        let current = stamp(&file)?;
        if record.files.get(&key) == Some(&current) {
            continue;
        }
        let result = store.import_archive(&file);
        match &result {
            Ok(_) => {
                record.files.insert(key, current);
            }
            Err(err) => {
                tracing::warn!(archive = %file.display(), error = %err, "cannot import image archive");
            }
        }
        results.push((file, result));
    }
    let bytes = serde_json::to_vec_pretty(&record).map_err(Error::json("encoding auto-imported.json"))?;
    let tmp = temp_path(&store.tmp_dir(), "auto-imported.json");
    std::fs::write(&tmp, bytes).map_err(Error::io(&tmp))?;
    std::fs::rename(&tmp, &record_path).map_err(Error::io(&record_path))?;
    Ok(results)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn names_come_from_containerd_or_oci_annotations() {
        let ann = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let both = ann(&[
            (ANNOTATION_IMAGE_NAME, "docker.io/library/busybox:1.36"),
            (ANNOTATION_REF_NAME, "1.36"),
        ]);
        assert_eq!(
            names_from_annotations(&both).unwrap(),
            ["docker.io/library/busybox:1.36"]
        );
        let full = ann(&[(ANNOTATION_REF_NAME, "busybox:1.36")]);
        assert_eq!(
            names_from_annotations(&full).unwrap(),
            ["docker.io/library/busybox:1.36"]
        );
        let tag_only = ann(&[(ANNOTATION_REF_NAME, "latest")]);
        assert!(names_from_annotations(&tag_only).unwrap().is_empty());
        assert_eq!(normalise_dots(Path::new("a/../b/c")), Some(PathBuf::from("b/c")));
        assert_eq!(normalise_dots(Path::new("../x")), None);
    }
}
