//! Deterministic test image archives, so tests need no registry: a layer builder, OCI
//! layout and `docker save` archive writers, and a busybox image from Debian's
//! busybox-static (`/bin/busybox`). Same inputs, same bytes, same digests. It is test
//! support: nothing on the node's serving paths calls it.

use std::io::{self, Write};
use std::path::Path;

use super::digest::sha256_digest;
use super::reference::Reference;
use super::store::{RuntimeConfig, host_platform};

/// Where Debian's busybox-static installs the binary.
pub const BUSYBOX: &str = "/bin/busybox";

/// The applets the busybox image links in `/bin`.
pub const BUSYBOX_APPLETS: &[&str] = &[
    "awk",
    "base64",
    "basename",
    "cat",
    "chmod",
    "chown",
    "cp",
    "cut",
    "date",
    "dd",
    "df",
    "dirname",
    "du",
    "echo",
    "env",
    "false",
    "find",
    "grep",
    "head",
    "hostname",
    "httpd",
    "id",
    "ip",
    "kill",
    "ln",
    "ls",
    "md5sum",
    "mkdir",
    "mount",
    "mv",
    "nc",
    "nslookup",
    "ping",
    "printenv",
    "ps",
    "pwd",
    "readlink",
    "rm",
    "sed",
    "seq",
    "sh",
    "sha256sum",
    "sleep",
    "sort",
    "stat",
    "stty",
    "tail",
    "tar",
    "tee",
    "test",
    "timeout",
    "top",
    "touch",
    "tr",
    "true",
    "tty",
    "umount",
    "uname",
    "uptime",
    "wc",
    "wget",
    "which",
    "whoami",
    "xargs",
    "yes",
];

/// Builds one layer tar with fixed owners (0:0) and times (0).
pub struct LayerBuilder {
    builder: tar::Builder<Vec<u8>>,
}

impl Default for LayerBuilder {
    fn default() -> Self {
        LayerBuilder {
            builder: tar::Builder::new(Vec::new()),
        }
    }
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header
}

impl LayerBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn dir(&mut self, path: &str, mode: u32) -> io::Result<&mut Self> {
        let mut header = header(tar::EntryType::Directory, mode, 0);
        self.builder.append_data(
            &mut header,
            format!("{}/", path.trim_end_matches('/')),
            io::empty(),
        )?;
        Ok(self)
    }

    pub fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> io::Result<&mut Self> {
        let mut header = header(tar::EntryType::Regular, mode, data.len() as u64);
        self.builder.append_data(&mut header, path, data)?;
        Ok(self)
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> io::Result<&mut Self> {
        let mut header = header(tar::EntryType::Symlink, 0o777, 0);
        self.builder.append_link(&mut header, path, target)?;
        Ok(self)
    }

    /// `dir/.wh.name`: deletes `dir/name` of lower layers.
    pub fn whiteout(&mut self, path: &str) -> io::Result<&mut Self> {
        let path = Path::new(path);
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let whiteout = path.with_file_name(format!(".wh.{name}"));
        self.file(&whiteout.to_string_lossy(), 0o644, b"")
    }

    /// `dir/.wh..wh..opq`: hides everything of lower layers below `dir`.
    pub fn opaque(&mut self, dir: &str) -> io::Result<&mut Self> {
        self.file(&format!("{}/.wh..wh..opq", dir.trim_end_matches('/')), 0o644, b"")
    }

    pub fn finish(self) -> io::Result<Vec<u8>> {
        self.builder.into_inner()
    }
}

/// The busybox layer: `/bin/busybox` with symlinks for common applets, `/etc`, `/tmp`
/// (1777), `/root`, `/home`, `/var`, and `/etc/passwd` and `/etc/group` for root and nobody.
pub fn busybox_layer(busybox: &Path) -> io::Result<Vec<u8>> {
    let binary = std::fs::read(busybox)?;
    let mut layer = LayerBuilder::new();
    layer.dir("bin", 0o755)?.file("bin/busybox", 0o755, &binary)?;
    for applet in BUSYBOX_APPLETS {
        layer.symlink(&format!("bin/{applet}"), "busybox")?;
    }
    layer
        .dir("etc", 0o755)?
        .file(
            "etc/passwd",
            0o644,
            b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
        )?
        .file("etc/group", 0o644, b"root:x:0:\nnogroup:x:65534:\n")?
        .dir("home", 0o755)?
        .dir("root", 0o700)?
        .dir("tmp", 0o1777)?
        .dir("var", 0o755)?;
    layer.finish()
}

