//! Image pulls from a real registry: Debian's `docker-registry` (the CNCF distribution
//! registry) on a loopback port, with and without htpasswd auth, the busybox test image
//! pushed into it over the registry HTTP API, and pods on `rudder server` as a node pulling
//! it through the real kubectl. Needs root; without it the test says it was skipped.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command};

use base64::Engine;
use rudder_noded::images::testimage::{ArchiveImage, BUSYBOX, busybox_layer, config_json};
use rudder_noded::images::{host_platform, sha256_digest};

use crate::harness::{Server, free_port, wait_for};
use crate::node::{apply, jsonpath, wait_node_ready};

const REGISTRY_BIN: &str = "/usr/bin/docker-registry";
const USER: &str = "puller";
const PASSWORD: &str = "s3cret-pass";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// A response: status, lower-cased headers, body.
type Reply = (u16, Vec<(String, String)>, Vec<u8>);

/// A `docker-registry serve` process on 127.0.0.1, killed when dropped.
struct Registry {
    port: u16,
    child: Child,
    auth: Option<String>,
    _dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Registry {
    fn start(with_auth: bool) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut config = format!(
            "version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {}
http:
  addr: 127.0.0.1:{port}
",
            dir.path().join("data").display()
        );
        let mut auth = None;
        if with_auth {
            let out = Command::new("htpasswd")
                .args(["-Bbn", USER, PASSWORD])
                .output()
                .expect("htpasswd (apt-get install apache2-utils)");
            assert!(out.status.success(), "htpasswd: {out:?}");
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, out.stdout).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: rudder-e2e\n    path: {}\n",
                htpasswd.display()
            ));
            let basic = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
            auth = Some(format!("Basic {basic}"));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("log")).unwrap();
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&config_path)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let registry = Registry {
            port,
            child,
            auth,
            _dir: dir,
        };
        wait_for("the registry to answer", 30, || {
            let (status, _, _) = registry.try_request("GET", "/v2/", &[], &[])?;
            matches!(status, 200 | 401).then_some(())
        });
        registry
    }

    /// When (seconds of the day, from its access log) the registry served `GET path`.
    fn requests(&self, path: &str) -> Vec<i64> {
        let log = std::fs::read_to_string(self._dir.path().join("log")).unwrap_or_default();
        let needle = format!("\"GET {path} HTTP/1.1\"");
        log.lines()
            .filter(|line| line.contains(&needle))
            .filter_map(|line| {
                // `[26/Nov/2026:22:22:30 +0000]`
                let stamp = line.split_once('[')?.1.split_once(']')?.0;
                let time = stamp.split_once(':')?.1.split_whitespace().next()?;
                let mut parts = time.split(':').map(|p| p.parse::<i64>().ok());
                Some(parts.next()?? * 3600 + parts.next()?? * 60 + parts.next()??)
            })
            .collect()
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// One HTTP/1.1 request; `None` when the registry cannot be reached.
    fn try_request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Option<Reply> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.host(),
            body.len()
        );
        if let Some(auth) = &self.auth {
            head.push_str(&format!("Authorization: {auth}\r\n"));
        }
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).ok()?;
        stream.write_all(body).ok()?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).ok()?;
        let split = response.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&response[..split]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        Some((status, headers, response[split + 4..].to_vec()))
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, Vec<(String, String)>) {
        let (status, headers, body) = self
            .try_request(method, path, headers, body)
            .unwrap_or_else(|| panic!("{method} {path}: no response"));
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {}",
            String::from_utf8_lossy(&body)
        );
        (status, headers)
    }

    /// Uploads a blob (POST for an upload session, then PUT with its digest).
    fn push_blob(&self, repo: &str, bytes: &[u8]) -> String {
        let digest = sha256_digest(bytes);
        let (_, headers) = self.request("POST", &format!("/v2/{repo}/blobs/uploads/"), &[], &[]);
        let location = headers
            .iter()
            .find(|(k, _)| k == "location")
            .map(|(_, v)| v.clone())
            .expect("upload location");
        let path = location
            .strip_prefix(&format!("http://{}", self.host()))
            .unwrap_or(&location)
            .to_owned();
        let separator = if path.contains('?') { '&' } else { '?' };
        self.request(
            "PUT",
            &format!("{path}{separator}digest={digest}"),
            &[("Content-Type", "application/octet-stream")],
            bytes,
        );
        digest
    }

    fn push_manifest(&self, repo: &str, tag: &str, media_type: &str, bytes: &[u8]) -> String {
        self.request(
            "PUT",
            &format!("/v2/{repo}/manifests/{tag}"),
            &[("Content-Type", media_type)],
            bytes,
        );
        sha256_digest(bytes)
    }

    /// Pushes the busybox image as `repo:tag` (a manifest) and `repo:multi` (an index with
    /// this platform's manifest and a foreign one); returns both digests.
    fn push_busybox(&self, repo: &str, tag: &str) -> (String, String) {
        let layer = busybox_layer(Path::new(BUSYBOX)).unwrap();
        let mut image = ArchiveImage::new("busybox:e2e", vec![layer.clone()]);
        image.config.cmd = vec!["sh".to_owned()];
        image.config.env = vec!["PATH=/bin".to_owned()];
        let config = config_json(&image);
        let layer_digest = self.push_blob(repo, &layer);
        let config_digest = self.push_blob(repo, &config);
        let manifest = |config_digest: &str, config_len: usize| {
            serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": config_digest, "size": config_len},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                            "digest": layer_digest, "size": layer.len()}],
            }))
            .unwrap()
        };
        let own = manifest(&config_digest, config.len());
        let own_digest = self.push_manifest(repo, tag, OCI_MANIFEST, &own);

        let (os, arch) = host_platform();
        let foreign_arch = if arch == "s390x" { "riscv64" } else { "s390x" };
        let mut foreign_config: serde_json::Value = serde_json::from_slice(&config).unwrap();
        foreign_config["architecture"] = serde_json::json!(foreign_arch);
        let foreign_config = serde_json::to_vec(&foreign_config).unwrap();
        let foreign_config_digest = self.push_blob(repo, &foreign_config);
        let foreign = manifest(&foreign_config_digest, foreign_config.len());
        let foreign_digest = self.push_manifest(repo, "foreign", OCI_MANIFEST, &foreign);
        let index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {"mediaType": OCI_MANIFEST, "digest": foreign_digest, "size": foreign.len(),
                 "platform": {"os": "linux", "architecture": foreign_arch}},
                {"mediaType": OCI_MANIFEST, "digest": own_digest, "size": own.len(),
                 "platform": {"os": os, "architecture": arch}},
            ],
        }))
        .unwrap();
        let index_digest = self.push_manifest(repo, "multi", OCI_INDEX, &index);
        (own_digest, index_digest)
    }
}

