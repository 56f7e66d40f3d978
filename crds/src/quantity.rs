//! Kubernetes quantities as used by TrafficSplit v1alpha1 weights, and the
//! rule that turns them into the whole-number weights of v1alpha2 and later.
//!
//! # The weight rule
//!
//! A v1alpha1 weight is a Kubernetes quantity (`"1"`, `"500m"`, `"1.5"`,
//! `"2k"`). Meshlet counts it in **milli-units**: the integer weight is the
//! quantity times 1000.
//!
//! | v1alpha1 | integer weight |
//! | --- | --- |
//! | `"1"` | 1000 |
//! | `"500m"` | 500 |
//! | `"1.5"` | 1500 |
//! | `"0"` | 0 |
//! | `"2k"` | 2000000 |
//!
//! The other way, an integer weight `n` is written as whole units when it
//! divides by 1000 (`2000` → `"2"`), otherwise as milli-units (`90` →
//! `"90m"`). Ratios between backends, which is all a split means, are kept
//! exactly both ways.
//!
//! Rejected, with an error that quotes the value: anything that is not a
//! quantity, negative quantities, quantities finer than one milli-unit
//! (`"1u"`, `"0.0005"`: they have no integer weight), and values above
//! [`MAX_WEIGHT`].

use std::borrow::Cow;
use std::fmt;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The largest integer weight Meshlet accepts (also the largest milli-value
/// a v1alpha1 quantity may have): the largest value a Kubernetes int64 holds.
pub const MAX_WEIGHT: u64 = i64::MAX as u64;

/// Regular expression for a non-negative Kubernetes quantity, as used in the
/// CRD schema (the Kubernetes quantity grammar without a minus sign).
pub const NON_NEGATIVE_QUANTITY_PATTERN: &str = r"^\+?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$";

/// Why a quantity has no integer weight.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// The text is not a Kubernetes quantity.
    #[error("{0:?} is not a Kubernetes quantity (examples: \"1\", \"500m\", \"1.5\")")]
    Invalid(String),
    /// The quantity is below zero.
    #[error("{0:?} is negative; weights must be 0 or more")]
    Negative(String),
    /// The quantity has a fraction of a milli-unit.
    #[error("{0:?} is finer than 1m (0.001); weights are counted in milli-units")]
    TooPrecise(String),
    /// The quantity is above [`MAX_WEIGHT`] milli-units.
    #[error("{0:?} is too large; at most {MAX_WEIGHT} milli-units")]
    TooLarge(String),
}

/// A Kubernetes quantity kept as written (`"500m"`). Reads a JSON string or
/// a JSON integer (`weight: 1`), always writes a string.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Quantity(pub String);

impl Quantity {
    /// The quantity in milli-units, by the rule in the module docs.
    pub fn to_milli(&self) -> Result<u64, QuantityError> {
        parse_milli(&self.0)
    }

    /// The quantity for `milli` milli-units: whole units when `milli` divides
    /// by 1000, `"<milli>m"` otherwise.
    pub fn from_milli(milli: u64) -> Self {
        if milli % 1000 == 0 {
            Quantity((milli / 1000).to_string())
        } else {
            Quantity(format!("{milli}m"))
        }
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Quantity {
    fn from(s: &str) -> Self {
        Quantity(s.to_string())
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire {
            Text(String),
            Unsigned(u64),
            Signed(i64),
            Float(f64),
        }
        Ok(Quantity(match Wire::deserialize(d)? {
            Wire::Text(s) => s,
            Wire::Unsigned(n) => n.to_string(),
            Wire::Signed(n) => n.to_string(),
            Wire::Float(f) => f.to_string(),
        }))
    }
}

impl JsonSchema for Quantity {
    fn schema_name() -> Cow<'static, str> {
        "Quantity".into()
    }

    fn inline_schema() -> bool {
        true
    }

    // The Kubernetes int-or-string form (as controller-gen emits for
    // resource.Quantity, without the `anyOf` that kube's structural rewriter
    // would empty), narrowed to non-negative values: `pattern` applies to
    // strings, `minimum` to integers.
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "x-kubernetes-int-or-string": true,
            "pattern": NON_NEGATIVE_QUANTITY_PATTERN,
            "minimum": 0
        })
    }
}

