//! Resource quantities (`500m`, `1Gi`, `1e3`), as k8s.io/apimachinery/pkg/api/resource parses,
//! compares and prints them.
//!
//! Upstream decodes every quantity into an exact decimal and encodes it back in canonical
//! form (`1.5` → `1500m`, `1024Mi` → `1Gi`, `1000m` → `1`), except that a string already in a
//! simple canonical-looking form is kept as written. [`canonicalize_quantity`] performs that
//! round trip on a k8s-openapi `Quantity`, and [`set_defaults_resource_list`] is upstream's
//! `SetDefaults_ResourceList` (round up to milli units, then canonicalize). Values are exact:
//! digits are kept as a decimal digit string, so huge or tiny quantities behave as upstream's
//! arbitrary-precision path does.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::field::{ErrorList, FieldError, Path};

/// The regular expression quantities must match, as upstream's error quotes it.
pub const QUANTITY_SPLIT_RE: &str = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$";

/// Why a quantity string is not a quantity (upstream's `ErrFormatWrong`, `ErrNumeric`,
/// `ErrSuffix`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// The string does not have the shape of a quantity.
    #[error("quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")]
    FormatWrong,
    /// The numeric part cannot be parsed.
    #[error("unable to parse numeric part of quantity")]
    Numeric,
    /// The suffix is not known.
    #[error("unable to parse quantity's suffix")]
    Suffix,
}

/// How a quantity prints: its suffix family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QuantityFormat {
    /// `12e6`.
    DecimalExponent,
    /// `12Mi` (powers of 1024).
    BinarySI,
    /// `12M` (powers of 1000).
    DecimalSI,
}

/// A parsed quantity: an exact signed decimal, its format, and the original string when
/// upstream would print it unchanged.
#[derive(Clone, Debug)]
pub struct ParsedQuantity {
    negative: bool,
    /// Decimal digits of the magnitude, most significant first; no leading or trailing zeros.
    /// Empty for zero.
    digits: Vec<u8>,
    /// The value is `digits * 10^exponent`.
    exponent: i64,
    format: QuantityFormat,
    cached: Option<String>,
}

/// Scale of milli units (`10^-3`).
pub const MILLI_SCALE: i64 = -3;
/// Scale of nano units (`10^-9`), the finest a quantity keeps.
pub const NANO_SCALE: i64 = -9;

struct Split<'a> {
    positive: bool,
    num: &'a str,
    denom: &'a str,
    suffix: &'a str,
}

/// Upstream's `parseQuantityString`: sign, integer digits (leading zeros dropped), fraction
/// digits, suffix.
fn split_quantity(s: &str) -> Result<Split<'_>, QuantityError> {
    let bytes = s.as_bytes();
    let end = bytes.len();
    let mut positive = true;
    let mut pos = 0;
    match bytes.first() {
        Some(b'-') => {
            positive = false;
            pos += 1;
        }
        Some(b'+') => pos += 1,
        _ => {}
    }
    while pos < end && bytes[pos] == b'0' {
        pos += 1;
    }
    if pos >= end {
        return Ok(Split {
            positive,
            num: "0",
            denom: "",
            suffix: "",
        });
    }
    let num_start = pos;
    while pos < end && bytes[pos].is_ascii_digit() {
        pos += 1;
    }
    let mut num = &s[num_start..pos];
    if num.is_empty() {
        num = "0";
    }
    if pos >= end {
        return Ok(Split {
            positive,
            num,
            denom: "",
            suffix: "",
        });
    }
    let mut denom = "";
    if bytes[pos] == b'.' {
        pos += 1;
        let denom_start = pos;
        while pos < end && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        denom = &s[denom_start..pos];
        if pos >= end {
            return Ok(Split {
                positive,
                num,
                denom,
                suffix: "",
            });
        }
    }
    let suffix_start = pos;
    while pos < end && b"eEinumkKMGTP".contains(&bytes[pos]) {
        pos += 1;
    }
    if pos < end && (bytes[pos] == b'-' || bytes[pos] == b'+') {
        pos += 1;
    }
    while pos < end && bytes[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos < end {
        return Err(QuantityError::FormatWrong);
    }
    Ok(Split {
        positive,
        num,
        denom,
        suffix: &s[suffix_start..],
    })
}

