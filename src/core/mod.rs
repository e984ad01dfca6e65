//! core
pub mod config;
pub mod diag;
pub mod duration;
pub mod plan;
pub mod plan_graph;
