//! `kubectl get` printing through the server's Tables with the real kubectl: the headers of
//! every built-in resource (default and `-o wide`) against upstream's printers
//! (`testdata/get-headers.txt`), cell formats of pods, services and deployments, and
//! `kubectl get -w` rows for added and modified objects.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use crate::harness::Server;

const OBJECTS: &str = include_str!("testdata/printing-objects.yaml");
const HEADERS: &str = include_str!("testdata/get-headers.txt");

/// Creates one object of every creatable kind (`testdata/printing-objects.yaml`).
fn create_objects(server: &Server) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("objects.yaml");
    std::fs::write(&file, OBJECTS).unwrap();
    server.kubectl_ok(&["create", "-f", file.to_str().unwrap()]);
}

/// The cells of a line kubectl printed: kubectl separates columns by at least three spaces
/// and no column name or cell here has two spaces in a row.
fn cells(line: &str) -> Vec<String> {
    line.split("  ")
        .map(str::trim)
        .filter(|cell| !cell.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The expected headers: (resource, header, wide header), each header as its column names.
fn expected_headers() -> Vec<(&'static str, Vec<String>, Vec<String>)> {
    HEADERS
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let mut parts = line.split('|');
            let resource = parts.next().unwrap();
            let header = cells(parts.next().unwrap());
            let wide = cells(parts.next().unwrap());
            (resource, header, wide)
        })
        .collect()
}