/// Upstream's suffixer: `(base, exponent, format)`.
fn interpret_suffix(suffix: &str) -> Option<(u32, i64, QuantityFormat)> {
    let decimal = |e| Some((10, e, QuantityFormat::DecimalSI));
    let binary = |e| Some((2, e, QuantityFormat::BinarySI));
    match suffix {
        "" => decimal(0),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        "Ki" => binary(10),
        "Mi" => binary(20),
        "Gi" => binary(30),
        "Ti" => binary(40),
        "Pi" => binary(50),
        "Ei" => binary(60),
        _ => {
            let rest = suffix.strip_prefix(['e', 'E'])?;
            if rest.is_empty() {
                return None;
            }
            // Go parses 64 bits and then truncates to int32.
            let parsed: i64 = rest.parse().ok()?;
            Some((10, i64::from(parsed as i32), QuantityFormat::DecimalExponent))
        }
    }
}

fn decimal_suffix(exponent: i64) -> &'static str {
    match exponent {
        -9 => "n",
        -6 => "u",
        -3 => "m",
        3 => "k",
        6 => "M",
        9 => "G",
        12 => "T",
        15 => "P",
        18 => "E",
        // Upstream finds no suffix and prints none (also for exponents it cannot name).
        _ => "",
    }
}

fn binary_suffix(exponent: u32) -> &'static str {
    match exponent {
        10 => "Ki",
        20 => "Mi",
        30 => "Gi",
        40 => "Ti",
        50 => "Pi",
        60 => "Ei",
        _ => "",
    }
}

/// Multiplies a big-endian decimal digit string by a small factor.
fn mul_small(digits: &mut Vec<u8>, factor: u64) {
    let mut carry: u128 = 0;
    for d in digits.iter_mut().rev() {
        let v = u128::from(*d) * u128::from(factor) + carry;
        *d = (v % 10) as u8;
        carry = v / 10;
    }
    while carry > 0 {
        digits.insert(0, (carry % 10) as u8);
        carry /= 10;
    }
}

/// Adds one to a big-endian decimal digit string.
fn increment(digits: &mut Vec<u8>) {
    for d in digits.iter_mut().rev() {
        if *d == 9 {
            *d = 0;
        } else {
            *d += 1;
            return;
        }
    }
    digits.insert(0, 1);
}

fn digits_of(s: &str) -> Vec<u8> {
    s.bytes().map(|b| b - b'0').collect()
}

fn digits_from_u128(mut value: u128) -> Vec<u8> {
    let mut out = Vec::new();
    while value > 0 {
        out.push((value % 10) as u8);
        value /= 10;
    }
    out.reverse();
    out
}

/// The magnitude's digits at `exponent` (not above the quantity's own).
fn aligned(q: &ParsedQuantity, exponent: i64) -> Vec<u8> {
    if q.is_zero() {
        return Vec::new();
    }
    let mut digits = q.digits.clone();
    digits.extend(std::iter::repeat_n(0, (q.exponent - exponent).max(0) as usize));
    digits
}

fn compare_magnitudes(a: &[u8], b: &[u8]) -> Ordering {
    let strip = |d: &[u8]| d.iter().skip_while(|&&x| x == 0).copied().collect::<Vec<u8>>();
    let (a, b) = (strip(a), strip(b));
    a.len().cmp(&b.len()).then_with(|| a.cmp(&b))
}