/// One image to put in an archive.
#[derive(Debug, Clone)]
pub struct ArchiveImage {
    /// Any reference form (`busybox:test`); archives store it normalised or familiar as
    /// their tools do.
    pub name: String,
    /// Uncompressed layer tars, bottom first.
    pub layers: Vec<Vec<u8>>,
    pub config: RuntimeConfig,
    /// OCI archives: gzip the layers.
    pub gzip: bool,
    /// OCI archives: wrap the manifest in an index that also lists another platform.
    pub multi_platform: bool,
}

impl ArchiveImage {
    pub fn new(name: &str, layers: Vec<Vec<u8>>) -> ArchiveImage {
        ArchiveImage {
            name: name.to_owned(),
            layers,
            config: RuntimeConfig::default(),
            gzip: false,
            multi_platform: false,
        }
    }
}

/// The image config JSON (Docker's and OCI's common form).
pub fn config_json(image: &ArchiveImage) -> Vec<u8> {
    let (os, arch) = host_platform();
    let diff_ids: Vec<String> = image.layers.iter().map(|layer| sha256_digest(layer)).collect();
    let c = &image.config;
    let mut config = serde_json::Map::new();
    if !c.entrypoint.is_empty() {
        config.insert("Entrypoint".into(), serde_json::json!(c.entrypoint));
    }
    if !c.cmd.is_empty() {
        config.insert("Cmd".into(), serde_json::json!(c.cmd));
    }
    if !c.env.is_empty() {
        config.insert("Env".into(), serde_json::json!(c.env));
    }
    if let Some(dir) = &c.working_dir {
        config.insert("WorkingDir".into(), serde_json::json!(dir));
    }
    if let Some(user) = &c.user {
        config.insert("User".into(), serde_json::json!(user));
    }
    if !c.exposed_ports.is_empty() {
        let ports: serde_json::Map<_, _> = c
            .exposed_ports
            .iter()
            .map(|port| (port.clone(), serde_json::json!({})))
            .collect();
        config.insert("ExposedPorts".into(), serde_json::Value::Object(ports));
    }
    let json = serde_json::json!({
        "architecture": arch,
        "os": os,
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    serde_json::to_vec(&json).unwrap_or_default()
}

fn gzip(bytes: &[u8]) -> io::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes)?;
    encoder.finish()
}

fn hex(digest: &str) -> &str {
    digest.trim_start_matches("sha256:")
}

/// Collects archive members in a fixed order, without duplicates.
#[derive(Default)]
struct Members(Vec<(String, Vec<u8>)>);

impl Members {
    fn add(&mut self, name: String, data: Vec<u8>) {
        if !self.0.iter().any(|(existing, _)| *existing == name) {
            self.0.push((name, data));
        }
    }

    fn into_tar(self) -> io::Result<Vec<u8>> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, data) in self.0 {
            let mut header = header(tar::EntryType::Regular, 0o644, data.len() as u64);
            builder.append_data(&mut header, name, &data[..])?;
        }
        builder.into_inner()
    }
}

fn descriptor(media_type: &str, bytes: &[u8]) -> serde_json::Value {
    serde_json::json!({"mediaType": media_type, "digest": sha256_digest(bytes), "size": bytes.len()})
}

