//! `/openapi/v2`, `/openapi/v3` and `/openapi/v3/<path>`: the OpenAPI documents of the built-in
//! APIs ([`rudder_machinery::openapi`]), served with the headers, content negotiation and
//! conditional requests of kube-apiserver.
//!
//! Upstream's handlers, ported here:
//! - `/openapi/v3` is kube-aggregator's `specProxier.handleDiscovery`
//!   (`pkg/controllers/openapiv3/aggregator`): the index marshalled from a Go map (sorted keys),
//!   through `http.ServeContent` with the current time and no `Content-Type`, which Go sniffs
//!   as `text/plain; charset=utf-8`, and no `ETag`.
//! - `/openapi/v3/<path>` is kube-openapi's `handler3.HandleGroupVersion` behind the
//!   aggregator's `handleGroupVersion` (a path not in the index is a bare 404): `Vary: Accept`,
//!   `Content-Type` from the `Accept` clause, `ETag` the quoted hash; with a `?hash=` that is
//!   not the document's, a 301 to the current URL; with the right one, `Cache-Control: public,
//!   immutable` and `Expires` a year ahead.
//! - `/openapi/v2` is kube-openapi's `handler.RegisterOpenAPIVersionedService`, wrapped in
//!   NYTimes' `gziphandler`: `Vary: Accept-Encoding` and `Vary: Accept`, the quoted hash as
//!   `ETag`, gzip when accepted.
//! - Every one ends in Go's `http.ServeContent` (`Last-Modified`, `If-Match`,
//!   `If-Unmodified-Since`, `If-None-Match`, `If-Modified-Since`, single byte ranges,
//!   `Accept-Ranges`, `HEAD`); k8s.io/apiserver's `WithCacheControl` filter adds `Cache-Control:
//!   no-cache, private` to everything that sets no `Cache-Control` of its own.
//!
//! The v2 document is also served as protobuf (`Accept:
//! application/com.github.proto-openapi.spec.v2@v1.0+protobuf`, what `kubectl explain
//! --output=plaintext-openapiv2` asks for), converted at generation time by upstream's own
//! converter. Not served: the v3 protobuf forms; an `Accept` that only allows them is answered
//! 406, and a later clause that allows JSON gets JSON. Requests for several byte
//! ranges get the whole document (Go would send `multipart/byteranges`).

use std::sync::OnceLock;

use bytes::Bytes;
use http::header::{self, HeaderName};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use rudder_machinery::openapi;
use warp::reply::Response;

use crate::status::ApiError;

/// gziphandler's `DefaultMinSize`: smaller bodies are sent as they are.
const GZIP_MIN_SIZE: usize = 1400;

/// Serves an OpenAPI request: `path` as received (`/openapi/v3/apis/apps/v1`), `query` the raw
/// query string. `None` for a path that is not an OpenAPI endpoint (`/openapi`, `/openapi/v2/`,
/// ...), for the router's own 404.
pub fn serve(method: &Method, path: &str, query: &str, headers: &HeaderMap) -> Option<Response> {
    serve_with(
        &crate::registry::Registry::builtin(),
        method,
        path,
        query,
        headers,
    )
}

/// [`serve`] with the custom resources of `registry` published in v3 (see [`crate::crd::openapi`]).
pub fn serve_with(
    registry: &crate::registry::Registry,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
) -> Option<Response> {
    let custom = crate::crd::openapi::v3_paths(registry);
    let response = match path {
        "/openapi/v2" => v2(method, headers),
        "/openapi/v3" if custom.is_empty() => v3_index(method, headers, index_json().clone()),
        "/openapi/v3" => v3_index(method, headers, custom_index(registry, &custom)),
        _ => {
            let document = path.strip_prefix("/openapi/v3/")?;
            match custom.iter().find(|(g, v)| document == format!("apis/{g}/{v}")) {
                Some((group, version)) => custom_document(registry, method, group, version, query, headers),
                None => v3_document(method, document, query, headers),
            }
        }
    };
    Some(response)
}

/// The index with the custom group versions, every path in order.
fn custom_index(registry: &crate::registry::Registry, custom: &[(String, String)]) -> Bytes {
    let mut paths: std::collections::BTreeMap<String, String> = openapi::v3_hashes()
        .map(|(path, hash)| (path.to_owned(), v3_url(path, hash)))
        .collect();
    for (group, version) in custom {
        if let Some(document) = crate::crd::openapi::v3_document(registry, group, version) {
            let path = format!("apis/{group}/{version}");
            let (_, hash) = crate::crd::openapi::encode(&document);
            let url = v3_url(&path, &hash);
            paths.insert(path, url);
        }
    }
    let paths: serde_json::Map<String, serde_json::Value> = paths
        .into_iter()
        .map(|(path, url)| (path, serde_json::json!({"serverRelativeURL": url})))
        .collect();
    Bytes::from(serde_json::json!({"paths": paths}).to_string())
}

