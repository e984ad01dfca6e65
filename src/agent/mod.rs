//! agent

pub mod sim;
