//! The presenter view (`/trace/{turn}`): one turn as a sequence diagram for architecture talks,
//! rendered on the server as SVG and as Mermaid text from one model, and the confused-deputy
//! replay.

pub mod escape;
pub mod mermaid;
pub mod page;
pub mod replay;
pub mod routes;
pub mod sequence;
pub mod svg;
