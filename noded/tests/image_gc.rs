//! Image garbage collection against a real image store: images sharing a layer, one used by
//! a container, collected under thresholds that force deletion.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use rudder_noded::images::testimage::{self, ArchiveImage, LayerBuilder};
use rudder_noded::images::{Error, Store};
use rudder_noded::kubelet::image_gc::{GcError, ImageGc, ImageGcPolicy};
use tokio::time::Instant;

fn layer(file: &str, content: &[u8]) -> Vec<u8> {
    let mut layer = LayerBuilder::new();
    layer
        .dir("data", 0o755)
        .unwrap()
        .file(&format!("data/{file}"), 0o644, content)
        .unwrap();
    layer.finish().unwrap()
}

/// A store holding `app:used` and `app:unused`, which share their bottom layer, both with
/// their layers unpacked.
fn two_images(dir: &std::path::Path) -> Arc<Store> {
    let store = Store::open(dir.join("store")).unwrap();
    let used = ArchiveImage::new(
        "app:used",
        vec![layer("shared", b"shared"), layer("used", b"used only")],
    );
    let unused = ArchiveImage::new(
        "app:unused",
        vec![layer("shared", b"shared"), layer("unused", b"unused only")],
    );
    let archive = dir.join("images.tar");
    std::fs::write(&archive, testimage::oci_archive(&[used, unused]).unwrap()).unwrap();
    store.import_archive(&archive).unwrap();
    for name in ["app:used", "app:unused"] {
        let image = store.image(name).unwrap();
        store.prepare_layers(&image).unwrap();
    }
    Arc::new(store)
}

fn snapshot_dir(store: &Store, diff_id: &str) -> std::path::PathBuf {
    store
        .root()
        .join("snapshots")
        .join(diff_id.trim_start_matches("sha256:"))
}

#[test]
fn over_the_high_threshold_the_unused_image_goes_and_the_used_one_stays() {
    let dir = tempfile::tempdir().unwrap();
    let store = two_images(dir.path());
    let used = store.image("app:used").unwrap();
    let unused = store.image("app:unused").unwrap();
    let shared_layer = used.manifest.layers()[0].digest().to_string();
    let unused_layer = unused.manifest.layers()[1].digest().to_string();
    assert_eq!(shared_layer, unused.manifest.layers()[0].digest().to_string());

    let policy = ImageGcPolicy {
        min_age: Duration::ZERO,
        ..ImageGcPolicy::default()
    };
    let start = Instant::now();
    let mut gc = ImageGc::new(store.clone(), policy, start);
    // An exited container's recorded image name still keeps its image.
    let containers = vec![("docker.io/library/app:used".to_owned(), String::new())];
    // 85 % used: 5 bytes to free, which removing one image does.
    gc.garbage_collect(&containers, || Ok((100, 15)), start + Duration::from_secs(1))
        .unwrap();

    assert!(matches!(store.image("app:unused"), Err(Error::ImageNotFound(_))));
    assert!(matches!(
        store.image(&unused.config_digest),
        Err(Error::ImageNotFound(_))
    ));
    assert!(!store.has_blob(&unused_layer));
    assert!(!store.has_blob(&unused.config_digest));
    assert!(!store.has_blob(&unused.manifest_digest));
    assert!(!snapshot_dir(&store, &unused.diff_ids()[1]).exists());

    let still = store.image("app:used").unwrap();
    assert_eq!(still.config_digest, used.config_digest);
    assert!(store.has_blob(&shared_layer));
    for diff_id in used.diff_ids() {
        assert!(snapshot_dir(&store, diff_id).is_dir(), "{diff_id}");
    }
    assert_eq!(gc.records().len(), 1);
}

#[test]
fn under_the_high_threshold_or_too_fresh_nothing_goes() {
    let dir = tempfile::tempdir().unwrap();
    let store = two_images(dir.path());
    let start = Instant::now();
    let mut gc = ImageGc::new(store.clone(), ImageGcPolicy::default(), start);
    // 84 % used.
    gc.garbage_collect(&[], || Ok((100, 16)), start).unwrap();
    assert_eq!(store.images().unwrap().len(), 2);

    // Over the threshold, but both images were first seen less than two minutes ago.
    let capacity = 1u64 << 40;
    let err = gc
        .garbage_collect(&[], || Ok((capacity, 0)), start + Duration::from_secs(60))
        .unwrap_err();
    assert!(matches!(err, GcError::FreeDiskSpaceFailed(_)), "{err}");
    assert_eq!(
        err.to_string(),
        "Insufficient free disk space on the node's image filesystem (100% of 1.0 TiB used). \
         Failed to free sufficient space by deleting unused images (freed 0 bytes). \
         Investigate disk usage, as it could be used by active images, logs, volumes, or other data."
    );
    assert_eq!(store.images().unwrap().len(), 2);

    // Later, both are old enough; nothing uses them, so both go, and that is still not
    // enough.
    let err = gc
        .garbage_collect(&[], || Ok((capacity, 0)), start + Duration::from_secs(600))
        .unwrap_err();
    assert!(matches!(err, GcError::FreeDiskSpaceFailed(_)), "{err}");
    assert!(store.images().unwrap().is_empty());
    assert_eq!(
        std::fs::read_dir(store.root().join("snapshots")).unwrap().count(),
        0
    );
    assert_eq!(
        std::fs::read_dir(store.root().join("blobs/sha256"))
            .unwrap()
            .count(),
        0
    );

    let err = gc.garbage_collect(&[], || Ok((0, 0)), start).unwrap_err();
    assert_eq!(err.to_string(), "invalid capacity 0 on image filesystem");
}

#[test]
fn images_unused_past_the_maximum_age_go_whatever_the_usage() {
    let dir = tempfile::tempdir().unwrap();
    let store = two_images(dir.path());
    let policy = ImageGcPolicy {
        max_age: Duration::from_secs(3600),
        ..ImageGcPolicy::default()
    };
    let start = Instant::now();
    let mut gc = ImageGc::new(store.clone(), policy, start);
    let containers = vec![(String::new(), store.image("app:used").unwrap().config_digest)];
    gc.garbage_collect(&containers, || Ok((100, 90)), start).unwrap();
    gc.garbage_collect(&containers, || Ok((100, 90)), start + Duration::from_secs(3000))
        .unwrap();
    assert_eq!(store.images().unwrap().len(), 2);
    // After an hour and a half, with the container gone: the never used image is past the
    // age, the other was last used 40 minutes ago.
    gc.garbage_collect(&[], || Ok((100, 90)), start + Duration::from_secs(5400))
        .unwrap();
    let names: Vec<Vec<String>> = store.images().unwrap().into_iter().map(|i| i.names).collect();
    assert_eq!(names, [["docker.io/library/app:used".to_owned()]]);
}
