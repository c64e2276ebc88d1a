//! Health endpoints: `/healthz`, `/livez` and `/readyz`, with kube-apiserver's output format.
//!
//! Each endpoint runs a list of named checks. `?verbose` lists every check, `?exclude=NAME`
//! skips one, and `/readyz/NAME` runs a single check. Failure details go to the log, never to
//! the (public) response.

use std::sync::Arc;

use http::StatusCode;

/// A named check: `Ok` when healthy, otherwise the reason.
pub type CheckFn = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// One health endpoint and its checks.
#[derive(Clone)]
pub struct HealthEndpoint {
    name: &'static str,
    checks: Vec<(String, CheckFn)>,
}

impl std::fmt::Debug for HealthEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<_> = self.checks.iter().map(|(name, _)| name).collect();
        f.debug_struct("HealthEndpoint")
            .field("name", &self.name)
            .field("checks", &names)
            .finish()
    }
}

/// A plain-text health response.
#[derive(Debug, PartialEq, Eq)]
pub struct HealthResponse {
    /// 200, 404 or 500.
    pub status: StatusCode,
    /// The text body.
    pub body: String,
}

impl HealthEndpoint {
    /// An endpoint called `name` (`healthz`, `livez`, `readyz`).
    pub fn new(name: &'static str) -> Self {
        HealthEndpoint {
            name,
            checks: Vec::new(),
        }
    }

    /// Adds a check.
    pub fn with_check(mut self, name: &str, check: CheckFn) -> Self {
        self.checks.push((name.to_owned(), check));
        self
    }

    /// The endpoint's path segment.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Serves `/{name}` (`check` = None) or `/{name}/{check}`, given the query string.
    pub fn serve(&self, check: Option<&str>, query: &str) -> HealthResponse {
        match check {
            Some(name) => self.serve_one(name),
            None => self.serve_all(query),
        }
    }

    fn serve_one(&self, name: &str) -> HealthResponse {
        match self.checks.iter().find(|(n, _)| n == name) {
            None => HealthResponse {
                status: StatusCode::NOT_FOUND,
                body: "404 page not found\n".to_owned(),
            },
            Some((_, check)) => match check() {
                Ok(()) => HealthResponse {
                    status: StatusCode::OK,
                    body: "ok".to_owned(),
                },
                Err(reason) => HealthResponse {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    body: format!("internal server error: {reason}\n"),
                },
            },
        }
    }

    fn serve_all(&self, query: &str) -> HealthResponse {
        let mut verbose = false;
        let mut excluded: Vec<String> = Vec::new();
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            match key.as_ref() {
                "verbose" => verbose = true,
                "exclude" => excluded.push(value.into_owned()),
                _ => {}
            }
        }
        let mut out = String::new();
        let mut failed = Vec::new();
        for (name, check) in &self.checks {
            if let Some(pos) = excluded.iter().position(|e| e == name) {
                excluded.remove(pos);
                out.push_str(&format!("[+]{name} excluded: ok\n"));
                continue;
            }
            match check() {
                Ok(()) => out.push_str(&format!("[+]{name} ok\n")),
                Err(reason) => {
                    tracing::warn!(endpoint = self.name, check = %name, %reason, "health check failed");
                    out.push_str(&format!("[-]{name} failed: reason withheld\n"));
                    failed.push(name.as_str());
                }
            }
        }
        if !excluded.is_empty() {
            let quoted: Vec<String> = excluded.iter().map(|e| format!("{e:?}")).collect();
            out.push_str(&format!(
                "warn: some health checks cannot be excluded: no matches for {}\n",
                quoted.join(",")
            ));
        }
        if !failed.is_empty() {
            return HealthResponse {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                body: format!("{out}{} check failed\n", self.name),
            };
        }
        if !verbose {
            return HealthResponse {
                status: StatusCode::OK,
                body: "ok".to_owned(),
            };
        }
        HealthResponse {
            status: StatusCode::OK,
            body: format!("{out}{} check passed\n", self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn endpoint(storage_ok: Arc<AtomicBool>) -> HealthEndpoint {
        HealthEndpoint::new("readyz")
            .with_check("ping", Arc::new(|| Ok(())))
            .with_check(
                "storage",
                Arc::new(move || {
                    if storage_ok.load(Ordering::Relaxed) {
                        Ok(())
                    } else {
                        Err("closed".into())
                    }
                }),
            )
    }

    #[test]
    fn formats_like_kube_apiserver() {
        let ok = Arc::new(AtomicBool::new(true));
        let readyz = endpoint(ok.clone());
        assert_eq!(
            readyz.serve(None, ""),
            HealthResponse {
                status: StatusCode::OK,
                body: "ok".into()
            }
        );
        assert_eq!(
            readyz.serve(None, "verbose").body,
            "[+]ping ok\n[+]storage ok\nreadyz check passed\n"
        );
        assert_eq!(
            readyz.serve(None, "verbose&exclude=storage&exclude=nope").body,
            "[+]ping ok\n[+]storage excluded: ok\nwarn: some health checks cannot be excluded: no matches for \"nope\"\nreadyz check passed\n"
        );
        assert_eq!(readyz.serve(Some("storage"), "").body, "ok");
        assert_eq!(readyz.serve(Some("missing"), "").status, StatusCode::NOT_FOUND);

        ok.store(false, Ordering::Relaxed);
        let failed = readyz.serve(None, "");
        assert_eq!(failed.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            failed.body,
            "[+]ping ok\n[-]storage failed: reason withheld\nreadyz check failed\n"
        );
        let one = readyz.serve(Some("storage"), "");
        assert_eq!(
            (one.status, one.body.as_str()),
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal server error: closed\n"
            )
        );
        assert_eq!(readyz.serve(None, "exclude=storage").status, StatusCode::OK);
    }
}
