//! How a request body becomes a typed value with every problem reported in one 400.
//!
//! Each request type derives `Deserialize` (to read it) and `ToSchema` (to document it) over
//! [`Field`]s. A field accepts any JSON value and keeps either the parsed value or why it could
//! not be parsed, so reading a body never stops at its first bad field; the type's
//! [`RequestBody::validate`] then collects every field's problem as `"field: reason"` and
//! checks the rules between fields. The OpenAPI document shows each field as the type it holds.

use serde::de::{self, DeserializeOwned, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::error::ApiError;

/// One field of a request body as it came: absent, or read into `T`, or the reason it could not
/// be (a `null` is read like any other value, so `T` decides what it means).
#[derive(Debug, Clone, utoipa::ToSchema)]
#[schema(value_type = T)]
pub struct Field<T>(Got<T>);

#[derive(Debug, Clone)]
enum Got<T> {
    Absent,
    Null(Option<T>, String),
    Valid(T),
    Invalid(String),
}

impl<T> Default for Field<T> {
    fn default() -> Self {
        Self(Got::Absent)
    }
}

/// A value a [`Field`] can hold: read from any JSON value, with a reason that completes
/// `"field: ..."` when it does not fit.
pub trait FromJson: Sized {
    fn from_json(value: Value) -> Result<Self, String>;
}

impl<'de, T: FromJson> Deserialize<'de> for Field<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Ok(Self(match value {
            Value::Null => match T::from_json(Value::Null) {
                Ok(value) => Got::Null(Some(value), String::new()),
                Err(reason) => Got::Null(None, reason),
            },
            value => match T::from_json(value) {
                Ok(value) => Got::Valid(value),
                Err(reason) => Got::Invalid(reason),
            },
        }))
    }
}

impl<T> Field<T> {
    /// A field holding `value`, as if it had been sent.
    pub fn valid(value: T) -> Self {
        Self(Got::Valid(value))
    }

    /// Present with a value other than `null`.
    pub fn is_present(&self) -> bool {
        !matches!(self.0, Got::Absent)
    }

    /// A field that must be there: absent is `"is required"`; `null` is what `T` says of it.
    pub fn required(self, name: &str, problems: &mut Problems) -> Option<T> {
        match self.0 {
            Got::Absent => problems.add(name, "is required"),
            other => Self(other).optional(name, problems),
        }
    }

    /// A field that may be left out; `null` is what `T` says of it.
    pub fn optional(self, name: &str, problems: &mut Problems) -> Option<T> {
        match self.0 {
            Got::Absent => None,
            Got::Valid(value) | Got::Null(Some(value), _) => Some(value),
            Got::Null(None, reason) | Got::Invalid(reason) => problems.add(name, reason),
        }
    }

    /// A field where `null` means the same as leaving it out (what OCTO payloads do).
    pub fn null_as_absent(self) -> Self {
        match self.0 {
            Got::Null(..) => Self(Got::Absent),
            other => Self(other),
        }
    }
}

/// Every problem of one request, each as `"field: reason"`, with the path of the object being
/// read (`availability.`) in front.
#[derive(Debug, Default)]
pub struct Problems {
    prefix: String,
    list: Vec<String>,
}

impl Problems {
    /// Problems of fields inside `object` (`"availability."` before each name).
    pub fn inside(object: &str) -> Self {
        Self {
            prefix: format!("{object}."),
            list: Vec::new(),
        }
    }

    /// Records `"{name}: {reason}"`; `None` so a field reader can return it.
    pub fn add<T>(&mut self, name: &str, reason: impl std::fmt::Display) -> Option<T> {
        self.list.push(format!("{}{name}: {reason}", self.prefix));
        None
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn extend(&mut self, other: Problems) {
        self.list.extend(other.list);
    }

    /// The value when nothing was wrong, else every problem.
    pub fn finish<T>(self, value: Option<T>) -> Result<T, Vec<String>> {
        match value {
            Some(value) if self.list.is_empty() => Ok(value),
            _ if self.list.is_empty() => Err(vec!["body: is not valid".into()]),
            _ => Err(self.list),
        }
    }
}

/// A request body: read from a JSON object by its derived `Deserialize`, documented by its
/// derived `ToSchema`, and validated into what the core takes.
pub trait RequestBody: DeserializeOwned {
    /// What the handler passes on.
    type Valid;
    /// Refuse fields the type does not name (a typo like `isapproved` must not be ignored).
    /// OCTO payloads leave it `false`: they carry many fields Seyaha does not read.
    const CLOSED: bool;

    fn validate(self, problems: &mut Problems) -> Option<Self::Valid>;
}

/// Reads and validates a request body, every problem as one entry.
pub fn read<B: RequestBody>(mut body: Value) -> Result<B::Valid, Vec<String>> {
    let Some(object) = body.as_object_mut() else {
        return Err(vec!["body: must be a JSON object".into()]);
    };
    let mut problems = Problems::default();
    if B::CLOSED {
        let known = field_names::<B>();
        object.retain(|key, _| {
            let known = known.contains(&key.as_str());
            if !known {
                problems.add::<()>(key, "unknown field");
            }
            known
        });
    }
    let read: B = serde_json::from_value(body).map_err(|error| vec![format!("body: {error}")])?;
    let valid = read.validate(&mut problems);
    problems.finish(valid)
}

/// [`read`] as the API's 400.
pub fn read_body<B: RequestBody>(body: Value) -> Result<B::Valid, ApiError> {
    read::<B>(body).map_err(ApiError::validation)
}

/// The JSON names serde's derive reads for `T`: what it passes to `deserialize_struct`.
pub(super) fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Introspect<'a>(&'a mut &'static [&'static str]);

    impl<'de> Deserializer<'de> for Introspect<'_> {
        type Error = de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("a request body is a struct"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("only the field names were asked for"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }

    let mut names: &'static [&'static str] = &[];
    let _ = T::deserialize(Introspect(&mut names));
    names
}