/// An OCI image layout archive holding `images`, named by containerd's and OCI's
/// annotations as `ctr export` writes them.
pub fn oci_archive(images: &[ArchiveImage]) -> io::Result<Vec<u8>> {
    let mut members = Members::default();
    members.add("oci-layout".into(), br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec());
    let mut blobs = Members::default();
    let mut manifests = Vec::new();
    for image in images {
        let config = config_json(image);
        let mut layers = Vec::new();
        for layer in &image.layers {
            let (media_type, bytes) = if image.gzip {
                ("application/vnd.oci.image.layer.v1.tar+gzip", gzip(layer)?)
            } else {
                ("application/vnd.oci.image.layer.v1.tar", layer.clone())
            };
            layers.push(descriptor(media_type, &bytes));
            blobs.add(format!("blobs/sha256/{}", hex(&sha256_digest(&bytes))), bytes);
        }
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": descriptor("application/vnd.oci.image.config.v1+json", &config),
            "layers": layers,
        }))?;
        blobs.add(format!("blobs/sha256/{}", hex(&sha256_digest(&config))), config);
        let mut top = descriptor("application/vnd.oci.image.manifest.v1+json", &manifest);
        if image.multi_platform {
            let (os, arch) = host_platform();
            let mut own = top.clone();
            own["platform"] = serde_json::json!({"os": os, "architecture": arch});
            let foreign_arch = if arch == "s390x" { "riscv64" } else { "s390x" };
            let foreign = serde_json::json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": sha256_digest(foreign_arch.as_bytes()),
                "size": 2,
                "platform": {"os": "linux", "architecture": foreign_arch},
            });
            let index = serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": [foreign, own],
            }))?;
            blobs.add(
                format!("blobs/sha256/{}", hex(&sha256_digest(&index))),
                index.clone(),
            );
            top = descriptor("application/vnd.oci.image.index.v1+json", &index);
        }
        blobs.add(
            format!("blobs/sha256/{}", hex(&sha256_digest(&manifest))),
            manifest,
        );
        let full = Reference::parse_docker_ref(&image.name)
            .map_err(io::Error::other)?
            .to_string();
        let tag = Reference::parse_docker_ref(&image.name)
            .ok()
            .and_then(|r| r.tag().map(str::to_owned))
            .unwrap_or_default();
        top["annotations"] = serde_json::json!({
            "io.containerd.image.name": full,
            "org.opencontainers.image.ref.name": tag,
        });
        manifests.push(top);
    }
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
    }))?;
    members.add("index.json".into(), index);
    members.0.extend(blobs.0);
    members.into_tar()
}

/// A `docker save` archive (the classic layout: `<id>.json` configs, `<id>/layer.tar`,
/// `manifest.json` with familiar RepoTags, `repositories`).
pub fn docker_archive(images: &[ArchiveImage]) -> io::Result<Vec<u8>> {
    let mut members = Members::default();
    let mut manifest = Vec::new();
    let mut repositories = serde_json::Map::new();
    for image in images {
        let config = config_json(image);
        let config_name = format!("{}.json", hex(&sha256_digest(&config)));
        let mut layer_names = Vec::new();
        for layer in &image.layers {
            let id = hex(&sha256_digest(layer)).to_owned();
            layer_names.push(format!("{id}/layer.tar"));
            members.add(format!("{id}/VERSION"), b"1.0".to_vec());
            members.add(format!("{id}/layer.tar"), layer.clone());
        }
        members.add(config_name.clone(), config);
        let reference = Reference::parse_docker_ref(&image.name).map_err(io::Error::other)?;
        let familiar = reference.familiar();
        manifest
            .push(serde_json::json!({"Config": config_name, "RepoTags": [familiar], "Layers": layer_names}));
        if let (Some((repo, tag)), Some(last)) = (familiar.rsplit_once(':'), layer_names.last()) {
            repositories.insert(
                repo.to_owned(),
                serde_json::json!({ tag: last.trim_end_matches("/layer.tar") }),
            );
        }
    }
    members.add("manifest.json".into(), serde_json::to_vec(&manifest)?);
    members.add("repositories".into(), serde_json::to_vec(&repositories)?);
    members.into_tar()
}

/// A busybox image archive (OCI layout) named `name`, its default command `sh`.
pub fn busybox_oci_archive(name: &str) -> io::Result<Vec<u8>> {
    let mut image = ArchiveImage::new(name, vec![busybox_layer(Path::new(BUSYBOX))?]);
    image.config.cmd = vec!["sh".to_owned()];
    image.config.env = vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned()];
    image.gzip = true;
    oci_archive(&[image])
}
