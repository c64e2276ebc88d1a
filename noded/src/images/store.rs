//! The store itself: verified blob writes, image resolution (index -> platform manifest ->
//! config), image listing and the snapshot directories that hold unpacked layers. It does
//! not parse archives (see `archive`) nor mount anything (see `overlay`).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};

use super::Error;
use super::digest::{Hasher, HashingWriter, hex_of};
use super::reference::Reference;
use super::refs::{Refs, Target};
use super::unpack;

pub(crate) const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub(crate) const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub(crate) const MEDIA_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// The largest manifest, index or config the store parses.
const MAX_JSON_BLOB: u64 = 16 << 20;

/// The node's image store (see the module docs for its layout).
pub struct Store {
    root: PathBuf,
    refs: Refs,
}

/// An image resolved for this node's platform.
#[derive(Debug, Clone)]
pub struct Image {
    /// The references that name it (normalised).
    pub names: Vec<String>,
    /// The digest the references point at (an index for multi-platform images).
    pub target_digest: String,
    pub manifest_digest: String,
    pub manifest: ImageManifest,
    /// The image ID, as crictl and kubelet report it.
    pub config_digest: String,
    pub config: ImageConfiguration,
    /// Bytes of the blobs that make the image (index, manifest, config and layers).
    pub size: u64,
}

/// What a container's process inherits from its image's config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub exposed_ports: Vec<String>,
}

impl Image {
    /// The process defaults from the image config.
    pub fn runtime_config(&self) -> RuntimeConfig {
        let Some(config) = self.config.config() else {
            return RuntimeConfig::default();
        };
        RuntimeConfig {
            entrypoint: config.entrypoint().clone().unwrap_or_default(),
            cmd: config.cmd().clone().unwrap_or_default(),
            env: config.env().clone().unwrap_or_default(),
            working_dir: config.working_dir().clone().filter(|dir| !dir.is_empty()),
            user: config.user().clone().filter(|user| !user.is_empty()),
            exposed_ports: config.exposed_ports().clone().unwrap_or_default(),
        }
    }

    /// The layers' diffIDs, bottom first.
    pub fn diff_ids(&self) -> &[String] {
        self.config.rootfs().diff_ids()
    }
}

/// One row of `rudder images list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRow {
    pub repository: String,
    pub tag: String,
    pub image_id: String,
    pub size: u64,
}

/// The platform this node runs: `linux/<GOARCH>`.
pub fn host_platform() -> (&'static str, &'static str) {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    };
    ("linux", arch)
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A unique path in `dir` for a partial write.
pub(crate) fn temp_path(dir: &Path, what: &str) -> PathBuf {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".{what}-{}-{n}", std::process::id()))
}

impl Store {
    /// Opens (creating if needed) the store rooted at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store, Error> {
        let root = root.into();
        for dir in ["blobs/sha256", "snapshots", "tmp", "empty"] {
            let path = root.join(dir);
            std::fs::create_dir_all(&path).map_err(Error::io(&path))?;
        }
        let refs = Refs::new(&root, root.join("tmp"));
        Ok(Store { root, refs })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Where the blob with this digest lives.
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf, Error> {
        Ok(self.root.join("blobs/sha256").join(hex_of(digest)?))
    }

    pub fn has_blob(&self, digest: &str) -> bool {
        self.blob_path(digest).is_ok_and(|path| path.is_file())
    }

