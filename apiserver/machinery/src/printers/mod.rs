//! Server-side printing: the `Table` columns and cells kube-apiserver returns for
//! `kubectl get`, ported from upstream's printers (k8s.io/kubernetes
//! `pkg/printers/internalversion/printers.go`), the default table convertor
//! (`rest.NewDefaultTableConvertor`: `Name` and `Created At`) and kube-aggregator's APIService
//! table.
//!
//! The printers work on objects as served (JSON of the resource's version). The server always
//! prints wide (upstream's `TableConvertor` passes `Wide: true`), so every row has a cell for
//! every column, priority-1 columns included. The clock is an input: `now` in Unix seconds.
//!
//! Which resources have which table follows upstream's registries: `roles`, `clusterroles`,
//! `limitranges`, `csistoragecapacities` and `customresourcedefinitions` use the default
//! table although a printer exists for some of them; the reviews and `bindings` have none.

mod apps;
pub mod columns;
mod core;
mod format;
mod other;

use serde_json::{Value, json};

pub use format::human_duration;

/// One column of a table (`metav1.TableColumnDefinition`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Column {
    /// Human-readable name (`kubectl` upper-cases it for the header).
    pub name: &'static str,
    /// OpenAPI type: `string`, `integer`, `boolean`, `number`, `date`.
    pub type_: &'static str,
    /// OpenAPI format: `name` for the object's name column, else usually empty.
    pub format: &'static str,
    /// What the column shows.
    pub description: &'static str,
    /// 0 for the default columns, 1 for those `kubectl get -o wide` adds.
    pub priority: i32,
}

impl Column {
    /// The column as a `TableColumnDefinition` JSON object.
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.type_,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }
}

/// A row printer: the object as served and the clock.
type RowFn = fn(&Value, i64) -> Vec<Value>;

/// How one resource is printed.
#[derive(Clone, Copy)]
struct Printer {
    columns: &'static [Column],
    row: RowFn,
}

fn printer(group: &str, resource: &str) -> Option<Printer> {
    use columns as c;
    let (columns, row): (&'static [Column], RowFn) = match (group, resource) {
        ("", "pods") => (c::POD, core::pod),
        ("", "podtemplates") => (c::POD_TEMPLATE, core::pod_template),
        ("", "replicationcontrollers") => (c::REPLICATION_CONTROLLER, core::replication_controller),
        ("", "services") => (c::SERVICE, core::service),
        ("", "endpoints") => (c::ENDPOINTS, core::endpoints),
        ("", "nodes") => (c::NODE, core::node),
        ("", "events") => (c::EVENT, core::event),
        ("events.k8s.io", "events") => (c::EVENT, core::events_v1_event),
        ("", "namespaces") => (c::NAMESPACE, core::namespace),
        ("", "secrets") => (c::SECRET, core::secret),
        ("", "serviceaccounts") => (c::SERVICE_ACCOUNT, core::service_account),
        ("", "persistentvolumes") => (c::PERSISTENT_VOLUME, core::persistent_volume),
        ("", "persistentvolumeclaims") => (c::PERSISTENT_VOLUME_CLAIM, core::persistent_volume_claim),
        ("", "componentstatuses") => (c::COMPONENT_STATUS, core::component_status),
        ("", "configmaps") => (c::CONFIG_MAP, core::config_map),
        ("", "resourcequotas") => (c::RESOURCE_QUOTA, core::resource_quota),
        ("apps", "deployments") => (c::DEPLOYMENT, apps::deployment),
        ("apps", "replicasets") => (c::REPLICA_SET, apps::replica_set),
        ("apps", "daemonsets") => (c::DAEMON_SET, apps::daemon_set),
        ("apps", "statefulsets") => (c::STATEFUL_SET, apps::stateful_set),
        ("apps", "controllerrevisions") => (c::CONTROLLER_REVISION, apps::controller_revision),
        ("batch", "jobs") => (c::JOB, apps::job),
        ("batch", "cronjobs") => (c::CRON_JOB, apps::cron_job),
        ("autoscaling", "horizontalpodautoscalers") => {
            (c::HORIZONTAL_POD_AUTOSCALER, apps::horizontal_pod_autoscaler)
        }
        ("policy", "poddisruptionbudgets") => (c::POD_DISRUPTION_BUDGET, apps::pod_disruption_budget),
        ("networking.k8s.io", "ingresses") => (c::INGRESS, other::ingress),
        ("networking.k8s.io", "ingressclasses") => (c::INGRESS_CLASS, other::ingress_class),
        ("networking.k8s.io", "networkpolicies") => (c::NETWORK_POLICY, other::network_policy),
        ("networking.k8s.io", "servicecidrs") => (c::SERVICE_CIDR, other::service_cidr),
        ("networking.k8s.io", "ipaddresses") => (c::IP_ADDRESS, other::ip_address),
        ("rbac.authorization.k8s.io", "rolebindings") => (c::ROLE_BINDING, other::role_binding),
        ("rbac.authorization.k8s.io", "clusterrolebindings") => {
            (c::CLUSTER_ROLE_BINDING, other::role_binding)
        }
        ("certificates.k8s.io", "certificatesigningrequests") => {
            (c::CERTIFICATE_SIGNING_REQUEST, other::certificate_signing_request)
        }
        ("coordination.k8s.io", "leases") => (c::LEASE, other::lease),
        ("storage.k8s.io", "storageclasses") => (c::STORAGE_CLASS, other::storage_class),
        ("storage.k8s.io", "volumeattributesclasses") => {
            (c::VOLUME_ATTRIBUTES_CLASS, other::volume_attributes_class)
        }
        ("storage.k8s.io", "volumeattachments") => (c::VOLUME_ATTACHMENT, other::volume_attachment),
        ("storage.k8s.io", "csinodes") => (c::CSI_NODE, other::csi_node),
        ("storage.k8s.io", "csidrivers") => (c::CSI_DRIVER, other::csi_driver),
        ("scheduling.k8s.io", "priorityclasses") => (c::PRIORITY_CLASS, other::priority_class),
        ("node.k8s.io", "runtimeclasses") => (c::RUNTIME_CLASS, other::runtime_class),
        ("discovery.k8s.io", "endpointslices") => (c::ENDPOINT_SLICE, other::endpoint_slice),
        ("admissionregistration.k8s.io", "mutatingwebhookconfigurations") => {
            (c::MUTATING_WEBHOOK, other::webhook_configuration)
        }
        ("admissionregistration.k8s.io", "validatingwebhookconfigurations") => {
            (c::VALIDATING_WEBHOOK, other::webhook_configuration)
        }
        ("admissionregistration.k8s.io", "validatingadmissionpolicies") => {
            (c::VALIDATING_ADMISSION_POLICY, other::validating_admission_policy)
        }
        ("admissionregistration.k8s.io", "validatingadmissionpolicybindings") => (
            c::VALIDATING_ADMISSION_POLICY_BINDING,
            other::validating_admission_policy_binding,
        ),
        ("flowcontrol.apiserver.k8s.io", "flowschemas") => (c::FLOW_SCHEMA, other::flow_schema),
        ("flowcontrol.apiserver.k8s.io", "prioritylevelconfigurations") => (
            c::PRIORITY_LEVEL_CONFIGURATION,
            other::priority_level_configuration,
        ),
        ("resource.k8s.io", "deviceclasses") => (c::DEVICE_CLASS, other::name_and_age),
        ("resource.k8s.io", "resourceclaims") => (c::RESOURCE_CLAIM, other::resource_claim),
        ("resource.k8s.io", "resourceclaimtemplates") => (c::RESOURCE_CLAIM_TEMPLATE, other::name_and_age),
        ("resource.k8s.io", "resourceslices") => (c::RESOURCE_SLICE, other::resource_slice),
        ("apiregistration.k8s.io", "apiservices") => (c::API_SERVICE, other::api_service),
        _ => return None,
    };
    Some(Printer { columns, row })
}