fn custom_document(
    registry: &crate::registry::Registry,
    method: &Method,
    group: &str,
    version: &str,
    query: &str,
    request: &HeaderMap,
) -> Response {
    let Some(document) = crate::crd::openapi::v3_document(registry, group, version) else {
        return empty(StatusCode::NOT_FOUND, base_headers());
    };
    let (json, hash) = crate::crd::openapi::encode(&document);
    let path = format!("apis/{group}/{version}");
    let mut headers = base_headers();
    headers.append(header::VARY, HeaderValue::from_static("Accept"));
    let accept = header_str(request, header::ACCEPT);
    let clauses = parse_accept(if accept.is_empty() { "*/*" } else { accept });
    if !clauses.is_empty() && !accepts_json(&clauses) {
        return empty(StatusCode::NOT_ACCEPTABLE, headers);
    }
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(value) = HeaderValue::from_str(&format!("\"{hash}\"")) {
        headers.insert(header::ETAG, value);
    }
    if let Some(wanted) = query_hash(query).filter(|h| !h.is_empty()) {
        if wanted != hash {
            if let Ok(location) = HeaderValue::from_str(&v3_url(&path, &hash)) {
                headers.insert(header::LOCATION, location);
            }
            return empty(StatusCode::MOVED_PERMANENTLY, headers);
        }
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, immutable"),
        );
        if let Ok(expires) = HeaderValue::from_str(&expires_in_a_year(Timestamp::now())) {
            headers.insert(header::EXPIRES, expires);
        }
    }
    serve_content(
        method,
        request,
        headers,
        Timestamp::now().as_second(),
        Bytes::from(json),
    )
}

/// When the documents were first served: their `Last-Modified` (upstream's is when it first
/// marshalled them, at start).
fn served_since() -> i64 {
    static SINCE: OnceLock<i64> = OnceLock::new();
    *SINCE.get_or_init(|| Timestamp::now().as_second())
}

/// The headers every response starts with: what `WithCacheControl` sets.
fn base_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    headers
}

fn empty(status: StatusCode, headers: HeaderMap) -> Response {
    let mut response = Response::new(Bytes::new().into());
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

fn internal(err: &openapi::OpenApiError) -> Response {
    tracing::error!(error = %err, "serving OpenAPI");
    ApiError::internal(err).into_response()
}

/// The quoted form of a hash, as upstream's `ETag`s.
fn etag(hash: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{hash}\"")).unwrap_or(HeaderValue::from_static("\"\""))
}

fn v3_url(path: &str, hash: &str) -> String {
    format!("/openapi/v3/{path}?hash={hash}")
}

/// The index: `{"paths": {"<path>": {"serverRelativeURL": "/openapi/v3/<path>?hash=<hash>"}}}`.
fn index_json() -> &'static Bytes {
    static INDEX: OnceLock<Bytes> = OnceLock::new();
    INDEX.get_or_init(|| {
        // Hand-written rather than through a map type: the paths are sorted already and the
        // URLs need no escaping (paths and upper-case hex).
        let mut json = String::from("{\"paths\":{");
        for (i, (path, hash)) in openapi::v3_hashes().enumerate() {
            if i > 0 {
                json.push(',');
            }
            json.push_str(&format!(
                "\"{path}\":{{\"serverRelativeURL\":\"{}\"}}",
                v3_url(path, hash)
            ));
        }
        json.push_str("}}");
        Bytes::from(json)
    })
}

fn v3_index(method: &Method, request: &HeaderMap, index: Bytes) -> Response {
    let mut headers = base_headers();
    // What Go's ServeContent sniffs from the JSON, since the handler sets no type.
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    let now = Timestamp::now().as_second();
    serve_content(method, request, headers, now, index)
}

fn v3_document(method: &Method, path: &str, query: &str, request: &HeaderMap) -> Response {
    if !openapi::v3_paths().any(|p| p == path) {
        return empty(StatusCode::NOT_FOUND, base_headers());
    }
    let mut headers = base_headers();
    headers.append(header::VARY, HeaderValue::from_static("Accept"));
    let accept = header_str(request, header::ACCEPT);
    let clauses = parse_accept(if accept.is_empty() { "*/*" } else { accept });
    if clauses.is_empty() {
        // Upstream returns without writing anything.
        return empty(StatusCode::OK, headers);
    }
    if !accepts_json(&clauses) {
        return empty(StatusCode::NOT_ACCEPTABLE, headers);
    }
    let (json, hash) = match openapi::v3_document(path) {
        Ok(Some(document)) => document,
        Ok(None) => return empty(StatusCode::NOT_FOUND, base_headers()),
        Err(err) => return internal(&err),
    };
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::ETAG, etag(hash));
    if let Some(wanted) = query_hash(query).filter(|h| !h.is_empty()) {
        if wanted != hash {
            // http.Redirect: the Content-Type already set means no HTML body.
            if let Ok(location) = HeaderValue::from_str(&v3_url(path, hash)) {
                headers.insert(header::LOCATION, location);
            }
            return empty(StatusCode::MOVED_PERMANENTLY, headers);
        }
        headers.insert(header::VARY, HeaderValue::from_static("Accept"));
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, immutable"),
        );
        if let Ok(expires) = HeaderValue::from_str(&expires_in_a_year(Timestamp::now())) {
            headers.insert(header::EXPIRES, expires);
        }
    }
    let body = Bytes::from_owner(Shared(json));
    serve_content(method, request, headers, served_since(), body)
}

