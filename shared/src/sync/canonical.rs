//! RFC 8785 (JSON Canonicalization Scheme) written straight from JSON text.
//!
//! The maintained JCS crates canonicalize a `serde_json::Value`, so a catalog is first built
//! as a tree of maps and strings and then re-serialized with every key re-parsed: measured on a
//! 10,000-product catalog that is ~3.7x a plain parse on its own (see docs/benchmarks.md).
//! This writer reads the JSON tokens once and emits canonical bytes directly, buffering only
//! the members of one object at a time to sort them. Number formatting (ECMAScript
//! `Number.prototype.toString`) comes from `ryu-js`. Property tests check the output byte for
//! byte against `serde_json_canonicalizer`, a maintained RFC 8785 implementation.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// Integers with a magnitude up to 2^53 are exact doubles and print as plain digits.
const MAX_SAFE_INTEGER: u64 = 1 << 53;

/// Appends the canonical form of one JSON value read from `deserializer` to `out`.
pub fn write_canonical<'de, D: Deserializer<'de>>(
    deserializer: D,
    out: &mut Vec<u8>,
) -> Result<(), D::Error> {
    Canonical(out).deserialize(deserializer)
}

/// Canonical form of a complete JSON text.
pub fn canonicalize(json: &[u8]) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(json.len());
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    write_canonical(&mut deserializer, &mut out)?;
    deserializer.end()?;
    Ok(out)
}

struct Canonical<'o>(&'o mut Vec<u8>);

impl<'de> DeserializeSeed<'de> for Canonical<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

fn write_f64(out: &mut Vec<u8>, value: f64) {
    if value == 0.0 {
        out.push(b'0'); // also -0
    } else {
        out.extend_from_slice(ryu_js::Buffer::new().format_finite(value).as_bytes());
    }
}

fn write_string(out: &mut Vec<u8>, value: &str) {
    out.push(b'"');
    let bytes = value.as_bytes();
    let mut start = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x09 => b"\\t",
            0x0a => b"\\n",
            0x0c => b"\\f",
            0x0d => b"\\r",
            0x00..=0x1f => {
                out.extend_from_slice(&bytes[start..i]);
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[(byte >> 4) as usize],
                    HEX[(byte & 0xf) as usize],
                ]);
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escape);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// RFC 8785 orders property names by their UTF-16 code units.
fn utf16_order(a: &str, b: &str) -> Ordering {
    if a.is_ascii() && b.is_ascii() {
        a.cmp(b)
    } else {
        a.encode_utf16().cmp(b.encode_utf16())
    }
}

/// A key, borrowed from the input when it has no escapes.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }
    fn visit_borrowed_str<E: de::Error>(self, value: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(value))
    }
    fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(value.to_owned()))
    }
    fn visit_string<E: de::Error>(self, value: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(value))
    }
}