    /// Streams `content` into the store, returning its digest and size. With `expected`,
    /// content that does not hash to it is rejected and never becomes visible.
    pub fn write_blob(
        &self,
        expected: Option<&str>,
        content: &mut impl Read,
    ) -> Result<(String, u64), Error> {
        if let Some(expected) = expected {
            hex_of(expected)?;
        }
        let tmp = temp_path(&self.tmp_dir(), "blob");
        let result = self.write_blob_via(&tmp, expected, content);
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    fn write_blob_via(
        &self,
        tmp: &Path,
        expected: Option<&str>,
        content: &mut impl Read,
    ) -> Result<(String, u64), Error> {
        let file = File::create(tmp).map_err(Error::io(tmp))?;
        let mut writer = HashingWriter {
            inner: std::io::BufWriter::new(file),
            hasher: Hasher::new(),
        };
        std::io::copy(content, &mut writer).map_err(Error::io(tmp))?;
        writer.flush().map_err(Error::io(tmp))?;
        let size = writer.hasher.len();
        let digest = writer.hasher.finish();
        if let Some(expected) = expected
            && expected != digest
        {
            return Err(Error::DigestMismatch {
                expected: expected.to_owned(),
                actual: digest,
            });
        }
        let file = writer
            .inner
            .into_inner()
            .map_err(|err| Error::io(tmp)(err.into_error()))?;
        file.sync_all().map_err(Error::io(tmp))?;
        let path = self.blob_path(&digest)?;
        if path.is_file() {
            std::fs::remove_file(tmp).map_err(Error::io(tmp))?;
        } else {
            std::fs::rename(tmp, &path).map_err(Error::io(&path))?;
        }
        Ok((digest, size))
    }

    /// Stores a small blob held in memory.
    pub fn write_blob_bytes(&self, bytes: &[u8]) -> Result<(String, u64), Error> {
        self.write_blob(None, &mut &bytes[..])
    }

    /// Opens a blob for reading.
    pub fn open_blob(&self, digest: &str) -> Result<File, Error> {
        let path = self.blob_path(digest)?;
        File::open(&path).map_err(|err| match err.kind() {
            std::io::ErrorKind::NotFound => Error::BlobNotFound(digest.to_owned()),
            _ => Error::io(&path)(err),
        })
    }

    fn read_json_blob(&self, digest: &str) -> Result<Vec<u8>, Error> {
        let path = self.blob_path(digest)?;
        let mut bytes = Vec::new();
        self.open_blob(digest)?
            .take(MAX_JSON_BLOB)
            .read_to_end(&mut bytes)
            .map_err(Error::io(&path))?;
        Ok(bytes)
    }

    /// Points `name` (normalised as Docker does) at a manifest or index in the store.
    pub(crate) fn tag(&self, names: &[String], target: &Target) -> Result<(), Error> {
        self.refs.update(|images| {
            for name in names {
                images.insert(name.clone(), target.clone());
            }
        })
    }

    /// Removes a reference; the blobs stay until garbage collection.
    pub fn untag(&self, name: &str) -> Result<bool, Error> {
        let key = Reference::parse_docker_ref(name)?.to_string();
        self.refs.update(|images| images.remove(&key).is_some())
    }

    /// Removes the image whose ID (config digest) is `image_id`: every reference that names
    /// it, then the blobs and unpacked layers no remaining image shares. Returns the bytes
    /// its blobs held (its size as `images()` reports it); an unknown ID is `ImageNotFound`.
    pub fn remove_image(&self, image_id: &str) -> Result<u64, Error> {
        let (removed, kept): (Vec<Image>, Vec<Image>) = self
            .images()?
            .into_iter()
            .partition(|image| image.config_digest == image_id);
        let Some(first) = removed.first() else {
            return Err(Error::ImageNotFound(image_id.to_owned()));
        };
        let size = first.size;
        let names: BTreeSet<&String> = removed.iter().flat_map(|image| &image.names).collect();
        self.refs
            .update(|images| images.retain(|name, _| !names.contains(name)))?;
        let (mut blobs, mut snapshots) = (BTreeSet::new(), BTreeSet::new());
        for image in &removed {
            self.reachable_blobs(&image.target_digest, 0, &mut blobs);
            snapshots.extend(image.diff_ids().iter().cloned());
        }
        let mut still_used = BTreeSet::new();
        for image in &kept {
            self.reachable_blobs(&image.target_digest, 0, &mut still_used);
            for diff_id in image.diff_ids() {
                snapshots.remove(diff_id);
            }
        }
        blobs.retain(|digest| !still_used.contains(digest));
        for digest in &blobs {
            let path = self.blob_path(digest)?;
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(Error::io(&path)(err)),
            }
        }
        for diff_id in &snapshots {
            let dir = self.root.join("snapshots").join(hex_of(diff_id)?);
            // Moved aside first so a half-removed layer never passes for an unpacked one.
            let doomed = temp_path(&self.tmp_dir(), "removed-snapshot");
            match std::fs::rename(&dir, &doomed) {
                Ok(()) => std::fs::remove_dir_all(&doomed).map_err(Error::io(&doomed))?,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(Error::io(&dir)(err)),
            }
        }
        Ok(size)
    }

