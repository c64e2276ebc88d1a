//! Validation primitives shared by the kinds: names, labels, annotations, object metadata.
