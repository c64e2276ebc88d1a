//! The Kubernetes REST API: discovery and every verb of every registered resource, over the
//! generic store. Routing is by the request's [`RequestInfo`]; nothing here names a
//! particular resource except the subresources upstream implements specially.
//!
//! [`RequestInfo`]: crate::request_info::RequestInfo

mod body;
mod discovery;
pub mod negotiation;
mod output;
mod pod_log;
mod pod_stream;
pub mod query;
mod subresources;
pub mod token_request;
mod virtual_resources;
mod watch;

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, StatusCode, header};
use rudder_machinery::schema::Schema;
use rudder_machinery::strategy::UpdateTarget;
use serde_json::Value;
use warp::reply::Response;

use crate::http::ApiRequest;
use crate::object;
use crate::registry::{Backing, Registries, Resource};
use crate::status::ApiError;
use crate::store::{DeleteOptions, Deleted, GenericStore, ListQuery, WatchQuery, WriteOptions};
use negotiation::{Output, PatchFormat, Transform};
use query::Query;
use rudder_machinery::field::{ErrorList, FieldError, Path};
use rudder_machinery::fieldvalidation::Directive;

/// What the API handlers share.
pub struct Api {
    /// Every served resource.
    pub registry: Arc<Registries>,
    /// The generic store.
    pub store: GenericStore,
    /// Authenticates the tokens of TokenReviews.
    pub authn: Arc<crate::authn::Authenticator>,
    /// Signs the tokens of TokenRequests.
    pub tokens: Arc<crate::satoken::TokenIssuer>,
    /// `host:port` clients reach the server at (discovery's `serverAddressByClientCIDRs`).
    pub server_address: String,
    /// How often idle watches that allow bookmarks get one.
    pub bookmark_interval: Duration,
    /// The shortest server-chosen watch timeout (upstream's `--min-request-timeout`).
    pub min_request_timeout: Duration,
    /// Fires when the server shuts down: open watches end.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// Reaches node servers for `pods/log`.
    pub kubelet: Option<crate::kubelet::KubeletClient>,
}

/// Serves a request under `/api` or `/apis`.
pub async fn serve(api: &Api, request: ApiRequest) -> Response {
    let accept = header_str(&request.headers, header::ACCEPT).map(str::to_owned);
    match handle(api, request).await {
        Ok(response) => response,
        Err(error) => error_response(error, accept.as_deref()),
    }
}

/// An error's `Status` in the encoding the client accepts (protobuf and YAML too, as
/// upstream's error writer negotiates); JSON when nothing else is acceptable.
fn error_response(error: ApiError, accept: Option<&str>) -> Response {
    let Ok(negotiated) = negotiation::negotiate_output(accept, false) else {
        return error.into_response();
    };
    if matches!(negotiated.encoding, negotiation::Encoding::Json { .. }) {
        return error.into_response();
    }
    let plain = Output {
        encoding: negotiated.encoding,
        transform: Transform::None,
    };
    let Ok(status) = serde_json::to_value(error.status()) else {
        return error.into_response();
    };
    let mut response = output::respond(error.code, &status, &plain);
    if let Some(seconds) = error.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, http::HeaderValue::from(seconds));
    }
    response
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The checked options of a write.
struct Write {
    /// What the store needs.
    options: WriteOptions,
    /// `fieldValidation`.
    directive: Directive,
    /// `force` (apply only).
    force: bool,
}

/// The subresource a write through `update_target` goes through.
fn subresource_of(update_target: UpdateTarget) -> &'static str {
    match update_target {
        UpdateTarget::Main => "",
        UpdateTarget::Status => "status",
    }
}

/// A request routed to one resource.
struct Target<'a> {
    api: &'a Api,
    resource: Arc<Resource>,
    namespace: String,
    name: String,
    query: Query,
    output: Output,
    headers: HeaderMap,
    user: crate::authn::UserInfo,
    method: http::Method,
    /// The client's connection upgrade (exec, attach).
    upgrade: Option<crate::http::PendingUpgrade>,
}

