//! The image store end to end: importing generated OCI and docker archives, multi-image
//! and multi-platform archives, persistence across a reopen, auto-import, and (as root)
//! overlay root filesystems built from busybox with whiteouts hiding lower files.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use rudder_noded::images::testimage::{self, ArchiveImage, LayerBuilder};
use rudder_noded::images::{self, Error, RuntimeConfig, Store};

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn small_layer(file: &str, content: &[u8]) -> Vec<u8> {
    let mut layer = LayerBuilder::new();
    layer
        .dir("data", 0o755)
        .unwrap()
        .file(&format!("data/{file}"), 0o644, content)
        .unwrap();
    layer.finish().unwrap()
}

fn app_image(name: &str) -> ArchiveImage {
    let mut image = ArchiveImage::new(
        name,
        vec![small_layer("a", b"first"), small_layer("b", b"second")],
    );
    image.config = RuntimeConfig {
        entrypoint: vec!["/bin/server".to_owned()],
        cmd: vec!["--port".to_owned(), "8080".to_owned()],
        env: vec!["PATH=/bin".to_owned(), "MODE=test".to_owned()],
        working_dir: Some("/srv".to_owned()),
        user: Some("65534:65534".to_owned()),
        exposed_ports: vec!["8080/tcp".to_owned()],
    };
    image
}

#[test]
fn oci_archive_import_names_resolves_and_parses_config() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let mut gz = app_image("registry.local:5000/team/app:v1");
    gz.gzip = true;
    let other = ArchiveImage::new("busybox:other", vec![small_layer("c", b"third")]);
    let archive = write(
        dir.path(),
        "two.tar",
        &testimage::oci_archive(&[gz, other]).unwrap(),
    );

    let imported = store.import_archive(&archive).unwrap();
    assert_eq!(imported.len(), 2);
    assert_eq!(imported[0].names, ["registry.local:5000/team/app:v1"]);
    assert_eq!(imported[1].names, ["docker.io/library/busybox:other"]);

    let image = store.image("registry.local:5000/team/app:v1").unwrap();
    assert_eq!(image.config_digest, imported[0].config_digest);
    assert_eq!(image.diff_ids().len(), 2);
    let config = image.runtime_config();
    assert_eq!(config.entrypoint, ["/bin/server"]);
    assert_eq!(config.cmd, ["--port", "8080"]);
    assert_eq!(config.env, ["PATH=/bin", "MODE=test"]);
    assert_eq!(config.working_dir.as_deref(), Some("/srv"));
    assert_eq!(config.user.as_deref(), Some("65534:65534"));
    assert_eq!(config.exposed_ports, ["8080/tcp"]);
    // Short names and image IDs find the same image.
    assert_eq!(
        store.image("busybox:other").unwrap().names,
        ["docker.io/library/busybox:other"]
    );
    assert_eq!(
        store.image(&imported[1].config_digest).unwrap().target_digest,
        imported[1].target_digest
    );
    assert!(matches!(store.image("busybox"), Err(Error::ImageNotFound(_))));

    let rows = store.rows().unwrap();
    let table = images::format_image_table(&rows);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[0].starts_with("IMAGE "), "{table}");
    assert!(lines[1].starts_with("docker.io/library/busybox "), "{table}");
    assert!(lines[1].contains(" other "), "{table}");
    let id = &imported[1].config_digest["sha256:".len()..][..13];
    assert!(lines[1].contains(id), "{table}");
    assert!(lines[2].starts_with("registry.local:5000/team/app "), "{table}");
}

#[test]
fn docker_archive_is_converted_to_oci() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let archive = write(
        dir.path(),
        "docker.tar",
        &testimage::docker_archive(&[app_image("app:v2"), app_image("quay.io/x/app:v3")]).unwrap(),
    );
    let imported = store.import_archive(&archive).unwrap();
    let names: Vec<_> = imported.iter().flat_map(|i| i.names.clone()).collect();
    assert_eq!(names, ["docker.io/library/app:v2", "quay.io/x/app:v3"]);
    let image = store.image("app:v2").unwrap();
    let manifest: serde_json::Value =
        serde_json::from_reader(store.open_blob(&image.manifest_digest).unwrap()).unwrap();
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar"
    );
    // Uncompressed docker layers are their own diffIDs.
    assert_eq!(manifest["layers"][0]["digest"], image.diff_ids()[0].as_str());
    assert_eq!(image.runtime_config().entrypoint, ["/bin/server"]);
    // The same image twice: one manifest, both names.
    assert_eq!(imported[0].target_digest, imported[1].target_digest);
    assert_eq!(image.names, ["docker.io/library/app:v2", "quay.io/x/app:v3"]);
}

