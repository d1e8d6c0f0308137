//! Permission grants of the form `resource:action` and how they match (PROTOCOL.md section 2).