fn add_magnitudes(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(a.len().max(b.len()) + 1);
    let (mut i, mut j, mut carry) = (a.len(), b.len(), 0u8);
    while i > 0 || j > 0 || carry > 0 {
        let mut sum = carry;
        if i > 0 {
            i -= 1;
            sum += a[i];
        }
        if j > 0 {
            j -= 1;
            sum += b[j];
        }
        out.push(sum % 10);
        carry = sum / 10;
    }
    out.reverse();
    out
}

/// `a - b` for `a >= b`.
fn sub_magnitudes(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(a.len());
    let (mut j, mut borrow) = (b.len(), 0i8);
    for &digit in a.iter().rev() {
        let mut value = digit as i8 - borrow;
        if j > 0 {
            j -= 1;
            value -= b[j] as i8;
        }
        borrow = i8::from(value < 0);
        out.push((value + 10 * borrow) as u8);
    }
    out.reverse();
    out
}

const MAX_INT64_FACTORS: i64 = 18;

impl ParsedQuantity {
    fn normalized(negative: bool, mut digits: Vec<u8>, mut exponent: i64, format: QuantityFormat) -> Self {
        let leading = digits.iter().take_while(|&&d| d == 0).count();
        digits.drain(..leading);
        while digits.last() == Some(&0) {
            digits.pop();
            exponent += 1;
        }
        if digits.is_empty() {
            return ParsedQuantity {
                negative: false,
                digits,
                exponent: 0,
                format,
                cached: None,
            };
        }
        ParsedQuantity {
            negative,
            digits,
            exponent,
            format,
            cached: None,
        }
    }

    /// Zero, printed `0`.
    pub fn zero() -> Self {
        ParsedQuantity::normalized(false, Vec::new(), 0, QuantityFormat::DecimalSI)
    }

    /// An integer quantity (upstream's `NewQuantity`).
    pub fn from_i64(value: i64, format: QuantityFormat) -> Self {
        ParsedQuantity::normalized(
            value < 0,
            digits_from_u128(u128::from(value.unsigned_abs())),
            0,
            format,
        )
    }

    /// Its format.
    pub fn format(&self) -> QuantityFormat {
        self.format
    }

    /// Whether it is zero.
    pub fn is_zero(&self) -> bool {
        self.digits.is_empty()
    }

    /// -1, 0 or 1.
    pub fn sign(&self) -> i32 {
        match (self.is_zero(), self.negative) {
            (true, _) => 0,
            (false, true) => -1,
            (false, false) => 1,
        }
    }

    /// Whether it has no fractional part.
    pub fn is_integer(&self) -> bool {
        self.exponent >= 0 || self.is_zero()
    }

    fn cmp_magnitude(&self, other: &Self) -> Ordering {
        match (self.is_zero(), other.is_zero()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            (false, false) => {}
        }
        let top = |q: &Self| q.digits.len() as i64 + q.exponent;
        top(self)
            .cmp(&top(other))
            .then_with(|| self.digits.cmp(&other.digits))
    }

    /// Rounds away from zero to a multiple of `10^scale` (upstream's `RoundUp`); returns
    /// whether the value was already exact. A value that changes forgets its original string.
    pub fn round_up(&mut self, scale: i64) -> bool {
        if self.is_zero() || self.exponent >= scale {
            return true;
        }
        let drop = scale - self.exponent;
        let mut digits = if drop >= self.digits.len() as i64 {
            Vec::new()
        } else {
            self.digits[..self.digits.len() - drop as usize].to_vec()
        };
        // Trailing zeros are never stored, so the dropped digits are not all zero.
        increment(&mut digits);
        *self = ParsedQuantity::normalized(self.negative, digits, scale, self.format);
        false
    }