    /// The blobs a manifest or index reaches that are in the store: itself, an index's
    /// manifests (every platform's), a manifest's config and layers.
    fn reachable_blobs(&self, digest: &str, depth: usize, out: &mut BTreeSet<String>) {
        if depth > 4 || !self.has_blob(digest) || !out.insert(digest.to_owned()) {
            return;
        }
        let Ok(bytes) = self.read_json_blob(digest) else {
            return;
        };
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            return;
        };
        let digest_of = |descriptor: &serde_json::Value| {
            descriptor
                .get("digest")
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        };
        if let Some(manifests) = value.get("manifests").and_then(serde_json::Value::as_array) {
            for child in manifests.iter().filter_map(digest_of) {
                self.reachable_blobs(&child, depth + 1, out);
            }
        }
        if let Some(config) = value.get("config").and_then(digest_of)
            && self.has_blob(&config)
        {
            out.insert(config);
        }
        if let Some(layers) = value.get("layers").and_then(serde_json::Value::as_array) {
            for layer in layers.iter().filter_map(digest_of) {
                if self.has_blob(&layer) {
                    out.insert(layer);
                }
            }
        }
    }

    /// The capacity and available bytes of the filesystem holding the store (statvfs).
    pub fn filesystem_usage(&self) -> Result<(u64, u64), Error> {
        let stat = rustix::fs::statvfs(&self.root)
            .map_err(Error::sys(format!("statvfs {}", self.root.display())))?;
        let capacity = stat.f_blocks.saturating_mul(stat.f_frsize);
        let available = stat.f_bavail.saturating_mul(stat.f_frsize);
        Ok((capacity, available))
    }

    /// Resolves an image by reference (`busybox`, `docker.io/library/busybox:latest`,
    /// `name@sha256:...`) or by image ID (`sha256:<config digest>`).
    pub fn image(&self, name: &str) -> Result<Image, Error> {
        let refs = self.refs.all()?;
        if name.starts_with("sha256:") {
            let mut found = None;
            for target in refs.values() {
                let image = self.resolve(target)?;
                if image.config_digest == name {
                    found = Some(target.clone());
                    break;
                }
            }
            let target = found.ok_or_else(|| Error::ImageNotFound(name.to_owned()))?;
            return self.with_names(&refs, &target);
        }
        let key = Reference::parse_docker_ref(name)?.to_string();
        match refs.get(&key) {
            Some(target) => self.with_names(&refs, target),
            None => Err(Error::ImageNotFound(name.to_owned())),
        }
    }

    fn with_names(&self, refs: &BTreeMap<String, Target>, target: &Target) -> Result<Image, Error> {
        let mut image = self.resolve(target)?;
        image.names = refs
            .iter()
            .filter(|(_, t)| t.digest == target.digest)
            .map(|(name, _)| name.clone())
            .collect();
        Ok(image)
    }

    /// Every image, one entry per distinct target.
    pub fn images(&self) -> Result<Vec<Image>, Error> {
        let refs = self.refs.all()?;
        let mut by_target: BTreeMap<&str, &Target> = BTreeMap::new();
        for target in refs.values() {
            by_target.insert(&target.digest, target);
        }
        by_target
            .values()
            .map(|target| self.with_names(&refs, target))
            .collect()
    }

    /// Rows as `crictl images` prints them: one per tag, `<none>` for digest-only names.
    pub fn rows(&self) -> Result<Vec<ImageRow>, Error> {
        let mut rows = Vec::new();
        for image in self.images()? {
            for name in &image.names {
                let reference = Reference::parse_normalized(name)?;
                rows.push(ImageRow {
                    repository: reference.name(),
                    tag: reference.tag().unwrap_or("<none>").to_owned(),
                    image_id: image.config_digest.clone(),
                    size: image.size,
                });
            }
        }
        rows.sort_by(|a, b| (&a.repository, &a.tag).cmp(&(&b.repository, &b.tag)));
        Ok(rows)
    }

    /// Follows a target to this platform's manifest and config, checking the blobs exist.
    pub(crate) fn resolve(&self, target: &Target) -> Result<Image, Error> {
        let mut size = 0;
        let mut digest = target.digest.clone();
        let mut media_type = target.media_type.clone();
        for _depth in 0..4 {
            let bytes = self.read_json_blob(&digest)?;
            size += bytes.len() as u64;
            match media_type.as_str() {
                MEDIA_OCI_INDEX | MEDIA_DOCKER_LIST => {
                    let index =
                        ImageIndex::from_reader(&bytes[..]).map_err(Error::oci(format!("index {digest}")))?;
                    let chosen = select_platform(&digest, index.manifests())?;
                    digest = chosen.digest().to_string();
                    media_type = chosen.media_type().to_string();
                }
                MEDIA_OCI_MANIFEST | MEDIA_DOCKER_MANIFEST => {
                    let manifest = ImageManifest::from_reader(&bytes[..])
                        .map_err(Error::oci(format!("manifest {digest}")))?;
                    let config_digest = manifest.config().digest().to_string();
                    let config_bytes = self.read_json_blob(&config_digest)?;
                    let config = ImageConfiguration::from_reader(&config_bytes[..])
                        .map_err(Error::oci(format!("image config {config_digest}")))?;
                    size += config_bytes.len() as u64;
                    for layer in manifest.layers() {
                        let layer_digest = layer.digest().to_string();
                        if !self.has_blob(&layer_digest) {
                            return Err(Error::BlobNotFound(layer_digest));
                        }
                        size += layer.size();
                    }
                    if config.rootfs().diff_ids().len() != manifest.layers().len() {
                        return Err(Error::InvalidArchive {
                            archive: self.blob_path(&digest)?,
                            reason: format!(
                                "manifest has {} layers but its config lists {} diff_ids",
                                manifest.layers().len(),
                                config.rootfs().diff_ids().len()
                            ),
                        });
                    }
                    return Ok(Image {
                        names: Vec::new(),
                        target_digest: target.digest.clone(),
                        manifest_digest: digest,
                        manifest,
                        config_digest,
                        config,
                        size,
                    });
                }
                other => return Err(Error::UnsupportedMediaType(other.to_owned())),
            }
        }
        Err(Error::UnsupportedMediaType(format!(
            "{media_type} (indexes nested too deep)"
        )))
    }

    /// Unpacks the image's layers that are not unpacked yet and returns overlayfs's
    /// `lowerdir` list: top-most layer first. An image without layers gets one empty dir.
    pub fn prepare_layers(&self, image: &Image) -> Result<Vec<PathBuf>, Error> {
        let mut dirs = Vec::new();
        for (layer, diff_id) in image.manifest.layers().iter().zip(image.diff_ids()) {
            dirs.push(self.snapshot(layer, diff_id)?);
        }
        if dirs.is_empty() {
            dirs.push(self.root.join("empty"));
        }
        dirs.reverse();
        Ok(dirs)
    }

    /// The directory of one unpacked layer, unpacking it on first use. Layers are keyed
    /// by diffID: each is unpacked on its own and stacked by overlayfs, so the same
    /// uncompressed layer under different parents or compressions is unpacked once.
    pub fn snapshot(&self, layer: &Descriptor, diff_id: &str) -> Result<PathBuf, Error> {
        let dir = self.root.join("snapshots").join(hex_of(diff_id)?);
        if dir.is_dir() {
            return Ok(dir);
        }
        let blob = self.open_blob(layer.digest().as_ref())?;
        let tmp = temp_path(&self.tmp_dir(), "snapshot");
        std::fs::create_dir(&tmp).map_err(Error::io(&tmp))?;
        let result = unpack::unpack_layer(BufReader::new(blob), &tmp, Some(diff_id));
        if let Err(err) = result {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(err);
        }
        match std::fs::rename(&tmp, &dir) {
            Ok(()) => Ok(dir),
            // Another unpack of the same layer won the race.
            Err(_) if dir.is_dir() => {
                let _ = std::fs::remove_dir_all(&tmp);
                Ok(dir)
            }
            Err(err) => Err(Error::io(&dir)(err)),
        }
    }
}