async fn handle(api: &Api, request: ApiRequest) -> Result<Response, ApiError> {
    let query = Query::parse(&request.query);
    let pretty = query::pretty(&query, header_str(&request.headers, header::USER_AGENT));
    let info = &request.info;
    let registry = api.registry.current();
    if !info.is_resource_request {
        if request.method != http::Method::GET && request.method != http::Method::HEAD {
            return Err(ApiError::method_not_allowed());
        }
        let output = negotiation::negotiate_output(header_str(&request.headers, header::ACCEPT), pretty)?;
        let segments: Vec<&str> = info.path.split('/').filter(|s| !s.is_empty()).collect();
        return discovery::serve(
            &registry,
            &segments,
            &request.headers,
            &output,
            &api.server_address,
        )
        .unwrap_or_else(|| Err(ApiError::path_not_found()));
    }
    let mut output = negotiation::negotiate_output(header_str(&request.headers, header::ACCEPT), pretty)?;
    if let Transform::Table { include, .. } = &mut output.transform {
        *include = negotiation::IncludeObject::parse(query.get("includeObject"))?;
    }
    if !registry.serves(&info.api_group, &info.api_version) {
        return Err(ApiError::path_not_found());
    }
    let resource = registry
        .find(&info.api_group, &info.api_version, &info.resource)
        .ok_or_else(ApiError::path_not_found)?;
    let is_namespace_resource = resource.group.is_empty() && resource.resource == "namespaces";
    if !resource.namespaced && !info.namespace.is_empty() && !is_namespace_resource {
        return Err(ApiError::path_not_found());
    }
    if resource.namespaced && info.namespace.is_empty() {
        // A list or watch carries the name of a `metadata.name=` field selector.
        let listing = info.verb == "list" || info.verb == "watch";
        if !info.name.is_empty() && !listing {
            return Err(ApiError::path_not_found());
        }
        if info.verb != "list" && info.verb != "watch" {
            return Err(ApiError::method_not_allowed());
        }
    }
    let namespace = if resource.namespaced {
        info.namespace.clone()
    } else {
        String::new()
    };
    let target = Target {
        api,
        resource: resource.clone(),
        namespace,
        name: info.name.clone(),
        query,
        output,
        headers: request.headers.clone(),
        user: request.user.clone(),
        method: request.method.clone(),
        upgrade: request.upgrade.clone(),
    };
    let deprecation = resource.custom().and_then(|c| c.deprecation_warning.clone());
    let result = route(&target, info, request.user.clone(), request.body).await;
    match deprecation {
        Some(text) => Ok(with_deprecation(result, &text)),
        None => result,
    }
}

/// The deprecation warning of a custom resource version, before any other warning.
fn with_deprecation(result: Result<Response, ApiError>, text: &str) -> Response {
    let mut response = result.unwrap_or_else(ApiError::into_response);
    let Some(value) = rudder_machinery::fieldvalidation::warning_header(text)
        .and_then(|v| http::HeaderValue::from_str(&v).ok())
    else {
        return response;
    };
    let headers = response.headers_mut();
    let others: Vec<http::HeaderValue> = headers
        .get_all(header::WARNING)
        .iter()
        .filter(|v| **v != value)
        .cloned()
        .collect();
    headers.remove(header::WARNING);
    headers.append(header::WARNING, value);
    for other in others {
        headers.append(header::WARNING, other);
    }
    response
}

/// Dispatches a resource request to its verb or subresource handler.
async fn route(
    target: &Target<'_>,
    info: &crate::request_info::RequestInfo,
    user: crate::authn::UserInfo,
    body: crate::http::BodyStream,
) -> Result<Response, ApiError> {
    let resource = &target.resource;
    if !info.subresource.is_empty() {
        let Some(sub) = resource.subresource(&info.subresource).cloned() else {
            return Err(ApiError::path_not_found());
        };
        if !sub.verbs.contains(&info.verb) {
            return Err(ApiError::method_not_allowed());
        }
        return subresources::serve(target, &sub, &info.verb, body).await;
    }
    if !resource.has_verb(&info.verb) {
        return Err(ApiError::method_not_allowed());
    }
    if matches!(resource.backing, Backing::Virtual) {
        return virtual_resources::serve(target, &info.verb, &user, body).await;
    }
    match info.verb.as_str() {
        "get" => get(target).await,
        "list" => list(target).await,
        "watch" => watch(target).await,
        "create" => create(target, body).await,
        "update" => update(target, UpdateTarget::Main, body).await,
        "patch" => patch(target, UpdateTarget::Main, body).await,
        "delete" => delete(target, body).await,
        "deletecollection" => delete_collection(target, body).await,
        _ => Err(ApiError::method_not_allowed()),
    }
}

