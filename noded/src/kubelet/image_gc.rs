//! Image garbage collection (upstream's pkg/kubelet/images image_gc_manager): every
//! [`IMAGE_GC_PERIOD`] it records when each image was first seen and last used by a
//! container the runtime knows (running or exited), removes images unused for longer than
//! `imageMaximumGCAge` (when set), and when the image filesystem's usage reaches
//! `--image-gc-high-threshold` removes unused images, least recently used first, skipping
//! those younger than `--minimum-image-ttl-duration`, until usage is down to
//! `--image-gc-low-threshold`.
//!
//! Which images to remove is decided by pure functions ([`eviction_order`],
//! [`eligible_for_space`], [`choose_for_space`], [`too_old`]); [`ImageGc`] applies them to
//! the store. It does not read the API; the kubelet's loop ([`run`]) publishes the events.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::runtime::events::EventType;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::images::{Image, Store};

/// How often images are detected and collected (upstream's `ImageGCPeriod`).
pub const IMAGE_GC_PERIOD: Duration = Duration::from_secs(5 * 60);

/// The image GC policy, as the kubelet's configuration names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageGcPolicy {
    /// `imageGCHighThresholdPercent`: usage at which collection always runs.
    pub high_threshold_percent: u32,
    /// `imageGCLowThresholdPercent`: usage collection frees down to.
    pub low_threshold_percent: u32,
    /// `imageMinimumGCAge`: images detected more recently are never removed for space.
    pub min_age: Duration,
    /// `imageMaximumGCAge`: unused images older than this are removed; zero is off.
    pub max_age: Duration,
}

impl Default for ImageGcPolicy {
    fn default() -> Self {
        ImageGcPolicy {
            high_threshold_percent: 85,
            low_threshold_percent: 80,
            min_age: Duration::from_secs(120),
            max_age: Duration::ZERO,
        }
    }
}

impl ImageGcPolicy {
    /// Upstream's checks (`NewImageGCManager` and the configuration's validation).
    pub fn validate(&self) -> Result<(), String> {
        let (high, low) = (self.high_threshold_percent, self.low_threshold_percent);
        if high > 100 {
            return Err(format!(
                "invalid HighThresholdPercent {high}, must be in range [0-100]"
            ));
        }
        if low > 100 {
            return Err(format!(
                "invalid LowThresholdPercent {low}, must be in range [0-100]"
            ));
        }
        if low > high {
            return Err(format!(
                "LowThresholdPercent {low} can not be higher than HighThresholdPercent {high}"
            ));
        }
        if !self.max_age.is_zero() && self.max_age <= self.min_age {
            return Err(format!(
                "invalid configuration: imageMaximumGCAge {} must be greater than imageMinimumGCAge {}",
                go_duration(self.max_age),
                go_duration(self.min_age)
            ));
        }
        Ok(())
    }

    /// Upstream stubs image GC out when nothing could ever trigger it.
    pub fn disabled(&self) -> bool {
        self.high_threshold_percent == 100 && self.max_age.is_zero()
    }
}

/// What the collector knows of one image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageRecord {
    pub first_detected: Instant,
    /// The last detection that found a container using it; never used is `None`, which
    /// sorts first (upstream's zero time).
    pub last_used: Option<Instant>,
    pub size: u64,
}

/// An image that may be removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The image ID (its config digest).
    pub id: String,
    pub record: ImageRecord,
}

/// The unused images, least recently used first, ties broken by first detection.
pub fn eviction_order(records: &HashMap<String, ImageRecord>, in_use: &HashSet<String>) -> Vec<Candidate> {
    let mut candidates: Vec<Candidate> = records
        .iter()
        .filter(|(id, _)| !in_use.contains(*id))
        .map(|(id, record)| Candidate {
            id: id.clone(),
            record: *record,
        })
        .collect();
    candidates.sort_by(|a, b| {
        (a.record.last_used, a.record.first_detected, &a.id).cmp(&(
            b.record.last_used,
            b.record.first_detected,
            &b.id,
        ))
    });
    candidates
}

