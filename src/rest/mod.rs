//! The REST/JSON front door.

pub mod openapi;
