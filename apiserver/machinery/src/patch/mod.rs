//! JSON Patch, JSON Merge Patch and strategic merge patch, applied as kube-apiserver does.