fn v2(method: &Method, request: &HeaderMap) -> Response {
    let mut headers = base_headers();
    headers.append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    let gzip = accepts_gzip(header_str(request, header::ACCEPT_ENCODING));
    headers.append(header::VARY, HeaderValue::from_static("Accept"));
    let accept = header_str(request, header::ACCEPT);
    let clauses = parse_accept(if accept.is_empty() { "*/*" } else { accept });
    let Some(form) = v2_form(&clauses) else {
        return empty(StatusCode::NOT_ACCEPTABLE, headers);
    };
    let (document, content_type, compressed) = match form {
        V2Form::Json => (openapi::v2_document(), "application/json", openapi::v2_gzip()),
        V2Form::Protobuf => (openapi::v2_protobuf(), PROTOBUF_V2, openapi::v2_protobuf_gzip()),
    };
    let (bytes, hash) = match document {
        Ok(document) => document,
        Err(err) => return internal(&err),
    };
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Both forms carry the JSON's hash: upstream reuses it, the `Vary: Accept` telling them
    // apart.
    headers.insert(header::ETAG, etag(hash));
    let body = Bytes::from_owner(Shared(bytes));
    let len = body.len();
    let mut response = serve_content(method, request, headers, served_since(), body);
    // gziphandler compresses what ServeContent writes once it reaches its minimum size; the
    // whole document is embedded compressed already. (A byte range is sent uncompressed.)
    if gzip && *method != Method::HEAD && response.status() == StatusCode::OK && len >= GZIP_MIN_SIZE {
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        headers.remove(header::CONTENT_LENGTH);
        *response.body_mut() = Bytes::from_static(compressed).into();
    }
    response
}

/// The `Content-Type` of the protobuf v2 document (for either protobuf `Accept` form).
const PROTOBUF_V2: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// The forms of the v2 document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum V2Form {
    Json,
    Protobuf,
}

/// kube-openapi's v2 negotiation: for each clause in order, JSON, then the deprecated and the
/// current protobuf subtypes; the first match is served.
fn v2_form(clauses: &[Clause]) -> Option<V2Form> {
    const FORMS: [(&str, V2Form); 3] = [
        ("json", V2Form::Json),
        ("com.github.proto-openapi.spec.v2@v1.0+protobuf", V2Form::Protobuf),
        ("com.github.proto-openapi.spec.v2.v1.0+protobuf", V2Form::Protobuf),
    ];
    clauses.iter().find_map(|clause| {
        FORMS.iter().find_map(|(subtype, form)| {
            let kind = clause.kind == "application" || clause.kind == "*";
            (kind && (clause.subtype == *subtype || clause.subtype == "*")).then_some(*form)
        })
    })
}

/// An `Arc`'d document as the owner of a [`Bytes`].
struct Shared(std::sync::Arc<Vec<u8>>);

impl AsRef<[u8]> for Shared {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// The first `hash` of a query string, as Go's `URL.Query().Get("hash")`.
fn query_hash(query: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == "hash")
        .map(|(_, value)| value.into_owned())
}

/// The first value of a header, as Go's `Header.Get` (empty when absent or not text).
fn header_str(headers: &HeaderMap, name: HeaderName) -> &str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// One clause of an `Accept` header, as munnerz/goautoneg parses it.
#[derive(Clone, Debug, PartialEq)]
struct Clause {
    kind: String,
    subtype: String,
    q: f64,
}

/// goautoneg's `ParseAccept`: clauses in its (not quite total) order, which Go's `sort.Sort`
/// applies by insertion sort on lists this short.
fn parse_accept(header: &str) -> Vec<Clause> {
    let mut clauses = Vec::new();
    for part in header.split(',') {
        let part = part.trim_matches(' ');
        let (media, params) = part.split_once(';').unwrap_or((part, ""));
        let (kind, subtype) = media.split_once('/').unwrap_or((media, ""));
        let kind = kind.trim_matches(' ');
        let subtype = match subtype {
            "" if kind == "*" => "*",
            "" => continue,
            s if s.contains('/') => continue,
            s => s.trim_matches(' '),
        };
        clauses.push(Clause {
            kind: kind.to_owned(),
            subtype: subtype.to_owned(),
            q: parse_params_q(params),
        });
    }
    let less = |a: &Clause, b: &Clause| {
        a.q > b.q || (a.kind != "*" && b.kind == "*") || (a.subtype != "*" && b.subtype == "*")
    };
    for i in 1..clauses.len() {
        let mut j = i;
        while j > 0 && less(&clauses[j], &clauses[j - 1]) {
            clauses.swap(j, j - 1);
            j -= 1;
        }
    }
    clauses
}

/// The `q` among `;`-separated parameters (1 without one; 0 when it does not parse, as Go's
/// `strconv.ParseFloat` error value).
fn parse_params_q(params: &str) -> f64 {
    let mut q = 1.0;
    if params.is_empty() {
        return q;
    }
    for param in params.split(';') {
        // `key=value`, or `key=value=` (goautoneg ignores what follows a second `=` only
        // when it is nothing).
        let Some((key, rest)) = param.split_once('=').filter(|(_, rest)| !rest.is_empty()) else {
            continue;
        };
        let value = match rest.split_once('=') {
            None => rest,
            Some((value, "")) => value,
            Some(_) => continue,
        };
        if key.trim_matches(' ') == "q" {
            q = value.parse::<f32>().map_or(0.0, f64::from);
        }
    }
    q
}

/// Whether a clause allows JSON (for v3 documents). Upstream tries JSON, then the protobuf
/// forms, against each clause in order and serves the first match; Rudder, which cannot send
/// v3 protobuf, goes on to the next clause where upstream would have sent protobuf.
fn accepts_json(clauses: &[Clause]) -> bool {
    clauses.iter().any(|clause| {
        (clause.kind == "application" || clause.kind == "*")
            && (clause.subtype == "json" || clause.subtype == "*")
    })
}

