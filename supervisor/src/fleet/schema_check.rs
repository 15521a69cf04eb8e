//! Unknown keys and wrong types, checked against the JSON Schema.
