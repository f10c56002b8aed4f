//! OpenAPI schemas (feature `openapi`) for the wire types that are not plain
//! derives: identities and block references defined outside the API types
//! (hashes, names, function ids, block refs, event kinds), and the closed set
//! of error codes.
//!
//! The API types derive `utoipa::ToSchema` behind the `openapi` feature and
//! point their fields of these types here with `#[schema(value_type = ...)]`.
//! Each schema below is named as the type it describes, so the document
//! reads `ModuleHash`, not `ModuleHashSchema`. The tests check each one
//! against what serde really writes.

use std::borrow::Cow;

use utoipa::{
    PartialSchema, ToSchema,
    openapi::{
        KnownFormat, ObjectBuilder, OneOfBuilder, RefOr, Schema, SchemaFormat,
        schema::{SchemaType, Type},
    },
};

use crate::codes;

/// An example module hash, used wherever a schema shows one.
pub const EXAMPLE_HASH: &str =
    "blake3:0000000000000000000000000000000000000000000000000000000000000000";

/// Every stable error code of [`codes`], in the order they are declared.
pub const ERROR_CODES: [&str; 15] = [
    codes::BAD_REQUEST,
    codes::INVALID_NAME,
    codes::INVALID_HASH,
    codes::UNAUTHORIZED,
    codes::FORBIDDEN,
    codes::NOT_FOUND,
    codes::AFTER_BEYOND_HEAD,
    codes::AMBIGUOUS_HASH,
    codes::CONFLICT,
    codes::TOO_LARGE,
    codes::UNSUPPORTED_MEDIA_TYPE,
    codes::INVALID_MODULE,
    codes::CORRUPT,
    codes::BACKEND,
    codes::INTERNAL,
];

macro_rules! named_schema {
    ($(#[$doc:meta])* $ty:ident = $name:literal, $schema:expr) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $ty;

        impl PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                $schema
            }
        }

        impl ToSchema for $ty {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
        }
    };
}

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(SchemaType::new(Type::String))
}

named_schema!(
    /// [`ModuleHash`](crate::ModuleHash): `blake3:` and 64 lowercase hex digits.
    ModuleHashSchema = "ModuleHash",
    string()
        .description(Some("Content hash of a module's exact bytes."))
        .pattern(Some("^blake3:[0-9a-f]{64}$"))
        .examples([EXAMPLE_HASH])
        .into()
);

named_schema!(
    /// [`FunctionName`](crate::FunctionName).
    FunctionNameSchema = "FunctionName",
    string()
        .description(Some("A function name."))
        .pattern(Some("^[a-z0-9][a-z0-9._-]{0,62}$"))
        .examples(["erc20-transfers"])
        .into()
);

named_schema!(
    /// [`FunctionId`](crate::FunctionId): a name, or the hash of a function started by hash.
    FunctionIdSchema = "FunctionId",
    OneOfBuilder::new()
        .description(Some(
            "A function name, or `blake3:<hex>` for a function started by hash.",
        ))
        .item(FunctionNameSchema::schema())
        .item(ModuleHashSchema::schema())
        .into()
);

named_schema!(
    /// [`BlockRef`](crate::BlockRef): a block by number and hash.
    BlockRefSchema = "BlockRef",
    ObjectBuilder::new()
        .description(Some(
            "A block by number and hash. As a cursor it is inclusive: the last block fully processed.",
        ))
        .property(
            "number",
            ObjectBuilder::new()
                .schema_type(SchemaType::new(Type::Integer))
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                .minimum(Some(0)),
        )
        .required("number")
        .property("hash", string().pattern(Some("^0x[0-9a-f]{64}$")))
        .required("hash")
        .into()
);

named_schema!(
    /// [`EventKind`](crate::EventKind): the direction of a chain event.
    EventKindSchema = "EventKind",
    string()
        .description(Some(
            "`commit`: the block joined the canonical chain; `revert`: a reorg removed it.",
        ))
        .enum_values(Some(["commit", "revert"]))
        .into()
);

named_schema!(
    /// [`ErrorDetail::code`](crate::ErrorDetail::code): one of [`ERROR_CODES`].
    ErrorCodeSchema = "ErrorCode",
    string()
        .description(Some("Stable machine-readable error code."))
        .enum_values(Some(ERROR_CODES))
        .into()
);