impl<'de> Visitor<'de> for Canonical<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.0.extend_from_slice(b"null");
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<(), E> {
        self.0
            .extend_from_slice(if value { b"true" } else { b"false" });
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<(), E> {
        if value <= MAX_SAFE_INTEGER {
            self.0
                .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        } else {
            write_f64(self.0, value as f64);
        }
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<(), E> {
        if value.unsigned_abs() <= MAX_SAFE_INTEGER {
            self.0
                .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        } else {
            write_f64(self.0, value as f64);
        }
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<(), E> {
        if !value.is_finite() {
            return Err(E::custom("JSON numbers must be finite"));
        }
        write_f64(self.0, value);
        Ok(())
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<(), E> {
        write_string(self.0, value);
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.0.push(b'[');
        let mut first = true;
        loop {
            let mark = self.0.len();
            if !first {
                self.0.push(b',');
            }
            if seq.next_element_seed(Canonical(&mut *self.0))?.is_none() {
                self.0.truncate(mark);
                break;
            }
            first = false;
        }
        self.0.push(b']');
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // Members' canonical values go into one scratch buffer; sorting moves only ranges.
        let mut scratch = Vec::new();
        let mut members: Vec<(Cow<'de, str>, usize, usize)> = Vec::new();
        while let Some(key) = map.next_key_seed(Key)? {
            let start = scratch.len();
            map.next_value_seed(Canonical(&mut scratch))?;
            members.push((key, start, scratch.len()));
        }
        members.sort_by(|a, b| utf16_order(&a.0, &b.0));
        if members.windows(2).any(|pair| pair[0].0 == pair[1].0) {
            return Err(de::Error::custom(
                "duplicate object key (RFC 8785 requires I-JSON)",
            ));
        }
        self.0.push(b'{');
        for (i, (key, start, end)) in members.iter().enumerate() {
            if i > 0 {
                self.0.push(b',');
            }
            write_string(self.0, key);
            self.0.push(b':');
            self.0.extend_from_slice(&scratch[*start..*end]);
        }
        self.0.push(b'}');
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::Value;

    use super::*;

    /// Found by `make fuzz`: without serde_json's `float_roundtrip`, a number with more digits
    /// than a double holds was parsed to a neighbouring double, so canonicalizing the canonical
    /// form changed it again (and two spellings of one number could hash differently).
    #[test]
    fn long_numbers_are_correctly_rounded_so_the_canonical_form_is_a_fixed_point() {
        let long_integer = format!("[{}]", "12345678901234567890".to_owned() + &"45".repeat(63));
        let long_mantissa = format!("[9007199254747{}0993]", "197".repeat(43));
        for input in [
            long_integer,
            long_mantissa,
            "[1230.145678901234567890]".to_owned(),
        ] {
            let once = canonicalize(input.as_bytes()).unwrap();
            assert_eq!(
                String::from_utf8(canonicalize(&once).unwrap()).unwrap(),
                String::from_utf8(once).unwrap(),
                "{input}"
            );
        }
    }

    fn canon(text: &str) -> String {
        String::from_utf8(canonicalize(text.as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn rfc_8785_examples() {
        // RFC 8785 section 3.2.2 (sorting) and 3.2.3 (the full example).
        assert_eq!(
            canon(
                r#"{"\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet With Dagesh", "1": "One", "\ud83d\ude00": "Emoji: Grinning Face", "\u0080": "Control", "\u00f6": "Latin Small Letter O With Diaeresis"}"#
            ),
            "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\"ö\":\"Latin Small Letter O With Diaeresis\",\"€\":\"Euro Sign\",\"😀\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}"
        );
        assert_eq!(
            canon(
                r#"{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001], "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/", "literals": [null, true, false]}"#
            ),
            r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
        );
    }

    #[test]
    fn numbers_follow_ecmascript() {
        assert_eq!(
            canon(
                "[-0, 0.0, 1.0, 100, -7, 1e21, 1e20, 9007199254740993, -9007199254740993, 18446744073709551615]"
            ),
            "[0,0,1,100,-7,1e+21,100000000000000000000,9007199254740992,-9007199254740992,18446744073709552000]"
        );
    }

    #[test]
    fn refuses_duplicate_keys() {
        assert!(canonicalize(br#"{"a": 1, "a": 2}"#).is_err());
    }

    fn arbitrary_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-(1i64 << 53)..=(1i64 << 53)).prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            "\\PC{0,12}".prop_map(Value::String),
            "[\\u{0}-\\u{1f}\"\\\\a-z\\u{80}-\\u{ffff}\\u{10000}-\\u{10ffff}]{0,8}"
                .prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec(
                    (
                        "[a-zA-Z0-9_\\u{e9}\\u{20ac}\\u{1f600}\\u{fb01}]{0,6}",
                        inner
                    ),
                    0..6
                )
                .prop_map(|members| Value::Object(members.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn matches_the_reference_implementation(value in arbitrary_json()) {
            let text = serde_json::to_vec(&value).unwrap();
            let ours = canonicalize(&text).unwrap();
            let reference = serde_json_canonicalizer::to_vec(&value).unwrap();
            prop_assert_eq!(String::from_utf8(ours).unwrap(), String::from_utf8(reference).unwrap());
        }

        #[test]
        fn ignores_formatting_and_key_order(value in arbitrary_json()) {
            let compact = canonicalize(&serde_json::to_vec(&value).unwrap()).unwrap();
            let pretty = canonicalize(serde_json::to_string_pretty(&value).unwrap().as_bytes()).unwrap();
            prop_assert_eq!(&compact, &pretty);
            // Canonical output is a fixed point.
            prop_assert_eq!(canonicalize(&compact).unwrap(), compact);
        }
    }
}
