//! `dynabuf doctor`: what this machine can do for dma-buf sharing, one line
//! per check, `ok` or `no` with what to do about it. The kernel's side is
//! in `doctor_kernel.rs`, Vulkan's and the loader's in `doctor_vulkan.rs`.
//! It is a report: it exits 0 whatever it finds.

use std::process::ExitCode;

use serde::Serialize;

use crate::{doctor_kernel, doctor_vulkan};

#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// Print JSON (a list of checks) instead of lines.
    #[arg(long)]
    json: bool,
}

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    pub ok: bool,
    /// What was checked (`kernel`, `udmabuf`, `DRM /dev/dri/renderD128`, ...).
    pub what: String,
    /// What was found.
    pub found: String,
    /// What to do about a `no`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    pub fn ok(what: impl Into<String>, found: impl Into<String>) -> Check {
        Check { ok: true, what: what.into(), found: found.into(), fix: None }
    }

    pub fn no(what: impl Into<String>, found: impl Into<String>, fix: impl Into<String>) -> Check {
        Check { ok: false, what: what.into(), found: found.into(), fix: Some(fix.into()) }
    }

    /// `ok  WHAT: FOUND` or `no  WHAT: FOUND; fix: FIX`.
    pub fn line(&self) -> String {
        match (&self.fix, self.ok) {
            (_, true) | (None, false) => {
                format!("{}  {}: {}", if self.ok { "ok" } else { "no" }, self.what, self.found)
            }
            (Some(fix), false) => format!("no  {}: {}; fix: {fix}", self.what, self.found),
        }
    }
}

/// Every check, in the order printed.
pub fn checks() -> Vec<Check> {
    let mut all = doctor_kernel::checks();
    all.extend(doctor_vulkan::checks());
    all
}

pub fn main(args: DoctorArgs) -> ExitCode {
    let all = checks();
    if args.json {
        match serde_json::to_string_pretty(&all) {
            Ok(text) => println!("{text}"),
            Err(e) => eprintln!("dynabuf doctor: {e}"),
        }
    } else {
        for c in &all {
            println!("{}", c.line());
        }
        let no = all.iter().filter(|c| !c.ok).count();
        println!("{} ok, {no} no", all.len() - no);
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_say_ok_or_no_and_what_to_do() {
        assert_eq!(Check::ok("kernel", "Linux 6.12").line(), "ok  kernel: Linux 6.12");
        assert_eq!(
            Check::no("udmabuf", "/dev/udmabuf absent", "modprobe udmabuf").line(),
            "no  udmabuf: /dev/udmabuf absent; fix: modprobe udmabuf"
        );
        let json = serde_json::to_value(Check::ok("a", "b")).unwrap();
        assert_eq!(json, serde_json::json!({"ok": true, "what": "a", "found": "b"}));
    }
}
