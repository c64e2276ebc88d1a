//! Upstream's `intstr.GetScaledValueFromIntOrPercent`: an `IntOrString` as a count, either the
//! int itself or a percentage of a total, with upstream's error messages. Pure: it reads no
//! object and decides nothing about what an absent value means beyond [`scaled_or_zero`].

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::harness::ReconcileError;

/// The int, or the percentage of `total` rounded up or down.
pub(crate) fn scaled_value(value: &IntOrString, total: i32, round_up: bool) -> Result<i32, String> {
    match value {
        IntOrString::Int(n) => Ok(*n),
        IntOrString::String(s) => {
            let Some(number) = s.strip_suffix('%') else {
                return Err(
                    "invalid value for IntOrString: invalid type: string is not a percentage".to_owned(),
                );
            };
            let percent: i64 = number.parse().map_err(|_| {
                format!(
                    "invalid value for IntOrString: invalid value {s:?}: strconv.Atoi: parsing {number:?}: invalid syntax"
                )
            })?;
            let product = percent.saturating_mul(i64::from(total));
            let value = if round_up {
                (product + 99).div_euclid(100)
            } else {
                product.div_euclid(100)
            };
            Ok(i32::try_from(value).unwrap_or(i32::MAX))
        }
    }
}

/// [`scaled_value`] of a field that may be absent (then 0), as a reconcile error.
pub(crate) fn scaled_or_zero(
    value: Option<&IntOrString>,
    total: i32,
    round_up: bool,
) -> Result<i32, ReconcileError> {
    value.map_or(Ok(0), |value| {
        scaled_value(value, total, round_up).map_err(ReconcileError::Invalid)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn percent(text: &str) -> IntOrString {
        IntOrString::String(text.to_owned())
    }

    #[test]
    fn ints_pass_and_percentages_round_as_asked() {
        assert_eq!(scaled_value(&percent("25%"), 10, true), Ok(3));
        assert_eq!(scaled_value(&percent("25%"), 10, false), Ok(2));
        assert_eq!(scaled_value(&percent("25%"), 1, true), Ok(1));
        assert_eq!(scaled_value(&percent("25%"), 1, false), Ok(0));
        assert_eq!(scaled_value(&percent("50%"), 5, true), Ok(3));
        assert_eq!(scaled_value(&percent("0%"), 5, true), Ok(0));
        assert_eq!(scaled_value(&IntOrString::Int(2), 10, true), Ok(2));
        assert_eq!(scaled_or_zero(None, 10, true).ok(), Some(0));
    }

    #[test]
    fn bad_values_get_upstream_messages() {
        assert_eq!(
            scaled_value(&percent("50"), 5, true),
            Err("invalid value for IntOrString: invalid type: string is not a percentage".to_owned())
        );
        assert_eq!(
            scaled_value(&percent("x%"), 5, true),
            Err(
                "invalid value for IntOrString: invalid value \"x%\": strconv.Atoi: parsing \"x\": invalid syntax"
                    .to_owned()
            )
        );
        assert!(scaled_or_zero(Some(&percent("5")), 5, true).is_err());
    }
}
