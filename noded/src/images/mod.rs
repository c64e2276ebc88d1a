//! The node's image store: content-addressed OCI blobs, image references, unpacked layers
//! and the overlayfs root filesystems stacked from them.
//!
//! Layout under `DATA_DIR/images-store` (`DATA_DIR/images/` is the drop-in directory for
//! archives imported at start, so the store needs a name of its own):
//! - `blobs/sha256/<hex>`: manifests, indexes, configs and layers, verified against their
//!   digest before they are renamed into place;
//! - `images.json`: image references (normalised as Docker does) -> their target descriptor,
//!   rewritten atomically under a lock;
//! - `snapshots/<diffID hex>`: each layer unpacked once, whiteouts converted for overlayfs;
//! - `tmp/`: partial writes, on the same filesystem so a rename publishes them.
//!
//! `registry` pulls images from registries into the store. This module does not run
//! containers and does not talk to the API server.

mod archive;
mod digest;
mod error;
pub mod overlay;
pub mod reference;
mod refs;
pub mod registry;
mod store;
pub mod testimage;
mod unpack;

pub use archive::{AutoImportResults, ImportedImage, auto_import};
pub use digest::{is_sha256_digest, sha256_digest};
pub use error::Error;
pub use overlay::{mount_overlay, unmount_overlay};
pub use reference::Reference;
pub use store::{Image, ImageRow, RuntimeConfig, Store, format_image_table, host_platform};
pub use unpack::{WhiteoutKind, classify_whiteout, unpack_layer};

/// The store's directory inside a data dir.
pub fn store_dir(data_dir: &std::path::Path) -> std::path::PathBuf {
    data_dir.join("images-store")
}

/// The directory whose `*.tar` archives are imported at start.
pub fn drop_in_dir(data_dir: &std::path::Path) -> std::path::PathBuf {
    data_dir.join("images")
}
