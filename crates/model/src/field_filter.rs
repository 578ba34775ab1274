//! Writing a record as JSON with only some of its fields, straight from the
//! typed record: what [`crate::policy::redact`] builds as a map, without the
//! map. The bootstrap shapes a million rows per desktop; building a map per
//! row (a `String` key and a `Value` per field) and serializing it again
//! cost more than reading the rows.
//!
//! Which fields to keep is not decided here: the policy passes the rule in.
//! Only a record that serializes as a plain struct (every `record!` type)
//! takes this path; any other shape is refused, and the caller falls back to
//! the map, so an unexpected shape can never bypass the rule.

use serde::Serialize;
use serde::ser::{self, Impossible, SerializeStruct, Serializer};

type Json<'a> = serde_json::Serializer<&'a mut Vec<u8>>;
type Error = serde_json::Error;

/// `record` as JSON text holding only the fields `keep` accepts; `None`
/// when it is not a plain struct.
pub(crate) fn to_string_keeping<R: Serialize>(
    record: &R,
    keep: &dyn Fn(&str) -> bool,
) -> Option<String> {
    let mut out = Vec::with_capacity(512);
    let mut json = serde_json::Serializer::new(&mut out);
    record
        .serialize(Filter {
            json: &mut json,
            keep,
        })
        .ok()?;
    String::from_utf8(out).ok()
}

struct Filter<'s, 'a, 'k> {
    json: &'s mut Json<'a>,
    keep: &'k dyn Fn(&str) -> bool,
}

struct Fields<'s, 'a, 'k> {
    inner: serde_json::ser::Compound<'s, &'a mut Vec<u8>, serde_json::ser::CompactFormatter>,
    keep: &'k dyn Fn(&str) -> bool,
}

fn not_a_struct() -> Error {
    ser::Error::custom("only a plain struct is filtered by field")
}

/// Every shape but a struct is refused.
macro_rules! refuse {
    ($($name:ident($($arg:ty),*);)*) => {$(
        fn $name(self, $(_: $arg),*) -> Result<(), Error> {
            Err(not_a_struct())
        }
    )*};
}

impl<'s, 'a, 'k> Serializer for Filter<'s, 'a, 'k> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Impossible<(), Error>;
    type SerializeTuple = Impossible<(), Error>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Impossible<(), Error>;
    type SerializeStruct = Fields<'s, 'a, 'k>;
    type SerializeStructVariant = Impossible<(), Error>;

    refuse! {
        serialize_bool(bool);
        serialize_i8(i8);
        serialize_i16(i16);
        serialize_i32(i32);
        serialize_i64(i64);
        serialize_u8(u8);
        serialize_u16(u16);
        serialize_u32(u32);
        serialize_u64(u64);
        serialize_f32(f32);
        serialize_f64(f64);
        serialize_char(char);
        serialize_str(&str);
        serialize_bytes(&[u8]);
        serialize_none();
        serialize_unit();
        serialize_unit_struct(&'static str);
        serialize_unit_variant(&'static str, u32, &'static str);
    }

    fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<(), Error> {
        Err(not_a_struct())
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<(), Error> {
        Err(not_a_struct())
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Error> {
        Err(not_a_struct())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        Err(not_a_struct())
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Error> {
        Err(not_a_struct())
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Error> {
        Err(not_a_struct())
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(not_a_struct())
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Error> {
        Err(not_a_struct())
    }
    fn serialize_struct(self, name: &'static str, len: usize) -> Result<Fields<'s, 'a, 'k>, Error> {
        Ok(Fields {
            inner: self.json.serialize_struct(name, len)?,
            keep: self.keep,
        })
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(not_a_struct())
    }
}

impl SerializeStruct for Fields<'_, '_, '_> {
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        if (self.keep)(key) {
            self.inner.serialize_field(key, value)
        } else {
            Ok(())
        }
    }

    fn end(self) -> Result<(), Error> {
        SerializeStruct::end(self.inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Row {
        id: u32,
        secret: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        note: Option<&'static str>,
        last: bool,
    }

    #[test]
    fn only_kept_fields_are_written_and_the_json_stays_valid() {
        let row = Row {
            id: 7,
            secret: "s",
            note: None,
            last: true,
        };
        assert_eq!(
            to_string_keeping(&row, &|k| k != "secret").as_deref(),
            Some(r#"{"id":7,"last":true}"#),
            "a dropped field leaves no key and no stray comma"
        );
        assert_eq!(
            to_string_keeping(&row, &|k| k == "last").as_deref(),
            Some(r#"{"last":true}"#),
            "dropping the first field keeps the object well formed"
        );
        assert_eq!(to_string_keeping(&row, &|_| false).as_deref(), Some("{}"));
    }

    #[test]
    fn anything_but_a_struct_is_refused_so_the_caller_takes_the_map_path() {
        let map: std::collections::BTreeMap<&str, u32> = [("secret", 1)].into();
        assert_eq!(
            to_string_keeping(&map, &|_| false),
            None,
            "a map would write keys the rule never saw"
        );
        assert_eq!(to_string_keeping(&3u8, &|_| true), None);
    }
}
