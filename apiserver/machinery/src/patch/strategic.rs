//! Strategic merge patch (`application/strategic-merge-patch+json`): a port of the apply side of
//! `k8s.io/apimachinery/pkg/util/strategicpatch` (`StrategicMergeMapPatch` with
//! `MergeParallelList` and `IgnoreUnmatchedNulls`, as kube-apiserver calls it), driven by the
//! schema facts of [`Schema`] the way upstream is driven by Go struct tags.
//!
//! Supported exactly as upstream applies them: `null` deleting a key; maps merged recursively;
//! lists with patch strategy `merge` merged by merge key (maps) or as a set union (primitives),
//! in upstream's element order; other lists and `replace`-strategy maps replaced;
//! `$patch: replace|delete` in maps and `$patch: replace|delete` list elements (`$patch: merge`
//! fails as upstream fails); `$retainKeys`; `$deleteFromPrimitiveList/<field>`;
//! `$setElementOrder/<field>`. Special scalars (Quantity, IntOrString, Time) are replaced as
//! values since they are JSON scalars; objects without schema properties (RawExtension, JSON)
//! behave like Go structs without JSON fields: their members merge at the top level and nested
//! objects or lists present on both sides fail with upstream's "unable to find api field" error.
//!
//! Upstream iterates Go maps in random order; this port iterates keys in sorted order, which
//! only matters when a patch carries several errors.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::PatchError;
use crate::schema::{Item, Property, Schema, Shape};

const DIRECTIVE_MARKER: &str = "$patch";
const DELETE_DIRECTIVE: &str = "delete";
const REPLACE_DIRECTIVE: &str = "replace";
const MERGE_DIRECTIVE: &str = "merge";
const RETAIN_KEYS_STRATEGY: &str = "retainKeys";
const RETAIN_KEYS_DIRECTIVE: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST_PREFIX: &str = "$deleteFromPrimitiveList";
const SET_ELEMENT_ORDER_PREFIX: &str = "$setElementOrder";

// The sentinel errors of k8s.io/apimachinery/pkg/util/mergepatch that kube-apiserver maps to
// 400 or 422; every other error is answered 500 with its bare message.
const ERR_BAD_JSON_DOC: &str = "invalid JSON document";
const ERR_NO_LIST_OF_LISTS: &str = "lists of lists are not supported";
const ERR_BAD_PATCH_FORMAT_FOR_PRIMITIVE_LIST: &str = "invalid patch format of primitive list";
const ERR_BAD_PATCH_FORMAT_FOR_RETAIN_KEYS: &str = "invalid patch format of retainKeys";
const ERR_BAD_PATCH_FORMAT_FOR_SET_ELEMENT_ORDER_LIST: &str = "invalid patch format of setElementOrder list";
const ERR_UNSUPPORTED_STRATEGIC_MERGE_PATCH_FORMAT: &str = "strategic merge patch format is not supported";

/// Go's type names in `mergepatch.ErrBadArgType` messages.
const GO_MAP: &str = "map[string]interface {}";
const GO_SLICE: &str = "[]interface {}";

/// Where upstream's code panics (a list whose first element is `null`), kube-apiserver's panic
/// filter answers 500 with this plain-text body.
const ERR_PANIC: &str = "This request caused apiserver to panic. Look in the logs for details.";

/// Applies a strategic merge patch to `document`, an object of the OpenAPI definition
/// `definition` (e.g. `io.k8s.api.apps.v1.Deployment`, see [`Schema::kind_definition`]).
///
/// A patch that is not an object is [`PatchError::BadRequest`] with Go's decoding message (a
/// `null` patch changes nothing); an unknown definition (a custom resource) is
/// [`PatchError::BadRequest`] `strategic merge patch format is not supported`. Errors while
/// merging carry upstream's messages and statuses (see [`PatchError`]).
pub fn apply_strategic_merge_patch(
    document: &Value,
    patch: &Value,
    schema: &Schema,
    definition: &str,
) -> Result<Value, PatchError> {
    let patch = match patch {
        Value::Object(patch) => patch.clone(),
        Value::Null => Map::new(),
        other => {
            return Err(PatchError::BadRequest(format!(
                "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                json_kind(other)
            )));
        }
    };
    if schema.definition(definition).is_none() {
        return Err(PatchError::BadRequest(
            ERR_UNSUPPORTED_STRATEGIC_MERGE_PATCH_FORMAT.to_string(),
        ));
    }
    let Value::Object(original) = document else {
        return Err(PatchError::BadRequest(ERR_BAD_JSON_DOC.to_string()));
    };
    let merger = Merger { schema };
    let merged = merger.merge_map(original.clone(), patch, Ty::Struct(definition))?;
    Ok(Value::Object(merged))
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn internal(message: impl Into<String>) -> PatchError {
    PatchError::Internal(message.into())
}

fn bad_request(message: &str) -> PatchError {
    PatchError::BadRequest(message.to_string())
}

/// The Go type a field has, as far as the lookups of `PatchMetaFromStruct` care.
#[derive(Clone, Copy, Debug)]
enum Ty<'s> {
    /// A struct: an OpenAPI definition.
    Struct(&'s str),
    /// A slice of items.
    Slice(&'s Item),
    /// A map from strings to values.
    Map,
    /// A primitive with its OpenAPI type and format.
    Primitive(&'s str, Option<&'s str>),
}

impl Ty<'_> {
    /// `reflect.Kind.String()` of the type.
    fn kind_name(&self) -> &'static str {
        match self {
            Ty::Struct(_) => "struct",
            Ty::Slice(_) => "slice",
            Ty::Map => "map",
            Ty::Primitive(t, f) => match (*t, *f) {
                ("string", _) => "string",
                ("boolean", _) => "bool",
                ("integer", Some("int32")) => "int32",
                ("integer", _) => "int64",
                ("number", Some("float")) => "float32",
                ("number", _) => "float64",
                _ => "interface",
            },
        }
    }
}

/// A field's patch strategies and merge key.
struct PatchMeta<'s> {
    strategies: Vec<&'s str>,
    merge_key: &'s str,
}

impl<'s> PatchMeta<'s> {
    fn of(property: &'s Property) -> Self {
        PatchMeta {
            strategies: property
                .patch_strategy
                .as_deref()
                .map(|s| s.split(',').collect())
                .unwrap_or_default(),
            merge_key: property.merge_key.as_deref().unwrap_or(""),
        }
    }
}

/// The Go kind of a JSON value in unstructured form (integers are `int64`, other numbers
/// `float64`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GoType {
    Nil,
    Bool,
    Int,
    Float,
    String,
    Slice,
    Map,
}

fn go_type(value: &Value) -> GoType {
    match value {
        Value::Null => GoType::Nil,
        Value::Bool(_) => GoType::Bool,
        Value::Number(n) if !n.is_f64() && n.as_i64().is_some() => GoType::Int,
        Value::Number(_) => GoType::Float,
        Value::String(_) => GoType::String,
        Value::Array(_) => GoType::Slice,
        Value::Object(_) => GoType::Map,
    }
}

/// `reflect.TypeOf(v)` as `%s` prints it.
fn go_type_name(value: &Value) -> &'static str {
    match go_type(value) {
        GoType::Nil => "%!s(<nil>)",
        GoType::Bool => "bool",
        GoType::Int => "int64",
        GoType::Float => "float64",
        GoType::String => "string",
        GoType::Slice => GO_SLICE,
        GoType::Map => GO_MAP,
    }
}

/// Go's `==` on two unstructured values (upstream panics comparing two maps or two slices; they
/// compare structurally here).
fn go_eq(a: &Value, b: &Value) -> bool {
    match (go_type(a), go_type(b)) {
        (GoType::Int, GoType::Int) => a.as_i64() == b.as_i64(),
        (GoType::Float, GoType::Float) => a.as_f64() == b.as_f64(),
        (x, y) if x != y => false,
        _ => a == b,
    }
}

/// A hashable key such that `go_eq(a, b)` iff `eq_key(a) == eq_key(b)`.
fn eq_key(value: &Value) -> String {
    match go_type(value) {
        GoType::Int => format!("i{}", value.as_i64().unwrap_or_default()),
        GoType::Float => {
            let f = value.as_f64().unwrap_or_default();
            // 0.0 == -0.0 in Go.
            format!("f{}", if f == 0.0 { 0.0f64.to_bits() } else { f.to_bits() })
        }
        GoType::String => format!("s{}", value.as_str().unwrap_or_default()),
        _ => format!("v{value}"),
    }
}

fn err_bad_arg_type(expected: &str, actual: &Value) -> PatchError {
    internal(format!(
        "expected a {expected}, but received a {}",
        go_type_name(actual)
    ))
}

fn err_no_merge_key(map: &Map<String, Value>, key: &str) -> PatchError {
    internal(format!(
        "map: {} does not contain declared merge key: {key}",
        go_v_map(map)
    ))
}

fn err_bad_patch_type(directive: &Value, map: &Map<String, Value>) -> PatchError {
    internal(format!(
        "unknown patch type: {} in map: {}",
        go_s(directive),
        go_v_map(map)
    ))
}

struct Merger<'s> {
    schema: &'s Schema,
}

impl<'s> Merger<'s> {
    /// `PatchMetaFromStruct.LookupPatchMetadataForStruct`: the type and patch metadata of field
    /// `key` of a struct (exact JSON name first, then case-insensitively, as Go finds fields).
    fn lookup_struct(&self, ty: Ty<'s>, key: &str) -> Result<(Ty<'s>, PatchMeta<'s>), PatchError> {
        let Ty::Struct(name) = ty else {
            return Err(internal(format!(
                "merging an object in json but data type is not struct, instead is: {}",
                ty.kind_name()
            )));
        };
        let property = self.schema.definition(name).and_then(|definition| {
            definition.props.get(key).or_else(|| {
                definition
                    .props
                    .iter()
                    .find(|(field, _)| equal_fold(field, key))
                    .map(|(_, property)| property)
            })
        });
        let Some(property) = property else {
            return Err(internal(format!(
                "unable to find api field in struct {} for the json field {}",
                name.rsplit('.').next().unwrap_or(name),
                go_quote(key)
            )));
        };
        let field_ty = match &property.shape {
            Shape::Object(reference) => Ty::Struct(reference),
            Shape::Array(item) => Ty::Slice(item),
            Shape::Map(_) => Ty::Map,
            Shape::Primitive(t, f) => Ty::Primitive(t, f.as_deref()),
        };
        Ok((field_ty, PatchMeta::of(property)))
    }

    /// `PatchMetaFromStruct.LookupPatchMetadataForSlice`: the element type and patch metadata of
    /// list field `key`. An object field counts as a pointer to a struct, which upstream accepts
    /// as a list of that struct.
    fn lookup_slice(&self, ty: Ty<'s>, key: &str) -> Result<(Ty<'s>, PatchMeta<'s>), PatchError> {
        let (field_ty, meta) = self.lookup_struct(ty, key)?;
        let element = match field_ty {
            Ty::Slice(Item::Ref(reference)) => Ty::Struct(reference),
            Ty::Slice(Item::Primitive(t)) => Ty::Primitive(t, None),
            Ty::Struct(reference) => Ty::Struct(reference),
            Ty::Map | Ty::Primitive(..) => {
                return Err(internal("expected slice or array type, but got: struct"));
            }
        };
        Ok((element, meta))
    }

