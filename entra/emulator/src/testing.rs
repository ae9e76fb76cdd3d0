//! What other crates' tests need from the emulator beyond its endpoints; built only with the
//! `testing` feature (dev-dependencies), never into the emulator a user runs.

pub mod battery;