#[test]
fn headers_of_every_resource_match_upstream() {
    let expected = expected_headers();
    // Every listable built-in resource has its line.
    for info in rudder_machinery::resources::RESOURCES {
        if !info.verbs.contains(&"list") {
            continue;
        }
        let listed = expected.iter().any(|(resource, _, _)| {
            let mut parts = resource.splitn(2, '.');
            let name = parts.next().unwrap();
            let group = parts.next().unwrap_or_default();
            let group = group.strip_prefix(&format!("{}.", info.version)).unwrap_or(group);
            name == info.resource && group == info.group
        });
        assert!(
            listed,
            "{}/{} has no line in get-headers.txt",
            info.group, info.resource
        );
    }

    let server = Server::start();
    create_objects(&server);
    let mut failures = Vec::new();
    for (resource, header, wide) in &expected {
        for (args, want) in [
            (vec!["get", resource], header),
            (vec!["get", resource, "-o", "wide"], wide),
        ] {
            let out = server.kubectl_ok(&args);
            let mut lines = out.lines();
            let got = cells(lines.next().unwrap_or_default());
            if got != *want {
                failures.push(format!(
                    "kubectl {}:\n  want {want:?}\n  got  {got:?}",
                    args.join(" ")
                ));
            }
            if lines.next().is_none() {
                failures.push(format!("kubectl {}: no rows:\n{out}", args.join(" ")));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The row of `name` in `kubectl get` output, as cells.
fn row(out: &str, name: &str) -> Vec<String> {
    out.lines()
        .map(cells)
        .find(|cells| cells.first().is_some_and(|c| c == name))
        .unwrap_or_else(|| panic!("no row for {name}:\n{out}"))
}

/// An AGE cell of an object created moments ago: seconds (`7s`), or minutes and seconds.
fn is_recent_age(age: &str) -> bool {
    age.strip_suffix('s')
        .is_some_and(|secs| secs.parse::<u32>().is_ok_and(|s| s < 120))
        || age.starts_with("2m") && age.ends_with('s')
}

#[test]
fn cell_formats_match_upstream() {
    let server = Server::start();
    create_objects(&server);

    let pod = row(&server.kubectl_ok(&["get", "pod", "web"]), "web");
    assert_eq!(pod[1..4], ["0/1", "Pending", "0"], "{pod:?}");
    assert!(is_recent_age(&pod[4]), "{pod:?}");
    let wide = row(&server.kubectl_ok(&["get", "pod", "web", "-o", "wide"]), "web");
    assert_eq!(wide[5..], ["<none>", "<none>", "<none>", "<none>"], "{wide:?}");

    // Labels come from the rows' embedded PartialObjectMetadata (includeObject=Metadata);
    // sorting needs whole objects (kubectl asks includeObject=Object).
    let labelled = row(&server.kubectl_ok(&["get", "pod", "web", "--show-labels"]), "web");
    assert_eq!(labelled.last().unwrap(), "app=web", "{labelled:?}");
    let column = server.kubectl_ok(&["get", "pods", "-L", "app"]);
    assert_eq!(
        cells(column.lines().next().unwrap()).last().unwrap(),
        "APP",
        "{column}"
    );
    assert_eq!(row(&column, "web").last().unwrap(), "web", "{column}");
    server.kubectl_ok(&["run", "aaa", "--image=nginx:1.27"]);
    let sorted = server.kubectl_ok(&["get", "pods", "--sort-by=.metadata.name", "--no-headers"]);
    let names: Vec<String> = sorted.lines().map(|l| cells(l)[0].clone()).collect();
    // The workload controllers add their own pods; all of them come sorted.
    let mut expected = names.clone();
    expected.sort();
    assert_eq!(names, expected, "{sorted}");
    assert!(
        names.len() >= 2 && names[0] == "aaa" && names.contains(&"web".to_owned()),
        "{sorted}"
    );

    let service = row(
        &server.kubectl_ok(&["get", "service", "web", "-o", "wide"]),
        "web",
    );
    assert_eq!(service[1], "ClusterIP", "{service:?}");
    assert!(service[2].parse::<std::net::Ipv4Addr>().is_ok(), "{service:?}");
    assert_eq!(service[3..5], ["<none>", "80/TCP"], "{service:?}");
    assert!(is_recent_age(&service[5]), "{service:?}");
    assert_eq!(service[6], "app=web", "{service:?}");

    let deployment = row(
        &server.kubectl_ok(&["get", "deployment", "web", "-o", "wide"]),
        "web",
    );
    // READY, UP-TO-DATE (the controller's new replica set, its pod not scheduled: no nodes),
    // AVAILABLE.
    assert_eq!(deployment[1..4], ["0/1", "1", "0"], "{deployment:?}");
    assert_eq!(
        deployment[5..],
        ["web", "nginx:1.27", "app=deploy"],
        "{deployment:?}"
    );

    let secret = row(&server.kubectl_ok(&["get", "secret", "token"]), "token");
    assert_eq!(secret[1..3], ["Opaque", "1"], "{secret:?}");
    let endpoints = row(&server.kubectl_ok(&["get", "endpoints", "manual"]), "manual");
    assert_eq!(endpoints[1], "10.1.2.3:80", "{endpoints:?}");
    let job = row(&server.kubectl_ok(&["get", "job", "once"]), "once");
    assert_eq!(job[1..3], ["Running", "0/1"], "{job:?}");
    let cronjob = row(&server.kubectl_ok(&["get", "cronjob", "nightly"]), "nightly");
    assert_eq!(
        cronjob[1..6],
        ["0 3 * * *", "<none>", "False", "0", "<none>"],
        "{cronjob:?}"
    );
    let pv = row(&server.kubectl_ok(&["get", "pv", "pv-1"]), "pv-1");
    assert_eq!(pv[1..4], ["1Gi", "RWO", "Retain"], "{pv:?}");
    let default_table = row(&server.kubectl_ok(&["get", "role", "reader"]), "reader");
    assert!(
        default_table[1].ends_with('Z') && default_table[1].len() == "2024-01-01T00:00:00Z".len(),
        "{default_table:?}"
    );
}

/// Lines kubectl writes, as they come.
fn lines_of(child: &mut std::process::Child) -> Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

#[test]
fn watch_prints_rows_for_added_and_modified_objects() {
    let server = Server::start();
    server.kubectl_ok(&["run", "first", "--image=nginx:1.27"]);
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(server.kubeconfig())
        .args(["get", "pods", "-w", "--output-watch-events"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = lines_of(&mut child);
    let mut seen = Vec::new();
    let mut wait_for = |count: usize| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while seen.len() < count && Instant::now() < deadline {
            if let Ok(line) = lines.recv_timeout(Duration::from_millis(200)) {
                seen.push(cells(&line));
            }
        }
        seen.clone()
    };
    // The header and the existing pod, from the initial list.
    let initial = wait_for(2);
    assert_eq!(
        initial[0],
        ["EVENT", "NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        "{initial:?}"
    );
    assert_eq!(
        initial[1][..5],
        ["ADDED", "first", "0/1", "Pending", "0"],
        "{initial:?}"
    );

    server.kubectl_ok(&["run", "second", "--image=nginx:1.27"]);
    server.kubectl_ok(&["label", "pod", "second", "tier=web"]);
    // The scheduler's status writes (PodScheduled=False: there are no nodes) add MODIFIED
    // rows of their own; the rows of `second` come in order among them.
    let mut all = initial;
    let deadline = Instant::now() + Duration::from_secs(20);
    let second = |all: &[Vec<String>]| -> Vec<Vec<String>> {
        all.iter()
            .filter(|row| row.get(1).map(String::as_str) == Some("second"))
            .cloned()
            .collect()
    };
    while second(&all).len() < 2 && Instant::now() < deadline {
        if let Ok(line) = lines.recv_timeout(Duration::from_millis(200)) {
            all.push(cells(&line));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let rows = second(&all);
    assert!(rows.len() >= 2, "{all:?}");
    assert_eq!(
        rows[0][..5],
        ["ADDED", "second", "0/1", "Pending", "0"],
        "{all:?}"
    );
    assert_eq!(
        rows[1][..5],
        ["MODIFIED", "second", "0/1", "Pending", "0"],
        "{all:?}"
    );
    assert!(
        all[2..]
            .iter()
            .all(|row| row[0] == "MODIFIED" || row[0] == "ADDED"),
        "{all:?}"
    );
    assert!(all[2..].iter().all(|row| is_recent_age(&row[5])), "{all:?}");
}