    /// `mergeMap`.
    fn merge_map(
        &self,
        mut original: Map<String, Value>,
        mut patch: Map<String, Value>,
        ty: Ty<'s>,
    ) -> Result<Map<String, Value>, PatchError> {
        if let Some(directive) = patch.get(DIRECTIVE_MARKER).cloned() {
            return handle_directive_in_merge_map(&directive, patch);
        }
        apply_retain_keys_directive(&mut original, &mut patch)?;
        self.merge_patch_into_original(&mut original, &mut patch, ty)?;

        for (patch_key, patch_value) in patch {
            let (key, is_delete_list) = if patch_key.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX) {
                (extract_key(&patch_key, DELETE_FROM_PRIMITIVE_LIST_PREFIX)?, true)
            } else {
                (patch_key, false)
            };

            // null deletes the key (also `$deleteFromPrimitiveList/<key>: null`, as upstream).
            if patch_value.is_null() {
                original.remove(&key);
                continue;
            }

            let same_type = match original.get(&key) {
                None => false,
                Some(current) => go_type(current) == go_type(&patch_value),
            };
            if !same_type {
                // Missing from the original or of another type: take the patch value.
                if !is_delete_list {
                    let mut value = patch_value;
                    discard_null_values(&mut value);
                    match remove_directives(value) {
                        Some(value) => {
                            original.insert(key, value);
                        }
                        None => {
                            original.remove(&key);
                        }
                    }
                }
                continue;
            }

            let current = original.remove(&key).unwrap_or(Value::Null);
            match (current, patch_value) {
                (Value::Object(current), Value::Object(patch_value)) => {
                    let (sub, meta) = self.lookup_struct(ty, &key)?;
                    let strategy = extract_retain_keys_patch_strategy(&meta.strategies)?;
                    let merged = if strategy == REPLACE_DIRECTIVE {
                        patch_value
                    } else {
                        self.merge_map(current, patch_value, sub)?
                    };
                    original.insert(key, Value::Object(merged));
                }
                (Value::Array(current), Value::Array(patch_value)) => {
                    let (sub, meta) = self.lookup_slice(ty, &key)?;
                    let strategy = extract_retain_keys_patch_strategy(&meta.strategies)?;
                    let merged = self.merge_slice_handler(
                        current,
                        patch_value,
                        sub,
                        strategy,
                        meta.merge_key,
                        is_delete_list,
                    )?;
                    original.insert(key, Value::Array(merged.merged));
                }
                (_, patch_value) => {
                    if let Some(value) = remove_directives(patch_value) {
                        original.insert(key, value);
                    }
                }
            }
        }
        Ok(original)
    }

    /// `mergePatchIntoOriginal`: merges the lists named by `$setElementOrder/<field>` directives
    /// and puts their elements in the order the directive gives.
    fn merge_patch_into_original(
        &self,
        original: &mut Map<String, Value>,
        patch: &mut Map<String, Value>,
        ty: Ty<'s>,
    ) -> Result<(), PatchError> {
        let keys: Vec<String> = patch
            .keys()
            .filter(|k| k.starts_with(SET_ELEMENT_ORDER_PREFIX))
            .cloned()
            .collect();
        for key in keys {
            let Some(set_order) = patch.remove(&key) else {
                continue;
            };
            let set_order = match set_order {
                Value::Array(items) => items,
                other => return Err(err_bad_arg_type(GO_SLICE, &other)),
            };
            let original_key = extract_key(&key, SET_ELEMENT_ORDER_PREFIX)?;
            let original_list = match original.get(&original_key) {
                None => None,
                Some(Value::Array(items)) => Some(items.clone()),
                Some(other) => return Err(err_bad_arg_type(GO_SLICE, other)),
            };
            let patch_list = match patch.get(&original_key) {
                None => None,
                Some(Value::Array(items)) => Some(items.clone()),
                Some(other) => return Err(err_bad_arg_type(GO_SLICE, other)),
            };
            let (sub, meta) = self.lookup_slice(ty, &original_key)?;
            let strategy = extract_retain_keys_patch_strategy(&meta.strategies)?;
            let merge_key = meta.merge_key;
            validate_patch_with_set_order_list(patch_list.as_deref().unwrap_or(&[]), &set_order, merge_key)?;

            let (merged, original_seen) = match (original_list, patch_list.clone()) {
                (Some(current), None) => (current.clone(), current),
                (None, Some(patch_items)) => match remove_directives(Value::Array(patch_items)) {
                    Some(Value::Array(items)) => (items, Vec::new()),
                    _ => continue,
                },
                (Some(current), Some(patch_items)) => {
                    let merged =
                        self.merge_slice_handler(current, patch_items, sub, strategy, merge_key, false)?;
                    (merged.merged, merged.original)
                }
                (None, None) => continue,
            };

            let (patch_items, server_only) = if merge_key.is_empty() {
                partition_primitives(merged, &set_order)
            } else {
                partition_maps(merged, &set_order, merge_key)?
            };
            let kind = slice_element_type(&[&original_seen, patch_list.as_deref().unwrap_or(&[])])?;
            let both = normalize_element_order(
                patch_items,
                server_only,
                &set_order,
                &original_seen,
                merge_key,
                kind,
            )?;
            original.insert(original_key.clone(), Value::Array(both));
            patch.remove(&original_key);
        }
        Ok(())
    }

    /// `mergeSliceHandler`: lists with the `merge` strategy (and deletion lists) merge, others are
    /// replaced by the patch.
    fn merge_slice_handler(
        &self,
        original: Vec<Value>,
        patch: Vec<Value>,
        element: Ty<'s>,
        strategy: &str,
        merge_key: &str,
        is_delete_list: bool,
    ) -> Result<SliceMerge, PatchError> {
        if strategy == MERGE_DIRECTIVE || is_delete_list {
            self.merge_slice(original, patch, element, merge_key, is_delete_list)
        } else {
            Ok(SliceMerge {
                merged: patch,
                original,
            })
        }
    }

    /// `mergeSlice`.
    fn merge_slice(
        &self,
        original: Vec<Value>,
        patch: Vec<Value>,
        element: Ty<'s>,
        merge_key: &str,
        is_delete_list: bool,
    ) -> Result<SliceMerge, PatchError> {
        if original.is_empty() && patch.is_empty() {
            return Ok(SliceMerge {
                merged: original.clone(),
                original,
            });
        }
        let kind = slice_element_type(&[&original, &patch])?;

        let (merged, server_order, patch_order, caller_view) = if kind != GoType::Map {
            if is_delete_list {
                return Ok(SliceMerge {
                    merged: delete_from_slice(&original, &patch),
                    original,
                });
            }
            let mut both = original.clone();
            both.extend(patch.iter().cloned());
            let (merged, backing) = deduplicate_scalars(both);
            // Upstream deduplicates `append(original, patch...)` in place: with nothing appended
            // the backing array is the original's, which the caller then sees reordered.
            let server_order = if patch.is_empty() { backing } else { original };
            (merged, server_order.clone(), patch, server_order)
        } else {
            if merge_key.is_empty() {
                return Err(internal(format!(
                    "cannot merge lists without merge key for {}",
                    element.kind_name()
                )));
            }
            let caller_original = original.clone();
            let special = merge_slice_with_special_elements(original, patch, merge_key)?;
            let merged = self.merge_slice_without_special_elements(
                special.original.clone(),
                &special.patch,
                merge_key,
                element,
            )?;
            let caller_view = special.caller_view(&caller_original, &merged);
            (merged, special.original, special.patch, caller_view)
        };

        let (patch_items, server_only) = if merge_key.is_empty() {
            partition_primitives(merged, &patch_order)
        } else {
            partition_maps(merged, &patch_order, merge_key)?
        };
        let merged = normalize_element_order(
            patch_items,
            server_only,
            &patch_order,
            &server_order,
            merge_key,
            kind,
        )?;
        Ok(SliceMerge {
            merged,
            original: caller_view,
        })
    }

    /// `mergeSliceWithoutSpecialElements`: merges each patch element into the original element
    /// with the same merge key, or appends it.
    fn merge_slice_without_special_elements(
        &self,
        mut original: Vec<Value>,
        patch: &[Value],
        merge_key: &str,
        element: Ty<'s>,
    ) -> Result<Vec<Value>, PatchError> {
        for value in patch {
            let Value::Object(patch_map) = value else {
                return Err(err_bad_arg_type(GO_MAP, value));
            };
            let Some(merge_value) = patch_map.get(merge_key) else {
                return Err(err_no_merge_key(patch_map, merge_key));
            };
            match find_map_in_slice(&original, merge_key, merge_value)? {
                Some(index) => {
                    let current = match original.get_mut(index).map(Value::take) {
                        Some(Value::Object(current)) => current,
                        _ => Map::new(),
                    };
                    let merged = self.merge_map(current, patch_map.clone(), element)?;
                    if let Some(slot) = original.get_mut(index) {
                        *slot = Value::Object(merged);
                    }
                }
                None => original.push(value.clone()),
            }
        }
        Ok(original)
    }
}

/// The result of merging a list, and the original list as upstream's caller sees it afterwards.
struct SliceMerge {
    merged: Vec<Value>,
    original: Vec<Value>,
}

/// `handleDirectiveInMergeMap`.
fn handle_directive_in_merge_map(
    directive: &Value,
    mut patch: Map<String, Value>,
) -> Result<Map<String, Value>, PatchError> {
    if directive == REPLACE_DIRECTIVE {
        patch.remove(DIRECTIVE_MARKER);
        return Ok(patch);
    }
    if directive == DELETE_DIRECTIVE {
        return Ok(Map::new());
    }
    Err(err_bad_patch_type(directive, &patch))
}

/// `applyRetainKeysDirective`: clears the original's keys missing from `$retainKeys`, after
/// checking that the patch only sets retained keys.
fn apply_retain_keys_directive(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> Result<(), PatchError> {
    let Some(retain_keys) = patch.remove(RETAIN_KEYS_DIRECTIVE) else {
        return Ok(());
    };
    let Value::Array(retain_keys) = retain_keys else {
        return Err(bad_request(ERR_BAD_PATCH_FORMAT_FOR_RETAIN_KEYS));
    };
    let retained: HashSet<&str> = retain_keys.iter().filter_map(Value::as_str).collect();
    for (key, value) in patch.iter() {
        if value.is_null()
            || key.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX)
            || key.starts_with(SET_ELEMENT_ORDER_PREFIX)
        {
            continue;
        }
        if !retained.contains(key.as_str()) {
            return Err(bad_request(ERR_BAD_PATCH_FORMAT_FOR_RETAIN_KEYS));
        }
    }
    original.retain(|key, _| retained.contains(key.as_str()));
    Ok(())
}

/// `extractKey`: the field name after `<prefix>/`.
fn extract_key(key: &str, prefix: &str) -> Result<String, PatchError> {
    match key.split_once('/') {
        Some((head, field)) if head == prefix => Ok(field.to_string()),
        _ => Err(match prefix {
            DELETE_FROM_PRIMITIVE_LIST_PREFIX => bad_request(ERR_BAD_PATCH_FORMAT_FOR_PRIMITIVE_LIST),
            SET_ELEMENT_ORDER_PREFIX => bad_request(ERR_BAD_PATCH_FORMAT_FOR_SET_ELEMENT_ORDER_LIST),
            _ => internal(format!(
                "fail to find unknown prefix {} in {key}\n",
                go_quote(prefix)
            )),
        }),
    }
}

/// `extractRetainKeysPatchStrategy`: the strategy besides `retainKeys`.
fn extract_retain_keys_patch_strategy<'a>(strategies: &[&'a str]) -> Result<&'a str, PatchError> {
    let unexpected = || internal(format!("unexpected patch strategy: [{}]", strategies.join(" ")));
    match strategies {
        [] => Ok(""),
        [single] if *single == RETAIN_KEYS_STRATEGY => Ok(""),
        [single] => Ok(single),
        [first, second] if *first == RETAIN_KEYS_STRATEGY => Ok(second),
        [first, second] if *second == RETAIN_KEYS_STRATEGY => Ok(first),
        _ => Err(unexpected()),
    }
}

/// `removeDirectives`: drops maps carrying `$patch` (returning `None` for such a value itself),
/// recursively.
fn remove_directives(value: Value) -> Option<Value> {
    match value {
        Value::Object(map) => {
            if map.contains_key(DIRECTIVE_MARKER) {
                return None;
            }
            Some(Value::Object(
                map.into_iter()
                    .filter_map(|(k, v)| remove_directives(v).map(|v| (k, v)))
                    .collect(),
            ))
        }
        Value::Array(items) => Some(Value::Array(
            items.into_iter().filter_map(remove_directives).collect(),
        )),
        other => Some(other),
    }
}

/// `discardNullValuesFromPatch`: removes null members of maps, recursively (also in lists).
fn discard_null_values(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(discard_null_values);
        }
        Value::Array(items) => items.iter_mut().for_each(discard_null_values),
        _ => {}
    }
}

/// `sliceElementType`: the common Go type of the elements of the lists.
fn slice_element_type(lists: &[&[Value]]) -> Result<GoType, PatchError> {
    let mut previous: Option<GoType> = None;
    for list in lists {
        for value in list.iter() {
            let current = go_type(value);
            match previous {
                None => {
                    if current == GoType::Nil {
                        return Err(internal(ERR_PANIC));
                    }
                    if current == GoType::Slice {
                        return Err(PatchError::Unprocessable(ERR_NO_LIST_OF_LISTS.to_string()));
                    }
                    previous = Some(current);
                }
                Some(previous) if previous != current => {
                    let lists: Vec<String> = lists.iter().map(|l| go_v_list(l)).collect();
                    return Err(internal(format!(
                        "list element types are not identical: [{}]",
                        lists.join(" ")
                    )));
                }
                Some(_) => {}
            }
        }
    }
    previous.ok_or_else(|| internal("no elements in any of the given slices"))
}

