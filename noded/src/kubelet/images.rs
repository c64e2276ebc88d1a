//! The kubelet's image manager (pkg/kubelet/images): `imagePullPolicy` (Always,
//! IfNotPresent, Never), the per-pod-and-image pull back-off (10 s doubling to 5 min) with
//! upstream's waiting reasons and messages (`ErrImagePull`, `ImagePullBackOff`,
//! `ErrImageNeverPull`, `InvalidImageName`), and one pull at a time per image and
//! credentials: pods asking for an image being pulled wait for that pull. It says what
//! happened as the kubelet's image events (`Pulling`, `Pulled`, `Failed`, `BackOff`,
//! `ErrImageNeverPull`, `InspectFailed`, with upstream's messages) through the caller's
//! [`Report`].
//!
//! It does not read Secrets (the pod worker hands it the credentials) nor publish events.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use kube::runtime::events::EventType;
use tokio::time::Instant;

use crate::images::registry::{AuthConfig, Pulled, RegistryClient};
use crate::images::{Image, Reference, Store};

const INITIAL_BACKOFF: Duration = Duration::from_secs(10);
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Where the image manager reports its events: type, reason and message, about the
/// container whose image it ensures.
pub type Report<'a> = &'a (dyn Fn(EventType, &str, String) + Send + Sync);

/// Why a container's image is not available: its waiting reason and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageError {
    pub reason: String,
    pub message: String,
}

impl ImageError {
    fn new(reason: &str, message: String) -> ImageError {
        ImageError {
            reason: reason.to_owned(),
            message,
        }
    }
}

/// An image ready for a container, with what its status reports.
#[derive(Clone, Debug)]
pub struct EnsuredImage {
    pub image: Image,
    /// containerStatuses[].image: the image's first repository tag, as containerd reports it.
    pub name: String,
    /// containerStatuses[].imageID: its first repo digest (`repo@sha256:...`), else the
    /// image ID.
    pub image_ref: String,
}

impl EnsuredImage {
    fn from_image(image: Image, fallback_name: &str) -> EnsuredImage {
        let name = image
            .names
            .iter()
            .find(|name| !name.contains('@'))
            .cloned()
            .unwrap_or_else(|| fallback_name.to_owned());
        let image_ref = image
            .names
            .iter()
            .find(|name| name.contains('@'))
            .cloned()
            .unwrap_or_else(|| image.config_digest.clone());
        EnsuredImage {
            image,
            name,
            image_ref,
        }
    }
}

/// What the policy check decided.
#[derive(Debug)]
pub enum Precheck {
    /// The image is present and the policy does not ask for a pull.
    Present(Box<EnsuredImage>),
    /// The image must be pulled: `image` is the requested name with its default tag,
    /// `reference` its normalised form.
    Pull { image: String, reference: Reference },
}

#[derive(Clone, Copy, Debug)]
struct Backoff {
    duration: Duration,
    last_update: Instant,
}

/// A pull's result and how long the pull itself took.
type PullFuture = Shared<BoxFuture<'static, Result<(Pulled, Duration), String>>>;

/// The node's image manager, shared by every pod worker.
pub struct ImageManager {
    store: Arc<Store>,
    registry: RegistryClient,
    pulls: Arc<Mutex<HashMap<String, PullFuture>>>,
    backoff: Mutex<HashMap<String, Backoff>>,
    previous_errors: Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for ImageManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageManager").finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `applyDefaultImageTag`: the requested image with `:latest` when it has neither tag nor
/// digest (not otherwise normalised).
pub fn apply_default_tag(requested: &str) -> Result<String, ImageError> {
    let reference = Reference::parse_normalized(requested).map_err(|err| {
        ImageError::new(
            "InvalidImageName",
            format!(
                "Failed to apply default image tag \"{requested}\": couldn't parse image name \"{requested}\": {err}"
            ),
        )
    })?;
    if reference.tag().is_none() && reference.digest().is_none() {
        Ok(format!("{requested}:latest"))
    } else {
        Ok(requested.to_owned())
    }
}

impl ImageManager {
    pub fn new(store: Arc<Store>, registry: RegistryClient) -> ImageManager {
        ImageManager {
            store,
            registry,
            pulls: Arc::default(),
            backoff: Mutex::default(),
            previous_errors: Mutex::default(),
        }
    }