fn pod(name: &str, image: &str, extra_spec: &str, extra_container: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  terminationGracePeriodSeconds: 1
{extra_spec}  containers:
  - name: app
    image: {image}
    command: [sleep, '3600']
{extra_container}"
    )
}

fn wait_running(server: &Server, name: &str) {
    wait_for(&format!("pod {name} running"), 90, || {
        let phase = jsonpath(server, name, "{.status.phase}");
        let waiting = jsonpath(server, name, "{.status.containerStatuses[0].state.waiting}");
        assert!(
            !waiting.contains("ErrImage") && !waiting.contains("BackOff"),
            "{name}: {waiting}"
        );
        (phase == "Running").then_some(())
    });
}

/// The events about the pod `name`: `Type Reason: message`, oldest first.
fn events(server: &Server, name: &str) -> Vec<String> {
    let out = server.kubectl_ok(&[
        "get",
        "events",
        "--sort-by=.metadata.creationTimestamp",
        "-o",
        "jsonpath={range .items[*]}{.involvedObject.name}{\"\\t\"}{.type} {.reason}: {.message}{\"\\n\"}{end}",
    ]);
    out.lines()
        .filter_map(|line| line.split_once('\t'))
        .filter(|(pod, _)| *pod == name)
        .map(|(_, event)| event.to_owned())
        .collect()
}

/// The container's waiting reason and message.
fn waiting(server: &Server, name: &str) -> (String, String) {
    let both = jsonpath(
        server,
        name,
        "{.status.containerStatuses[0].state.waiting.reason}{\"\\t\"}{.status.containerStatuses[0].state.waiting.message}",
    );
    let (reason, message) = both.split_once('\t').unwrap_or((&both, ""));
    (reason.to_owned(), message.to_owned())
}