impl Target<'_> {
    fn respond(&self, status: StatusCode, object: Value) -> Response {
        output::respond(
            status,
            &output::object(object, &self.resource, &self.output),
            &self.output,
        )
    }

    fn content_type(&self) -> Option<&str> {
        header_str(&self.headers, header::CONTENT_TYPE)
    }

    /// The options of a write through `subresource` ("" for the main resource), checked as
    /// upstream's `Validate{Create,Update,Patch}Options` check them (`kind` names the
    /// options; `patch` is the patch format of a PATCH).
    fn write_options(
        &self,
        kind: &str,
        subresource: &str,
        patch: Option<PatchFormat>,
    ) -> Result<Write, ApiError> {
        let field_manager = self.query.get("fieldManager").unwrap_or("");
        let force = self.query.bool("force")?;
        let mut errors = ErrorList::new();
        match patch {
            Some(PatchFormat::Apply) if field_manager.is_empty() => errors.push(FieldError::required(
                &Path::new("fieldManager"),
                "is required for apply patch",
            )),
            Some(PatchFormat::Apply) | None => {}
            Some(_) if self.query.has("force") => errors.push(FieldError::forbidden(
                &Path::new("force"),
                "may not be specified for non-apply patch",
            )),
            Some(_) => {}
        }
        errors.extend(crate::managed::validate_field_manager(field_manager));
        errors.extend(query::dry_run_errors(&self.query));
        let directive = body::field_validation(&self.query).map_err(|error| errors.push(error));
        let Some(directive) = directive.ok().filter(|_| errors.is_empty()) else {
            return Err(ApiError::invalid("meta.k8s.io", kind, "", &errors));
        };
        let user_agent = header_str(&self.headers, header::USER_AGENT).unwrap_or("");
        Ok(Write {
            options: WriteOptions {
                dry_run: self.query.has("dryRun"),
                user: rudder_machinery::strategy::RequestUser {
                    name: self.user.name.clone(),
                    uid: self.user.uid.clone(),
                    groups: self.user.groups.clone(),
                    extra: self.user.extra.clone(),
                },
                manager: Some(crate::managed::manager_name(field_manager, user_agent)),
                subresource: subresource.to_owned(),
            },
            directive,
            force: force.unwrap_or(false),
        })
    }

    /// Reads and decodes the body as an object of `api_version`/`kind`.
    async fn object_body(
        &self,
        body: crate::http::BodyStream,
        api_version: &str,
        kind: &str,
    ) -> Result<Value, ApiError> {
        let format = negotiation::negotiate_input(self.content_type())?;
        let bytes = body::read(body).await?;
        body::decode_object(&bytes, format, api_version, kind)
    }

    fn list_query(&self, params: &query::ListParams) -> Result<ListQuery, ApiError> {
        Ok(ListQuery {
            resource_version: params.resource_version.clone(),
            resource_version_match: params.resource_version_match.clone(),
            limit: params.limit,
            continue_token: params.continue_token.clone(),
            filter: query::filter(&self.resource, &params.label_selector, &params.field_selector)?,
        })
    }

    fn list_namespace(&self) -> Option<&str> {
        (!self.namespace.is_empty()).then_some(self.namespace.as_str())
    }
}

async fn get(target: &Target<'_>) -> Result<Response, ApiError> {
    let object = target
        .api
        .store
        .get_with_version(
            &target.resource,
            &target.namespace,
            &target.name,
            target.query.get("resourceVersion"),
        )
        .await?;
    Ok(target.respond(StatusCode::OK, object))
}

