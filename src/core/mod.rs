//! The pure domain: task states, plan model and validation, scheduling decisions.
//! No I/O, no tokio, no terminal; nothing here imports the other parts.

pub mod agent_event;
pub mod base;
pub mod config;
pub mod dag;
pub mod diag;
pub mod domain;
pub mod duration;
pub mod explain;
pub mod funnel;
pub mod hooks;
pub mod human;
pub mod new_task;
pub mod ops;
pub mod permissions;
pub mod plan;
pub mod plan_graph;
pub mod pull_request;
pub mod schedule;
pub mod screen_rules;
pub mod state;
pub mod supervisor;
pub mod timeline;
pub mod usage;
