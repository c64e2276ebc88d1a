//! Volume binding through the real binary and kubectl: a hostPath PersistentVolume and a
//! claim that fits it are bound by the persistentvolume binder, and `kubectl get pv,pvc`
//! prints both Bound with upstream's columns.

use std::time::{Duration, Instant};

use crate::harness::Server;

const MANIFEST: &str = r"
apiVersion: v1
kind: PersistentVolume
metadata:
  name: data-pv
spec:
  capacity:
    storage: 1Gi
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: manual
  hostPath:
    path: /tmp/data-pv
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: manual
  resources:
    requests:
      storage: 500Mi
";

/// The rows of a table, each a list of its whitespace-separated words.
fn words(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

#[test]
fn kubectl_shows_a_claim_bound_to_a_host_path_volume() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("volume.yaml");
    std::fs::write(&file, MANIFEST).unwrap();
    let out = server.kubectl_ok(&["create", "-f", file.to_str().unwrap()]);
    assert_eq!(
        out.trim(),
        "persistentvolume/data-pv created\npersistentvolumeclaim/data created"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let table = loop {
        let phases = server.kubectl_ok(&[
            "get",
            "pv,pvc",
            "-o",
            "jsonpath={range .items[*]}{.status.phase} {end}",
        ]);
        if phases.trim() == "Bound Bound" {
            break server.kubectl_ok(&["get", "pv,pvc"]);
        }
        assert!(Instant::now() < deadline, "not bound within 30s: {phases}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let rows = words(&table);
    assert_eq!(rows.len(), 4, "{table}");
    assert_eq!(
        rows[0],
        [
            "NAME",
            "CAPACITY",
            "ACCESS",
            "MODES",
            "RECLAIM",
            "POLICY",
            "STATUS",
            "CLAIM",
            "STORAGECLASS",
            "VOLUMEATTRIBUTESCLASS",
            "REASON",
            "AGE"
        ],
        "{table}"
    );
    assert_eq!(
        rows[1][..8],
        [
            "persistentvolume/data-pv",
            "1Gi",
            "RWO",
            "Retain",
            "Bound",
            "default/data",
            "manual",
            "<unset>"
        ],
        "{table}"
    );
    assert_eq!(rows[1].len(), 9, "{table}");
    assert_eq!(
        rows[2],
        [
            "NAME",
            "STATUS",
            "VOLUME",
            "CAPACITY",
            "ACCESS",
            "MODES",
            "STORAGECLASS",
            "VOLUMEATTRIBUTESCLASS",
            "AGE"
        ],
        "{table}"
    );
    assert_eq!(
        rows[3][..7],
        [
            "persistentvolumeclaim/data",
            "Bound",
            "data-pv",
            "1Gi",
            "RWO",
            "manual",
            "<unset>"
        ],
        "{table}"
    );
    assert_eq!(rows[3].len(), 8, "{table}");
}