async fn list(target: &Target<'_>) -> Result<Response, ApiError> {
    let params = query::list_params(&target.query, false)?;
    if params.watch {
        return watch(target).await;
    }
    let result = target
        .api
        .store
        .list(
            &target.resource,
            target.list_namespace(),
            &target.list_query(&params)?,
        )
        .await?;
    let list = output::list(result, &target.resource, &target.output);
    Ok(output::respond(StatusCode::OK, &list, &target.output))
}

async fn watch(target: &Target<'_>) -> Result<Response, ApiError> {
    let params = query::list_params(&target.query, true)?;
    let filter = query::filter(&target.resource, &params.label_selector, &params.field_selector)?;
    let watch_query = WatchQuery {
        resource_version: params.resource_version.clone(),
        filter,
        allow_bookmarks: params.allow_bookmarks,
        send_initial_events: params.send_initial_events,
        bookmark_interval: Some(target.api.bookmark_interval),
    };
    let stream = target
        .api
        .store
        .watch(target.resource.clone(), target.list_namespace(), watch_query)
        .await?;
    let timeout = params
        .timeout
        .unwrap_or_else(|| watch::server_timeout(target.api.min_request_timeout));
    Ok(watch::respond(
        stream,
        target.resource.clone(),
        target.output,
        timeout,
        target.api.shutdown.clone(),
    ))
}

async fn create(target: &Target<'_>, body: crate::http::BodyStream) -> Result<Response, ApiError> {
    let resource = &target.resource;
    let format = negotiation::negotiate_input(target.content_type())?;
    let bytes = body::read(body).await?;
    let Write {
        options, directive, ..
    } = target.write_options("CreateOptions", "", None)?;
    let object = body::decode_object(&bytes, format, &resource.api_version(), &resource.kind)?;
    let mut warnings = body::check_body_fields(resource, directive, &bytes, format, &object)?;
    let created = target
        .api
        .store
        .create(resource, &target.namespace, object, &options)
        .await;
    if let (Ok(created), Some(ops)) = (&created, resource.ops()) {
        warnings.extend(ops.warnings(created));
    }
    with_warnings(
        created.map(|created| target.respond(StatusCode::CREATED, created)),
        &warnings,
    )
}

async fn update(
    target: &Target<'_>,
    update_target: UpdateTarget,
    body: crate::http::BodyStream,
) -> Result<Response, ApiError> {
    let resource = &target.resource;
    let format = negotiation::negotiate_input(target.content_type())?;
    let bytes = body::read(body).await?;
    let Write {
        options, directive, ..
    } = target.write_options("UpdateOptions", subresource_of(update_target), None)?;
    let object = body::decode_object(&bytes, format, &resource.api_version(), &resource.kind)?;
    let mut warnings = body::check_body_fields(resource, directive, &bytes, format, &object)?;
    let result = target
        .api
        .store
        .update(
            resource,
            &target.namespace,
            &target.name,
            object,
            update_target,
            &options,
        )
        .await;
    if let (Ok((updated, created)), Some(ops)) = (&result, resource.ops()) {
        match (created, update_target) {
            (true, _) => warnings.extend(ops.warnings(updated)),
            (false, UpdateTarget::Main) => warnings.extend(ops.warnings_on_update(updated)),
            (false, UpdateTarget::Status) => {}
        }
    }
    let response = result.map(|(updated, created)| {
        let status = if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        target.respond(status, updated)
    });
    with_warnings(response, &warnings)
}

/// Adds upstream's `Warning` headers (`299 - "<text>"`, deduplicated and truncated as its
/// warning recorder does) to a response; an error becomes its response here so that its
/// warnings are sent too.
fn with_warnings(response: Result<Response, ApiError>, warnings: &[String]) -> Result<Response, ApiError> {
    if warnings.is_empty() {
        return response;
    }
    let mut response = response.unwrap_or_else(ApiError::into_response);
    for value in rudder_machinery::fieldvalidation::warning_headers(warnings) {
        if let Ok(value) = http::HeaderValue::from_bytes(value.as_bytes()) {
            response.headers_mut().append(header::WARNING, value);
        }
    }
    Ok(response)
}