    /// The value in units of `10^scale`, rounded away from zero, saturating at the bounds of
    /// i64 (upstream's `ScaledValue`).
    pub fn scaled_value(&self, scale: i64) -> i64 {
        let mut q = self.clone();
        q.round_up(scale);
        if q.is_zero() {
            return 0;
        }
        let shift = q.exponent - scale;
        let len = q.digits.len() as i64 + shift;
        if len > 19 {
            return if q.negative { i64::MIN } else { i64::MAX };
        }
        let mut magnitude: u128 = 0;
        for d in &q.digits {
            magnitude = magnitude * 10 + u128::from(*d);
        }
        for _ in 0..shift {
            magnitude *= 10;
        }
        let magnitude = i128::try_from(magnitude).unwrap_or(i128::MAX);
        let signed = if q.negative { -magnitude } else { magnitude };
        i64::try_from(signed).unwrap_or(if q.negative { i64::MIN } else { i64::MAX })
    }

    /// The value rounded up to an integer (upstream's `Value`).
    pub fn value(&self) -> i64 {
        self.scaled_value(0)
    }

    /// The value in thousandths, rounded up (upstream's `MilliValue`).
    pub fn milli_value(&self) -> i64 {
        self.scaled_value(MILLI_SCALE)
    }

    fn integer_magnitude(&self) -> Option<u128> {
        if !self.is_integer() || self.digits.len() as i64 + self.exponent > 38 {
            return None;
        }
        let mut magnitude: u128 = 0;
        for d in &self.digits {
            magnitude = magnitude * 10 + u128::from(*d);
        }
        for _ in 0..self.exponent {
            magnitude *= 10;
        }
        Some(magnitude)
    }

    /// `self + other` (upstream's `Add`): the result forgets the original string and keeps
    /// this quantity's format, or takes the other's when this one is zero.
    pub fn add(&self, other: &Self) -> Self {
        let format = if self.is_zero() { other.format } else { self.format };
        let exponent = self.exponent.min(other.exponent);
        let a = aligned(self, exponent);
        let b = aligned(other, exponent);
        let (negative, digits) = if self.negative == other.negative {
            (self.negative, add_magnitudes(&a, &b))
        } else if compare_magnitudes(&a, &b) != Ordering::Less {
            (self.negative, sub_magnitudes(&a, &b))
        } else {
            (other.negative, sub_magnitudes(&b, &a))
        };
        ParsedQuantity::normalized(negative, digits, exponent, format)
    }

    /// `self - other` (upstream's `Sub`), with [`ParsedQuantity::add`]'s format rule.
    pub fn sub(&self, other: &Self) -> Self {
        let mut negated = other.clone();
        if !negated.is_zero() {
            negated.negative = !negated.negative;
        }
        let mut out = self.add(&negated);
        if self.is_zero() {
            out.format = other.format;
        }
        out
    }

    /// The canonical form, ignoring the original string (upstream's `CanonicalizeBytes`).
    pub fn canonical(&self) -> String {
        if self.is_zero() {
            return "0".to_owned();
        }
        let sign = if self.negative { "-" } else { "" };
        if self.format == QuantityFormat::BinarySI {
            let small = self.cmp_magnitude(&ParsedQuantity::from_i64(1024, QuantityFormat::DecimalSI))
                == Ordering::Less;
            if !small && let Some(mut magnitude) = self.integer_magnitude() {
                let mut exponent = 0;
                while magnitude % 1024 == 0 {
                    magnitude /= 1024;
                    exponent += 10;
                }
                return format!("{sign}{magnitude}{}", binary_suffix(exponent));
            }
        }
        let mut mantissa: String = self.digits.iter().map(|d| char::from(b'0' + d)).collect();
        let mut exponent = self.exponent;
        while exponent.rem_euclid(3) != 0 {
            mantissa.push('0');
            exponent -= 1;
        }
        let suffix = match self.format {
            QuantityFormat::DecimalExponent if exponent == 0 => String::new(),
            QuantityFormat::DecimalExponent => format!("e{exponent}"),
            _ => decimal_suffix(exponent).to_owned(),
        };
        format!("{sign}{mantissa}{suffix}")
    }
}

impl fmt::Display for ParsedQuantity {
    /// The string upstream prints: the original when it was kept, else the canonical form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cached {
            Some(s) => f.write_str(s),
            None => f.write_str(&self.canonical()),
        }
    }
}