/// Parses a Kubernetes quantity into milli-units (see the module docs).
pub fn parse_milli(text: &str) -> Result<u64, QuantityError> {
    let invalid = || QuantityError::Invalid(text.to_string());
    let s = text.trim();
    if s.is_empty() || s != text {
        return Err(invalid());
    }
    let (negative, s) = match s.as_bytes()[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    // Split number and suffix: the number is digits with at most one dot.
    let num_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(num_end);
    if number.is_empty() || number == "." || number.matches('.').count() > 1 {
        return Err(invalid());
    }
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    // mantissa × 10^exp10 × 2^exp2 is the value; start with the digits.
    let digits: String = format!("{int_part}{frac_part}");
    let digits = digits.trim_start_matches('0');
    if digits.len() > 38 {
        return Err(QuantityError::TooLarge(text.to_string()));
    }
    let mantissa: u128 = if digits.is_empty() {
        0
    } else {
        digits.parse().map_err(|_| invalid())?
    };
    let mut exp10: i64 = -(frac_part.len() as i64) + 3; // +3: milli-units
    let mut exp2: u32 = 0;
    match suffix {
        "" => {}
        "n" => exp10 -= 9,
        "u" => exp10 -= 6,
        "m" => exp10 -= 3,
        "k" => exp10 += 3,
        "M" => exp10 += 6,
        "G" => exp10 += 9,
        "T" => exp10 += 12,
        "P" => exp10 += 15,
        "E" => exp10 += 18,
        "Ki" => exp2 = 10,
        "Mi" => exp2 = 20,
        "Gi" => exp2 = 30,
        "Ti" => exp2 = 40,
        "Pi" => exp2 = 50,
        "Ei" => exp2 = 60,
        other => {
            let exp = other.strip_prefix(['e', 'E']).ok_or_else(invalid)?;
            let unsigned = exp.strip_prefix(['+', '-']).unwrap_or(exp);
            if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid());
            }
            let e: i64 = exp
                .parse()
                .map_err(|_| QuantityError::TooLarge(text.to_string()))?;
            exp10 = exp10
                .checked_add(e)
                .ok_or_else(|| QuantityError::TooLarge(text.to_string()))?;
        }
    }
    if mantissa == 0 {
        return Ok(0);
    }
    if negative {
        return Err(QuantityError::Negative(text.to_string()));
    }
    let too_large = || QuantityError::TooLarge(text.to_string());
    let mut value = mantissa
        .checked_shl(exp2)
        .filter(|v| v >> exp2 == mantissa)
        .ok_or_else(too_large)?;
    if exp10 >= 0 {
        let scale = 10u128.checked_pow(exp10 as u32).ok_or_else(too_large)?;
        value = value.checked_mul(scale).ok_or_else(too_large)?;
    } else {
        let scale = u32::try_from(-exp10)
            .ok()
            .and_then(|e| 10u128.checked_pow(e));
        match scale {
            Some(scale) if value % scale == 0 => value /= scale,
            _ => return Err(QuantityError::TooPrecise(text.to_string())),
        }
    }
    u64::try_from(value)
        .ok()
        .filter(|v| *v <= MAX_WEIGHT)
        .ok_or_else(too_large)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn documented_examples() {
        for (text, milli) in [
            ("1", 1000),
            ("500m", 500),
            ("1.5", 1500),
            ("0", 0),
            ("0.5", 500),
            (".5", 500),
            ("1.", 1000),
            ("+2", 2000),
            ("2k", 2_000_000),
            ("1Ki", 1_024_000),
            ("1e3", 1_000_000),
            ("1E-3", 1),
            ("1000000n", 1),
            ("1000u", 1),
            ("-0", 0),
        ] {
            assert_eq!(parse_milli(text), Ok(milli), "{text}");
        }
    }

    #[test]
    fn rejects_bad_quantities_with_the_value_in_the_message() {
        for (text, want) in [
            ("", QuantityError::Invalid(String::new())),
            ("abc", QuantityError::Invalid("abc".into())),
            ("1.2.3", QuantityError::Invalid("1.2.3".into())),
            ("1x", QuantityError::Invalid("1x".into())),
            ("1e", QuantityError::Invalid("1e".into())),
            (" 1", QuantityError::Invalid(" 1".into())),
            ("-1", QuantityError::Negative("-1".into())),
            ("-500m", QuantityError::Negative("-500m".into())),
            ("1u", QuantityError::TooPrecise("1u".into())),
            ("0.0005", QuantityError::TooPrecise("0.0005".into())),
            ("1E", QuantityError::TooLarge("1E".into())),
            ("1e400", QuantityError::TooLarge("1e400".into())),
        ] {
            let got = parse_milli(text);
            assert_eq!(got, Err(want), "{text}");
            assert!(got.unwrap_err().to_string().contains(&format!("{text:?}")));
        }
    }

    #[test]
    fn formats_whole_units_when_divisible() {
        assert_eq!(Quantity::from_milli(2000).0, "2");
        assert_eq!(Quantity::from_milli(0).0, "0");
        assert_eq!(Quantity::from_milli(90).0, "90m");
        assert_eq!(Quantity::from_milli(1500).0, "1500m");
    }

    #[test]
    fn reads_numbers_and_strings_writes_strings() {
        let q: Quantity = serde_json::from_str("1").unwrap();
        assert_eq!(q, Quantity("1".into()));
        let q: Quantity = serde_json::from_str("\"500m\"").unwrap();
        assert_eq!(serde_json::to_string(&q).unwrap(), "\"500m\"");
    }

    proptest! {
        #[test]
        fn milli_round_trips(milli in 0u64..=MAX_WEIGHT) {
            prop_assert_eq!(Quantity::from_milli(milli).to_milli(), Ok(milli));
        }

        #[test]
        fn decimal_text_matches_milli(whole in 0u64..1_000_000, frac in 0u64..1000) {
            let text = format!("{whole}.{frac:03}");
            prop_assert_eq!(parse_milli(&text), Ok(whole * 1000 + frac));
        }
    }
}