/// `deduplicateScalars`, in place as upstream does it (a duplicate is overwritten by the last
/// element): the deduplicated list and the whole backing array afterwards.
fn deduplicate_scalars(mut items: Vec<Value>) -> (Vec<Value>, Vec<Value>) {
    let mut length = items.len() as isize - 1;
    let mut i = 0isize;
    while i < length {
        let mut j = i + 1;
        while j <= length {
            if go_eq(&items[i as usize], &items[j as usize]) {
                items[j as usize] = items[length as usize].clone();
                length -= 1;
                j -= 1;
            }
            j += 1;
        }
        i += 1;
    }
    let deduplicated = items[..(length + 1).max(0) as usize].to_vec();
    (deduplicated, items)
}

/// `deleteFromSlice`: the elements of `current` not in `to_delete`.
fn delete_from_slice(current: &[Value], to_delete: &[Value]) -> Vec<Value> {
    let to_delete: HashSet<String> = to_delete.iter().map(eq_key).collect();
    current
        .iter()
        .filter(|v| !to_delete.contains(&eq_key(v)))
        .cloned()
        .collect()
}

/// `mergeSliceWithSpecialElements`: applies `$patch: delete` elements to the original and
/// `$patch: replace` to the whole list; returns the original and the remaining patch elements.
fn merge_slice_with_special_elements(
    original: Vec<Value>,
    patch: Vec<Value>,
    merge_key: &str,
) -> Result<SpecialElements, PatchError> {
    let mut slots: Vec<usize> = (0..original.len()).collect();
    let mut remaining = original;
    let mut without_special = Vec::new();
    let mut replaced = false;
    for value in patch {
        let directive = value.as_object().and_then(|m| m.get(DIRECTIVE_MARKER));
        let (Some(directive), Value::Object(map)) = (directive, &value) else {
            without_special.push(value);
            continue;
        };
        if directive == DELETE_DIRECTIVE {
            let Some(merge_value) = map.get(merge_key) else {
                return Err(err_no_merge_key(map, merge_key));
            };
            // `deleteMatchingEntries`, which shifts the elements left in the caller's array.
            while let Some(index) = find_map_in_slice(&remaining, merge_key, merge_value)? {
                remaining.remove(index);
                for slot in index..remaining.len() {
                    slots[slot] = slots[slot + 1];
                }
            }
        } else if directive == REPLACE_DIRECTIVE {
            // Keep going to prune the other directive elements.
            replaced = true;
        } else if directive == MERGE_DIRECTIVE {
            return Err(internal("merging lists cannot yet be specified in the patch"));
        } else {
            return Err(err_bad_patch_type(directive, map));
        }
    }
    let remaining_len = remaining.len();
    if replaced {
        return Ok(SpecialElements {
            original: without_special,
            patch: Vec::new(),
            slots,
            remaining: remaining_len,
            replaced,
        });
    }
    Ok(SpecialElements {
        original: remaining,
        patch: without_special,
        slots,
        remaining: remaining_len,
        replaced,
    })
}

/// What `mergeSliceWithSpecialElements` leaves: the list to merge into, the patch elements to
/// merge, and how Go's in-place deletions left the caller's array.
struct SpecialElements {
    /// The original list to merge into (the remaining elements, or the replacement list).
    original: Vec<Value>,
    /// The patch elements without directives.
    patch: Vec<Value>,
    /// For each slot of the caller's array, the index in the caller's list of the element it
    /// holds after the deletions (the last slots keep stale copies, as Go's `append(s[:i],
    /// s[i+1:]...)` leaves them).
    slots: Vec<usize>,
    /// How many elements remained after the deletions.
    remaining: usize,
    /// Whether a `$patch: replace` element replaced the list.
    replaced: bool,
}

impl SpecialElements {
    /// The caller's list as Go's slice aliasing leaves it after the merge: remaining elements
    /// (merged in place), then the first appended patch elements over the freed slots, then
    /// stale copies.
    fn caller_view(&self, caller_original: &[Value], merged: &[Value]) -> Vec<Value> {
        let element = |index: usize| caller_original.get(index).cloned().unwrap_or(Value::Null);
        if self.replaced {
            return self.slots.iter().map(|&index| element(index)).collect();
        }
        let position_of = |index: usize| self.slots[..self.remaining].iter().position(|&i| i == index);
        (0..self.slots.len())
            .map(|slot| match merged.get(slot) {
                Some(value) => value.clone(),
                None => match position_of(self.slots[slot]).and_then(|p| merged.get(p)) {
                    Some(value) => value.clone(),
                    None => element(self.slots[slot]),
                },
            })
            .collect()
    }
}

/// `findMapInSliceBasedOnKeyValue`: the index of the first map whose `key` equals `value`.
fn find_map_in_slice(list: &[Value], key: &str, value: &Value) -> Result<Option<usize>, PatchError> {
    for (index, item) in list.iter().enumerate() {
        let Value::Object(map) = item else {
            return Err(internal(format!("value for key {index} is not a map")));
        };
        if map.get(key).is_some_and(|v| go_eq(v, value)) {
            return Ok(Some(index));
        }
    }
    Ok(None)
}

/// `partitionPrimitivesByPresentInList`: (elements present in `by`, the others).
fn partition_primitives(list: Vec<Value>, by: &[Value]) -> (Vec<Value>, Vec<Value>) {
    let present: HashSet<String> = by.iter().map(eq_key).collect();
    list.into_iter().partition(|v| present.contains(&eq_key(v)))
}

/// `partitionMapsByPresentInList`: (maps whose merge key appears in `by`, the others).
fn partition_maps(
    list: Vec<Value>,
    by: &[Value],
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut present = Vec::with_capacity(list.len());
    let mut absent = Vec::with_capacity(list.len());
    for value in list {
        let Value::Object(map) = &value else {
            return Err(err_bad_arg_type(GO_MAP, &value));
        };
        let Some(merge_value) = map.get(merge_key) else {
            return Err(err_no_merge_key(map, merge_key));
        };
        if find_map_in_slice(by, merge_key, merge_value)?.is_some() {
            present.push(value);
        } else {
            absent.push(value);
        }
    }
    Ok((present, absent))
}

/// `validateMergeKeyInLists`: every element is a map holding the merge key.
fn validate_merge_key_in_lists(merge_key: &str, lists: &[&[Value]]) -> Result<(), PatchError> {
    for list in lists {
        for item in list.iter() {
            let Value::Object(map) = item else {
                return Err(err_bad_arg_type(GO_MAP, item));
            };
            if !map.contains_key(merge_key) {
                return Err(err_no_merge_key(map, merge_key));
            }
        }
    }
    Ok(())
}

/// `extractToDeleteItems`: (elements to keep, `$patch: delete` elements).
fn extract_to_delete_items(list: Vec<Value>) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut keep = Vec::new();
    let mut delete = Vec::new();
    for value in list {
        let Value::Object(map) = &value else {
            return Err(err_bad_arg_type(GO_MAP, &value));
        };
        if map.get(DIRECTIVE_MARKER).is_some_and(|d| d == DELETE_DIRECTIVE) {
            delete.push(value);
        } else {
            keep.push(value);
        }
    }
    Ok((keep, delete))
}

/// `mergeKeyValueEqual`.
fn merge_key_value_equal(left: &Value, right: &Value, merge_key: &str) -> Result<bool, PatchError> {
    if merge_key.is_empty() {
        return Ok(go_eq(left, right));
    }
    let Value::Object(left_map) = left else {
        return Err(err_bad_arg_type(GO_MAP, left));
    };
    let Value::Object(right_map) = right else {
        return Err(err_bad_arg_type(GO_MAP, right));
    };
    let Some(left_value) = left_map.get(merge_key) else {
        return Err(err_no_merge_key(left_map, merge_key));
    };
    let Some(right_value) = right_map.get(merge_key) else {
        return Err(err_no_merge_key(right_map, merge_key));
    };
    Ok(go_eq(left_value, right_value))
}

/// `validatePatchWithSetOrderList`: the patch list's elements appear in the `$setElementOrder`
/// list, in the same relative order.
fn validate_patch_with_set_order_list(
    patch_list: &[Value],
    set_order: &[Value],
    merge_key: &str,
) -> Result<(), PatchError> {
    if set_order.is_empty() || patch_list.is_empty() {
        return Ok(());
    }
    let non_delete = if merge_key.is_empty() {
        patch_list.to_vec()
    } else {
        extract_to_delete_items(patch_list.to_vec())?.0
    };
    let (mut patch_index, mut order_index) = (0, 0);
    while patch_index < non_delete.len() && order_index < set_order.len() {
        let item = &non_delete[patch_index];
        if item.as_object().is_some_and(|m| m.contains_key(DIRECTIVE_MARKER)) {
            patch_index += 1;
            continue;
        }
        if merge_key_value_equal(item, &set_order[order_index], merge_key)? {
            patch_index += 1;
        }
        order_index += 1;
    }
    if patch_index < non_delete.len() && order_index >= set_order.len() {
        return Err(internal(format!(
            "The order in patch list:\n{}\n doesn't match {SET_ELEMENT_ORDER_PREFIX} list:\n{}\n",
            go_v_list(patch_list),
            go_v_list(set_order)
        )));
    }
    Ok(())
}

/// The positions of elements in an ordering list (first occurrence), as upstream's `index`
/// finds them: by merge key for maps, by value otherwise.
struct OrderIndex {
    positions: HashMap<String, usize>,
    by_merge_key: Option<String>,
}

impl OrderIndex {
    fn new(order: &[Value], merge_key: &str, kind: GoType) -> OrderIndex {
        let by_merge_key = (kind == GoType::Map).then(|| merge_key.to_string());
        let mut index = OrderIndex {
            positions: HashMap::new(),
            by_merge_key,
        };
        for (position, item) in order.iter().enumerate() {
            let key = index.key(item);
            index.positions.entry(key).or_insert(position);
        }
        index
    }

    fn key(&self, item: &Value) -> String {
        match &self.by_merge_key {
            Some(merge_key) => match item.as_object().and_then(|m| m.get(merge_key)) {
                Some(value) => eq_key(value),
                None => eq_key(&Value::Null),
            },
            None => eq_key(item),
        }
    }

    fn position(&self, item: &Value) -> Option<usize> {
        self.positions.get(&self.key(item)).copied()
    }
}

/// `normalizeElementOrder`: sorts the patch items by the patch order and the server-only items by
/// the server order, then interleaves them.
fn normalize_element_order(
    patch: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: &str,
    kind: GoType,
) -> Result<Vec<Value>, PatchError> {
    let patch = normalize_slice_order(patch, patch_order, merge_key, kind)?;
    let server_only = normalize_slice_order(server_only, server_order, merge_key, kind)?;
    Ok(merge_sorted_slice(
        server_only,
        patch,
        server_order,
        merge_key,
        kind,
    ))
}

/// `normalizeSliceOrder`: a stable sort of `to_sort` by position in `order` (with upstream's
/// comparator, which calls elements missing from `order` smaller), `$patch: delete` maps last.
fn normalize_slice_order(
    to_sort: Vec<Value>,
    order: &[Value],
    merge_key: &str,
    kind: GoType,
) -> Result<Vec<Value>, PatchError> {
    let (to_sort, to_delete) = if kind == GoType::Map {
        validate_merge_key_in_lists(merge_key, &[&to_sort, order])?;
        extract_to_delete_items(to_sort)?
    } else {
        (to_sort, Vec::new())
    };
    let index = OrderIndex::new(order, merge_key, kind);
    let mut keyed: Vec<(Option<usize>, Value)> =
        to_sort.into_iter().map(|v| (index.position(&v), v)).collect();
    go_slice_stable(&mut keyed, |a, b| match (a.0, b.0) {
        (Some(i), Some(j)) => i < j,
        _ => true,
    });
    let mut sorted: Vec<Value> = keyed.into_iter().map(|(_, v)| v).collect();
    sorted.extend(to_delete);
    Ok(sorted)
}