/// The candidates unused for longer than `max_age`, once the collector itself has run for
/// longer than that (so images are not judged before they could have been seen in use).
pub fn too_old(candidates: &[Candidate], now: Instant, began: Instant, max_age: Duration) -> Vec<&Candidate> {
    if max_age.is_zero() || now.saturating_duration_since(began) <= max_age {
        return Vec::new();
    }
    candidates
        .iter()
        .filter(|c| now.saturating_duration_since(c.record.last_used.unwrap_or(began)) > max_age)
        .collect()
}

/// The candidates that may be removed for space, in order: not used at or after `now` and
/// detected at least `min_age` ago.
pub fn eligible_for_space(candidates: &[Candidate], now: Instant, min_age: Duration) -> Vec<&Candidate> {
    candidates
        .iter()
        .filter(|c| c.record.last_used.is_none_or(|used| used < now))
        .filter(|c| now.saturating_duration_since(c.record.first_detected) >= min_age)
        .collect()
}

/// The images removed to free `bytes_to_free` when every removal succeeds: the eligible
/// ones in order, stopping once enough is freed.
pub fn choose_for_space(
    candidates: &[Candidate],
    bytes_to_free: u64,
    now: Instant,
    min_age: Duration,
) -> Vec<&Candidate> {
    let mut freed = 0u64;
    let mut chosen = Vec::new();
    for candidate in eligible_for_space(candidates, now, min_age) {
        if freed >= bytes_to_free {
            break;
        }
        freed = freed.saturating_add(candidate.record.size);
        chosen.push(candidate);
    }
    chosen
}

/// Usage percent and the bytes to free when usage is at or over the high threshold.
pub fn amount_to_free(capacity: u64, available: u64, policy: &ImageGcPolicy) -> Option<(u64, u64)> {
    let available = available.min(capacity);
    if capacity == 0 {
        return None;
    }
    let usage_percent =
        100 - u64::try_from(u128::from(available) * 100 / u128::from(capacity)).unwrap_or(100);
    if usage_percent < u64::from(policy.high_threshold_percent) {
        return None;
    }
    let target_available =
        u128::from(capacity) * u128::from(100 - policy.low_threshold_percent.min(100)) / 100;
    let amount = u64::try_from(target_available.saturating_sub(u128::from(available))).unwrap_or(u64::MAX);
    Some((usage_percent, amount))
}

/// The image IDs the runtime's containers use: `containers` holds each container's recorded
/// image name and imageID (a repo digest or the image ID); an image is in use when either
/// names it.
pub fn images_in_use(images: &[Image], containers: &[(String, String)]) -> HashSet<String> {
    let mut in_use = HashSet::new();
    for image in images {
        let names_it = |wanted: &str| {
            !wanted.is_empty() && (wanted == image.config_digest || image.names.iter().any(|n| n == wanted))
        };
        if containers
            .iter()
            .any(|(name, reference)| names_it(reference) || names_it(name))
        {
            in_use.insert(image.config_digest.clone());
        }
    }
    in_use
}

/// Why a collection failed.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    #[error(transparent)]
    Images(#[from] crate::images::Error),
    #[error("invalid capacity 0 on image filesystem")]
    InvalidCapacity,
    #[error("wanted to free images older than {max_age}, encountered errors in image deletion: {errors}")]
    OldImages { max_age: String, errors: String },
    #[error(
        "wanted to free {wanted} bytes, but freed {freed} bytes space with errors in image deletion: {errors}"
    )]
    Deletion { wanted: u64, freed: u64, errors: String },
    #[error("{0}")]
    FreeDiskSpaceFailed(String),
}