impl PartialEq for ParsedQuantity {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for ParsedQuantity {}

impl PartialOrd for ParsedQuantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ParsedQuantity {
    /// Compares values (upstream's `Cmp`), whatever their formats.
    fn cmp(&self, other: &Self) -> Ordering {
        match self.sign().cmp(&other.sign()) {
            Ordering::Equal => {}
            unequal => return unequal,
        }
        let magnitude = self.cmp_magnitude(other);
        if self.negative {
            magnitude.reverse()
        } else {
            magnitude
        }
    }
}

impl std::str::FromStr for ParsedQuantity {
    type Err = QuantityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_quantity(s)
    }
}

/// Parses a quantity as upstream's `ParseQuantity` does (no surrounding whitespace allowed).
pub fn parse_quantity(s: &str) -> Result<ParsedQuantity, QuantityError> {
    if s.is_empty() {
        return Err(QuantityError::FormatWrong);
    }
    if s == "0" {
        let mut zero = ParsedQuantity::zero();
        zero.cached = Some(s.to_owned());
        return Ok(zero);
    }
    let split = split_quantity(s)?;
    let (base, exponent, format) = interpret_suffix(split.suffix).ok_or(QuantityError::Suffix)?;
    let negative = !split.positive;
    let num_len = split.num.len() as i64;
    let denom_len = split.denom.len() as i64;

    // Upstream's int64 fast path decides whether the original string is kept.
    let (precision, mut scale, mantissa) = match format {
        QuantityFormat::DecimalExponent | QuantityFormat::DecimalSI => {
            (MAX_INT64_FACTORS - num_len - denom_len, exponent, 1i64)
        }
        QuantityFormat::BinarySI if denom_len == 0 => {
            (15 - num_len - exponent * 3 / 10 - 1, 0, 1i64 << exponent)
        }
        QuantityFormat::BinarySI => (-1, 0, 1),
    };
    let mut digits = digits_of(split.num);
    digits.extend(digits_of(split.denom));
    if precision >= 0 {
        scale -= denom_len;
        if scale >= NANO_SCALE {
            let shifted = format!("{}{}", split.num, split.denom);
            let value: i64 = shifted.parse().map_err(|_| QuantityError::Numeric)?;
            if let Some(result) = value.checked_mul(mantissa) {
                let mut q = ParsedQuantity::normalized(
                    negative,
                    digits_from_u128(u128::from(result.unsigned_abs())),
                    scale,
                    format,
                );
                let keep = match format {
                    QuantityFormat::BinarySI => exponent % 10 == 0 && value & 0x07 != 0,
                    _ => scale % 3 == 0 && !shifted.ends_with("000") && !shifted.starts_with('0'),
                };
                if keep {
                    q.cached = Some(s.to_owned());
                }
                return Ok(q);
            }
        }
    }

    // The arbitrary-precision path: exact value, rounded up to nano units.
    let mut decimal_exponent = -denom_len;
    if base == 10 {
        decimal_exponent += exponent;
    } else {
        let mut remaining = exponent;
        while remaining > 0 {
            let step = remaining.min(32);
            mul_small(&mut digits, 1u64 << step);
            remaining -= step;
        }
    }
    let mut q = ParsedQuantity::normalized(negative, digits, decimal_exponent, format);
    q.round_up(NANO_SCALE);
    if format == QuantityFormat::BinarySI {
        let max = ParsedQuantity::from_i64(i64::MAX, QuantityFormat::BinarySI);
        if q.cmp_magnitude(&max) == Ordering::Greater {
            q = ParsedQuantity {
                negative: q.negative,
                ..max
            };
        }
        if !q.is_zero() && q.cmp_magnitude(&ParsedQuantity::from_i64(1, format)) == Ordering::Less {
            q.format = QuantityFormat::DecimalSI;
        }
    }
    Ok(q)
}

