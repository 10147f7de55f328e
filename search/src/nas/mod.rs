//! Constraint-aware architecture search (ENAS with device budgets).
//!
//! `space` defines the cells, `shared` the model whose weights every cell shares,
//! `controller` the LSTM policy, `reward` and `pareto` how costs enter the reward, `search` the
//! epoch loop with checkpoints, and `derive` the final choice and its report.

pub mod config;
pub mod controller;
pub mod derive;
pub mod pareto;
pub mod reward;
pub mod rng;
pub mod search;
pub mod shared;
pub mod space;