#[test]
fn multi_platform_index_resolves_this_platform() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let mut image = app_image("multi:1");
    image.multi_platform = true;
    let archive = write(
        dir.path(),
        "multi.tar",
        &testimage::oci_archive(&[image]).unwrap(),
    );
    let imported = store.import_archive(&archive).unwrap();
    let resolved = store.image("multi:1").unwrap();
    assert_eq!(resolved.target_digest, imported[0].target_digest);
    assert_ne!(
        resolved.manifest_digest, resolved.target_digest,
        "the index must be followed"
    );
    let (_, arch) = images::host_platform();
    let config: serde_json::Value =
        serde_json::from_reader(store.open_blob(&resolved.config_digest).unwrap()).unwrap();
    assert_eq!(config["architecture"], arch);
}

#[test]
fn tampered_and_incomplete_archives_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let mut bytes =
        testimage::oci_archive(&[ArchiveImage::new("x:1", vec![small_layer("a", b"payload")])]).unwrap();
    let at = bytes.windows(7).position(|w| w == b"payload").unwrap();
    bytes[at] = b'P';
    let archive = write(dir.path(), "tampered.tar", &bytes);
    let err = store.import_archive(&archive).unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert!(matches!(store.image("x:1"), Err(Error::ImageNotFound(_))));

    let mut layer = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(2);
    layer
        .append_data(&mut header, "manifest.json", &b"[]"[..])
        .unwrap();
    let archive = write(dir.path(), "empty.tar", &layer.into_inner().unwrap());
    assert!(store.import_archive(&archive).unwrap().is_empty());
    let archive = write(dir.path(), "junk.tar", &[0u8; 1024]);
    assert!(matches!(
        store.import_archive(&archive),
        Err(Error::InvalidArchive { .. })
    ));
}

#[test]
fn references_survive_a_restart_and_auto_import_is_idempotent() {
    let data = tempfile::tempdir().unwrap();
    let drop_in = images::drop_in_dir(data.path());
    std::fs::create_dir_all(&drop_in).unwrap();
    write(
        &drop_in,
        "a.tar",
        &testimage::oci_archive(&[app_image("a:1")]).unwrap(),
    );
    write(
        &drop_in,
        "b.tar",
        &testimage::docker_archive(&[app_image("b:1")]).unwrap(),
    );
    write(&drop_in, "notes.txt", b"not an archive");
    let first_id = {
        let store = Store::open(images::store_dir(data.path())).unwrap();
        let results = images::auto_import(&store, &drop_in).unwrap();
        assert_eq!(results.len(), 2);
        assert!(results.iter().all(|(_, result)| result.is_ok()));
        assert!(
            images::auto_import(&store, &drop_in).unwrap().is_empty(),
            "unchanged files are skipped"
        );
        store.image("a:1").unwrap().config_digest
    };
    let store = Store::open(images::store_dir(data.path())).unwrap();
    assert_eq!(store.image("a:1").unwrap().config_digest, first_id);
    assert_eq!(store.rows().unwrap().len(), 2);
    assert!(images::auto_import(&store, &drop_in).unwrap().is_empty());
    // A changed archive is imported again.
    write(
        &drop_in,
        "a.tar",
        &testimage::oci_archive(&[app_image("a:2")]).unwrap(),
    );
    let results = images::auto_import(&store, &drop_in).unwrap();
    assert_eq!(results.len(), 1);
    assert!(store.image("a:2").is_ok() && store.image("a:1").is_ok());
}