    /// The policy check: an image present under `IfNotPresent` or `Never` is used as is;
    /// `Never` without it is `ErrImageNeverPull`; everything else needs a pull.
    pub async fn precheck(
        &self,
        requested: &str,
        policy: &str,
        report: Report<'_>,
    ) -> Result<Precheck, ImageError> {
        let inspect_failed = |err: ImageError| {
            report(EventType::Warning, "InspectFailed", err.message.clone());
            err
        };
        let image = apply_default_tag(requested).map_err(inspect_failed)?;
        let reference = Reference::parse_docker_ref(requested)
            .map_err(|err| inspect_failed(ImageError::new("InvalidImageName", err.to_string())))?;
        if policy != "Always" {
            let store = self.store.clone();
            let key = reference.to_string();
            let found = tokio::task::spawn_blocking(move || store.image(&key))
                .await
                .map_err(|err| {
                    inspect_failed(ImageError::new(
                        "ImageInspectError",
                        format!("Failed to inspect image \"\": {err}"),
                    ))
                })?;
            match found {
                Ok(present) => {
                    // Upstream's words with KubeletEnsureSecretPulledImages (on by default
                    // since 1.35); every pod on this node may use every present image.
                    report(
                        EventType::Normal,
                        "Pulled",
                        format!(
                            "Container image \"{requested}\" already present on machine and can be accessed by the pod"
                        ),
                    );
                    return Ok(Precheck::Present(Box::new(EnsuredImage::from_image(
                        present, requested,
                    ))));
                }
                Err(crate::images::Error::ImageNotFound(_)) => {}
                Err(err) if policy == "Never" => {
                    tracing::debug!(error = %err, "image not usable");
                }
                Err(err) => {
                    tracing::warn!(image = %requested, error = %err, "the stored image is incomplete; pulling it again");
                }
            }
            if policy == "Never" {
                let message =
                    format!("Container image \"{requested}\" is not present with pull policy of Never");
                report(EventType::Warning, "ErrImageNeverPull", message.clone());
                return Err(ImageError::new("ErrImageNeverPull", message));
            }
        }
        Ok(Precheck::Pull { image, reference })
    }

    /// Pulls for one pod unless its back-off forbids it. Pods pulling the same image with
    /// the same credentials share one pull.
    pub async fn pull(
        &self,
        pod_uid: &str,
        image: &str,
        reference: &Reference,
        creds: Vec<AuthConfig>,
        report: Report<'_>,
    ) -> Result<EnsuredImage, ImageError> {
        let key = format!("{pod_uid}_{image}");
        let now = Instant::now();
        if self.remaining_backoff(&key, now).is_some() {
            let mut message = format!("Back-off pulling image \"{image}\"");
            report(EventType::Normal, "BackOff", message.clone());
            if let Some(previous) = lock(&self.previous_errors).get(&key) {
                message = format!("{message}: {previous}");
            }
            return Err(ImageError::new("ImagePullBackOff", message));
        }
        lock(&self.previous_errors).remove(&key);
        tracing::info!(%image, "pulling image");
        report(EventType::Normal, "Pulling", format!("Pulling image \"{image}\""));
        let started = std::time::Instant::now();
        match self.shared_pull(reference, creds).await {
            Ok((pulled, pulling)) => {
                let waited = started.elapsed();
                tracing::info!(%image, elapsed = ?waited, size = pulled.image.size, "pulled image");
                report(
                    EventType::Normal,
                    "Pulled",
                    format!(
                        "Successfully pulled image \"{image}\" in {} ({} including waiting). Image size: {} bytes.",
                        go_duration(pulling),
                        go_duration(waited),
                        pulled.image.size
                    ),
                );
                self.gc_backoff(Instant::now());
                Ok(EnsuredImage::from_image(pulled.image, image))
            }
            Err(message) => {
                tracing::warn!(%image, error = %message, "pulling the image failed");
                report(
                    EventType::Warning,
                    "Failed",
                    format!("Failed to pull image \"{image}\": {message}"),
                );
                self.next_backoff(&key, Instant::now());
                lock(&self.previous_errors).insert(key, format!("ErrImagePull: {message}"));
                Err(ImageError::new("ErrImagePull", message))
            }
        }
    }

    /// How long the pod's pull of `image` still backs off, if it does.
    pub fn backoff_remaining(&self, pod_uid: &str, image: &str) -> Option<Duration> {
        self.remaining_backoff(&format!("{pod_uid}_{image}"), Instant::now())
    }

    /// Forgets a pod's back-off entries (its worker ended).
    pub fn forget_pod(&self, pod_uid: &str) {
        let prefix = format!("{pod_uid}_");
        lock(&self.backoff).retain(|key, _| !key.starts_with(&prefix));
        lock(&self.previous_errors).retain(|key, _| !key.starts_with(&prefix));
    }

