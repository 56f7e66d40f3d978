//! Hand-written OpenAPI schema pieces for fields whose derived schema would
//! not suit a Kubernetes structural schema (unsigned formats the API server
//! does not know) or would not say enough (minimum, maximum).

use schemars::{json_schema, Schema, SchemaGenerator};

/// A whole-number TrafficSplit weight: an integer, 0 or more.
pub fn weight(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "Traffic weight of this backend: a whole number, 0 or more. Traffic is spread in proportion to the weights.",
        "type": "integer",
        "format": "int64",
        "minimum": 0
    })
}

/// A TCP or UDP port number, 1 to 65535.
pub fn port(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "integer",
        "format": "int32",
        "minimum": 1,
        "maximum": 65535
    })
}

/// An optional port number, 1 to 65535.
pub fn optional_port(g: &mut SchemaGenerator) -> Schema {
    port(g)
}

/// A list of port numbers, each 1 to 65535.
pub fn ports(g: &mut SchemaGenerator) -> Schema {
    let item = port(g);
    json_schema!({
        "type": "array",
        "items": item
    })
}