/// `mergeSortedSlice`: inserts each server-only item into the patch items before the first patch
/// item it precedes in the server order, keeping both relative orders.
fn merge_sorted_slice(
    left: Vec<Value>,
    right: Vec<Value>,
    server_order: &[Value],
    merge_key: &str,
    kind: GoType,
) -> Vec<Value> {
    let index = OrderIndex::new(server_order, merge_key, kind);
    let left_positions: Vec<Option<usize>> = left.iter().map(|v| index.position(v)).collect();
    let right_positions: Vec<Option<usize>> = right.iter().map(|v| index.position(v)).collect();
    let (left_len, right_len) = (left.len(), right.len());
    let mut left: Vec<Option<Value>> = left.into_iter().map(Some).collect();
    let mut right: Vec<Option<Value>> = right.into_iter().map(Some).collect();
    let mut merged = Vec::with_capacity(left_len + right_len);
    let (mut i, mut j) = (0, 0);
    for _ in 0..left_len + right_len {
        let take_left = if i >= left_len && j < right_len {
            false
        } else if j >= right_len && i < left_len {
            true
        } else {
            matches!((left_positions[i], right_positions[j]), (Some(l), Some(r)) if l < r)
        };
        if take_left {
            merged.extend(left[i].take());
            i += 1;
        } else {
            merged.extend(right[j].take());
            j += 1;
        }
    }
    merged
}

/// Go's `sort.SliceStable` (insertion sort on blocks of 20, then SymMerge), reproduced so that
/// upstream's inconsistent comparator orders elements exactly as it does there.
fn go_slice_stable<T>(data: &mut [T], less: impl Fn(&T, &T) -> bool) {
    let n = data.len();
    let less_at = |data: &[T], i: usize, j: usize| less(&data[i], &data[j]);
    let mut block_size = 20;
    let (mut a, mut b) = (0, block_size);
    while b <= n {
        insertion_sort(data, a, b, &less_at);
        a = b;
        b += block_size;
    }
    insertion_sort(data, a, n, &less_at);
    while block_size < n {
        a = 0;
        b = 2 * block_size;
        while b <= n {
            sym_merge(data, a, a + block_size, b, &less_at);
            a = b;
            b += 2 * block_size;
        }
        let m = a + block_size;
        if m < n {
            sym_merge(data, a, m, n, &less_at);
        }
        block_size *= 2;
    }
}

fn insertion_sort<T>(data: &mut [T], a: usize, b: usize, less: &impl Fn(&[T], usize, usize) -> bool) {
    for i in a + 1..b {
        let mut j = i;
        while j > a && less(data, j, j - 1) {
            data.swap(j, j - 1);
            j -= 1;
        }
    }
}

fn sym_merge<T>(data: &mut [T], a: usize, m: usize, b: usize, less: &impl Fn(&[T], usize, usize) -> bool) {
    if m - a == 1 {
        let (mut i, mut j) = (m, b);
        while i < j {
            let h = (i + j) / 2;
            if less(data, h, a) {
                i = h + 1;
            } else {
                j = h;
            }
        }
        let mut k = a;
        while k + 1 < i {
            data.swap(k, k + 1);
            k += 1;
        }
        return;
    }
    if b - m == 1 {
        let (mut i, mut j) = (a, m);
        while i < j {
            let h = (i + j) / 2;
            if !less(data, m, h) {
                i = h + 1;
            } else {
                j = h;
            }
        }
        let mut k = m;
        while k > i {
            data.swap(k, k - 1);
            k -= 1;
        }
        return;
    }
    let mid = (a + b) / 2;
    let n = mid + m;
    let (mut start, mut r) = if m > mid { (n - b, mid) } else { (a, m) };
    let p = n - 1;
    while start < r {
        let c = (start + r) / 2;
        if !less(data, p - c, c) {
            start = c + 1;
        } else {
            r = c;
        }
    }
    let end = n - start;
    if start < m && m < end {
        rotate(data, start, m, end);
    }
    if a < start && start < mid {
        sym_merge(data, a, start, mid, less);
    }
    if mid < end && end < b {
        sym_merge(data, mid, end, b, less);
    }
}

fn rotate<T>(data: &mut [T], a: usize, m: usize, b: usize) {
    let mut i = m - a;
    let mut j = b - m;
    while i != j {
        if i > j {
            swap_range(data, m - i, m, j);
            i -= j;
        } else {
            swap_range(data, m - i, m + j - i, i);
            j -= i;
        }
    }
    swap_range(data, m - i, m, i);
}

fn swap_range<T>(data: &mut [T], a: usize, b: usize, n: usize) {
    for i in 0..n {
        data.swap(a + i, b + i);
    }
}