/// gziphandler's `acceptsGzip`: `gzip` listed with a quality above 0.
fn accepts_gzip(header: &str) -> bool {
    let mut gzip = 0.0;
    for coding in header.split(',') {
        let mut name = String::new();
        let mut q = 1.0;
        // The error of the last `q=` parsed, as gziphandler's `parseCoding` keeps it.
        let mut failed = false;
        for (n, part) in coding.split(';').enumerate() {
            let part = part.trim();
            q = 1.0;
            if n == 0 {
                name = part.to_ascii_lowercase();
            } else if let Some(value) = part.strip_prefix("q=") {
                let parsed = value.parse::<f64>();
                failed = parsed.is_err();
                q = parsed.unwrap_or(0.0).clamp(0.0, 1.0);
            }
        }
        if !failed && name == "gzip" {
            gzip = q;
        }
    }
    gzip > 0.0
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Cond {
    None,
    True,
    False,
}

/// Go's `http.ServeContent` for an in-memory body whose `Content-Type` (and `ETag`, if any)
/// are set: `modtime` is in Unix seconds.
fn serve_content(
    method: &Method,
    request: &HeaderMap,
    mut headers: HeaderMap,
    modtime: i64,
    content: Bytes,
) -> Response {
    if let Ok(value) = HeaderValue::from_str(&http_date(modtime)) {
        headers.insert(header::LAST_MODIFIED, value);
    }
    let etag = header_str(&headers, header::ETAG).to_owned();
    let get_or_head = *method == Method::GET || *method == Method::HEAD;

    // checkPreconditions, following RFC 7232 section 6.
    let mut cond = check_if_match(header_str(request, header::IF_MATCH), &etag);
    if cond == Cond::None {
        cond = check_time(header_str(request, header::IF_UNMODIFIED_SINCE), modtime, true);
    }
    if cond == Cond::False {
        return empty(StatusCode::PRECONDITION_FAILED, headers);
    }
    match check_if_none_match(header_str(request, header::IF_NONE_MATCH), &etag) {
        Cond::False if get_or_head => return not_modified(headers),
        Cond::False => return empty(StatusCode::PRECONDITION_FAILED, headers),
        Cond::None if get_or_head => {
            let since = header_str(request, header::IF_MODIFIED_SINCE);
            if check_time(since, modtime, false) == Cond::False {
                return not_modified(headers);
            }
        }
        _ => {}
    }
    let mut range = header_str(request, header::RANGE);
    if !range.is_empty() && check_if_range(get_or_head, request, &etag, modtime) == Cond::False {
        range = "";
    }

    let size = content.len();
    let mut status = StatusCode::OK;
    let mut body = content;
    match parse_range(range, size) {
        Err(no_overlap) => {
            // serveError: the headers meant for the content go.
            for name in [
                header::CACHE_CONTROL,
                header::CONTENT_ENCODING,
                header::ETAG,
                header::LAST_MODIFIED,
            ] {
                headers.remove(name);
            }
            if no_overlap && let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
                headers.insert(header::CONTENT_RANGE, value);
            }
            let message = if no_overlap {
                "invalid range: failed to overlap\n"
            } else {
                "invalid range\n"
            };
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
            let mut response = empty(StatusCode::RANGE_NOT_SATISFIABLE, headers);
            *response.body_mut() = Bytes::from_static(message.as_bytes()).into();
            return response;
        }
        Ok(ranges) => {
            if let [(start, len)] = ranges[..]
                && len <= size
            {
                status = StatusCode::PARTIAL_CONTENT;
                let range = format!("bytes {start}-{}/{size}", start + len - 1);
                if let Ok(value) = HeaderValue::from_str(&range) {
                    headers.insert(header::CONTENT_RANGE, value);
                }
                body = body.slice(start..start + len);
            }
        }
    }
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    if *method == Method::HEAD {
        body = Bytes::new();
    }
    let mut response = empty(status, headers);
    *response.body_mut() = body.into();
    response
}

/// Go's `writeNotModified`.
fn not_modified(mut headers: HeaderMap) -> Response {
    headers.remove(header::CONTENT_TYPE);
    headers.remove(header::CONTENT_LENGTH);
    headers.remove(header::CONTENT_ENCODING);
    if headers.contains_key(header::ETAG) {
        headers.remove(header::LAST_MODIFIED);
    }
    empty(StatusCode::NOT_MODIFIED, headers)
}

/// Go's `scanETag`: the entity tag at the start of `s` and what follows, if it is one.
fn scan_etag(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_matches([' ', '\t', '\r', '\n']);
    let start = if s.starts_with("W/") { 2 } else { 0 };
    let bytes = s.as_bytes();
    if bytes.len() < start + 2 || bytes[start] != b'"' {
        return None;
    }
    for (i, &c) in bytes.iter().enumerate().skip(start + 1) {
        match c {
            b'"' => return Some((&s[..=i], &s[i + 1..])),
            0x21 | 0x23..=0x7e | 0x80..=0xff => {}
            _ => return None,
        }
    }
    None
}

