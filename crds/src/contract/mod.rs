//! The contract between Meshlet's parts: one definition of each port,
//! annotation, label, identity scheme, wire type and metric name.
