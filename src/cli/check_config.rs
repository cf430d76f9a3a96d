//! `avsepd check-config FILE`

use anyhow::Result;
use avsepd::config::Config;
use std::path::Path;
use std::process::ExitCode;

pub fn main(file: &Path) -> Result<ExitCode> {
    Config::load(file)?;
    println!("{}: ok", file.display());
    Ok(ExitCode::SUCCESS)
}