/// The manifest of an index that matches this node: `linux/<arch>` (for arm64, the
/// `v8` variant or none).
pub(crate) fn select_platform<'a>(
    index_digest: &str,
    manifests: &'a [Descriptor],
) -> Result<&'a Descriptor, Error> {
    let (os, arch) = host_platform();
    let matches = |descriptor: &Descriptor| {
        descriptor.platform().as_ref().is_some_and(|platform| {
            let platform_os = serde_json::to_value(platform.os()).ok();
            let platform_arch = serde_json::to_value(platform.architecture()).ok();
            let variant_ok = arch != "arm64" || platform.variant().as_deref().is_none_or(|v| v == "v8");
            platform_os.as_ref().and_then(|v| v.as_str()) == Some(os)
                && platform_arch.as_ref().and_then(|v| v.as_str()) == Some(arch)
                && variant_ok
        })
    };
    manifests
        .iter()
        .find(|descriptor| matches(descriptor))
        .ok_or_else(|| Error::NoMatchingPlatform {
            digest: index_digest.to_owned(),
            platform: format!("{os}/{arch}"),
        })
}

/// `crictl images`' table: IMAGE, TAG, IMAGE ID (13 hex digits), SIZE (decimal units, 3
/// significant digits), columns padded as its tabwriter does (min width 20, padding 3).
pub fn format_image_table(rows: &[ImageRow]) -> String {
    let mut table = vec![[
        "IMAGE".to_owned(),
        "TAG".to_owned(),
        "IMAGE ID".to_owned(),
        "SIZE".to_owned(),
    ]];
    for row in rows {
        let id = row.image_id.strip_prefix("sha256:").unwrap_or(&row.image_id);
        table.push([
            row.repository.clone(),
            row.tag.clone(),
            id.chars().take(13).collect(),
            human_size(row.size),
        ]);
    }
    let mut widths = [0usize; 3];
    for line in &table {
        for (width, cell) in widths.iter_mut().zip(line.iter()) {
            *width = (*width).max((cell.chars().count() + 3).max(20));
        }
    }
    let mut out = String::new();
    for line in &table {
        for (cell, width) in line.iter().zip(widths) {
            out.push_str(cell);
            out.push_str(&" ".repeat(width - cell.chars().count()));
        }
        out.push_str(&line[3]);
        out.push('\n');
    }
    out
}