/// Upstream's `errors.NewAggregate` text.
fn aggregate(errors: &[String]) -> String {
    match errors {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

/// Upstream's `formatSize`: binary units, one decimal.
pub fn format_size(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    let size = bytes as f64;
    if size < KIB {
        format!("{bytes} B")
    } else if size < KIB * KIB {
        format!("{:.1} KiB", size / KIB)
    } else if size < KIB.powi(3) {
        format!("{:.1} MiB", size / KIB.powi(2))
    } else if size < KIB.powi(4) {
        format!("{:.1} GiB", size / KIB.powi(3))
    } else {
        format!("{:.1} TiB", size / KIB.powi(4))
    }
}

fn go_duration(d: Duration) -> String {
    super::images::go_duration(d)
}

/// The collector: image records and the store they describe.
pub struct ImageGc {
    store: Arc<Store>,
    policy: ImageGcPolicy,
    records: HashMap<String, ImageRecord>,
    began: Instant,
}

impl ImageGc {
    pub fn new(store: Arc<Store>, policy: ImageGcPolicy, began: Instant) -> ImageGc {
        ImageGc {
            store,
            policy,
            records: HashMap::new(),
            began,
        }
    }

    /// The records as last detected.
    pub fn records(&self) -> &HashMap<String, ImageRecord> {
        &self.records
    }

    /// `detectImages`: records new images, marks those in use as used `now`, forgets
    /// images that are gone; returns the images in use.
    pub fn detect(
        &mut self,
        containers: &[(String, String)],
        now: Instant,
    ) -> Result<HashSet<String>, GcError> {
        let images = self.store.images()?;
        let in_use = images_in_use(&images, containers);
        let mut current = HashSet::new();
        for image in &images {
            current.insert(image.config_digest.clone());
            let record = self
                .records
                .entry(image.config_digest.clone())
                .or_insert(ImageRecord {
                    first_detected: now,
                    last_used: None,
                    size: 0,
                });
            if in_use.contains(&image.config_digest) {
                record.last_used = Some(now);
            }
            record.size = image.size;
        }
        self.records.retain(|id, _| current.contains(id));
        Ok(in_use)
    }

    fn free(&mut self, candidate: &Candidate) -> Result<(), crate::images::Error> {
        tracing::info!(
            image_id = %candidate.id,
            size = candidate.record.size,
            "Removing image to free bytes"
        );
        self.store.remove_image(&candidate.id)?;
        self.records.remove(&candidate.id);
        Ok(())
    }

    /// `GarbageCollect`: detects images (`containers` as for [`images_in_use`]), removes
    /// those past the maximum age, then, reading the image filesystem's `(capacity,
    /// available)` bytes from `usage`, frees space down to the low threshold when usage is
    /// at or over the high one.
    pub fn garbage_collect(
        &mut self,
        containers: &[(String, String)],
        usage: impl Fn() -> Result<(u64, u64), crate::images::Error>,
        now: Instant,
    ) -> Result<(), GcError> {
        let in_use = self.detect(containers, now)?;
        let mut candidates = eviction_order(&self.records, &in_use);

        let old: Vec<Candidate> = too_old(&candidates, now, self.began, self.policy.max_age)
            .into_iter()
            .cloned()
            .collect();
        let mut errors = Vec::new();
        for candidate in &old {
            match self.free(candidate) {
                Ok(()) => candidates.retain(|c| c.id != candidate.id),
                Err(err) => errors.push(err.to_string()),
            }
        }
        if !errors.is_empty() {
            return Err(GcError::OldImages {
                max_age: go_duration(self.policy.max_age),
                errors: aggregate(&errors),
            });
        }

        let (capacity, mut available) = usage()?;
        if available > capacity {
            tracing::info!(available, capacity, "Availability is larger than capacity");
            available = capacity;
        }
        if capacity == 0 {
            return Err(GcError::InvalidCapacity);
        }
        let Some((usage_percent, to_free)) = amount_to_free(capacity, available, &self.policy) else {
            return Ok(());
        };
        tracing::info!(
            usage = usage_percent,
            high_threshold = self.policy.high_threshold_percent,
            amount_to_free = to_free,
            low_threshold = self.policy.low_threshold_percent,
            "Disk usage on image filesystem is over the high threshold, trying to free bytes down to the low threshold"
        );
        let eligible: Vec<Candidate> = eligible_for_space(&candidates, now, self.policy.min_age)
            .into_iter()
            .cloned()
            .collect();
        let mut freed = 0u64;
        for candidate in &eligible {
            match self.free(candidate) {
                Ok(()) => freed = freed.saturating_add(candidate.record.size),
                Err(err) => errors.push(err.to_string()),
            }
            if freed >= to_free {
                break;
            }
        }
        if !errors.is_empty() {
            return Err(GcError::Deletion {
                wanted: to_free,
                freed,
                errors: aggregate(&errors),
            });
        }
        if freed < to_free {
            return Err(GcError::FreeDiskSpaceFailed(format!(
                "Insufficient free disk space on the node's image filesystem ({usage_percent}% of {} used). \
                 Failed to free sufficient space by deleting unused images (freed {freed} bytes). \
                 Investigate disk usage, as it could be used by active images, logs, volumes, or other data.",
                format_size(capacity)
            )));
        }
        Ok(())
    }
}

/// The image recorded by each container the runtime knows, running or exited.
fn container_images(runtime: &crate::runtime::Runtime) -> Vec<(String, String)> {
    runtime
        .list()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(id, _)| runtime.annotations(&id).ok())
        .map(|annotations| super::worker::recorded_image(&annotations))
        .collect()
}

/// The kubelet's image GC loop: a collection at start and every [`IMAGE_GC_PERIOD`], with
/// upstream's events on the Node (`InvalidDiskCapacity`, `FreeDiskSpaceFailed`, and
/// `ImageGCFailed` for repeated failures) and log lines.
pub async fn run(
    store: Arc<Store>,
    runtime: crate::runtime::Runtime,
    events: super::events::Events,
    policy: ImageGcPolicy,
    shutdown: CancellationToken,
) {
    if policy.disabled() {
        tracing::debug!(
            "ImageGCHighThresholdPercent is set 100 and ImageMaximumGCAge is 0, Disable image GC"
        );
        return;
    }
    let gc = Arc::new(Mutex::new(ImageGc::new(store.clone(), policy, Instant::now())));
    let mut ticks = tokio::time::interval(IMAGE_GC_PERIOD);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut previous_failed = false;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let span = tracing::info_span!("image_gc");
        let gc = gc.clone();
        let store = store.clone();
        let runtime = runtime.clone();
        let result = tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let containers = container_images(&runtime);
            let mut gc = gc.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            gc.garbage_collect(&containers, || store.filesystem_usage(), Instant::now())
        })
        .await;
        let result = match result {
            Ok(result) => result,
            Err(err) => {
                tracing::error!(error = %err, "image garbage collection task failed");
                continue;
            }
        };
        match result {
            Ok(()) => {
                if previous_failed {
                    tracing::info!("Image garbage collection succeeded");
                } else {
                    tracing::debug!("Image garbage collection succeeded");
                }
                previous_failed = false;
            }
            Err(err) => {
                match &err {
                    GcError::InvalidCapacity => {
                        events.node(EventType::Warning, "InvalidDiskCapacity", err.to_string());
                    }
                    GcError::FreeDiskSpaceFailed(message) => {
                        events.node(EventType::Warning, "FreeDiskSpaceFailed", message.clone());
                    }
                    _ => {}
                }
                if previous_failed {
                    tracing::error!(error = %err, "Image garbage collection failed multiple times in a row");
                    events.node(EventType::Warning, "ImageGCFailed", err.to_string());
                } else {
                    tracing::error!(
                        error = %err,
                        "Image garbage collection failed once. Stats initialization may not have completed yet"
                    );
                }
                previous_failed = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn record(start: Instant, detected: u64, used: Option<u64>, size: u64) -> ImageRecord {
        ImageRecord {
            first_detected: start + Duration::from_secs(detected),
            last_used: used.map(|u| start + Duration::from_secs(u)),
            size,
        }
    }

    fn ids(candidates: &[&Candidate]) -> Vec<String> {
        candidates.iter().map(|c| c.id.clone()).collect()
    }

    #[test]
    fn order_is_least_recently_used_first_and_skips_images_in_use() {
        let start = Instant::now();
        let records = HashMap::from([
            ("recent".to_owned(), record(start, 0, Some(500), 10)),
            ("old".to_owned(), record(start, 0, Some(100), 10)),
            ("never-late".to_owned(), record(start, 50, None, 10)),
            ("never-early".to_owned(), record(start, 10, None, 10)),
            ("busy".to_owned(), record(start, 0, Some(1), 10)),
        ]);
        let in_use = HashSet::from(["busy".to_owned()]);
        let order: Vec<String> = eviction_order(&records, &in_use)
            .into_iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(order, ["never-early", "never-late", "old", "recent"]);
    }

    #[test]
    fn space_choice_respects_minimum_age_and_stops_when_enough_is_freed() {
        let start = Instant::now();
        let now = start + Duration::from_secs(1000);
        let records = HashMap::from([
            ("a".to_owned(), record(start, 0, Some(10), 100)),
            ("b".to_owned(), record(start, 0, Some(20), 100)),
            ("c".to_owned(), record(start, 0, Some(30), 100)),
            // Detected 60 s ago: too fresh under a 2 minute minimum age.
            ("fresh".to_owned(), record(start, 940, None, 500)),
            // Used by this very detection.
            ("now".to_owned(), record(start, 0, Some(1000), 500)),
        ]);
        let candidates = eviction_order(&records, &HashSet::new());
        let min_age = Duration::from_secs(120);
        assert_eq!(
            ids(&eligible_for_space(&candidates, now, min_age)),
            ["a", "b", "c"]
        );
        assert_eq!(ids(&choose_for_space(&candidates, 150, now, min_age)), ["a", "b"]);
        assert_eq!(ids(&choose_for_space(&candidates, 100, now, min_age)), ["a"]);
        assert_eq!(
            ids(&choose_for_space(&candidates, 10_000, now, min_age)),
            ["a", "b", "c"]
        );
        assert!(choose_for_space(&candidates, 0, now, min_age).is_empty());
        assert_eq!(
            ids(&choose_for_space(&candidates, 10_000, now, Duration::ZERO)),
            ["fresh", "a", "b", "c"]
        );
    }

    #[test]
    fn maximum_age_only_after_the_collector_ran_that_long() {
        let start = Instant::now();
        let records = HashMap::from([
            ("stale".to_owned(), record(start, 0, Some(10), 1)),
            ("never".to_owned(), record(start, 0, None, 1)),
            ("recent".to_owned(), record(start, 0, Some(3500), 1)),
        ]);
        let candidates = eviction_order(&records, &HashSet::new());
        let hour = Duration::from_secs(3600);
        assert!(too_old(&candidates, start + Duration::from_secs(3000), start, hour).is_empty());
        let now = start + Duration::from_secs(4000);
        assert_eq!(ids(&too_old(&candidates, now, start, hour)), ["never", "stale"]);
        assert!(too_old(&candidates, now, start, Duration::ZERO).is_empty());
    }

    #[test]
    fn thresholds_as_upstream_computes_them() {
        let policy = ImageGcPolicy::default();
        // 84 % used: under the high threshold.
        assert_eq!(amount_to_free(1000, 160, &policy), None);
        // 85 % used: free down to 80 %, i.e. 200 bytes available.
        assert_eq!(amount_to_free(1000, 150, &policy), Some((85, 50)));
        assert_eq!(amount_to_free(1000, 0, &policy), Some((100, 200)));
        assert_eq!(amount_to_free(0, 0, &policy), None);
        assert_eq!(ImageGcPolicy::default().validate(), Ok(()));
        let bad = ImageGcPolicy {
            low_threshold_percent: 90,
            ..ImageGcPolicy::default()
        };
        assert_eq!(
            bad.validate().unwrap_err(),
            "LowThresholdPercent 90 can not be higher than HighThresholdPercent 85"
        );
        let bad = ImageGcPolicy {
            max_age: Duration::from_secs(60),
            ..ImageGcPolicy::default()
        };
        assert_eq!(
            bad.validate().unwrap_err(),
            "invalid configuration: imageMaximumGCAge 1m0s must be greater than imageMinimumGCAge 2m0s"
        );
        assert!(
            ImageGcPolicy {
                high_threshold_percent: 100,
                ..ImageGcPolicy::default()
            }
            .disabled()
        );
    }

    #[test]
    fn sizes_as_upstream_formats_them() {
        assert_eq!(format_size(512), "512 B");
        assert_eq!(format_size(1536), "1.5 KiB");
        assert_eq!(format_size(10 << 30), "10.0 GiB");
    }
}