/// Reads a PATCH body and returns its format and document.
async fn patch_body(
    target: &Target<'_>,
    body: crate::http::BodyStream,
) -> Result<(PatchFormat, Value), ApiError> {
    let format = negotiation::negotiate_patch(target.content_type())?;
    if format == PatchFormat::Apply {
        return Err(ApiError::unsupported_media_type(
            "application/apply-patch+yaml",
            &negotiation::SUPPORTED_PATCH[..3],
        ));
    }
    let bytes = body::read(body).await?;
    let document: Value =
        serde_json::from_slice(&bytes).map_err(|err| ApiError::bad_request(err.to_string()))?;
    Ok((format, document))
}

/// Applies a patch document to `current` (an object of `resource`'s group/version/kind).
pub(crate) fn apply_patch(
    resource: &Resource,
    kind_group: &str,
    kind_version: &str,
    kind: &str,
    format: PatchFormat,
    document: &Value,
    current: &Value,
) -> Result<Value, ApiError> {
    use rudder_machinery::patch::{self, PatchError};
    let map_error = |err: PatchError| {
        let code = StatusCode::from_u16(err.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        ApiError::new(code, err.reason(), err.message())
    };
    match format {
        PatchFormat::Json => patch::apply_json_patch(current, document).map_err(map_error),
        PatchFormat::Merge => Ok(patch::apply_merge_patch(current, document)),
        PatchFormat::Strategic => {
            let schema = Schema::builtin();
            let definition = schema
                .kind_definition(kind_group, kind_version, kind)
                .ok_or_else(|| {
                    let mut supported = vec!["application/json-patch+json", "application/merge-patch+json"];
                    if resource.custom().is_some() {
                        supported.push("application/apply-patch+yaml");
                    }
                    ApiError::unsupported_media_type("application/strategic-merge-patch+json", &supported)
                })?;
            patch::apply_strategic_merge_patch(current, document, schema, definition).map_err(map_error)
        }
        PatchFormat::Apply => Err(ApiError::unsupported_media_type(
            "application/apply-patch+yaml",
            &negotiation::SUPPORTED_PATCH[..3],
        )),
    }
}

/// Checks that a patch left the object's identity alone.
pub(crate) fn check_patched_identity(patched: &Value, name: &str, namespace: &str) -> Result<(), ApiError> {
    if object::name(patched) != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            object::name(patched)
        )));
    }
    if !namespace.is_empty()
        && !object::namespace(patched).is_empty()
        && object::namespace(patched) != namespace
    {
        return Err(ApiError::bad_request(format!(
            "the namespace of the object ({}) does not match the namespace on the URL ({namespace})",
            object::namespace(patched)
        )));
    }
    Ok(())
}

async fn patch(
    target: &Target<'_>,
    update_target: UpdateTarget,
    body: crate::http::BodyStream,
) -> Result<Response, ApiError> {
    let format = negotiation::negotiate_patch(target.content_type())?;
    let bytes = body::read(body).await?;
    let write = target.write_options("PatchOptions", subresource_of(update_target), Some(format))?;
    if format == PatchFormat::Apply {
        return apply(target, update_target, &bytes, write).await;
    }
    let Write {
        options, directive, ..
    } = write;
    let document: Value =
        serde_json::from_slice(&bytes).map_err(|err| ApiError::bad_request(err.to_string()))?;
    let body_errors = body::patch_body_errors(directive, format, &bytes);
    let resource = &target.resource;
    let mut warnings = Vec::new();
    let patched = target
        .api
        .store
        .update_with(
            resource,
            &target.namespace,
            &target.name,
            update_target,
            &options,
            |current| {
                let patched = apply_patch(
                    resource,
                    &resource.group,
                    &resource.version,
                    &resource.kind,
                    format,
                    &document,
                    current,
                )?;
                check_patched_identity(&patched, &target.name, &target.namespace)?;
                warnings = body::check_patched_fields(
                    resource,
                    directive,
                    format,
                    &body_errors,
                    &document,
                    &patched,
                )?;
                Ok(patched)
            },
        )
        .await;
    if let (Ok(patched), Some(ops), UpdateTarget::Main) = (&patched, resource.ops(), update_target) {
        warnings.extend(ops.warnings_on_update(patched));
    }
    with_warnings(
        patched.map(|patched| target.respond(StatusCode::OK, patched)),
        &warnings,
    )
}

