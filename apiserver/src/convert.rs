//! Conversion between the served form of an object and its stored form, for the resources
//! served in a version or group other than their storage (see [`Conversion`]).

use serde_json::Value;

use crate::registry::{Conversion, Resource};
use crate::status::ApiError;

/// The stored form of an object received through `resource`.
pub fn to_storage(resource: &Resource, object: Value) -> Result<Value, ApiError> {
    let converted = match resource.storage.conversion {
        Conversion::None => return Ok(object),
        Conversion::AutoscalingV1 => rudder_machinery::convert::hpa_v1_to_v2(object),
        Conversion::EventsV1 => rudder_machinery::convert::events_v1_to_core_event(object),
        Conversion::CustomNone => {
            return Ok(match resource.custom() {
                Some(custom) => custom.to_storage(object),
                None => object,
            });
        }
    };
    converted.map_err(|err| ApiError::bad_request(err.to_string()))
}

/// An object read from storage, in the form `resource` serves.
pub fn from_storage(resource: &Resource, object: Value) -> Result<Value, ApiError> {
    let converted = match resource.storage.conversion {
        Conversion::None => return Ok(object),
        Conversion::AutoscalingV1 => rudder_machinery::convert::hpa_v2_to_v1(object),
        Conversion::EventsV1 => rudder_machinery::convert::core_event_to_events_v1(object),
        Conversion::CustomNone => {
            return Ok(match resource.custom() {
                Some(custom) => custom.from_storage(object),
                None => object,
            });
        }
    };
    converted.map_err(ApiError::internal)
}