#[cfg(test)]
mod tests {
    use alloy_primitives::B256;
    use serde_json::{Value, json};

    use super::*;
    use crate::{BlockRef, EventKind, FunctionId, FunctionName, ModuleHash};

    /// A schema as the document writes it.
    fn written<T: PartialSchema>() -> Value {
        serde_json::to_value(T::schema()).expect("schemas serialise")
    }

    /// Whether `value` matches one of the anchored patterns used here.
    fn matches(pattern: &str, value: &str) -> bool {
        match pattern {
            "^blake3:[0-9a-f]{64}$" => value.strip_prefix("blake3:").is_some_and(hex64),
            "^0x[0-9a-f]{64}$" => value.strip_prefix("0x").is_some_and(hex64),
            "^[a-z0-9][a-z0-9._-]{0,62}$" => {
                let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
                value.len() <= 63
                    && value.starts_with(ok)
                    && value.chars().all(|c| ok(c) || ".-_".contains(c))
            }
            other => panic!("no matcher for {other}"),
        }
    }

    fn hex64(s: &str) -> bool {
        s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    }

    #[test]
    fn string_schemas_match_what_serde_writes() {
        let hash = ModuleHash::of(b"module");
        let name: FunctionName = "erc20-transfers".parse().unwrap();
        for (schema, value) in [
            (written::<ModuleHashSchema>(), json!(hash)),
            (written::<ModuleHashSchema>(), json!(EXAMPLE_HASH)),
            (written::<FunctionNameSchema>(), json!(name)),
        ] {
            assert_eq!(schema["type"], "string", "{schema}");
            let value = value.as_str().expect("serialised as a string");
            let pattern = schema["pattern"].as_str().unwrap();
            assert!(matches(pattern, value), "{value} does not match {pattern}");
        }
        // A function id is a name or a hash, never both: the two arms of its `oneOf`.
        let id_schema = written::<FunctionIdSchema>();
        let arms: Vec<&str> = id_schema["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .map(|arm| arm["pattern"].as_str().unwrap())
            .collect();
        assert_eq!(arms.len(), 2);
        for id in [FunctionId::Name(name), FunctionId::Hash(hash)] {
            let value = serde_json::to_value(&id).unwrap();
            let value = value.as_str().unwrap();
            let hits = arms.iter().filter(|p| matches(p, value)).count();
            assert_eq!(hits, 1, "{value}");
        }
    }

    #[test]
    fn block_ref_schema_has_the_serialised_fields() {
        let block = BlockRef {
            number: 7,
            hash: B256::repeat_byte(0xab),
        };
        let Value::Object(fields) = serde_json::to_value(block).unwrap() else {
            panic!("a block ref serialises as an object");
        };
        let schema = written::<BlockRefSchema>();
        let documented: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
        let mut written_keys: Vec<&String> = fields.keys().collect();
        written_keys.sort();
        let mut documented = documented;
        documented.sort();
        assert_eq!(documented, written_keys);
        assert_eq!(schema["required"].as_array().unwrap().len(), fields.len());
        assert!(fields["number"].is_u64());
        let hash_pattern = schema["properties"]["hash"]["pattern"].as_str().unwrap();
        assert!(matches(hash_pattern, fields["hash"].as_str().unwrap()));
    }

    #[test]
    fn event_kind_schema_lists_every_kind() {
        let kinds: Vec<Value> = [EventKind::Commit, EventKind::Revert]
            .iter()
            .map(|k| serde_json::to_value(k).unwrap())
            .collect();
        assert_eq!(written::<EventKindSchema>()["enum"], Value::Array(kinds));
    }

    #[test]
    fn error_codes_are_every_code_declared() {
        // Read the `codes` module's source, so a new code cannot be missed here.
        let source = include_str!("types.rs");
        let module = &source[source.find("pub mod codes").expect("codes module")..];
        let declared: Vec<&str> = module
            .lines()
            .filter_map(|line| line.trim().strip_prefix("pub const "))
            .filter_map(|rest| rest.split('"').nth(1))
            .collect();
        assert_eq!(declared, ERROR_CODES);
        assert_eq!(written::<ErrorCodeSchema>()["enum"], json!(ERROR_CODES));
    }
}
