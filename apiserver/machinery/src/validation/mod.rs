//! Validation primitives shared by the kinds: names, labels, annotations, object metadata.
//!
//! A port of the shared parts of upstream's validation, with messages byte-identical to
//! upstream's (they reach clients as the causes of 422 `Invalid` responses):
//!
//! - [`formats`]: k8s.io/apimachinery/pkg/util/validation string checks (`is_dns1123_label`,
//!   `is_qualified_name`, `is_valid_port_name`, ...) and message builders (`regex_error`, ...).
//! - [`meta`]: name validators (`name_is_dns_subdomain`, ...), labels, annotations, finalizers,
//!   owner references, label selectors, `validate_object_meta` and
//!   `validate_object_meta_update` (core's) and their `*_accessor` forms (apimachinery's).
//! - [`ip`]: IP and CIDR checks of legacy and new fields, and their warnings.
//! - [`quantity`]: resource quantities: parsing, comparison, canonical printing, and the
//!   resource-list defaulting upstream applies.
//! - [`resources`]: compute resource names and quantity rules.
//!
//! Everything is re-exported here, so callers write `validation::validate_object_meta`.

pub mod formats;
pub mod ip;
pub mod meta;
pub mod quantity;
pub mod resources;

pub use formats::*;
pub use ip::*;
pub use meta::*;
pub use quantity::*;
pub use resources::*;
