//! agent
pub mod sim;