/// Calls `matches` on each entity tag of an `If-Match` / `If-None-Match` list: `Some(true)` on
/// `*` or a match, `Some(false)` when none matched, `None` for an empty header.
fn any_etag(header: &str, matches: impl Fn(&str) -> bool) -> Option<bool> {
    if header.is_empty() {
        return None;
    }
    let mut rest = header;
    loop {
        rest = rest.trim_matches([' ', '\t', '\r', '\n']);
        if rest.is_empty() {
            break;
        }
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
            continue;
        }
        if rest.starts_with('*') {
            return Some(true);
        }
        let Some((tag, remain)) = scan_etag(rest) else {
            break;
        };
        if matches(tag) {
            return Some(true);
        }
        rest = remain;
    }
    Some(false)
}

fn strong_match(a: &str, b: &str) -> bool {
    a == b && a.starts_with('"')
}

fn weak_match(a: &str, b: &str) -> bool {
    a.trim_start_matches("W/") == b.trim_start_matches("W/")
}

fn check_if_match(header: &str, etag: &str) -> Cond {
    match any_etag(header, |tag| strong_match(tag, etag)) {
        None => Cond::None,
        Some(true) => Cond::True,
        Some(false) => Cond::False,
    }
}

/// `checkIfNoneMatch`: `False` when a tag matches (the client has it).
fn check_if_none_match(header: &str, etag: &str) -> Cond {
    match any_etag(header, |tag| weak_match(tag, etag)) {
        None => Cond::None,
        Some(true) => Cond::False,
        Some(false) => Cond::True,
    }
}

/// `checkIfUnmodifiedSince` (`unmodified`) and `checkIfModifiedSince`: whether `modtime` is not
/// after the header's time.
fn check_time(header: &str, modtime: i64, unmodified: bool) -> Cond {
    let Some(t) = (!header.is_empty()).then(|| parse_http_date(header)).flatten() else {
        return Cond::None;
    };
    match (modtime <= t, unmodified) {
        (true, true) | (false, false) => Cond::True,
        (true, false) | (false, true) => Cond::False,
    }
}

fn check_if_range(get_or_head: bool, request: &HeaderMap, etag: &str, modtime: i64) -> Cond {
    let header = header_str(request, header::IF_RANGE);
    if !get_or_head || header.is_empty() {
        return Cond::None;
    }
    if let Some((tag, _)) = scan_etag(header) {
        return if strong_match(tag, etag) {
            Cond::True
        } else {
            Cond::False
        };
    }
    match parse_http_date(header) {
        Some(t) if t == modtime => Cond::True,
        _ => Cond::False,
    }
}

/// Go's `parseRange`: `(start, length)` of each range; `Err(true)` when none overlaps the
/// content, `Err(false)` when the header is malformed.
fn parse_range(header: &str, size: usize) -> Result<Vec<(usize, usize)>, bool> {
    if header.is_empty() {
        return Ok(Vec::new());
    }
    let spec = header.strip_prefix("bytes=").ok_or(false)?;
    let trim = |s: &str| s.trim_matches([' ', '\t', '\r', '\n']).to_owned();
    let number = |s: &str| s.parse::<usize>().map_err(|_| false);
    let mut ranges = Vec::new();
    let mut no_overlap = false;
    for part in spec.split(',') {
        let part = trim(part);
        if part.is_empty() {
            continue;
        }
        let (start, end) = part.split_once('-').ok_or(false)?;
        let (start, end) = (trim(start), trim(end));
        if start.is_empty() {
            let suffix = number(&end)?.min(size);
            ranges.push((size - suffix, suffix));
            continue;
        }
        let start = number(&start)?;
        if start >= size {
            no_overlap = true;
            continue;
        }
        let len = if end.is_empty() {
            size - start
        } else {
            let end = number(&end)?;
            if start > end {
                return Err(false);
            }
            end.min(size - 1) - start + 1
        };
        ranges.push((start, len));
    }
    if no_overlap && ranges.is_empty() {
        return Err(true);
    }
    // Ranges adding up to more than the content are ignored, as Go does.
    if ranges.iter().map(|(_, len)| len).sum::<usize>() > size || ranges.len() > 1 {
        ranges.clear();
    }
    Ok(ranges)
}

const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const LONG_WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// An HTTP date in Go's `http.TimeFormat` (IMF-fixdate).
fn http_date(seconds: i64) -> String {
    Timestamp::from_second(seconds)
        .map(|t| t.strftime("%a, %d %b %Y %H:%M:%S GMT").to_string())
        .unwrap_or_default()
}

/// `time.Now().AddDate(1, 0, 0).Format(time.RFC1123)` on a server whose local zone is UTC (as
/// in kube-apiserver's images): Go prints the zone's name, `UTC`, and moves 29 February to
/// 1 March.
fn expires_in_a_year(now: Timestamp) -> String {
    let now = now.to_zoned(TimeZone::UTC).datetime();
    let year = now.year().saturating_add(1);
    let date = Date::new(year, now.month(), now.day())
        .or_else(|_| Date::new(year, 3, 1))
        .unwrap_or(now.date());
    DateTime::from_parts(date, now.time())
        .strftime("%a, %d %b %Y %H:%M:%S UTC")
        .to_string()
}

