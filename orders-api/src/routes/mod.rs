//! The HTTP handlers, each documented for OpenAPI where it is defined.

pub mod docs;
pub mod health;
pub mod orders;