/// What upstream's JSON round trip makes of a quantity string: the value printed canonically,
/// or the string itself when upstream keeps it. Surrounding whitespace is ignored, as
/// upstream's decoder ignores it.
pub fn canonical_quantity_string(s: &str) -> Result<String, QuantityError> {
    parse_quantity(s.trim()).map(|q| q.to_string())
}

/// Rewrites a quantity as upstream would store it; an unparsable one is left alone (see
/// [`validate_quantity`]).
pub fn canonicalize_quantity(quantity: &mut Quantity) {
    if let Ok(canonical) = canonical_quantity_string(&quantity.0) {
        quantity.0 = canonical;
    }
}

/// Upstream's `SetDefaults_ResourceList`: every quantity rounded up to milli units, then
/// canonicalized.
pub fn set_defaults_resource_list(list: &mut Option<BTreeMap<String, Quantity>>) {
    for quantity in list.iter_mut().flat_map(|l| l.values_mut()) {
        if let Ok(mut q) = parse_quantity(quantity.0.trim()) {
            q.round_up(MILLI_SCALE);
            quantity.0 = q.to_string();
        }
    }
}

/// Parses the quantity of a field. Upstream rejects an unparsable quantity while decoding the
/// request (400 BadRequest); here it becomes an `Invalid` error of the field, with upstream's
/// decoder message as detail.
pub fn parse_quantity_field(quantity: &Quantity, path: &Path) -> Result<ParsedQuantity, FieldError> {
    parse_quantity(quantity.0.trim())
        .map_err(|err| FieldError::invalid(path, quantity.0.as_str(), err.to_string()))
}

/// The parse error of a quantity field, if any.
pub fn validate_quantity(quantity: &Quantity, path: &Path) -> ErrorList {
    parse_quantity_field(quantity, path).err().into_iter().collect()
}

/// `value >= 0` (upstream's `ValidateNonnegativeQuantity`).
pub fn validate_nonnegative_quantity(value: &ParsedQuantity, path: &Path) -> ErrorList {
    if value.sign() < 0 {
        return vec![FieldError::invalid(
            path,
            value.to_string(),
            super::meta::IS_NEGATIVE_ERROR_MSG,
        )];
    }
    Vec::new()
}

