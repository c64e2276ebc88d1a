//! Client-side apply to server-side apply ownership migration (k8s.io/client-go/util/csaupgrade),
//! what `kubectl apply --server-side` does before its first server-side apply of an object
//! it used to apply client-side: the fields of the client-side manager (an Update manager,
//! `kubectl-client-side-apply`) move to the server-side manager (an Apply manager,
//! `kubectl`), so that fields dropped from the configuration are removed.
//!
//! kubectl sends the result as a JSON patch replacing `/metadata/managedFields` (and testing
//! `/metadata/resourceVersion`); the server keeps client-sent managedFields when they decode
//! (see [`super::FieldManager::update`]).

use serde_json::{Value, json};

use super::fieldmanager::managed_fields_of;
use super::fieldpath::Set;

fn str_field<'v>(entry: &'v Value, name: &str) -> &'v str {
    entry.get(name).and_then(Value::as_str).unwrap_or("")
}

fn decode_set(entry: &Value) -> Result<Set, String> {
    Set::from_value(entry.get("fieldsV1").unwrap_or(&Value::Null))
}

/// `FindFieldsOwners`: the entries of `operation` whose fields include all of `fields`.
pub fn find_fields_owners<'v>(entries: &'v [Value], operation: &str, fields: &Set) -> Vec<&'v Value> {
    entries
        .iter()
        .filter(|e| str_field(e, "operation") == operation)
        .filter(|e| decode_set(e).is_ok_and(|set| fields.difference(&set).is_empty()))
        .collect()
}

/// `UpgradeManagedFields`: the managedFields after moving the fields of each client-side
/// manager in `csa_managers` (Update operations on `subresource`) to `ssa_manager` (an Apply
/// operation). `Ok(None)` when the object has no managedFields or nothing changes.
pub fn upgrade_managed_fields(
    obj: &Value,
    csa_managers: &[&str],
    ssa_manager: &str,
    subresource: &str,
) -> Result<Option<Vec<Value>>, String> {
    let Some(original) = managed_fields_of(obj) else {
        return Ok(None);
    };
    let mut entries = original.clone();
    let mut names: Vec<&str> = csa_managers.to_vec();
    names.sort_unstable();
    names.dedup();
    for csa in names {
        entries = upgraded(entries, csa, ssa_manager, subresource)?;
    }
    if &entries == original {
        Ok(None)
    } else {
        Ok(Some(entries))
    }
}

/// `UpgradeManagedFieldsPatch`: the JSON patch kubectl sends, `None` when nothing changes.
pub fn upgrade_managed_fields_patch(
    obj: &Value,
    csa_managers: &[&str],
    ssa_manager: &str,
    subresource: &str,
) -> Result<Option<Value>, String> {
    let Some(entries) = upgrade_managed_fields(obj, csa_managers, ssa_manager, subresource)? else {
        return Ok(None);
    };
    let resource_version = obj
        .get("metadata")
        .and_then(|m| m.get("resourceVersion"))
        .cloned()
        .unwrap_or(json!(""));
    Ok(Some(json!([
        {"op": "replace", "path": "/metadata/managedFields", "value": entries},
        {"op": "replace", "path": "/metadata/resourceVersion", "value": resource_version},
    ])))
}

fn upgraded(mut entries: Vec<Value>, csa: &str, ssa: &str, subresource: &str) -> Result<Vec<Value>, String> {
    let is_csa = |e: &Value| {
        str_field(e, "manager") == csa
            && str_field(e, "operation") == "Update"
            && str_field(e, "subresource") == subresource
    };
    let target = entries.iter().position(|e| {
        str_field(e, "manager") == ssa
            && str_field(e, "operation") == "Apply"
            && str_field(e, "subresource") == subresource
    });
    let target = match target {
        Some(i) => i,
        None => {
            let Some(i) = entries.iter().position(is_csa) else {
                return Ok(entries);
            };
            if let Some(entry) = entries[i].as_object_mut() {
                entry.insert("operation".into(), json!("Apply"));
                entry.insert("manager".into(), json!(ssa));
            }
            i
        }
    };
    let target_version = str_field(&entries[target], "apiVersion").to_string();
    let mut combined =
        decode_set(&entries[target]).map_err(|e| format!("failed to convert fields to set: {e}"))?;
    if let Some(csa_entry) = entries
        .iter()
        .find(|e| is_csa(e) && str_field(e, "apiVersion") == target_version)
    {
        let set = decode_set(csa_entry).map_err(|e| format!("failed to convert fields to set: {e}"))?;
        combined = combined.union(&set);
    }
    if let Some(entry) = entries[target].as_object_mut() {
        entry.insert("fieldsV1".into(), combined.to_value());
    }
    Ok(entries.into_iter().filter(|e| !is_csa(e)).collect())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// From upstream's `TestUpgradeCSA`: the client-side manager's fields join the
    /// server-side manager's entry, which takes the client-side entry's place if absent.
    #[test]
    fn csa_fields_move_to_the_ssa_manager() {
        let obj = json!({"metadata": {"resourceVersion": "7", "managedFields": [
            {"manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": "v1",
             "time": "2022-08-22T23:08:23Z", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:data": {".": {}, "f:key": {}}}},
            {"manager": "other", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:data": {"f:other": {}}}}
        ]}});
        let upgraded = upgrade_managed_fields(&obj, &["kubectl-client-side-apply"], "kubectl", "")
            .unwrap()
            .unwrap();
        assert_eq!(
            upgraded,
            vec![
                json!({"manager": "kubectl", "operation": "Apply", "apiVersion": "v1",
                       "time": "2022-08-22T23:08:23Z", "fieldsType": "FieldsV1",
                       "fieldsV1": {"f:data": {".": {}, "f:key": {}}}}),
                json!({"manager": "other", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1",
                       "fieldsV1": {"f:data": {"f:other": {}}}}),
            ]
        );
        let patch = upgrade_managed_fields_patch(&obj, &["kubectl-client-side-apply"], "kubectl", "")
            .unwrap()
            .unwrap();
        assert_eq!(
            patch[1],
            json!({"op": "replace", "path": "/metadata/resourceVersion", "value": "7"})
        );

        let with_ssa = json!({"metadata": {"managedFields": [
            {"manager": "kubectl", "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:data": {"f:a": {}}}},
            {"manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:data": {"f:b": {}}}}
        ]}});
        let upgraded = upgrade_managed_fields(&with_ssa, &["kubectl-client-side-apply"], "kubectl", "")
            .unwrap()
            .unwrap();
        assert_eq!(upgraded.len(), 1);
        assert_eq!(upgraded[0]["fieldsV1"], json!({"f:data": {"f:a": {}, "f:b": {}}}));
        assert_eq!(
            upgrade_managed_fields(&json!({"metadata": {}}), &["x"], "kubectl", "").unwrap(),
            None
        );
        let owners = find_fields_owners(
            managed_fields_of(&with_ssa).unwrap(),
            "Apply",
            &Set::from_value(&json!({"f:data": {"f:a": {}}})).unwrap(),
        );
        assert_eq!(owners.len(), 1);
    }
}
