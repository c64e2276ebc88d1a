//! The ImageLocality score (upstream: plugins/imagelocality): nodes that already hold the
//! pod's images score higher, by image size scaled by how widely the image is spread over
//! the cluster, between upstream's thresholds. It also keeps the cluster-wide image states
//! (size, how many nodes have it) from `node.status.images`. It does no I/O.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use k8s_openapi::api::core::v1::{Node, Pod};

use super::plugins::MAX_NODE_SCORE;

const MB: i64 = 1024 * 1024;
/// Below this much image data on the node, the score is 0.
const MIN_THRESHOLD: i64 = 23 * MB;
/// Per container, at or above this much the score is the maximum.
const MAX_CONTAINER_THRESHOLD: i64 = 1000 * MB;

/// One image name over the cluster: its size (as first reported) and how many nodes have it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ImageState {
    size: i64,
    nodes: usize,
}

/// Every image name some node reports.
#[derive(Debug, Default)]
pub struct Images(HashMap<String, ImageState>);

fn names(node: &Node) -> impl Iterator<Item = (&str, i64)> {
    node.status
        .as_ref()
        .and_then(|s| s.images.as_ref())
        .into_iter()
        .flatten()
        .flat_map(|image| {
            let size = image.size_bytes.unwrap_or(0);
            image
                .names
                .iter()
                .flatten()
                .map(move |name| (name.as_str(), size))
        })
}

impl Images {
    pub fn add_node(&mut self, node: &Node) {
        let mut seen = HashSet::new();
        for (name, size) in names(node) {
            if !seen.insert(name) {
                continue;
            }
            self.0
                .entry(name.to_owned())
                .and_modify(|state| state.nodes += 1)
                .or_insert(ImageState { size, nodes: 1 });
        }
    }

    pub fn remove_node(&mut self, node: &Node) {
        let mut seen = HashSet::new();
        for (name, _) in names(node) {
            if !seen.insert(name) {
                continue;
            }
            if let Some(state) = self.0.get_mut(name) {
                state.nodes = state.nodes.saturating_sub(1);
                if state.nodes == 0 {
                    self.0.remove(name);
                }
            }
        }
    }
}

/// An image name with the `:latest` tag it implies when it has neither tag nor digest.
fn normalized(name: &str) -> Cow<'_, str> {
    let colon = name.rfind(':').map_or(-1, |i| i as i64);
    let slash = name.rfind('/').map_or(-1, |i| i as i64);
    if colon <= slash {
        Cow::Owned(format!("{name}:latest"))
    } else {
        Cow::Borrowed(name)
    }
}

/// The ImageLocality score of `node` for `pod`, among `total_nodes` nodes.
pub fn score(pod: &Pod, node: &Node, images: &Images, total_nodes: usize) -> i64 {
    let Some(spec) = pod.spec.as_ref() else { return 0 };
    let containers = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter());
    let mut sum = 0i64;
    let mut count = 0i64;
    for container in containers {
        count += 1;
        let Some(image) = container.image.as_deref() else {
            continue;
        };
        let image = normalized(image);
        if !names(node).any(|(name, _)| name == image) {
            continue;
        }
        if let Some(state) = images.0.get(image.as_ref())
            && total_nodes > 0
        {
            let spread = state.nodes as f64 / total_nodes as f64;
            sum += (state.size as f64 * spread) as i64;
        }
    }
    let max_threshold = MAX_CONTAINER_THRESHOLD * count;
    if max_threshold <= MIN_THRESHOLD {
        return 0;
    }
    let sum = sum.clamp(MIN_THRESHOLD, max_threshold);
    MAX_NODE_SCORE * (sum - MIN_THRESHOLD) / (max_threshold - MIN_THRESHOLD)
}

#[cfg(test)]
#[allow(clippy::needless_pass_by_value)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(images: serde_json::Value) -> Node {
        serde_json::from_value(json!({"metadata": {"name": "n"}, "status": {"images": images}})).unwrap()
    }

    fn pod(images: &[&str]) -> Pod {
        let containers: Vec<serde_json::Value> = images
            .iter()
            .enumerate()
            .map(|(i, image)| json!({"name": format!("c{i}"), "image": image}))
            .collect();
        serde_json::from_value(json!({"spec": {"containers": containers}})).unwrap()
    }

    #[test]
    fn names_without_tag_or_digest_mean_latest() {
        assert_eq!(normalized("nginx"), "nginx:latest");
        assert_eq!(normalized("registry:5000/nginx"), "registry:5000/nginx:latest");
        assert_eq!(normalized("nginx:1.27"), "nginx:1.27");
        assert_eq!(normalized("nginx@sha256:abc"), "nginx@sha256:abc");
    }

    #[test]
    fn scores_follow_upstream_thresholds_and_spread() {
        // Upstream's test: a 250 MB image on one of two nodes scores
        // 100 * (125 MB - 23 MB) / (1000 MB - 23 MB) = 10.
        let big = node(json!([{"names": ["gcr.io/250:latest"], "sizeBytes": 250 * MB},
                              {"names": ["gcr.io/10:v1"], "sizeBytes": 10 * MB}]));
        let empty = node(json!([]));
        let mut images = Images::default();
        images.add_node(&big);
        images.add_node(&empty);
        assert_eq!(score(&pod(&["gcr.io/250"]), &big, &images, 2), 10);
        assert_eq!(score(&pod(&["gcr.io/250"]), &empty, &images, 2), 0);
        // Below the minimum threshold: 0.
        assert_eq!(score(&pod(&["gcr.io/10:v1"]), &big, &images, 2), 0);
        // On every node, the image counts in full: 100 * (250 - 23) / (2000 - 23) = 11.
        let mut everywhere = Images::default();
        everywhere.add_node(&big);
        everywhere.add_node(&big);
        assert_eq!(score(&pod(&["gcr.io/250", "other"]), &big, &everywhere, 2), 11);
        // Capped at the maximum.
        let huge = node(json!([{"names": ["huge:1"], "sizeBytes": 3000 * MB}]));
        let mut one = Images::default();
        one.add_node(&huge);
        assert_eq!(score(&pod(&["huge:1"]), &huge, &one, 1), MAX_NODE_SCORE);
        one.remove_node(&huge);
        assert_eq!(score(&pod(&["huge:1"]), &huge, &one, 1), 0);
    }
}