/// `value > 0` (upstream's `ValidatePositiveQuantityValue`).
pub fn validate_positive_quantity_value(value: &ParsedQuantity, path: &Path) -> ErrorList {
    if value.sign() <= 0 {
        return vec![FieldError::invalid(
            path,
            value.to_string(),
            super::meta::IS_NOT_POSITIVE_ERROR_MSG,
        )];
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> ParsedQuantity {
        parse_quantity(s).unwrap()
    }

    #[test]
    fn prints_like_upstream() {
        let cases = [
            ("0", "0"),
            ("-0", "0"),
            ("1", "1"),
            ("01", "01"),
            ("+1", "+1"),
            ("1.5", "1500m"),
            ("0.5", "500m"),
            ("1000m", "1"),
            ("100m", "100m"),
            ("1.5Gi", "1536Mi"),
            ("1024Mi", "1Gi"),
            ("1536Ki", "1536Ki"),
            ("1Ki", "1Ki"),
            ("8Ki", "8Ki"),
            ("1000Ki", "1000Ki"),
            ("0.5Ki", "512"),
            (".5Ki", "512"),
            ("1e3", "1e3"),
            ("1E3", "1E3"),
            ("1000e0", "1e3"),
            ("1.5e3", "1500"),
            ("12e6", "12e6"),
            ("1000", "1k"),
            ("1000000", "1M"),
            ("1200", "1200"),
            ("1.2k", "1200"),
            ("0.0001", "100u"),
            ("1n", "1n"),
            ("0.1n", "1n"),
            ("1e-20", "1e-9"),
            ("-1.5", "-1500m"),
            ("5Gi", "5Gi"),
            ("1000E", "1"),
            ("123456789012345678901234567890", "123456789012345678901234567890"),
            (
                "12345678901234567890123456789.1",
                "12345678901234567890123456789100m",
            ),
            ("10Ei", "9223372036854775807"),
            (".", "0"),
            ("1.", "1."),
        ];
        for (input, expected) in cases {
            assert_eq!(q(input).to_string(), expected, "input {input:?}");
        }
    }

    #[test]
    fn rejects_like_upstream() {
        let cases = [
            ("", QuantityError::FormatWrong),
            ("abc", QuantityError::FormatWrong),
            ("1 ", QuantityError::FormatWrong),
            ("1.2.3", QuantityError::FormatWrong),
            ("1Gb", QuantityError::FormatWrong),
            ("1ki", QuantityError::Suffix),
            ("1e", QuantityError::Suffix),
            ("1KiB", QuantityError::FormatWrong),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_quantity(input).unwrap_err(), expected, "input {input:?}");
        }
        assert_eq!(
            QuantityError::FormatWrong.to_string(),
            format!("quantities must match the regular expression '{QUANTITY_SPLIT_RE}'")
        );
    }

    #[test]
    fn compares_values() {
        assert_eq!(q("1Gi").cmp(&q("1073741824")), Ordering::Equal);
        assert!(q("1") > q("999m"));
        assert!(q("-1") < q("0"));
        assert!(q("-2") < q("-1"));
        assert!(q("1e3") == q("1k"));
        assert!(q("1.5Gi") > q("1Gi"));
        assert!(q("100m") < q("1"));
        assert!(q("0") == q("0m"));
    }

    #[test]
    fn values_round_up() {
        assert_eq!(q("1.5").value(), 2);
        assert_eq!(q("1.5").milli_value(), 1500);
        assert_eq!(q("1m").value(), 1);
        assert_eq!(q("0.1m").milli_value(), 1);
        assert_eq!(q("-1.5").value(), -2);
        assert_eq!(q("1Ei").value(), 1 << 60);
        assert_eq!(q("1e30").value(), i64::MAX);
    }

    #[test]
    fn resource_lists_round_to_milli_and_canonicalize() {
        let mut list: Option<BTreeMap<String, Quantity>> = Some(
            [
                ("cpu", "0.0001"),
                ("memory", "1024Mi"),
                ("pods", " 10 "),
                ("bad", "x"),
                ("eph", "5u"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Quantity(v.to_owned())))
            .collect(),
        );
        set_defaults_resource_list(&mut list);
        let got: Vec<(String, String)> = list.unwrap().into_iter().map(|(k, v)| (k, v.0)).collect();
        assert_eq!(
            got,
            [
                ("bad".to_owned(), "x".to_owned()),
                ("cpu".to_owned(), "1m".to_owned()),
                ("eph".to_owned(), "1m".to_owned()),
                ("memory".to_owned(), "1Gi".to_owned()),
                ("pods".to_owned(), "10".to_owned()),
            ]
        );
        let mut one = Quantity("1.5Gi".to_owned());
        canonicalize_quantity(&mut one);
        assert_eq!(one.0, "1536Mi");
    }

    #[test]
    fn field_checks() {
        let p = Path::new("spec").child("hard").key("cpu");
        assert_eq!(
            validate_quantity(&Quantity("1x".to_owned()), &p)[0].to_string(),
            "spec.hard[cpu]: Invalid value: \"1x\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        );
        assert_eq!(
            validate_nonnegative_quantity(&q("-1.5"), &p)[0].to_string(),
            "spec.hard[cpu]: Invalid value: \"-1500m\": must be greater than or equal to 0"
        );
        assert_eq!(
            validate_positive_quantity_value(&q("0"), &p)[0].to_string(),
            "spec.hard[cpu]: Invalid value: \"0\": must be greater than zero"
        );
        assert!(validate_positive_quantity_value(&q("1m"), &p).is_empty());
    }
}