/// Server-side apply (`application/apply-patch+yaml`): the configuration in `bytes` merged
/// into the live object by `fieldManager`, or a new object when none exists (main resource
/// only), as upstream's `applyPatcher`.
async fn apply(
    target: &Target<'_>,
    update_target: UpdateTarget,
    bytes: &[u8],
    write: Write,
) -> Result<Response, ApiError> {
    let resource = &target.resource;
    let Write {
        mut options,
        directive,
        force,
    } = write;
    let field_manager = crate::managed::field_manager(resource, &options.subresource).ok_or_else(|| {
        ApiError::unsupported_media_type("application/apply-patch+yaml", &negotiation::SUPPORTED_PATCH[..3])
    })?;
    let manager = options.manager.take().unwrap_or_default();
    let config = body::decode_apply(bytes)?;
    let strict_error = body::apply_strict_error(directive, bytes);
    let pinned = object::resource_version(&config).is_empty();
    let mut warnings = Vec::new();
    let mut check = |applied: Value| -> Result<Value, ApiError> {
        if let Some(error) = &strict_error {
            if directive == Directive::Strict {
                return Err(ApiError::bad_request(format!(
                    "error strict decoding YAML: {error}"
                )));
            }
            warnings = rudder_machinery::fieldvalidation::strict_warnings(std::slice::from_ref(error));
        }
        check_patched_identity(&applied, &target.name, &target.namespace)?;
        Ok(applied)
    };
    let result = target
        .api
        .store
        .update_with(
            resource,
            &target.namespace,
            &target.name,
            update_target,
            &options,
            |current| {
                let mut applied = field_manager
                    .apply(Some(current), &config, &manager, force, &crate::managed::now())
                    .map_err(|err| crate::managed::api_error(&err))?;
                // Without a resourceVersion in the configuration, a lost race is retried.
                if pinned {
                    object::remove_meta(&mut applied, "resourceVersion");
                }
                check(applied)
            },
        )
        .await;
    let (object, status) = match result {
        Err(err) if err.code == StatusCode::NOT_FOUND && update_target == UpdateTarget::Main => {
            let applied = field_manager
                .apply(None, &config, &manager, force, &crate::managed::now())
                .map_err(|err| crate::managed::api_error(&err))?;
            let mut applied = check(applied)?;
            if !object::uid(&applied).is_empty() {
                return Err(ApiError::conflict(
                    resource.group_resource(),
                    &target.name,
                    &format!(
                        "uid mismatch: the provided object specified uid {}, and no existing object was found",
                        object::uid(&applied)
                    ),
                ));
            }
            object::remove_meta(&mut applied, "resourceVersion");
            let created = target
                .api
                .store
                .create(resource, &target.namespace, applied, &options)
                .await;
            (created, StatusCode::CREATED)
        }
        other => (other, StatusCode::OK),
    };
    if let (Ok(object), Some(ops)) = (&object, resource.ops()) {
        match (status, update_target) {
            (StatusCode::CREATED, _) => warnings.extend(ops.warnings(object)),
            (_, UpdateTarget::Main) => warnings.extend(ops.warnings_on_update(object)),
            (_, UpdateTarget::Status) => {}
        }
    }
    with_warnings(object.map(|object| target.respond(status, object)), &warnings)
}

async fn delete_body(target: &Target<'_>, body: crate::http::BodyStream) -> Result<Option<Value>, ApiError> {
    let bytes = body::read(body).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let format = negotiation::negotiate_input(target.content_type())?;
    body::decode(&bytes, format).map(Some)
}