/// Go's `strings.EqualFold` (simple Unicode case folding).
fn equal_fold(a: &str, b: &str) -> bool {
    let mut a = a.chars();
    let mut b = b.chars();
    loop {
        match (a.next(), b.next()) {
            (None, None) => return true,
            (Some(x), Some(y)) => {
                if x != y && !x.to_lowercase().eq(y.to_lowercase()) && !x.to_uppercase().eq(y.to_uppercase())
                {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// Go's `strconv.Quote` (`%q`).
pub(super) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `%v` of a float64 (`strconv.FormatFloat(f, 'g', -1, 64)`).
fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    // Shortest digits; exponent form when the decimal exponent is below -4 or at least 6.
    let scientific = format!("{f:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if !(-4..6).contains(&exponent) {
        let sign = if exponent < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exponent.abs());
    }
    format!("{f}")
}

/// Go's `%v` of an unstructured value.
fn go_v(value: &Value) -> String {
    match value {
        Value::Null => "<nil>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match go_type(value) {
            GoType::Int => n.to_string(),
            _ => go_float(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => s.clone(),
        Value::Array(items) => go_v_list(items),
        Value::Object(map) => go_v_map(map),
    }
}

fn go_v_list(items: &[Value]) -> String {
    let items: Vec<String> = items.iter().map(go_v).collect();
    format!("[{}]", items.join(" "))
}

fn go_v_map(map: &Map<String, Value>) -> String {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    let entries: Vec<String> = entries
        .into_iter()
        .map(|(k, v)| format!("{k}:{}", go_v(v)))
        .collect();
    format!("map[{}]", entries.join(" "))
}

/// Go's `%s` of an unstructured value (non-strings print as `%!s(type=value)`).
fn go_s(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "%!s(<nil>)".to_string(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(go_s).collect();
            format!("[{}]", items.join(" "))
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let entries: Vec<String> = entries
                .into_iter()
                .map(|(k, v)| format!("{k}:{}", go_s(v)))
                .collect();
            format!("map[{}]", entries.join(" "))
        }
        other => format!("%!s({}={})", go_type_name(other), go_v(other)),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use serde_json::json;

    use super::*;

    /// The `MergeItem` test type of upstream's patch_test.go, as schema facts.
    fn merge_item_schema() -> &'static Schema {
        static SCHEMA: OnceLock<Schema> = OnceLock::new();
        SCHEMA.get_or_init(|| {
            let item = |extra: Value| {
                let mut props = json!({
                    "name": {"t": "p", "p": "string"},
                    "value": {"t": "p", "p": "string"},
                    "other": {"t": "p", "p": "string"},
                    "simpleMap": {"t": "m", "p": "string"},
                    "mergingIntList": {"t": "a", "p": "integer", "ps": "merge"},
                    "mergingList": {"t": "a", "r": "mergeItem", "ps": "merge", "mk": "name"},
                    "nonMergingList": {"t": "a", "r": "mergeItem"},
                });
                if let (Value::Object(props), Value::Object(extra)) = (&mut props, extra) {
                    props.extend(extra);
                }
                json!({ "props": props })
            };
            let schema = json!({
                "definitions": {
                    "mergeItem": item(json!({
                        "nonMergingIntList": {"t": "a", "p": "integer"},
                        "mergeItemPtr": {"t": "o", "r": "mergeItem", "ps": "merge", "mk": "name"},
                        "replacingItem": {
                            "t": "o", "r": "io.k8s.apimachinery.pkg.runtime.RawExtension", "ps": "replace"
                        },
                        "jsonItem": {"t": "o", "r": "jsonItem"},
                        "retainKeysMap": {"t": "o", "r": "retainKeysMergeItem", "ps": "retainKeys"},
                        "retainKeysMergingList": {
                            "t": "a", "r": "mergeItem", "ps": "merge,retainKeys", "mk": "name"
                        },
                    })),
                    "retainKeysMergeItem": item(json!({})),
                    "io.k8s.apimachinery.pkg.runtime.RawExtension": {"props": {}},
                    "jsonItem": {"props": {}},
                },
                "kinds": {},
            });
            Schema::parse(&schema.to_string()).unwrap()
        })
    }

    /// Applies `patch` to `original` (a `MergeItem`) and expects `expected`.
    #[allow(clippy::needless_pass_by_value)]
    fn check(description: &str, original: Value, patch: Value, expected: Value) {
        match apply_strategic_merge_patch(&original, &patch, merge_item_schema(), "mergeItem") {
            Ok(result) => assert_eq!(result, expected, "{description}: patch {patch} to {original}"),
            Err(e) => panic!("{description}: patch {patch} to {original} failed: {e:?}"),
        }
    }

    /// Applies `patch` to `original` (a `MergeItem`) and expects the error `expected`.
    #[allow(clippy::needless_pass_by_value)]
    fn check_err(description: &str, original: Value, patch: Value, expected: PatchError) {
        let result = apply_strategic_merge_patch(&original, &patch, merge_item_schema(), "mergeItem");
        assert_eq!(
            result,
            Err(expected),
            "{description}: patch {patch} to {original}"
        );
    }

    // Cases of upstream's patch_test.go: each applies the expected two-way patch to the
    // original (or the expected three-way patch to the current object) and expects upstream's
    // result, with merging lists in the order upstream's test sorts them.

    #[test]
    fn upstream_create_strategic_merge_patch_test_case_data() {
        check(
            "nil original (three-way)",
            json!({"name": 1, "other": "a"}),
            json!({"value": 1}),
            json!({"name": 1, "value": 1, "other": "a"}),
        );
        check(
            "nil patch (three-way)",
            json!({"name": 1}),
            json!({}),
            json!({"name": 1}),
        );
        check(
            "add field to map (three-way)",
            json!({"name": 1, "other": "a"}),
            json!({"value": 1}),
            json!({"name": 1, "value": 1, "other": "a"}),
        );
        check(
            "add field and delete field from map (three-way)",
            json!({"name": 1, "other": "a"}),
            json!({"name": null, "value": 1}),
            json!({"value": 1, "other": "a"}),
        );
        check(
            "delete field from nested map (three-way)",
            json!({"simpleMap": {"key1": 1, "key2": 1, "other": "a"}}),
            json!({"simpleMap": {"key2": null}}),
            json!({"simpleMap": {"key1": 1, "other": "a"}}),
        );
        check(
            "replace list of scalars (three-way)",
            json!({"nonMergingIntList": [1, 2]}),
            json!({"nonMergingIntList": [2, 3]}),
            json!({"nonMergingIntList": [2, 3]}),
        );
        check(
            "delete all maps from merging list (three-way)",
            json!({"mergingList": [{"name": 1}, {"name": 2}]}),
            json!({"mergingList": [{"name": 1, "$patch": "delete"}, {"name": 2, "$patch": "delete"}]}),
            json!({"mergingList": []}),
        );
        check(
            "merge empty merging lists (three-way)",
            json!({"mergingList": []}),
            json!({}),
            json!({"mergingList": []}),
        );
        check(
            "defined null values should propagate removing original fields (three-way)",
            json!({"name": "original-name", "value": "original-value", "other": "current-other"}),
            json!({"name": "modified-name", "value": null}),
            json!({"name": "modified-name", "other": "current-other"}),
        );
        check(
            "retainKeys map with no change should not be present (three-way)",
            json!({"name": "a", "other": "c", "retainKeysMap": {"name": "foo"}}),
            json!({"value": "b"}),
            json!({"name": "a", "value": "b", "other": "c", "retainKeysMap": {"name": "foo"}}),
        );
    }

    #[test]
    fn upstream_custom_strategic_merge_patch_test_case_data() {
        check(
            "unique scalars when merging lists",
            json!({"mergingIntList": [1, 2]}),
            json!({"mergingIntList": [2, 3]}),
            json!({"mergingIntList": [1, 2, 3]}),
        );
        check(
            "delete map from nested map",
            json!({"simpleMap": {"key1": 1, "key2": 1}}),
            json!({"simpleMap": {"$patch": "delete"}}),
            json!({"simpleMap": {}}),
        );
        check(
            "delete all items from merging list",
            json!({"mergingList": [{"name": 1}, {"name": 2}]}),
            json!({"mergingList": [{"$patch": "replace"}]}),
            json!({"mergingList": []}),
        );
        check(
            "merge empty merging lists",
            json!({"mergingList": []}),
            json!({"mergingList": []}),
            json!({"mergingList": []}),
        );
        check(
            "delete all keys from map",
            json!({"name": 1, "value": 1}),
            json!({"$patch": "replace"}),
            json!({}),
        );
        check(
            "add key and delete all keys from map",
            json!({"name": 1, "value": 1}),
            json!({"other": "a", "$patch": "replace"}),
            json!({"other": "a"}),
        );
        check(
            "delete all duplicate entries in a merging list",
            json!({
                "mergingList": [{"name": 1}, {"name": 1}, {"name": 2, "value": "a"}, {"name": 3}, {"name": 3}]
            }),
            json!({"mergingList": [{"name": 1, "$patch": "delete"}, {"name": 3, "$patch": "delete"}]}),
            json!({"mergingList": [{"name": 2, "value": "a"}]}),
        );
        check(
            "retainKeys map can add a field when no retainKeys directive present",
            json!({"retainKeysMap": {"name": "foo"}}),
            json!({"retainKeysMap": {"value": "bar"}}),
            json!({"retainKeysMap": {"name": "foo", "value": "bar"}}),
        );
        check(
            "retainKeys map can delete a field when no retainKeys directive present",
            json!({"retainKeysMap": {"name": "foo", "value": "a"}}),
            json!({"retainKeysMap": {"value": null}}),
            json!({"retainKeysMap": {"name": "foo"}}),
        );
        check(
            "retainKeys map merge an empty map",
            json!({"retainKeysMap": {"name": "foo", "value": "a"}}),
            json!({"retainKeysMap": {}}),
            json!({"retainKeysMap": {"name": "foo", "value": "a"}}),
        );
        check(
            "retainKeys list can add a field when no retainKeys directive present",
            json!({"retainKeysMergingList": [{"name": "bar"}, {"name": "foo"}]}),
            json!({"retainKeysMergingList": [{"name": "foo", "value": "a"}]}),
            json!({"retainKeysMergingList": [{"name": "bar"}, {"name": "foo", "value": "a"}]}),
        );
        check(
            "retainKeys list can delete a field when no retainKeys directive present",
            json!({"retainKeysMergingList": [{"name": "bar"}, {"name": "foo", "value": "a"}]}),
            json!({"retainKeysMergingList": [{"name": "foo", "value": null}]}),
            json!({"retainKeysMergingList": [{"name": "bar"}, {"name": "foo"}]}),
        );
        check(
            "preserve the order from the patch in a merging list",
            json!({"mergingList": [{"name": 1}, {"name": 2, "value": "b"}, {"name": 3}]}),
            json!({
                "mergingList": [
                    {"name": 1, "value": "a"},
                    {"name": 2, "other": "x"},
                    {"name": 3, "value": "c"}
                ]
            }),
            json!({
                "mergingList": [
                    {"name": 1, "value": "a"},
                    {"name": 2, "value": "b", "other": "x"},
                    {"name": 3, "value": "c"}
                ]
            }),
        );
        check(
            "preserve the order from the patch in a merging list 2",
            json!({"mergingList": [{"name": 1}, {"name": 2, "value": "b"}, {"name": 3}]}),
            json!({"mergingList": [{"name": 1, "value": "a"}, {"name": 3, "value": "c"}]}),
            json!({
                "mergingList": [
                    {"name": 1, "value": "a"},
                    {"name": 2, "value": "b"},
                    {"name": 3, "value": "c"}
                ]
            }),
        );
        check(
            "preserve the order from the patch in a merging int list",
            json!({"mergingIntList": [1, 2, 3]}),
            json!({"mergingIntList": [1, 2, 3]}),
            json!({"mergingIntList": [1, 2, 3]}),
        );
    }

    #[test]
    fn upstream_custom_strategic_merge_patch_raw_test_cases() {
        check(
            "$setElementOrder contains item that is not present in the list to be merged",
            json!({"mergingList": [{"name": 1}, {"name": 3}]}),
            json!({
                "$setElementOrder/mergingList": [{"name": 3}, {"name": 2}, {"name": 1}],
                "mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]
            }),
            json!({"mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]}),
        );
        check(
            "$setElementOrder contains item that is not present in the int list to be merged",
            json!({"mergingIntList": [1, 3]}),
            json!({"$setElementOrder/mergingIntList": [3, 2, 1]}),
            json!({"mergingIntList": [3, 1]}),
        );
        check(
            "$deleteFromPrimitiveList of nonexistent item in primitive list should not add the item to the list",
            json!({"mergingIntList": [1, 2]}),
            json!({"$deleteFromPrimitiveList/mergingIntList": [3]}),
            json!({"mergingIntList": [1, 2]}),
        );
        check(
            "$deleteFromPrimitiveList on empty primitive list should not add the item to the list",
            json!({"mergingIntList": null}),
            json!({"$deleteFromPrimitiveList/mergingIntList": [3]}),
            json!({"mergingIntList": null}),
        );
        check(
            "$deleteFromPrimitiveList on nonexistent primitive list should not add the primitive list",
            json!({"foo": ["bar"]}),
            json!({"$deleteFromPrimitiveList/mergingIntList": [3]}),
            json!({"foo": ["bar"]}),
        );
        check(
            "$deleteFromPrimitiveList should delete item from a list with merge patch strategy",
            json!({"mergingIntList": [1, 2, 3]}),
            json!({"$deleteFromPrimitiveList/mergingIntList": [2]}),
            json!({"mergingIntList": [1, 3]}),
        );
        check(
            "$deleteFromPrimitiveList should delete item from a list without merge patch strategy",
            json!({"nonMergingIntList": [1, 2, 3]}),
            json!({"$deleteFromPrimitiveList/nonMergingIntList": [2]}),
            json!({"nonMergingIntList": [1, 3]}),
        );
    }

    #[test]
    fn upstream_strategic_merge_patch_raw_test_cases() {
        check(
            "nested patch merge with empty list (three-way)",
            json!({"name": "hi", "mergingList": [{"name": "hello2"}]}),
            json!({
                "$setElementOrder/mergingList": [{"name": "hello"}, {"name": "doesntexist"}],
                "mergingList": [{"name": "hello"}]
            }),
            json!({"name": "hi", "mergingList": [{"name": "hello"}, {"name": "hello2"}]}),
        );
        check(
            "delete items in lists of scalars (three-way)",
            json!({"mergingIntList": [1, 2, 3, 4]}),
            json!({
                "$setElementOrder/mergingIntList": [1, 2],
                "$deleteFromPrimitiveList/mergingIntList": [3]
            }),
            json!({"mergingIntList": [1, 2, 4]}),
        );
        check(
            "delete all duplicate items in lists of scalars (three-way)",
            json!({"mergingIntList": [1, 2, 3, 3, 4]}),
            json!({
                "$setElementOrder/mergingIntList": [1, 2],
                "$deleteFromPrimitiveList/mergingIntList": [3]
            }),
            json!({"mergingIntList": [1, 2, 4]}),
        );
        check(
            "add and delete items in lists of scalars (three-way)",
            json!({"mergingIntList": [1, 2, 3, 4]}),
            json!({
                "$setElementOrder/mergingIntList": [1, 2, 4],
                "$deleteFromPrimitiveList/mergingIntList": [3]
            }),
            json!({"mergingIntList": [1, 2, 4]}),
        );
        check(
            "merge lists of maps (three-way)",
            json!({"mergingList": [{"name": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}]}),
            json!({
                "$setElementOrder/mergingList": [{"name": 4}, {"name": 1}, {"name": 2}, {"name": 3}],
                "mergingList": [{"name": 4, "value": 4}, {"name": 3, "value": 3}]
            }),
            json!({
                "mergingList": [
                    {"name": 4, "value": 4},
                    {"name": 1, "other": "a"},
                    {"name": 2, "value": 2, "other": "b"},
                    {"name": 3, "value": 3}
                ]
            }),
        );
        check(
            "add field to map in merging list (three-way)",
            json!({"mergingList": [{"name": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}]}),
            json!({
                "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}],
                "mergingList": [{"name": 1, "value": 1}]
            }),
            json!({
                "mergingList": [{"name": 1, "value": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}]
            }),
        );
        check(
            "replace map field value in merging list (three-way)",
            json!({
                "mergingList": [{"name": 1, "value": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}]
            }),
            json!({
                "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}],
                "mergingList": [{"name": 1, "value": "a"}]
            }),
            json!({
                "mergingList": [
                    {"name": 1, "value": "a", "other": "a"},
                    {"name": 2, "value": 2, "other": "b"}
                ]
            }),
        );
        check(
            "delete map from merging list (three-way)",
            json!({"mergingList": [{"name": 1}, {"name": 2, "other": "b"}]}),
            json!({
                "$setElementOrder/mergingList": [{"name": 2}],
                "mergingList": [{"name": 1, "$patch": "delete"}]
            }),
            json!({"mergingList": [{"name": 2, "other": "b"}]}),
        );
        check(
            "delete missing map from merging list (three-way)",
            json!({"mergingList": [{"name": 2, "other": "b"}]}),
            json!({
                "$setElementOrder/mergingList": [{"name": 2}],
                "mergingList": [{"name": 1, "$patch": "delete"}]
            }),
            json!({"mergingList": [{"name": 2, "other": "b"}]}),
        );
        check(
            "add map and delete map from merging list (three-way)",
            json!({"mergingList": [{"name": 1}, {"name": 2, "other": "b"}, {"name": 4, "other": "c"}]}),
            json!({
                "$setElementOrder/mergingList": [{"name": 2}, {"name": 3}],
                "mergingList": [{"name": 3}, {"name": 1, "$patch": "delete"}]
            }),
            json!({"mergingList": [{"name": 2, "other": "b"}, {"name": 4, "other": "c"}, {"name": 3}]}),
        );
        check(
            "delete field from map in merging list (three-way)",
            json!({
                "mergingList": [{"name": 1, "value": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}]
            }),
            json!({
                "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}],
                "mergingList": [{"name": 1, "value": null}]
            }),
            json!({"mergingList": [{"name": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}]}),
        );
        check(
            "replace non merging list nested in merging list (three-way)",
            json!({
                "mergingList": [
                    {"name": 1, "other": "a", "nonMergingList": [{"name": 1}, {"name": 2, "value": 2}]},
                    {"name": 2, "other": "b"}
                ]
            }),
            json!({
                "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}],
                "mergingList": [{"name": 1, "nonMergingList": [{"name": 1, "value": 1}]}]
            }),
            json!({
                "mergingList": [
                    {"name": 1, "other": "a", "nonMergingList": [{"name": 1, "value": 1}]},
                    {"name": 2, "other": "b"}
                ]
            }),
        );
        check(
            "add field to map in merging list nested in merging list (three-way)",
            json!({
                "mergingList": [
                    {"name": 1, "other": "a", "mergingList": [{"name": 1}, {"name": 2, "value": 2}]},
                    {"name": 2, "other": "b"}
                ]
            }),
            json!({
                "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}],
                "mergingList": [
                    {
                        "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}],
                        "name": 1,
                        "mergingList": [{"name": 1, "value": 1}]
                    }
                ]
            }),
            json!({
                "mergingList": [
                    {
                        "name": 1,
                        "other": "a",
                        "mergingList": [{"name": 1, "value": 1}, {"name": 2, "value": 2}]
                    },
                    {"name": 2, "other": "b"}
                ]
            }),
        );
        check(
            "add map to merging list by pointer (three-way)",
            json!({"mergeItemPtr": [{"name": 1, "other": "a"}, {"name": 3}]}),
            json!({
                "$setElementOrder/mergeItemPtr": [{"name": 1}, {"name": 2}],
                "mergeItemPtr": [{"name": 2}]
            }),
            json!({"mergeItemPtr": [{"name": 1, "other": "a"}, {"name": 2}, {"name": 3}]}),
        );
        check(
            "add duplicate field to map in merging int list (three-way)",
            json!({"mergingIntList": [1, 2, 3]}),
            json!({}),
            json!({"mergingIntList": [1, 2, 3]}),
        );
        check(
            "add an item in a list of primitives and preserve order (three-way)",
            json!({"mergingIntList": [1, 4, 2]}),
            json!({"$setElementOrder/mergingIntList": [3, 1, 2], "mergingIntList": [3]}),
            json!({"mergingIntList": [3, 1, 4, 2]}),
        );
        check(
            "delete an item in a list of primitives and preserve order (three-way)",
            json!({"mergingIntList": [1, 2, 3]}),
            json!({
                "$setElementOrder/mergingIntList": [2, 1],
                "$deleteFromPrimitiveList/mergingIntList": [3]
            }),
            json!({"mergingIntList": [2, 1]}),
        );
        check(
            "add an item in a list and preserve order (three-way)",
            json!({"mergingList": [{"name": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}]}),
            json!({
                "$setElementOrder/mergingList": [{"name": 3}, {"name": 1}, {"name": 2}],
                "mergingList": [{"name": 3, "value": 3}]
            }),
            json!({
                "mergingList": [
                    {"name": 3, "value": 3},
                    {"name": 1, "other": "a"},
                    {"name": 2, "value": 2, "other": "b"}
                ]
            }),
        );
        check(
            "add multiple items in a list and preserve order (three-way)",
            json!({"mergingList": [{"name": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}]}),
            json!({
                "$setElementOrder/mergingList": [{"name": 1}, {"name": 4}, {"name": 2}, {"name": 3}],
                "mergingList": [{"name": 4, "value": 4}, {"name": 3, "value": 3}]
            }),
            json!({
                "mergingList": [
                    {"name": 1, "other": "a"},
                    {"name": 4, "value": 4},
                    {"name": 2, "value": 2, "other": "b"},
                    {"name": 3, "value": 3}
                ]
            }),
        );
        check(
            "delete an item in a list and preserve order (three-way)",
            json!({
                "mergingList": [
                    {"name": 1, "other": "a"},
                    {"name": 2, "value": 2, "other": "b"},
                    {"name": 3, "value": 3}
                ]
            }),
            json!({
                "$setElementOrder/mergingList": [{"name": 2}, {"name": 1}],
                "mergingList": [{"name": 3, "$patch": "delete"}]
            }),
            json!({"mergingList": [{"name": 2, "value": 2, "other": "b"}, {"name": 1, "other": "a"}]}),
        );
        check(
            "change an item in a list and preserve order (three-way)",
            json!({
                "mergingList": [
                    {"name": 1, "other": "a"},
                    {"name": 2, "value": 2, "other": "b"},
                    {"name": 3, "value": 3}
                ]
            }),
            json!({
                "$setElementOrder/mergingList": [{"name": 2}, {"name": 3}, {"name": 1}],
                "mergingList": [{"name": 3, "value": "x"}]
            }),
            json!({
                "mergingList": [
                    {"name": 2, "value": 2, "other": "b"},
                    {"name": 3, "value": "x"},
                    {"name": 1, "other": "a"}
                ]
            }),
        );
        check(
            "add and delete an item in a list and preserve order (three-way)",
            json!({
                "mergingList": [
                    {"name": 1, "other": "a"},
                    {"name": 2, "value": 2, "other": "b"},
                    {"name": 3, "value": 3}
                ]
            }),
            json!({
                "$setElementOrder/mergingList": [{"name": 4}, {"name": 2}, {"name": 1}],
                "mergingList": [{"name": 4, "value": 4}, {"name": 3, "$patch": "delete"}]
            }),
            json!({
                "mergingList": [
                    {"name": 4, "value": 4},
                    {"name": 2, "value": 2, "other": "b"},
                    {"name": 1, "other": "a"}
                ]
            }),
        );
        check(
            "set elements order in a list (three-way)",
            json!({
                "mergingList": [
                    {"name": 1, "other": "a"},
                    {"name": 3, "value": 3},
                    {"name": 4, "value": 4},
                    {"name": 2, "value": 2}
                ]
            }),
            json!({"$setElementOrder/mergingList": [{"name": 4}, {"name": 2}, {"name": 3}, {"name": 1}]}),
            json!({
                "mergingList": [
                    {"name": 4, "value": 4},
                    {"name": 2, "value": 2},
                    {"name": 3, "value": 3},
                    {"name": 1, "other": "a"}
                ]
            }),
        );
        check(
            "set elements order in a list with server-only items (three-way)",
            json!({
                "mergingList": [
                    {"name": 1, "other": "a"},
                    {"name": 3, "value": 3},
                    {"name": 4, "value": 4},
                    {"name": 2, "value": 2},
                    {"name": 9}
                ]
            }),
            json!({"$setElementOrder/mergingList": [{"name": 4}, {"name": 2}, {"name": 3}, {"name": 1}]}),
            json!({
                "mergingList": [
                    {"name": 4, "value": 4},
                    {"name": 2, "value": 2},
                    {"name": 3, "value": 3},
                    {"name": 1, "other": "a"},
                    {"name": 9}
                ]
            }),
        );
        check(
            "set elements order in a list with server-only items 3 (three-way)",
            json!({
                "mergingList": [
                    {"name": 1, "other": "a"},
                    {"name": 2, "value": 2},
                    {"name": 7},
                    {"name": 9},
                    {"name": 8},
                    {"name": 3, "value": 3},
                    {"name": 4, "value": 4}
                ]
            }),
            json!({"$setElementOrder/mergingList": [{"name": 2}, {"name": 1}, {"name": 4}, {"name": 3}]}),
            json!({
                "mergingList": [
                    {"name": 2, "value": 2},
                    {"name": 1, "other": "a"},
                    {"name": 7},
                    {"name": 9},
                    {"name": 8},
                    {"name": 4, "value": 4},
                    {"name": 3, "value": 3}
                ]
            }),
        );
        check(
            "add an item in a int list and preserve order (three-way)",
            json!({"mergingIntList": [1, 2]}),
            json!({"$setElementOrder/mergingIntList": [3, 1, 2], "mergingIntList": [3]}),
            json!({"mergingIntList": [3, 1, 2]}),
        );
        check(
            "delete an item in a int list and preserve order (three-way)",
            json!({"mergingIntList": [1, 2, 3]}),
            json!({
                "$setElementOrder/mergingIntList": [2, 1],
                "$deleteFromPrimitiveList/mergingIntList": [3]
            }),
            json!({"mergingIntList": [2, 1]}),
        );
        check(
            "add and delete an item in a int list and preserve order (three-way)",
            json!({"mergingIntList": [1, 2, 3]}),
            json!({
                "$setElementOrder/mergingIntList": [4, 2, 1],
                "mergingIntList": [4],
                "$deleteFromPrimitiveList/mergingIntList": [3]
            }),
            json!({"mergingIntList": [4, 2, 1]}),
        );
        check(
            "set elements order in a int list (three-way)",
            json!({"mergingIntList": [1, 3, 4, 2]}),
            json!({"$setElementOrder/mergingIntList": [4, 2, 3, 1]}),
            json!({"mergingIntList": [4, 2, 3, 1]}),
        );
        check(
            "set elements order in a int list with server-only items (three-way)",
            json!({"mergingIntList": [1, 3, 4, 2, 9]}),
            json!({"$setElementOrder/mergingIntList": [4, 2, 3, 1]}),
            json!({"mergingIntList": [4, 2, 3, 1, 9]}),
        );
        check(
            "set elements order in a int list with server-only items 3 (three-way)",
            json!({"mergingIntList": [1, 2, 7, 9, 8, 3, 4]}),
            json!({"$setElementOrder/mergingIntList": [2, 1, 4, 3]}),
            json!({"mergingIntList": [2, 1, 7, 9, 8, 4, 3]}),
        );
        check(
            "behavior of set element order for a merging list with duplicate (three-way)",
            json!({
                "mergingList": [
                    {"name": 1},
                    {"name": 2, "value": "dup1"},
                    {"name": 3},
                    {"name": 2, "value": "dup2"},
                    {"name": 4}
                ]
            }),
            json!({
                "$setElementOrder/mergingList": [
                    {"name": 2},
                    {"name": 1},
                    {"name": 4},
                    {"name": 3},
                    {"name": 2}
                ]
            }),
            json!({
                "mergingList": [
                    {"name": 2, "value": "dup1"},
                    {"name": 2, "value": "dup2"},
                    {"name": 1},
                    {"name": 4},
                    {"name": 3}
                ]
            }),
        );
        check(
            "behavior of set element order for a merging int list with duplicate (three-way)",
            json!({"mergingIntList": [1, 2, 3, 2, 4]}),
            json!({"$setElementOrder/mergingIntList": [2, 1, 4, 3, 2]}),
            json!({"mergingIntList": [2, 2, 1, 4, 3]}),
        );
        check(
            "retainKeys map should clear defaulted field (three-way)",
            json!({"retainKeysMap": {"value": "foo"}}),
            json!({"retainKeysMap": {"$retainKeys": ["other"], "other": "bar"}}),
            json!({"retainKeysMap": {"other": "bar"}}),
        );
        check(
            "retainKeys map should clear defaulted field with conflict (discriminated union) (three-way)",
            json!({"retainKeysMap": {"name": "type1", "value": "foo"}}),
            json!({"retainKeysMap": {"$retainKeys": ["name", "other"], "name": "type2", "other": "bar"}}),
            json!({"retainKeysMap": {"name": "type2", "other": "bar"}}),
        );
        check(
            "retainKeys map adds a field and clear a field (three-way)",
            json!({"retainKeysMap": {"name": "foo", "other": "a"}}),
            json!({"retainKeysMap": {"$retainKeys": ["name", "value"], "value": "bar"}}),
            json!({"retainKeysMap": {"name": "foo", "value": "bar"}}),
        );
        check(
            "retainKeys map replaces non-merging list (three-way)",
            json!({
                "retainKeysMap": {
                    "name": "foo",
                    "value": "bar",
                    "nonMergingList": [{"name": "a"}, {"name": "b"}]
                }
            }),
            json!({
                "retainKeysMap": {
                    "$retainKeys": ["name", "nonMergingList", "value"],
                    "nonMergingList": [{"name": "a"}, {"name": "c"}, {"name": "b"}]
                }
            }),
            json!({
                "retainKeysMap": {
                    "name": "foo",
                    "value": "bar",
                    "nonMergingList": [{"name": "a"}, {"name": "c"}, {"name": "b"}]
                }
            }),
        );
        check(
            "retainKeys map adds an item in nested merging int list (three-way)",
            json!({"retainKeysMap": {"name": "foo", "mergingIntList": [1, 2, 3]}}),
            json!({
                "retainKeysMap": {
                    "$setElementOrder/mergingIntList": [1, 2, 4],
                    "$retainKeys": ["mergingIntList", "name"],
                    "mergingIntList": [4]
                }
            }),
            json!({"retainKeysMap": {"name": "foo", "mergingIntList": [1, 2, 4, 3]}}),
        );
        check(
            "retainKeys map changes an item in nested merging list (three-way)",
            json!({
                "retainKeysMap": {
                    "name": "foo",
                    "mergingList": [{"name": "a"}, {"name": "b", "value": "foo"}, {"name": "x"}]
                }
            }),
            json!({
                "retainKeysMap": {
                    "$retainKeys": ["mergingList", "name"],
                    "$setElementOrder/mergingList": [{"name": "a"}, {"name": "b"}],
                    "mergingList": [{"name": "b", "value": "bar"}]
                }
            }),
            json!({
                "retainKeysMap": {
                    "name": "foo",
                    "mergingList": [{"name": "a"}, {"name": "b", "value": "bar"}, {"name": "x"}]
                }
            }),
        );
        check(
            "retainKeys list of maps clears a field (three-way)",
            json!({"retainKeysMergingList": [{"name": "bar"}, {"name": "foo", "value": "a", "other": "x"}]}),
            json!({
                "$setElementOrder/retainKeysMergingList": [{"name": "bar"}, {"name": "foo"}],
                "retainKeysMergingList": [{"$retainKeys": ["name", "value"], "name": "foo"}]
            }),
            json!({"retainKeysMergingList": [{"name": "bar"}, {"name": "foo", "value": "a"}]}),
        );
        check(
            "retainKeys list of maps changes a field and clear a field (three-way)",
            json!({
                "retainKeysMergingList": [{"name": "bar"}, {"name": "foo", "value": "old", "other": "x"}]
            }),
            json!({
                "$setElementOrder/retainKeysMergingList": [{"name": "bar"}, {"name": "foo"}],
                "retainKeysMergingList": [{"$retainKeys": ["name", "value"], "name": "foo", "value": "new"}]
            }),
            json!({"retainKeysMergingList": [{"name": "bar"}, {"name": "foo", "value": "new"}]}),
        );
        check(
            "retainKeys list of maps adds a field and clear a field (three-way)",
            json!({"retainKeysMergingList": [{"name": "bar"}, {"name": "foo", "other": "x"}]}),
            json!({
                "$setElementOrder/retainKeysMergingList": [{"name": "bar"}, {"name": "foo"}],
                "retainKeysMergingList": [{"$retainKeys": ["name", "value"], "name": "foo", "value": "a"}]
            }),
            json!({"retainKeysMergingList": [{"name": "bar"}, {"name": "foo", "value": "a"}]}),
        );
        check(
            "retainKeys list of maps deletes a field and clear a field (three-way)",
            json!({"retainKeysMergingList": [{"name": "bar"}, {"name": "foo", "value": "a", "other": "x"}]}),
            json!({
                "$setElementOrder/retainKeysMergingList": [{"name": "bar"}, {"name": "foo"}],
                "retainKeysMergingList": [{"$retainKeys": ["name"], "name": "foo", "value": null}]
            }),
            json!({"retainKeysMergingList": [{"name": "bar"}, {"name": "foo"}]}),
        );
        check(
            "delete and reorder in one list, reorder in another (three-way)",
            json!({
                "mergingList": [{"name": "a", "value": "a"}, {"name": "b", "value": "b"}],
                "mergeItemPtr": [{"name": "c", "value": "c"}, {"name": "d", "value": "d"}]
            }),
            json!({
                "$setElementOrder/mergingList": [{"name": "b"}],
                "$setElementOrder/mergeItemPtr": [{"name": "d"}, {"name": "c"}],
                "mergingList": [{"$patch": "delete", "name": "a"}]
            }),
            json!({
                "mergingList": [{"name": "b", "value": "b"}],
                "mergeItemPtr": [{"name": "d", "value": "d"}, {"name": "c", "value": "c"}]
            }),
        );
    }

    #[test]
    fn upstream_replace_raw_extension_patch_test_cases() {
        check(
            "replace RawExtension field and merge list (three-way)",
            json!({
                "name": "my-object",
                "value": "some-value",
                "other": "current-other",
                "mergingList": [{"name": 1}, {"name": 3}],
                "replacingItem": {
                    "Some": "Generic",
                    "Yaml": "Inside",
                    "The": "RawExtension",
                    "Field": "Period"
                }
            }),
            json!({
                "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}],
                "mergingList": [{"name": 2}],
                "replacingItem": {"Newly": "Modified", "Yaml": "Inside", "The": "RawExtension"}
            }),
            json!({
                "name": "my-object",
                "value": "some-value",
                "other": "current-other",
                "mergingList": [{"name": 1}, {"name": 2}, {"name": 3}],
                "replacingItem": {"Newly": "Modified", "Yaml": "Inside", "The": "RawExtension"}
            }),
        );
    }

    #[test]
    fn upstream_test_unknown_field() {
        check(
            "no diff (three-way)",
            json!({"array": [1, 2, 3], "complex": {"nested": true}, "name": "foo", "scalar": true}),
            json!({}),
            json!({"array": [1, 2, 3], "complex": {"nested": true}, "name": "foo", "scalar": true}),
        );
        check(
            "discard nulls in nested and adds not nulls (three-way)",
            json!({"array": [1, 2, 3], "complex": {"nested": true}, "name": "foo", "scalar": true}),
            json!({"complex_nullable": {"key": {"keynotnull": "value", "keynull": null}}}),
            json!({
                "array": [1, 2, 3],
                "complex": {"nested": true},
                "complex_nullable": {"key": {"keynotnull": "value"}},
                "name": "foo",
                "scalar": true
            }),
        );
        check(
            "discard if modified all nulls (three-way)",
            json!({}),
            json!({"complex": {"nested": null}}),
            json!({"complex": {}}),
        );
        check(
            "null values in original are preserved (three-way)",
            json!({"thing": null}),
            json!({"nested": {"value": 5}}),
            json!({"nested": {"value": 5}, "thing": null}),
        );
        check(
            "add empty slices (three-way)",
            json!({"array": [1, 2, 3], "complex": {"nested": true}, "name": "foo", "scalar": true}),
            json!({"complex_nullable": []}),
            json!({
                "array": [1, 2, 3],
                "complex": {"nested": true},
                "complex_nullable": [],
                "name": "foo",
                "scalar": true
            }),
        );
        check(
            "filter nulls from nested slices (three-way)",
            json!({}),
            json!({"complex_nullable": [{"inner_one": {"key_one": "foo", "key_two": null}}]}),
            json!({"complex_nullable": [{"inner_one": {"key_one": "foo"}}]}),
        );
        check(
            "not filter nulls from non-associative slice (three-way)",
            json!({}),
            json!({"complex_nullable": ["key1", null, "key2"]}),
            json!({"complex_nullable": ["key1", null, "key2"]}),
        );
        check(
            "added only (three-way)",
            json!({"name": "foo"}),
            json!({"array": [1, 2, 3], "complex": {"nested": true}, "scalar": true}),
            json!({"array": [1, 2, 3], "complex": {"nested": true}, "name": "foo", "scalar": true}),
        );
        check(
            "removed only (three-way)",
            json!({"name": "foo", "scalar": true, "complex": {"nested": true}, "array": [1, 2, 3]}),
            json!({"complex": null, "scalar": null}),
            json!({"array": [1, 2, 3], "name": "foo"}),
        );
    }

    #[test]
    fn upstream_errors() {
        check_err(
            "should check if order in $setElementOrder and patch list match",
            json!({"mergingList": [{"name": 1}, {"name": 3}, {"name": 2}]}),
            json!({
                "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}, {"name": 3}],
                "mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]
            }),
            PatchError::Internal(
                "The order in patch list:\n[map[name:3 value:3] map[name:1 value:1]]\n doesn't match \
                 $setElementOrder list:\n[map[name:1] map[name:2] map[name:3]]\n"
                    .into(),
            ),
        );
        check_err(
            "$setElementOrder contains item that is not present in the int list to be merged",
            json!({"mergingIntList": [1, 3, 2]}),
            json!({"$setElementOrder/mergingIntList": [1, 2, 3], "mergingIntList": [3, 1]}),
            PatchError::Internal(
                "The order in patch list:\n[3 1]\n doesn't match $setElementOrder list:\n[1 2 3]\n".into(),
            ),
        );
        check_err(
            "missing merge key should error out",
            json!({"mergingList": [{"name": 1, "value": "a"}]}),
            json!({"mergingList": [{"value": "b"}]}),
            PatchError::Internal("map: map[value:b] does not contain declared merge key: name".into()),
        );
        check_err(
            "json: nested objects in a struct without JSON fields",
            json!({"name": "foo", "jsonItem": {"nested": {"nested2": {"nested3": {}}}}}),
            json!({"jsonItem": {"nested": {"nested2": {"nested3": {"a": "b"}}}}}),
            PatchError::Internal(
                "unable to find api field in struct jsonItem for the json field \"nested\"".into(),
            ),
        );
    }

    #[test]
    fn directives() {
        // `$patch: replace` in a map: the patch map (directives included) replaces it.
        check(
            "map replace",
            json!({"retainKeysMap": {"name": "a", "value": "b"}}),
            json!({"retainKeysMap": {"$patch": "replace", "other": "c", "simpleMap": {"k": null}}}),
            json!({"retainKeysMap": {"other": "c", "simpleMap": {"k": null}}}),
        );
        // `$patch: delete` in a map empties it; in a map that is not there it adds nothing.
        check(
            "map delete",
            json!({"simpleMap": {"a": "1"}}),
            json!({"simpleMap": {"$patch": "delete"}, "retainKeysMap": {"$patch": "delete"}}),
            json!({"simpleMap": {}}),
        );
        check(
            "top-level delete",
            json!({"name": "a"}),
            json!({"$patch": "delete"}),
            json!({}),
        );
        // `$patch: replace` as a list element: the other elements are the list.
        check(
            "list replace",
            json!({"mergingList": [{"name": "a", "value": "1"}, {"name": "b"}]}),
            json!({"mergingList": [{"name": "c"}, {"$patch": "replace"}, {"name": "a", "$patch": "delete"}]}),
            json!({"mergingList": [{"name": "c"}]}),
        );
        // Deleting by merge key removes every match; unmatched deletions are no-ops.
        check(
            "list delete",
            json!({"mergingList": [{"name": "a"}, {"name": "b"}, {"name": "a", "value": "x"}]}),
            json!({"mergingList": [{"name": "a", "$patch": "delete"}, {"name": "z", "$patch": "delete"}]}),
            json!({"mergingList": [{"name": "b"}]}),
        );
        // A list without merge strategy is replaced as the patch has it.
        check(
            "non-merging list",
            json!({"nonMergingList": [{"name": "a", "value": "1"}]}),
            json!({"nonMergingList": [{"name": "b", "value": null}]}),
            json!({"nonMergingList": [{"name": "b", "value": null}]}),
        );
        // New values lose their nulls and directive maps.
        check(
            "new values",
            json!({}),
            json!({"mergingList": [{"name": "a", "value": null, "mergingList": [{"$patch": "delete", "name": "x"}]}]}),
            json!({"mergingList": [{"name": "a", "mergingList": []}]}),
        );
        // A `replace` strategy field takes the patch as it is.
        check(
            "replace strategy",
            json!({"replacingItem": {"a": 1, "b": {"c": 2}}}),
            json!({"replacingItem": {"b": {"d": 3}, "e": null}}),
            json!({"replacingItem": {"b": {"d": 3}, "e": null}}),
        );
        // `$deleteFromPrimitiveList` removes every occurrence and never adds; null deletes the list.
        check(
            "delete from primitive list",
            json!({"mergingIntList": [1, 2, 1, 3], "nonMergingIntList": [1, 2]}),
            json!({"$deleteFromPrimitiveList/mergingIntList": [1, 4], "$deleteFromPrimitiveList/nonMergingIntList": null}),
            json!({"mergingIntList": [2, 3]}),
        );
        // A merging int list is a set union in upstream's order (patch items where the server
        // order allows).
        check(
            "set union",
            json!({"mergingIntList": [3, 1, 2]}),
            json!({"mergingIntList": [2, 4, 1]}),
            json!({"mergingIntList": [3, 2, 4, 1]}),
        );
        // `$retainKeys` clears the keys it does not list, then the patch merges.
        check(
            "retain keys",
            json!({"retainKeysMap": {"name": "a", "value": "b", "other": "c"}}),
            json!({"retainKeysMap": {"$retainKeys": ["name", "other"], "other": "d"}}),
            json!({"retainKeysMap": {"name": "a", "other": "d"}}),
        );
    }

    #[test]
    fn directive_errors() {
        let bad = |message: &str| PatchError::BadRequest(message.to_string());
        let internal = |message: &str| PatchError::Internal(message.to_string());
        check_err(
            "unknown map directive",
            json!({"simpleMap": {"a": "1"}}),
            json!({"simpleMap": {"$patch": "frobnicate", "b": "2"}}),
            internal("unknown patch type: frobnicate in map: map[$patch:frobnicate b:2]"),
        );
        check_err(
            "non-string directive",
            json!({"simpleMap": {"a": "1"}}),
            json!({"simpleMap": {"$patch": true}}),
            internal("unknown patch type: %!s(bool=true) in map: map[$patch:true]"),
        );
        check_err(
            "merge directive in a map",
            json!({"simpleMap": {"a": "1"}}),
            json!({"simpleMap": {"$patch": "merge"}}),
            internal("unknown patch type: merge in map: map[$patch:merge]"),
        );
        check_err(
            "merge directive in a list",
            json!({"mergingList": [{"name": "a"}]}),
            json!({"mergingList": [{"$patch": "merge"}]}),
            internal("merging lists cannot yet be specified in the patch"),
        );
        check_err(
            "unknown list directive",
            json!({"mergingList": [{"name": "a"}]}),
            json!({"mergingList": [{"name": "a", "$patch": "nope"}]}),
            internal("unknown patch type: nope in map: map[$patch:nope name:a]"),
        );
        check_err(
            "delete without merge key",
            json!({"mergingList": [{"name": "a"}]}),
            json!({"mergingList": [{"$patch": "delete"}]}),
            internal("map: map[$patch:delete] does not contain declared merge key: name"),
        );
        check_err(
            "retainKeys not a list",
            json!({"retainKeysMap": {"name": "a"}}),
            json!({"retainKeysMap": {"$retainKeys": "name"}}),
            bad("invalid patch format of retainKeys"),
        );
        check_err(
            "patched key missing from retainKeys",
            json!({"retainKeysMap": {"name": "a"}}),
            json!({"retainKeysMap": {"$retainKeys": ["name"], "value": "b"}}),
            bad("invalid patch format of retainKeys"),
        );
        check_err(
            "malformed deletion list key",
            json!({"mergingIntList": [1]}),
            json!({"$deleteFromPrimitiveListmergingIntList": [1]}),
            bad("invalid patch format of primitive list"),
        );
        check_err(
            "malformed order key",
            json!({"mergingIntList": [1]}),
            json!({"$setElementOrder": [1]}),
            bad("invalid patch format of setElementOrder list"),
        );
        check_err(
            "order list not a list",
            json!({"mergingIntList": [1]}),
            json!({"$setElementOrder/mergingIntList": {"a": 1}}),
            internal("expected a []interface {}, but received a map[string]interface {}"),
        );
        check_err(
            "list of lists",
            json!({"mergingIntList": [[1]]}),
            json!({"mergingIntList": [[2]]}),
            PatchError::Unprocessable("lists of lists are not supported".into()),
        );
        check_err(
            "null first element (upstream panics)",
            json!({"mergingIntList": []}),
            json!({"mergingIntList": [null, 2]}),
            internal(ERR_PANIC),
        );
        check_err(
            "null element",
            json!({"mergingIntList": [1]}),
            json!({"mergingIntList": [null, 2]}),
            internal("list element types are not identical: [[1] [<nil> 2]]"),
        );
        check_err(
            "mixed element types",
            json!({"mergingIntList": [1]}),
            json!({"mergingIntList": ["a"]}),
            internal("list element types are not identical: [[1] [a]]"),
        );
        check_err(
            "merging a list of maps without merge key",
            json!({"nonMergingList": [{"name": "a"}]}),
            json!({"$deleteFromPrimitiveList/nonMergingList": [{"name": "a"}]}),
            internal("cannot merge lists without merge key for struct"),
        );
        check_err(
            "nested objects of a field the schema does not know",
            json!({"unknown": {"a": {"b": 1}}}),
            json!({"unknown": {"a": {"c": 2}}}),
            internal("unable to find api field in struct mergeItem for the json field \"unknown\""),
        );
        check_err(
            "merging into a map of strings",
            json!({"simpleMap": {"a": {"b": 1}}}),
            json!({"simpleMap": {"a": {"c": 2}}}),
            internal("merging an object in json but data type is not struct, instead is: map"),
        );
    }

    #[test]
    fn patch_documents() {
        let schema = merge_item_schema();
        let original = json!({"name": "a"});
        assert_eq!(
            apply_strategic_merge_patch(&original, &Value::Null, schema, "mergeItem"),
            Ok(original.clone())
        );
        assert_eq!(
            apply_strategic_merge_patch(&original, &json!([1]), schema, "mergeItem"),
            Err(PatchError::BadRequest(
                "json: cannot unmarshal array into Go value of type map[string]interface {}".into()
            ))
        );
        assert_eq!(
            apply_strategic_merge_patch(&original, &json!({}), schema, "example.com.v1.Widget"),
            Err(PatchError::BadRequest(
                "strategic merge patch format is not supported".into()
            ))
        );
        // Keys of unknown fields are set; scalars replace whatever was there.
        check(
            "unknown fields",
            json!({"name": "a", "other": {"x": 1}}),
            json!({"extra": {"b": null, "c": [1]}, "other": "o", "Name": "b"}),
            json!({"name": "a", "other": "o", "extra": {"c": [1]}, "Name": "b"}),
        );
    }

    /// Applies `patch` to `original`, an object of built-in kind `group/version/kind`.
    #[allow(clippy::needless_pass_by_value)]
    fn apply_kind(kind: (&str, &str, &str), original: Value, patch: Value) -> Result<Value, PatchError> {
        let schema = Schema::builtin();
        let definition = schema.kind_definition(kind.0, kind.1, kind.2).unwrap();
        apply_strategic_merge_patch(&original, &patch, schema, definition)
    }

    const DEPLOYMENT: (&str, &str, &str) = ("apps", "v1", "Deployment");
    const POD: (&str, &str, &str) = ("", "v1", "Pod");

    #[test]
    fn containers_merge_by_name_in_kubectl_apply_order() {
        let original = json!({
            "metadata": {"name": "web", "labels": {"app": "web", "tier": "front"}},
            "spec": {
                "replicas": 1,
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                "template": {"spec": {"containers": [
                    {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                     "ports": [{"containerPort": 80, "protocol": "TCP"}],
                     "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}},
                    {"name": "sidecar", "image": "sidecar:1"}
                ]}}
            }
        });
        // What `kubectl apply` sends after adding a container in front, changing an image,
        // an env var, a port and a limit, and dropping a label.
        let patch = json!({
            "metadata": {"labels": {"tier": null}},
            "spec": {
                "replicas": 3,
                "strategy": {"rollingUpdate": {"maxSurge": 1}},
                "template": {"spec": {
                    "$setElementOrder/containers": [{"name": "init"}, {"name": "app"}, {"name": "sidecar"}],
                    "containers": [
                        {"name": "init", "image": "init:1"},
                        {"name": "app", "image": "app:2",
                         "$setElementOrder/env": [{"name": "B"}, {"name": "A"}],
                         "env": [{"name": "B", "value": "3"}],
                         "ports": [{"containerPort": 8080}],
                         "resources": {"limits": {"memory": "2Gi"}}}
                    ]
                }}
            }
        });
        let expected = json!({
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {
                "replicas": 3,
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": "25%"}},
                "template": {"spec": {"containers": [
                    {"name": "init", "image": "init:1"},
                    {"name": "app", "image": "app:2", "env": [{"name": "B", "value": "3"}, {"name": "A", "value": "1"}],
                     "ports": [{"containerPort": 8080}, {"containerPort": 80, "protocol": "TCP"}],
                     "resources": {"limits": {"cpu": "1", "memory": "2Gi"}}},
                    {"name": "sidecar", "image": "sidecar:1"}
                ]}}
            }
        });
        assert_eq!(apply_kind(DEPLOYMENT, original, patch), Ok(expected));
    }

    #[test]
    fn retain_keys_switch_union_members() {
        // Deployment strategy: switching to Recreate drops rollingUpdate.
        let original =
            json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}});
        let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": null}}});
        assert_eq!(
            apply_kind(DEPLOYMENT, original, patch),
            Ok(json!({"spec": {"strategy": {"type": "Recreate"}}}))
        );

        // Pod volumes (merge by name, retainKeys): replacing the volume source.
        let original = json!({"spec": {"volumes": [
            {"name": "data", "emptyDir": {}},
            {"name": "cfg", "configMap": {"name": "cfg"}}
        ]}});
        let patch = json!({"spec": {"volumes": [
            {"name": "data", "$retainKeys": ["hostPath", "name"], "hostPath": {"path": "/data"}}
        ]}});
        assert_eq!(
            apply_kind(POD, original, patch),
            Ok(json!({"spec": {"volumes": [
                {"name": "data", "hostPath": {"path": "/data"}},
                {"name": "cfg", "configMap": {"name": "cfg"}}
            ]}}))
        );
    }

    #[test]
    fn metadata_lists() {
        let original = json!({"metadata": {
            "finalizers": ["a", "b"],
            "ownerReferences": [{"uid": "1", "name": "x", "kind": "ReplicaSet"}]
        }});
        let patch = json!({"metadata": {
            "$deleteFromPrimitiveList/finalizers": ["a"],
            "finalizers": ["c"],
            "ownerReferences": [{"uid": "1", "controller": true}, {"uid": "2", "name": "y"}]
        }});
        // Without `$setElementOrder`, patch items not in the live list come first.
        assert_eq!(
            apply_kind(POD, original, patch),
            Ok(json!({"metadata": {
                "finalizers": ["c", "b"],
                "ownerReferences": [
                    {"uid": "1", "name": "x", "kind": "ReplicaSet", "controller": true},
                    {"uid": "2", "name": "y"}
                ]
            }}))
        );
    }

    #[test]
    fn atomic_fields_are_replaced() {
        // Lists without patch strategy (tolerations, args) are replaced.
        let original = json!({"spec": {
            "tolerations": [{"key": "a", "operator": "Exists"}],
            "containers": [{"name": "c", "args": ["x", "y"]}]
        }});
        let patch = json!({"spec": {
            "tolerations": [{"key": "b", "operator": "Exists"}],
            "containers": [{"name": "c", "args": ["z"]}]
        }});
        assert_eq!(
            apply_kind(POD, original, patch),
            Ok(json!({"spec": {
                "tolerations": [{"key": "b", "operator": "Exists"}],
                "containers": [{"name": "c", "args": ["z"]}]
            }}))
        );

        // A `replace` strategy map (PodDisruptionBudget selector) is replaced.
        let original = json!({"spec": {"selector": {"matchLabels": {"a": "1"}}, "minAvailable": 1}});
        let patch = json!({"spec": {"selector": {"matchLabels": {"b": "2"}}}});
        assert_eq!(
            apply_kind(("policy", "v1", "PodDisruptionBudget"), original, patch),
            Ok(json!({"spec": {"selector": {"matchLabels": {"b": "2"}}, "minAvailable": 1}}))
        );
    }

    #[test]
    fn objects_without_properties_merge_only_at_their_top_level() {
        // ControllerRevision data is a RawExtension: a Go struct without JSON fields.
        let kind = ("apps", "v1", "ControllerRevision");
        let original = json!({"data": {"a": 1, "spec": {"x": 1}}, "revision": 1});
        assert_eq!(
            apply_kind(kind, original.clone(), json!({"data": {"a": 2, "b": {"y": 1}}})),
            Ok(json!({"data": {"a": 2, "b": {"y": 1}, "spec": {"x": 1}}, "revision": 1}))
        );
        assert_eq!(
            apply_kind(kind, original, json!({"data": {"spec": {"y": 2}}})),
            Err(PatchError::Internal(
                "unable to find api field in struct RawExtension for the json field \"spec\"".into()
            ))
        );
        // An unknown field holding objects on both sides.
        assert_eq!(
            apply_kind(
                DEPLOYMENT,
                json!({"spec": {"foo": {"a": 1}}}),
                json!({"spec": {"foo": {"b": 2}}})
            ),
            Err(PatchError::Internal(
                "unable to find api field in struct DeploymentSpec for the json field \"foo\"".into()
            ))
        );
    }

    #[test]
    fn go_formatting() {
        assert_eq!(
            go_v(&json!({"b": [1, 2.5, null], "a": {"c": true}, "s": "x y"})),
            "map[a:map[c:true] b:[1 2.5 <nil>] s:x y]"
        );
        assert_eq!(go_v(&json!(1e6)), "1e+06");
        assert_eq!(go_v(&json!(123456.0)), "123456");
        assert_eq!(go_v(&json!(0.00001)), "1e-05");
        assert_eq!(go_v(&json!(0.0001)), "0.0001");
        assert_eq!(go_v(&json!(1.5e300)), "1.5e+300");
        assert_eq!(go_s(&json!(5)), "%!s(int64=5)");
        assert_eq!(go_s(&json!(1.5)), "%!s(float64=1.5)");
        assert_eq!(go_s(&Value::Null), "%!s(<nil>)");
        assert_eq!(go_s(&json!({"a": 1, "b": "c"})), "map[a:%!s(int64=1) b:c]");
        assert_eq!(go_quote("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\x01\"");
        assert!(equal_fold("containerPort", "ContainerPORT"));
        assert!(!equal_fold("name", "names"));
    }

    #[test]
    fn go_stable_sort_matches_upstream_with_its_inconsistent_comparator() {
        // Elements missing from the order (None) compare "less" than anything, both ways.
        let mut items: Vec<(Option<usize>, char)> = vec![
            (Some(2), 'a'),
            (None, 'b'),
            (Some(0), 'c'),
            (Some(1), 'd'),
            (None, 'e'),
        ];
        go_slice_stable(&mut items, |a, b| match (a.0, b.0) {
            (Some(i), Some(j)) => i < j,
            _ => true,
        });
        let order: String = items.iter().map(|(_, c)| c).collect();
        assert_eq!(order, "ecdba");

        // A consistent comparator over more than one block sorts stably.
        let mut numbers: Vec<(u32, usize)> = (0..100).map(|i| ((i * 7919) % 13, i as usize)).collect();
        go_slice_stable(&mut numbers, |a, b| a.0 < b.0);
        assert!(
            numbers
                .windows(2)
                .all(|w| w[0].0 < w[1].0 || (w[0].0 == w[1].0 && w[0].1 < w[1].1))
        );
    }
}
