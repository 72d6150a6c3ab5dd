//! A small test harness that can say "skipped": every test returns
//! `Ok(Pass)`, `Ok(Skip(reason))` or fails (an `Err` or a panic). The
//! summary is `N passed, N failed, N skipped`. With
//! `DYNABUF_REQUIRE_KERNEL_TIER=1` a skip counts as a failure, so CI's VM
//! run cannot pass by skipping; elsewhere each skip is also recorded in
//! `DYNABUF_SKIP_LOG` (`dynabuf_client::env::record_skip`).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::ExitCode;
use std::time::Instant;

pub enum Outcome {
    Pass,
    Skip(String),
}

pub type TestResult = Result<Outcome, String>;

pub struct Test {
    pub name: &'static str,
    pub run: fn() -> TestResult,
}

/// `ensure!(cond, "message {}", x)`: fail the test with the message.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($msg:tt)*) => {
        if !$cond {
            return Err(format!("{} (at {}:{})", format!($($msg)*), file!(), line!()));
        }
    };
}

/// Turns any error into a test failure naming what failed.
pub trait Check<T> {
    fn check(self, what: &str) -> Result<T, String>;
}

impl<T, E: std::fmt::Display> Check<T> for Result<T, E> {
    fn check(self, what: &str) -> Result<T, String> {
        self.map_err(|e| format!("{what}: {e}"))
    }
}

pub fn run_all(tests: &[Test]) -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let require = std::env::var("DYNABUF_REQUIRE_KERNEL_TIER").is_ok_and(|v| v == "1");
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    let selected: Vec<_> = tests
        .iter()
        .filter(|t| args.is_empty() || args.iter().any(|a| t.name.contains(a.as_str())))
        .collect();
    let validation = dynabuf_client::env::Validation::from_env();
    let with = match validation {
        dynabuf_client::env::Validation::Off => String::new(),
        v => format!(" (DYNABUF_TEST_VALIDATION={})", format!("{v:?}").to_lowercase()),
    };
    println!("\nrunning {} kernel-tier tests{with}", selected.len());
    let start = Instant::now();
    for t in selected {
        let t0 = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(t.run)).unwrap_or_else(|p| {
            Err(p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into()))
        });
        let ms = t0.elapsed().as_millis();
        match outcome {
            Ok(Outcome::Pass) => {
                passed += 1;
                println!("test {} ... ok ({ms} ms)", t.name);
            }
            Ok(Outcome::Skip(why)) if !require => {
                skipped += 1;
                println!("test {} ... skipped: {why}", t.name);
                dynabuf_client::env::record_skip("kernel", t.name, &why);
            }
            Ok(Outcome::Skip(why)) => {
                failed += 1;
                println!("test {} ... FAILED: skipped where the kernel tier is required: {why}", t.name);
            }
            Err(e) => {
                failed += 1;
                println!("test {} ... FAILED: {e}", t.name);
            }
        }
    }
    println!("\nkernel tier{with}: {:.1} s", start.elapsed().as_secs_f64());
    println!("{passed} passed, {failed} failed, {skipped} skipped");
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