/// Whether upstream serves Tables for the resource at all: the reviews, `bindings` and
/// `tokenreviews`-like resources have no table convertor, so `as=Table` is not acceptable.
pub fn has_table(group: &str, resource: &str) -> bool {
    !matches!(
        (group, resource),
        ("", "bindings") | ("authentication.k8s.io", _) | ("authorization.k8s.io", _)
    )
}

/// The column definitions of `group`/`resource` (all of them: priority 0 and 1).
pub fn columns(group: &str, resource: &str) -> &'static [Column] {
    printer(group, resource).map_or(columns::DEFAULT, |p| p.columns)
}

/// The cells of one object of `group`/`resource`, one per column of [`columns`], at `now`
/// (Unix seconds).
pub fn row(group: &str, resource: &str, object: &Value, now: i64) -> Vec<Value> {
    match printer(group, resource) {
        Some(printer) => (printer.row)(object, now),
        None => default_row(object),
    }
}

/// The row conditions upstream attaches (`Completed` for pods that succeeded or failed).
pub fn row_conditions(group: &str, resource: &str, object: &Value) -> Vec<Value> {
    if (group, resource) != ("", "pods") {
        return Vec::new();
    }
    let (reason, message) = match format::str_at(object, &["status", "phase"]) {
        "Succeeded" => ("Succeeded", "The pod has completed successfully."),
        "Failed" => ("Failed", "The pod failed."),
        _ => return Vec::new(),
    };
    vec![json!({"type": "Completed", "status": "True", "reason": reason, "message": message})]
}

/// The default table convertor's cells: the name and the creation time in RFC 3339 (Go's
/// zero time when absent).
fn default_row(object: &Value) -> Vec<Value> {
    let created = format::time_at(object, &["metadata", "creationTimestamp"])
        .and_then(|t| jiff::Timestamp::from_second(format::whole_second(t)).ok())
        .map_or_else(
            || "0001-01-01T00:00:00Z".to_owned(),
            |t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        );
    vec![format::cell(format::name(object)), format::cell(created)]
}

#[cfg(test)]
mod tests;