/// Go's `http.ParseTime`: IMF-fixdate, RFC 850 or ANSI C's `asctime` format, in Unix seconds.
/// The day of the week is checked for syntax only, as Go does.
fn parse_http_date(text: &str) -> Option<i64> {
    let month = |m: &str| MONTHS.iter().position(|&n| n == m).map(|i| i as i8 + 1);
    let two = |s: &str| (s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit())).then_some(());
    let clock = |s: &str| -> Option<(i8, i8, i8)> {
        let mut parts = s.split(':');
        let (h, m, sec) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || h.is_empty() || h.len() > 2 {
            return None;
        }
        two(m)?;
        two(sec)?;
        Some((h.parse().ok()?, m.parse().ok()?, sec.parse().ok()?))
    };
    let fields: Vec<&str> = text.split(' ').collect();
    let (year, mon, day, (h, m, s)) = match fields[..] {
        // Mon, 02 Jan 2006 15:04:05 GMT
        [weekday, day, mon, year, time, "GMT"] => {
            WEEKDAYS.contains(&weekday.strip_suffix(',')?).then_some(())?;
            two(day)?;
            (year.len() == 4).then_some(())?;
            (year.parse().ok()?, month(mon)?, day.parse().ok()?, clock(time)?)
        }
        // Monday, 02-Jan-06 15:04:05 MST
        [weekday, date, time, zone] if zone.bytes().all(|b| b.is_ascii_uppercase()) => {
            LONG_WEEKDAYS
                .contains(&weekday.strip_suffix(',')?)
                .then_some(())?;
            let mut parts = date.split('-');
            let (day, mon, yy) = (parts.next()?, parts.next()?, parts.next()?);
            two(day)?;
            two(yy)?;
            let yy: i16 = yy.parse().ok()?;
            let year = if yy >= 69 { 1900 + yy } else { 2000 + yy };
            (year, month(mon)?, day.parse().ok()?, clock(time)?)
        }
        // Mon Jan _2 15:04:05 2006
        _ => {
            let fields: Vec<&str> = text.split_whitespace().collect();
            let [weekday, mon, day, time, year] = fields[..] else {
                return None;
            };
            WEEKDAYS.contains(&weekday).then_some(())?;
            (day.len() <= 2 && year.len() == 4).then_some(())?;
            (year.parse().ok()?, month(mon)?, day.parse().ok()?, clock(time)?)
        }
    };
    let datetime = Date::new(year, mon, day).ok()?.at(h, m, s, 0);
    Some(datetime.to_zoned(TimeZone::UTC).ok()?.timestamp().as_second())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use http_body_util::BodyExt;

    use super::*;

    fn request(method: &Method, path: &str, query: &str, headers: &[(&str, &str)]) -> Response {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        serve(method, path, query, &map).unwrap()
    }

    fn get(path: &str, query: &str, headers: &[(&str, &str)]) -> Response {
        request(&Method::GET, path, query, headers)
    }

    fn body(response: Response) -> Vec<u8> {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime
            .block_on(response.into_body().collect())
            .unwrap()
            .to_bytes()
            .to_vec()
    }

    fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
        response.headers().get(name).map(|v| v.to_str().unwrap())
    }

    fn all(response: &Response, name: &str) -> Vec<String> {
        response
            .headers()
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    fn hash_of(path: &str) -> &'static str {
        openapi::v3_hashes().find(|(p, _)| *p == path).unwrap().1
    }

    #[test]
    fn only_openapi_paths_are_served() {
        let headers = HeaderMap::new();
        for path in [
            "/openapi",
            "/openapi/",
            "/openapi/v2/",
            "/openapi/v1",
            "/api",
            "/openapi/v3x",
        ] {
            assert!(serve(&Method::GET, path, "", &headers).is_none(), "{path}");
        }
    }

    #[test]
    fn index_lists_every_ga_group_version_with_its_hash() {
        let response = get("/openapi/v3", "", &[]);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            header(&response, "content-type"),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(header(&response, "cache-control"), Some("no-cache, private"));
        assert!(header(&response, "etag").is_none());
        assert!(header(&response, "last-modified").unwrap().ends_with(" GMT"));
        let index: serde_json::Value = serde_json::from_slice(&body(response)).unwrap();
        let paths = index["paths"].as_object().unwrap();
        let listed: BTreeSet<_> = paths.keys().map(String::as_str).collect();
        let expected: BTreeSet<_> = openapi::v3_paths().collect();
        assert_eq!(listed, expected);
        for group in rudder_machinery::resources::GROUPS {
            for version in group.versions {
                let path = if group.name.is_empty() {
                    format!("api/{version}")
                } else {
                    format!("apis/{}/{version}", group.name)
                };
                assert!(paths.contains_key(&path), "{path}");
            }
        }
        for path in [
            "api",
            "apis",
            "apis/apps",
            "apis/apps/v1",
            "api/v1",
            "apis/autoscaling/v2",
        ] {
            assert!(paths.contains_key(path), "{path}");
        }
        for (path, entry) in paths {
            assert!(!path.contains("alpha") && !path.contains("beta"), "{path}");
            assert_eq!(
                entry["serverRelativeURL"],
                format!("/openapi/v3/{path}?hash={}", hash_of(path))
            );
        }
    }

    #[test]
    fn document_without_hash_is_not_cacheable() {
        let response = get("/openapi/v3/apis/apps/v1", "", &[]);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header(&response, "content-type"), Some("application/json"));
        let etag = format!("\"{}\"", hash_of("apis/apps/v1"));
        assert_eq!(header(&response, "etag"), Some(etag.as_str()));
        assert_eq!(header(&response, "cache-control"), Some("no-cache, private"));
        assert_eq!(all(&response, "vary"), ["Accept"]);
        assert!(header(&response, "expires").is_none());
        assert!(header(&response, "last-modified").is_some());
        assert_eq!(header(&response, "accept-ranges"), Some("bytes"));
        let json: serde_json::Value = serde_json::from_slice(&body(response)).unwrap();
        assert!(json["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"].is_object());
    }

    #[test]
    fn document_with_its_hash_is_immutable() {
        let hash = hash_of("apis/batch/v1");
        let response = get("/openapi/v3/apis/batch/v1", &format!("hash={hash}"), &[]);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header(&response, "cache-control"), Some("public, immutable"));
        let expires = header(&response, "expires").unwrap();
        assert!(expires.ends_with(" UTC"), "{expires}");
        assert_eq!(all(&response, "vary"), ["Accept"]);
        let json: serde_json::Value = serde_json::from_slice(&body(response)).unwrap();
        assert_eq!(json["openapi"], "3.0.0");

        // An empty hash is no hash.
        let response = get("/openapi/v3/apis/batch/v1", "hash=", &[]);
        assert_eq!(header(&response, "cache-control"), Some("no-cache, private"));
    }

    #[test]
    fn document_with_another_hash_redirects_to_the_current_one() {
        let response = get("/openapi/v3/api/v1", "hash=0123ABC", &[]);
        assert_eq!(response.status(), StatusCode::MOVED_PERMANENTLY);
        let location = format!("/openapi/v3/api/v1?hash={}", hash_of("api/v1"));
        assert_eq!(header(&response, "location"), Some(location.as_str()));
        assert_eq!(header(&response, "cache-control"), Some("no-cache, private"));
        assert!(body(response).is_empty());
    }

    #[test]
    fn if_none_match_gets_304() {
        let hash = hash_of("apis/apps/v1");
        let quoted = format!("\"{hash}\"");
        let weak = format!("\"other\", W/\"{hash}\"");
        for tag in [quoted.as_str(), weak.as_str(), "*"] {
            let response = get("/openapi/v3/apis/apps/v1", "", &[("if-none-match", tag)]);
            assert_eq!(response.status(), StatusCode::NOT_MODIFIED, "{tag}");
            assert_eq!(header(&response, "etag"), Some(quoted.as_str()));
            assert!(header(&response, "content-type").is_none());
            assert!(header(&response, "last-modified").is_none());
            assert!(body(response).is_empty());
        }
        let response = get(
            "/openapi/v3/apis/apps/v1",
            &format!("hash={hash}"),
            &[("if-none-match", &quoted)],
        );
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(header(&response, "cache-control"), Some("public, immutable"));

        let response = get("/openapi/v3/apis/apps/v1", "", &[("if-none-match", "\"stale\"")]);
        assert_eq!(response.status(), StatusCode::OK);

        // Without If-None-Match, If-Modified-Since decides.
        let future = http_date(Timestamp::now().as_second() + 60);
        let response = get("/openapi/v3/apis/apps/v1", "", &[("if-modified-since", &future)]);
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
        let response = get("/openapi/v3", "", &[("if-modified-since", &future)]);
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
        assert!(header(&response, "last-modified").is_some());
        let past = http_date(0);
        let response = get("/openapi/v3", "", &[("if-modified-since", &past)]);
        assert_eq!(response.status(), StatusCode::OK);

        let response = request(
            &Method::POST,
            "/openapi/v3/apis/apps/v1",
            "",
            &[("if-none-match", &quoted)],
        );
        assert_eq!(response.status(), StatusCode::PRECONDITION_FAILED);
        let response = get("/openapi/v3/apis/apps/v1", "", &[("if-match", "\"stale\"")]);
        assert_eq!(response.status(), StatusCode::PRECONDITION_FAILED);
    }

    #[test]
    fn unknown_documents_are_404() {
        for path in [
            "/openapi/v3/",
            "/openapi/v3/apis/batch/v1beta1",
            "/openapi/v3/apis/storagemigration.k8s.io",
            "/openapi/v3/apis/apps/v1/",
            "/openapi/v3/logs",
        ] {
            let response = get(path, "", &[]);
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
            assert!(body(response).is_empty());
        }
    }

    #[test]
    fn v3_protobuf_and_unknown_types_are_not_acceptable() {
        let pb = "application/com.github.proto-openapi.spec.v3.v1.0+protobuf";
        let response = get("/openapi/v3/api/v1", "", &[("accept", pb)]);
        assert_eq!(response.status(), StatusCode::NOT_ACCEPTABLE);
        let both = format!("{pb}, application/json;q=0.5");
        let response = get("/openapi/v3/api/v1", "", &[("accept", &both)]);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header(&response, "content-type"), Some("application/json"));
        let response = get("/openapi/v3/api/v1", "", &[("accept", "text/html")]);
        assert_eq!(response.status(), StatusCode::NOT_ACCEPTABLE);

        let response = get("/openapi/v2", "", &[("accept", "application/yaml")]);
        assert_eq!(response.status(), StatusCode::NOT_ACCEPTABLE);
        assert_eq!(all(&response, "vary"), ["Accept-Encoding", "Accept"]);
    }

    #[test]
    fn v2_is_protobuf_when_asked_with_the_json_etag() {
        let expected = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";
        let (pb, _) = openapi::v2_protobuf().unwrap();
        let (_, hash) = openapi::v2_document().unwrap();
        // What kubectl sends, the current subtype, and JSON only as a lower preference.
        for accept in [
            "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
            expected,
            "application/json;q=0.5, application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
        ] {
            let response = get("/openapi/v2", "", &[("accept", accept)]);
            assert_eq!(response.status(), StatusCode::OK, "{accept}");
            assert_eq!(header(&response, "content-type"), Some(expected), "{accept}");
            assert_eq!(header(&response, "etag"), Some(format!("\"{hash}\"").as_str()));
            assert_eq!(all(&response, "vary"), ["Accept-Encoding", "Accept"]);
            assert_eq!(body(response), *pb);
        }
        // `*/*` and `application/*` get JSON, tried first.
        for accept in ["*/*", "application/*"] {
            let response = get("/openapi/v2", "", &[("accept", accept)]);
            assert_eq!(header(&response, "content-type"), Some("application/json"));
        }
        let accept = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
        let response = get(
            "/openapi/v2",
            "",
            &[("accept", accept), ("accept-encoding", "gzip")],
        );
        assert_eq!(header(&response, "content-encoding"), Some("gzip"));
        assert_eq!(body(response), openapi::v2_protobuf_gzip());
        let etag = format!("\"{hash}\"");
        let response = get("/openapi/v2", "", &[("accept", accept), ("if-none-match", &etag)]);
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
    }

    #[test]
    fn v2_is_json_with_etag_and_gzip() {
        let response = get("/openapi/v2", "", &[("accept", "application/json")]);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header(&response, "content-type"), Some("application/json"));
        assert_eq!(all(&response, "vary"), ["Accept-Encoding", "Accept"]);
        assert_eq!(header(&response, "cache-control"), Some("no-cache, private"));
        assert!(header(&response, "content-encoding").is_none());
        let etag = header(&response, "etag").unwrap().to_owned();
        let (_, hash) = openapi::v2_document().unwrap();
        assert_eq!(etag, format!("\"{hash}\""));
        let json: serde_json::Value = serde_json::from_slice(&body(response)).unwrap();
        let deployment = &json["definitions"]["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(deployment["x-kubernetes-group-version-kind"][0]["version"], "v1");
        let paths = json["paths"].as_object().unwrap();
        assert!(
            paths
                .keys()
                .all(|p| !p.contains("v1beta") && !p.contains("alpha"))
        );

        let response = get("/openapi/v2", "", &[("if-none-match", &etag)]);
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
        assert!(body(response).is_empty());

        let response = get("/openapi/v2", "", &[("accept-encoding", "gzip")]);
        assert_eq!(header(&response, "content-encoding"), Some("gzip"));
        assert_eq!(body(response), openapi::v2_gzip());
        let response = request(&Method::HEAD, "/openapi/v2", "", &[("accept-encoding", "gzip")]);
        assert!(header(&response, "content-encoding").is_none());
        let len: usize = header(&response, "content-length").unwrap().parse().unwrap();
        assert_eq!(len, openapi::v2_document().unwrap().0.len());
        assert!(body(response).is_empty());
    }

    #[test]
    fn byte_ranges() {
        let response = get("/openapi/v3/api", "", &[("range", "bytes=0-9")]);
        assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
        let (json, _) = openapi::v3_document("api").unwrap().unwrap();
        let range = format!("bytes 0-9/{}", json.len());
        assert_eq!(header(&response, "content-range"), Some(range.as_str()));
        assert_eq!(body(response), json[..10]);
        let response = get("/openapi/v3/api", "", &[("range", "bytes=999999-")]);
        assert_eq!(response.status(), StatusCode::RANGE_NOT_SATISFIABLE);
        let response = get("/openapi/v3/api", "", &[("range", "lines=1-2")]);
        assert_eq!(response.status(), StatusCode::RANGE_NOT_SATISFIABLE);
        let response = get(
            "/openapi/v3/api",
            "",
            &[("range", "bytes=0-9"), ("if-range", "\"stale\"")],
        );
        assert_eq!(response.status(), StatusCode::OK);
    }

    #[test]
    fn accept_clauses_sort_as_goautoneg_does() {
        let clauses = parse_accept("*/*;q=0.8, application/json, text/*, bad, a/b/c");
        let order: Vec<_> = clauses
            .iter()
            .map(|c| format!("{}/{};{}", c.kind, c.subtype, c.q))
            .collect();
        assert_eq!(order, ["application/json;1", "text/*;1", "*/*;0.800000011920929"]);
        assert!(parse_accept("").is_empty());
        assert_eq!(parse_accept("*").len(), 1);
        assert!(accepts_gzip("gzip, deflate"));
        assert!(accepts_gzip("deflate;q=0.5, GZIP;q=0.1"));
        assert!(!accepts_gzip("gzip;q=0"));
        assert!(!accepts_gzip("identity"));
    }

    #[test]
    fn http_dates() {
        assert_eq!(http_date(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");
        for text in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(parse_http_date(text), Some(784111777), "{text}");
        }
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 UTC"), None);
        assert_eq!(parse_http_date("yesterday"), None);
        let leap = Timestamp::from_second(951782400).unwrap(); // 2000-02-29T00:00:00Z
        assert_eq!(expires_in_a_year(leap), "Thu, 01 Mar 2001 00:00:00 UTC");
    }
}