    async fn shared_pull(
        &self,
        reference: &Reference,
        creds: Vec<AuthConfig>,
    ) -> Result<(Pulled, Duration), String> {
        let mut flight = reference.to_string();
        for cred in &creds {
            flight.push('\n');
            flight.push_str(&cred.username);
            flight.push('\0');
            flight.push_str(&cred.password);
        }
        let future = {
            let mut pulls = lock(&self.pulls);
            match pulls.get(&flight) {
                Some(running) => running.clone(),
                None => {
                    let registry = self.registry.clone();
                    let store = self.store.clone();
                    let reference = reference.clone();
                    let future = async move {
                        let started = std::time::Instant::now();
                        registry
                            .pull(&store, &reference, &creds)
                            .await
                            .map(|pulled| (pulled, started.elapsed()))
                            .map_err(|err| format!("failed to pull and unpack image \"{reference}\": {err}"))
                    }
                    .boxed()
                    .shared();
                    pulls.insert(flight.clone(), future.clone());
                    // The pull runs on its own task, so a waiter that goes away does not
                    // cancel it; the task forgets it once done.
                    let running = future.clone();
                    let table = self.pulls.clone();
                    tokio::spawn(async move {
                        let _ = running.await;
                        lock(&table).remove(&flight);
                    });
                    future
                }
            }
        };
        future.await
    }

    fn remaining_backoff(&self, key: &str, now: Instant) -> Option<Duration> {
        let backoff = lock(&self.backoff);
        let entry = backoff.get(key)?;
        let since = now.saturating_duration_since(entry.last_update);
        if since > 2 * MAX_BACKOFF || since >= entry.duration {
            return None;
        }
        Some(entry.duration - since)
    }

    /// flowcontrol.Backoff.Next: the first failure (or one long after the last) waits the
    /// initial period, each further one twice the previous, at most five minutes.
    fn next_backoff(&self, key: &str, now: Instant) {
        let mut backoff = lock(&self.backoff);
        let duration = match backoff.get(key) {
            Some(entry) if now.saturating_duration_since(entry.last_update) <= 2 * MAX_BACKOFF => {
                (entry.duration * 2).min(MAX_BACKOFF)
            }
            _ => INITIAL_BACKOFF,
        };
        backoff.insert(
            key.to_owned(),
            Backoff {
                duration,
                last_update: now,
            },
        );
    }

    fn gc_backoff(&self, now: Instant) {
        lock(&self.backoff)
            .retain(|_, entry| now.saturating_duration_since(entry.last_update) <= 2 * MAX_BACKOFF);
    }
}

/// Go's `time.Duration` text of `d` truncated to milliseconds (`0s`, `567ms`, `1.2s`,
/// `2m3.456s`, `1h0m0s`), as upstream prints pull times.
pub fn go_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".to_owned();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (hours, minutes) = (ms / 3_600_000, ms / 60_000 % 60);
    let (seconds, fraction) = (ms / 1000 % 60, ms % 1000);
    let mut text = String::new();
    if hours > 0 {
        text.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        text.push_str(&format!("{minutes}m"));
    }
    text.push_str(&seconds.to_string());
    if fraction > 0 {
        let digits = format!("{fraction:03}");
        text.push('.');
        text.push_str(digits.trim_end_matches('0'));
    }
    text.push('s');
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::images::registry::RegistryConfig;

    /// Collects reported events as `Type Reason: message`.
    #[derive(Default)]
    struct Recorded(Mutex<Vec<String>>);