#[test]
fn concurrent_imports_keep_every_name() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let archives: Vec<PathBuf> = (0..6)
        .map(|i| {
            write(
                dir.path(),
                &format!("{i}.tar"),
                &testimage::oci_archive(&[app_image(&format!("c:{i}"))]).unwrap(),
            )
        })
        .collect();
    std::thread::scope(|scope| {
        for archive in &archives {
            let root = root.clone();
            scope.spawn(move || Store::open(root).unwrap().import_archive(archive).unwrap());
        }
    });
    let store = Store::open(root).unwrap();
    assert_eq!(store.rows().unwrap().len(), 6);
}

fn busybox_present() -> bool {
    if Path::new(testimage::BUSYBOX).is_file() {
        return true;
    }
    panic!(
        "{} is missing: install Debian's busybox-static (.ci/run does)",
        testimage::BUSYBOX
    );
}

/// Mounts the image's overlay in a scratch dir, runs `check`, and unmounts.
fn with_rootfs(store: &Store, name: &str, scratch: &Path, check: impl FnOnce(&Path)) {
    let image = store.image(name).unwrap();
    let lower = store.prepare_layers(&image).unwrap();
    let dirs = images::mount_overlay(&lower, &scratch.join("container")).unwrap();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&dirs.merged)));
    images::unmount_overlay(&dirs.merged).unwrap();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn busybox_rootfs_on_overlay_as_root() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    assert!(busybox_present());
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let archive = write(
        dir.path(),
        "busybox.tar",
        &testimage::busybox_oci_archive("busybox:test").unwrap(),
    );
    store.import_archive(&archive).unwrap();
    // Deterministic: the same archive gives the same bytes.
    assert_eq!(
        std::fs::read(&archive).unwrap(),
        testimage::busybox_oci_archive("busybox:test").unwrap()
    );
    let image = store.image("busybox:test").unwrap();
    assert_eq!(image.runtime_config().cmd, ["sh"]);
    with_rootfs(&store, "busybox:test", dir.path(), |merged| {
        let busybox = merged.join("bin/busybox");
        assert_eq!(
            std::fs::read(&busybox).unwrap(),
            std::fs::read(testimage::BUSYBOX).unwrap()
        );
        assert_eq!(
            std::fs::read_link(merged.join("bin/sh")).unwrap(),
            Path::new("busybox")
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            merged.join("tmp").metadata().unwrap().permissions().mode() & 0o7777,
            0o1777
        );
        // Writes go to the container's upper dir, never to the shared layer.
        std::fs::write(merged.join("tmp/x"), b"x").unwrap();
        let output = std::process::Command::new("chroot")
            .arg(merged)
            .args(["/bin/sh", "-c", "echo hello from $(cat /tmp/x)"])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&output.stdout), "hello from x\n");
    });
    assert!(dir.path().join("container/upper/tmp/x").exists());
    let lower = store.prepare_layers(&image).unwrap();
    assert!(!lower[0].join("tmp/x").exists());
    assert_eq!(
        std::fs::read_dir(dir.path().join("container/rootfs"))
            .unwrap()
            .count(),
        0,
        "unmounted"
    );
}

#[test]
fn whiteouts_hide_lower_files_as_root() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let mut base = LayerBuilder::new();
    base.dir("etc", 0o755)
        .unwrap()
        .file("etc/gone", 0o644, b"lower")
        .unwrap()
        .file("etc/kept", 0o644, b"lower")
        .unwrap()
        .dir("var", 0o755)
        .unwrap()
        .file("var/old", 0o644, b"lower")
        .unwrap();
    let mut top = LayerBuilder::new();
    top.whiteout("etc/gone")
        .unwrap()
        .opaque("var")
        .unwrap()
        .file("var/new", 0o644, b"upper")
        .unwrap();
    let image = ArchiveImage::new("wh:1", vec![base.finish().unwrap(), top.finish().unwrap()]);
    let archive = write(dir.path(), "wh.tar", &testimage::oci_archive(&[image]).unwrap());
    store.import_archive(&archive).unwrap();
    with_rootfs(&store, "wh:1", dir.path(), |merged| {
        assert!(!merged.join("etc/gone").exists());
        assert_eq!(std::fs::read(merged.join("etc/kept")).unwrap(), b"lower");
        assert!(!merged.join("var/old").exists());
        assert_eq!(std::fs::read(merged.join("var/new")).unwrap(), b"upper");
    });
}