#[test]
fn pods_pull_images_from_a_registry_with_auth_policies_and_back_off() {
    if !nix::unistd::geteuid().is_root() {
        println!("skipped: needs root");
        return;
    }
    assert!(
        Path::new(REGISTRY_BIN).exists(),
        "{REGISTRY_BIN} is missing: apt-get install docker-registry"
    );
    assert!(
        Path::new(BUSYBOX).exists(),
        "{BUSYBOX} is missing: apt-get install busybox-static"
    );
    let open = Registry::start(false);
    let (manifest_digest, index_digest) = open.push_busybox("busybox", "1");
    let secured = Registry::start(true);
    secured.push_busybox("team/busybox", "1");

    let dir = tempfile::tempdir().unwrap();
    // The open registry is reached through the loopback HTTP fallback; the secured one is
    // configured as insecure.
    let secured_host = secured.host();
    let server = Server::start_in(
        dir.path(),
        free_port(),
        &["--agent", "--insecure-registry", &secured_host],
    );
    wait_node_ready(&server);

    // A pull by tag: the default policy for a tag other than latest is IfNotPresent, and the
    // status reports the image and its repo digest as containerd does.
    let open_host = open.host();
    let image = format!("{open_host}/busybox:1");
    apply(&server, &pod("plain", &image, "", ""));
    wait_running(&server, "plain");
    assert_eq!(
        jsonpath(&server, "plain", "{.spec.containers[0].imagePullPolicy}"),
        "IfNotPresent"
    );
    assert_eq!(
        jsonpath(&server, "plain", "{.status.containerStatuses[0].image}"),
        image
    );
    assert_eq!(
        jsonpath(&server, "plain", "{.status.containerStatuses[0].imageID}"),
        format!("{open_host}/busybox@{manifest_digest}")
    );
    // The kubelet's words for a pull, and the container's own events (published in the
    // background, so in any order).
    let pulled = events(&server, "plain");
    for event in [
        format!("Normal Pulling: Pulling image \"{image}\""),
        "Normal Created: Container created".to_owned(),
        "Normal Started: Container started".to_owned(),
    ] {
        assert!(pulled.contains(&event), "{event} is not in {pulled:?}");
    }
    let prefix = format!("Normal Pulled: Successfully pulled image \"{image}\" in ");
    let success = pulled
        .iter()
        .find_map(|event| event.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no Pulled event in {pulled:?}"));
    let (took, rest) = success.split_once(" (").unwrap();
    let (waited, size) = rest.split_once(" including waiting). Image size: ").unwrap();
    assert!(took.ends_with('s') && waited.ends_with('s'), "{success}");
    assert!(
        size.strip_suffix(" bytes.").unwrap().parse::<u64>().unwrap() > 1000,
        "{success}"
    );

    // An index: this platform's manifest is chosen, the imageID is the index's digest.
    apply(
        &server,
        &pod(
            "multi",
            &format!("{open_host}/busybox:multi"),
            "",
            "    imagePullPolicy: Always\n",
        ),
    );
    wait_running(&server, "multi");
    assert_eq!(
        jsonpath(&server, "multi", "{.status.containerStatuses[0].imageID}"),
        format!("{open_host}/busybox@{index_digest}")
    );

    // Never: a present image runs, an absent one is ErrImageNeverPull.
    apply(
        &server,
        &pod("never-present", &image, "", "    imagePullPolicy: Never\n"),
    );
    wait_running(&server, "never-present");
    let present = format!(
        "Normal Pulled: Container image \"{image}\" already present on machine and can be accessed by the pod"
    );
    assert!(events(&server, "never-present").contains(&present));
    let absent = format!("{open_host}/busybox:absent");
    apply(
        &server,
        &pod("never-absent", &absent, "", "    imagePullPolicy: Never\n"),
    );
    let (reason, message) = wait_for("ErrImageNeverPull", 30, || {
        let (reason, message) = waiting(&server, "never-absent");
        (!reason.is_empty()).then_some((reason, message))
    });
    assert_eq!(reason, "ErrImageNeverPull");
    assert_eq!(
        message,
        format!("Container image \"{absent}\" is not present with pull policy of Never")
    );
    wait_for("the ErrImageNeverPull events", 10, || {
        let seen = events(&server, "never-absent");
        (seen.contains(&format!("Warning ErrImageNeverPull: {message}"))
            && seen.contains(&"Warning Failed: Error: ErrImageNeverPull".to_owned()))
        .then_some(())
    });

    // Auth: without credentials the registry's 401 stands; the back-off message wraps it.
    let secured_image = format!("{secured_host}/team/busybox:1");
    apply(&server, &pod("no-secret", &secured_image, "", ""));
    // The failed pull's ErrImagePull is reported, and stands until the pod's next sync ten
    // seconds later (which pulls again, the first back-off being over); the sync after that
    // finds the pull backing off, and the back-off's message carries the pull's.
    let message = format!(
        "failed to pull and unpack image \"{secured_image}\": failed to resolve reference \"{secured_image}\": unexpected status from GET request to http://{secured_host}/v2/team/busybox/manifests/1: 401 Unauthorized"
    );
    let failed_at = wait_for("ErrImagePull without credentials", 30, || {
        let (reason, _) = waiting(&server, "no-secret");
        (!reason.is_empty()).then(std::time::Instant::now)
    });
    assert_eq!(
        waiting(&server, "no-secret"),
        ("ErrImagePull".to_owned(), message.clone())
    );
    wait_for("ImagePullBackOff without credentials", 45, || {
        let (reason, backoff) = waiting(&server, "no-secret");
        if reason == "ErrImagePull" {
            assert_eq!(backoff, message);
        }
        (reason == "ImagePullBackOff").then(|| {
            assert_eq!(
                backoff,
                format!("Back-off pulling image \"{secured_image}\": ErrImagePull: {message}")
            );
        })
    });
    let standing = failed_at.elapsed();
    assert!(
        standing >= std::time::Duration::from_secs(15),
        "ErrImagePull stood only {standing:?}"
    );
    assert_eq!(
        server
            .kubectl_ok(&["get", "pod", "no-secret", "--no-headers"])
            .split_whitespace()
            .nth(2),
        Some("ImagePullBackOff")
    );
    let pull_events = [
        format!("Normal Pulling: Pulling image \"{secured_image}\""),
        format!("Warning Failed: Failed to pull image \"{secured_image}\": {message}"),
        "Warning Failed: Error: ErrImagePull".to_owned(),
    ];
    let backoff_events = [
        format!("Normal BackOff: Back-off pulling image \"{secured_image}\""),
        "Warning Failed: Error: ImagePullBackOff".to_owned(),
    ];
    // Events are published in the background.
    wait_for("the pull and back-off events", 10, || {
        let seen = events(&server, "no-secret");
        pull_events
            .iter()
            .chain(&backoff_events)
            .all(|event| seen.contains(event))
            .then_some(())
    });

    // A dockerconfigjson Secret made by kubectl carries the credentials.
    server.kubectl_ok(&[
        "create",
        "secret",
        "docker-registry",
        "regcred",
        &format!("--docker-server={secured_host}"),
        &format!("--docker-username={USER}"),
        &format!("--docker-password={PASSWORD}"),
    ]);
    apply(
        &server,
        &pod(
            "with-secret",
            &secured_image,
            "  imagePullSecrets:\n  - name: regcred\n",
            "    imagePullPolicy: Always\n",
        ),
    );
    wait_running(&server, "with-secret");

    // A missing image: ErrImagePull, then ImagePullBackOff, retried after 10 s, then 20 s.
    let missing = format!("{open_host}/missing:1");
    apply(&server, &pod("missing", &missing, "", ""));
    let expected = format!(
        "failed to pull and unpack image \"{missing}\": failed to resolve reference \"{missing}\": {missing}: not found"
    );
    wait_for("ImagePullBackOff for a missing image", 45, || {
        let (reason, message) = waiting(&server, "missing");
        (reason == "ImagePullBackOff").then(|| {
            assert_eq!(
                message,
                format!("Back-off pulling image \"{missing}\": ErrImagePull: {expected}")
            );
        })
    });
    // The registry's access log times the attempts: after 10 s, then after 20 s.
    let pulls = wait_for("three pull attempts", 75, || {
        let pulls = open.requests("/v2/missing/manifests/1");
        (pulls.len() >= 3).then_some(pulls)
    });
    let first = (pulls[1] - pulls[0]).rem_euclid(86_400);
    let second = (pulls[2] - pulls[1]).rem_euclid(86_400);
    assert!((9..=13).contains(&first), "first back-off {first}s ({pulls:?})");
    assert!(
        (19..=24).contains(&second),
        "second back-off {second}s ({pulls:?})"
    );
    wait_for("the STATUS column to say ImagePullBackOff", 10, || {
        let out = server.kubectl_ok(&["get", "pod", "missing", "--no-headers"]);
        (out.split_whitespace().nth(2) == Some("ImagePullBackOff")).then_some(())
    });
}