// ---- What the fields hold ----

impl FromJson for bool {
    fn from_json(value: Value) -> Result<Self, String> {
        value.as_bool().ok_or_else(|| "must be a boolean".into())
    }
}

/// A value written as a JSON string and read by a parser whose error completes "field: ...".
macro_rules! from_json_string {
    ($($type:ty => $parse:expr;)*) => {$(
        impl $crate::api::field::FromJson for $type {
            fn from_json(value: serde_json::Value) -> Result<Self, String> {
                match value {
                    serde_json::Value::String(text) => ($parse)(text.as_str()).map_err(|error| error.to_string()),
                    _ => Err("must be a string".into()),
                }
            }
        }
    )*};
}

/// A nested object of a request body, read field by field like the body itself (its problems
/// are reported by the outer type's `validate`, under the object's name).
macro_rules! from_json_object {
    ($($type:ty),*) => {$(
        impl $crate::api::field::FromJson for $type {
            fn from_json(value: serde_json::Value) -> Result<Self, String> {
                if value.is_object() {
                    serde_json::from_value(value).map_err(|error| error.to_string())
                } else {
                    Err("must be an object".into())
                }
            }
        }
    )*};
}

pub(crate) use from_json_object;

from_json_string! {
    crate::domain::BaseUrl => crate::domain::BaseUrl::parse;
    crate::domain::AuthType => crate::domain::AuthType::parse;
    crate::domain::AuthKey => crate::domain::AuthKey::parse;
    crate::domain::PartnerId => crate::domain::PartnerId::parse;
    crate::domain::LocalDateTime => crate::domain::LocalDateTime::parse;
}

/// A slot's status: any other value is named by the list of statuses.
impl FromJson for crate::domain::SlotStatus {
    fn from_json(value: Value) -> Result<Self, String> {
        Self::parse(value.as_str().unwrap_or_default()).map_err(|error| error.to_string())
    }
}

/// An OCTO local date, `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LocalDate(pub time::Date);

impl FromJson for LocalDate {
    fn from_json(value: Value) -> Result<Self, String> {
        match value {
            Value::String(text) => crate::domain::parse_local_date(&text)
                .map(Self)
                .ok_or_else(|| "must be a date like 2026-07-15".into()),
            _ => Err("must be a string".into()),
        }
    }
}

impl utoipa::PartialSchema for LocalDate {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Date,
            )))
            .into()
    }
}
impl utoipa::ToSchema for LocalDate {}

/// A whole number from 0 to `MAX`: `vacancies`, `capacity` (`null` is absent).
#[derive(Debug, Clone, Copy)]
pub struct Count(pub u64);

impl FromJson for Count {
    fn from_json(value: Value) -> Result<Self, String> {
        match value.as_u64() {
            Some(n) if n <= crate::domain::MAX_COUNT => Ok(Self(n)),
            Some(_) => Err(format!("must be at most {}", crate::domain::MAX_COUNT)),
            None => Err("must be a non-negative integer".into()),
        }
    }
}

impl utoipa::PartialSchema for Count {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Integer)
            .minimum(Some(0))
            .maximum(Some(crate::domain::MAX_COUNT as f64))
            .into()
    }
}
impl utoipa::ToSchema for Count {}

/// Any JSON text value kept as it came, for the rules a field states itself (lengths, blanks).
impl FromJson for String {
    fn from_json(value: Value) -> Result<Self, String> {
        match value {
            Value::String(text) => Ok(text),
            _ => Err("must be a string".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[derive(Deserialize, Default)]
    #[serde(default, deny_unknown_fields)]
    struct Probe {
        name: Field<String>,
        flag: Field<bool>,
        #[serde(rename = "otherName")]
        other: Field<Count>,
    }

    impl RequestBody for Probe {
        type Valid = (String, Option<bool>, Option<u64>);
        const CLOSED: bool = true;

        fn validate(self, problems: &mut Problems) -> Option<Self::Valid> {
            let name = self.name.required("name", problems);
            let flag = self.flag.optional("flag", problems);
            let other = self.other.null_as_absent().optional("otherName", problems);
            Some((name?, flag, other.map(|count| count.0)))
        }
    }

    #[test]
    fn every_problem_of_a_body_is_reported_at_once() {
        let errors =
            read::<Probe>(json!({"flag": "yes", "otherName": -1, "extra": 1})).unwrap_err();
        assert_eq!(
            errors,
            [
                "extra: unknown field",
                "name: is required",
                "flag: must be a boolean",
                "otherName: must be a non-negative integer"
            ]
        );
        assert_eq!(
            read::<Probe>(json!({"name": null})).unwrap_err(),
            ["name: must be a string"]
        );
        assert_eq!(
            read::<Probe>(json!({"name": "n", "otherName": null})).unwrap(),
            ("n".to_owned(), None, None)
        );
        assert_eq!(
            read::<Probe>(json!([1])).unwrap_err(),
            ["body: must be a JSON object"]
        );
    }

    #[test]
    fn the_field_names_are_serdes_own() {
        assert_eq!(field_names::<Probe>(), ["name", "flag", "otherName"]);
    }
}
