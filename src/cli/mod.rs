//! Subcommands, one file each; `common` turns config and flags into stream specs.

pub mod bench;
pub mod check_config;
pub mod common;
pub mod demo;
pub mod faces;
pub mod fleet;
pub mod run;
pub mod separate;