    impl Recorded {
        fn report(&self) -> impl Fn(EventType, &str, String) + Send + Sync + '_ {
            |type_, reason, message| lock(&self.0).push(format!("{type_:?} {reason}: {message}"))
        }
        fn take(&self) -> Vec<String> {
            std::mem::take(&mut *lock(&self.0))
        }
    }

    fn manager() -> (ImageManager, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        (
            ImageManager::new(store, RegistryClient::new(RegistryConfig::default())),
            dir,
        )
    }

    #[test]
    fn default_tags_and_invalid_names() {
        assert_eq!(apply_default_tag("busybox").unwrap(), "busybox:latest");
        assert_eq!(apply_default_tag("busybox:1").unwrap(), "busybox:1");
        assert_eq!(
            apply_default_tag("127.0.0.1:5000/app").unwrap(),
            "127.0.0.1:5000/app:latest"
        );
        let err = apply_default_tag("Bad Name").unwrap_err();
        assert_eq!(err.reason, "InvalidImageName");
        assert!(
            err.message.starts_with(
                "Failed to apply default image tag \"Bad Name\": couldn't parse image name \"Bad Name\": "
            ),
            "{}",
            err.message
        );
    }

    #[tokio::test]
    async fn never_without_the_image_and_back_off_doubling() {
        let (manager, _dir) = manager();
        let events = Recorded::default();
        let err = manager
            .precheck("busybox:1", "Never", &events.report())
            .await
            .unwrap_err();
        assert_eq!(
            (err.reason.as_str(), err.message.as_str()),
            (
                "ErrImageNeverPull",
                "Container image \"busybox:1\" is not present with pull policy of Never"
            )
        );
        assert_eq!(
            events.take(),
            [
                "Warning ErrImageNeverPull: Container image \"busybox:1\" is not present with pull policy of Never"
            ]
        );
        assert!(matches!(
            manager.precheck("busybox", "IfNotPresent", &events.report()).await.unwrap(),
            Precheck::Pull { image, .. } if image == "busybox:latest"
        ));
        assert_eq!(events.take(), Vec::<String>::new());
        let err = manager
            .precheck("Bad Name", "IfNotPresent", &events.report())
            .await
            .unwrap_err();
        assert_eq!(err.reason, "InvalidImageName");
        assert_eq!(events.take(), [format!("Warning InspectFailed: {}", err.message)]);

        let start = Instant::now();
        let key = "uid_busybox:1";
        assert_eq!(manager.remaining_backoff(key, start), None);
        manager.next_backoff(key, start);
        assert_eq!(manager.remaining_backoff(key, start), Some(INITIAL_BACKOFF));
        let later = start + INITIAL_BACKOFF;
        assert_eq!(manager.remaining_backoff(key, later), None, "back-off over");
        manager.next_backoff(key, later);
        assert_eq!(
            manager.remaining_backoff(key, later),
            Some(Duration::from_secs(20))
        );
        let mut now = later;
        for _ in 0..10 {
            manager.next_backoff(key, now);
            now += Duration::from_secs(1);
        }
        assert_eq!(
            manager.remaining_backoff(key, now - Duration::from_secs(1)),
            Some(MAX_BACKOFF)
        );
        // Long after the last failure, the back-off starts over.
        let much_later = now + 2 * MAX_BACKOFF + Duration::from_secs(1);
        manager.next_backoff(key, much_later);
        assert_eq!(manager.remaining_backoff(key, much_later), Some(INITIAL_BACKOFF));
        manager.forget_pod("uid");
        assert_eq!(manager.remaining_backoff(key, much_later), None);
    }

    #[tokio::test]
    async fn a_failed_pull_backs_off_with_the_previous_error() {
        let (manager, _dir) = manager();
        let events = Recorded::default();
        // Nothing listens on port 1 of the loopback interface.
        let reference = Reference::parse_docker_ref("127.0.0.1:1/missing:1").unwrap();
        let err = manager
            .pull(
                "uid",
                "127.0.0.1:1/missing:1",
                &reference,
                Vec::new(),
                &events.report(),
            )
            .await
            .unwrap_err();
        assert_eq!(err.reason, "ErrImagePull");
        assert!(
            err.message
                .starts_with("failed to pull and unpack image \"127.0.0.1:1/missing:1\": "),
            "{}",
            err.message
        );
        assert_eq!(
            events.take(),
            [
                "Normal Pulling: Pulling image \"127.0.0.1:1/missing:1\"".to_owned(),
                format!(
                    "Warning Failed: Failed to pull image \"127.0.0.1:1/missing:1\": {}",
                    err.message
                )
            ]
        );
        let again = manager
            .pull(
                "uid",
                "127.0.0.1:1/missing:1",
                &reference,
                Vec::new(),
                &events.report(),
            )
            .await
            .unwrap_err();
        assert_eq!(
            events.take(),
            ["Normal BackOff: Back-off pulling image \"127.0.0.1:1/missing:1\""]
        );
        assert_eq!(again.reason, "ImagePullBackOff");
        assert_eq!(
            again.message,
            format!(
                "Back-off pulling image \"127.0.0.1:1/missing:1\": ErrImagePull: {}",
                err.message
            )
        );
        assert!(
            manager
                .backoff_remaining("uid", "127.0.0.1:1/missing:1")
                .is_some()
        );
        assert!(
            manager
                .backoff_remaining("other", "127.0.0.1:1/missing:1")
                .is_none()
        );
    }

    #[test]
    fn durations_as_go_prints_them() {
        let ms = Duration::from_millis;
        let cases = [
            (ms(0), "0s"),
            (Duration::from_micros(999), "0s"),
            (ms(567), "567ms"),
            (ms(1000), "1s"),
            (ms(1200), "1.2s"),
            (ms(1234), "1.234s"),
            (ms(60_000), "1m0s"),
            (ms(123_456), "2m3.456s"),
            (ms(3_600_000), "1h0m0s"),
            (ms(3_605_050), "1h0m5.05s"),
        ];
        for (duration, text) in cases {
            assert_eq!(go_duration(duration), text, "{duration:?}");
        }
    }
}