/// Sent when a batch/v1 Job is deleted without a policy (upstream's Job REST `Delete` and
/// `DeleteCollection`).
const JOB_DELETE_WARNING: &str = "child pods are preserved by default when jobs are deleted; set propagationPolicy=Background to remove them or set propagationPolicy=Orphan to suppress this warning";

/// The warnings of a delete request.
fn delete_warnings(resource: &Resource, options: &DeleteOptions) -> Vec<String> {
    let orphaning_jobs = resource.group == "batch" && resource.version == "v1" && resource.resource == "jobs";
    if orphaning_jobs && options.propagation.is_none() && options.orphan_dependents.is_none() {
        vec![JOB_DELETE_WARNING.to_owned()]
    } else {
        Vec::new()
    }
}

async fn delete(target: &Target<'_>, body: crate::http::BodyStream) -> Result<Response, ApiError> {
    let body = delete_body(target, body).await?;
    let options = query::delete_options(&target.query, body.as_ref())?;
    let warnings = delete_warnings(&target.resource, &options);
    with_warnings(delete_with(target, &options).await, &warnings)
}

async fn delete_with(target: &Target<'_>, options: &DeleteOptions) -> Result<Response, ApiError> {
    let resource = &target.resource;
    let outcome = target
        .api
        .store
        .delete(resource, &target.namespace, &target.name, options)
        .await?;
    match outcome {
        Deleted::Gone(object) if !resource.returns_deleted_object() => {
            let status = output::success_status(
                &resource.group,
                &resource.resource,
                &target.name,
                object::uid(&object),
            );
            Ok(output::respond(StatusCode::OK, &status, &target.output))
        }
        Deleted::Gone(object) => Ok(target.respond(StatusCode::OK, object)),
        Deleted::Pending(object) => {
            let status = if options.orphan_dependents == Some(false) {
                StatusCode::ACCEPTED
            } else {
                StatusCode::OK
            };
            Ok(target.respond(status, object))
        }
    }
}

async fn delete_collection(target: &Target<'_>, body: crate::http::BodyStream) -> Result<Response, ApiError> {
    let body = delete_body(target, body).await?;
    let options = query::delete_options(&target.query, body.as_ref())?;
    let warnings = delete_warnings(&target.resource, &options);
    with_warnings(delete_collection_with(target, &options).await, &warnings)
}

async fn delete_collection_with(target: &Target<'_>, options: &DeleteOptions) -> Result<Response, ApiError> {
    let params = query::list_params(&target.query, false)?;
    let deleted = target
        .api
        .store
        .delete_collection(
            &target.resource,
            target.list_namespace(),
            &target.list_query(&params)?,
            options,
        )
        .await?;
    let result = crate::store::ListResult {
        items: deleted,
        resource_version: target.api.store.storage().current_revision(),
        continue_token: None,
        remaining: None,
    };
    let list = output::list(result, &target.resource, &target.output);
    Ok(output::respond(StatusCode::OK, &list, &target.output))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn errors_are_encoded_as_the_client_accepts() {
        let protobuf = error_response(
            ApiError::path_not_found(),
            Some("application/vnd.kubernetes.protobuf, application/json"),
        );
        assert_eq!(protobuf.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            protobuf.headers()[header::CONTENT_TYPE],
            rudder_machinery::protobuf::MEDIA_TYPE
        );
        let body = http_body_util::BodyExt::collect(protobuf.into_body())
            .await
            .unwrap()
            .to_bytes();
        let (api_version, kind, status) = rudder_machinery::protobuf::decode(&body).unwrap();
        assert_eq!((api_version.as_str(), kind.as_str()), ("v1", "Status"));
        assert_eq!(status["code"], 404);
        assert_eq!(status["reason"], "NotFound");

        let yaml = error_response(ApiError::path_not_found(), Some("application/yaml"));
        assert_eq!(yaml.headers()[header::CONTENT_TYPE], "application/yaml");
        let json = error_response(ApiError::path_not_found(), Some("text/html"));
        assert_eq!(json.headers()[header::CONTENT_TYPE], "application/json");
    }
}