/// go-units' `HumanSizeWithPrecision(size, 3)`: decimal units and `%.3g`.
pub(crate) fn human_size(size: u64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut value = size as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    format!("{}{}", format_g3(value), UNITS[unit])
}

/// Go's `%.3g` for the non-negative values `human_size` produces.
fn format_g3(value: f64) -> String {
    if value == 0.0 {
        return "0".to_owned();
    }
    let scientific = format!("{value:.2e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if !(-4..3).contains(&exponent) {
        let mantissa = trim_zeros(mantissa);
        let sign = if exponent < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exponent.abs());
    }
    let decimals = usize::try_from(2 - exponent).unwrap_or(0);
    trim_zeros(&format!("{value:.decimals$}"))
}

fn trim_zeros(number: &str) -> String {
    if number.contains('.') {
        number.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        number.to_owned()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn sizes_as_crictl_prints_them() {
        let cases = [
            (0, "0B"),
            (999, "999B"),
            (1000, "1kB"),
            (1234, "1.23kB"),
            (2_164_327, "2.16MB"),
            (12_345_678, "12.3MB"),
            (123_456_789, "123MB"),
            (999_900, "1e+03kB"),
        ];
        for (size, want) in cases {
            assert_eq!(human_size(size), want, "{size}");
        }
    }

    #[test]
    fn blobs_are_verified_before_they_become_visible() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let good = super::super::sha256_digest(b"hello");
        let bad = super::super::sha256_digest(b"other");
        let err = store.write_blob(Some(&bad), &mut &b"hello"[..]).unwrap_err();
        assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
        assert!(!store.has_blob(&bad) && !store.has_blob(&good));
        assert_eq!(
            std::fs::read_dir(store.tmp_dir()).unwrap().count(),
            0,
            "temp file left behind"
        );
        let (digest, size) = store.write_blob(Some(&good), &mut &b"hello"[..]).unwrap();
        assert_eq!((digest.as_str(), size), (good.as_str(), 5));
        assert_eq!(std::fs::read(store.blob_path(&good).unwrap()).unwrap(), b"hello");
        assert!(matches!(
            store.blob_path("sha256:../x"),
            Err(Error::InvalidDigest(_))
        ));
    }

    #[test]
    fn table_pads_like_crictl() {
        let rows = [ImageRow {
            repository: "docker.io/library/busybox".to_owned(),
            tag: "latest".to_owned(),
            image_id: "sha256:a416a98b71e224a31ee99cff8e16063554498227d2b696152a9c3e0aa65e5824".to_owned(),
            size: 2_164_327,
        }];
        let table = format_image_table(&rows);
        let want = "IMAGE                       TAG                 IMAGE ID            SIZE\n\
                    docker.io/library/busybox   latest              a416a98b71e22       2.16MB\n";
        assert_eq!(table, want);
    }
}
