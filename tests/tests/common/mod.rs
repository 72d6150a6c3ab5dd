//! Shared by the integration tests: run the client binary (or any program)
//! under the real loader with or without the layer, and read its output.
//! With `DYNABUF_TEST_VALIDATION=below` every run also has the Khronos
//! validation layer below dynabuf, and a run whose output has a validation
//! message that validation alone does not produce fails the test
//! (`dynabuf_client::env::validation`).

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

use dynabuf_client::env::{layer_built, layer_dir, record_skip, validation, vulkan_env_with};
pub use dynabuf_client::env::{Layer, Validation};

/// A finished child process.
#[derive(Debug)]
pub struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
    /// How it ended (`exit status: 1`, `signal: 11 (SIGSEGV)`).
    pub status: String,
}

impl Run {
    /// The value of `key=` on stdout (the first; several may share a line),
    /// validation messages left out.
    pub fn value(&self, key: &str) -> Option<String> {
        let prefix = format!("{key}=");
        validation::without_messages(&self.stdout)
            .split_whitespace()
            .find_map(|w| w.strip_prefix(&prefix))
            .map(str::to_string)
    }

    /// Panics with the child's output unless it exited 0.
    pub fn expect_ok(self, what: &str) -> Self {
        assert!(
            self.ok,
            "{what} failed ({})\n--- stdout\n{}\n--- stderr\n{}",
            self.status, self.stdout, self.stderr
        );
        self
    }

    /// The layer's own lines on stderr.
    pub fn layer_lines(&self) -> Vec<&str> {
        self.stderr.lines().filter(|l| l.starts_with("dynabuf:")).collect()
    }

    /// The validation layer's messages, on stderr (where the tests send
    /// them) or stdout.
    pub fn validation_messages(&self) -> Vec<validation::Message> {
        let mut all = validation::messages(&self.stderr);
        all.extend(validation::messages(&self.stdout));
        all
    }
}

/// The [`Run`] of a finished child.
pub fn finish(out: Output) -> Run {
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        status: out.status.to_string(),
    }
}

/// Fails the test early, with the fix, when the layer was not built.
pub fn require_layer() {
    assert!(
        layer_built(),
        "the layer is not built in {} (run `cargo build --workspace` with the same profile first; \
         scripts/test.sh does)",
        layer_dir().display()
    );
}

/// `program args` as a report names it.
fn describe(program: &Path, args: &[&str]) -> String {
    let name =
        program.file_name().map_or_else(|| program.display().to_string(), |n| n.to_string_lossy().into());
    std::iter::once(name.as_str()).chain(args.iter().copied()).collect::<Vec<_>>().join(" ")
}

/// Runs `program args` with the Vulkan environment for `layer` and
/// `validation` plus `envs`, and checks nothing.
pub fn run_unchecked(
    program: impl AsRef<Path>,
    args: &[&str],
    layer: Layer,
    validation: Validation,
    envs: &[(&str, &str)],
) -> Run {
    require_layer();
    let mut cmd = Command::new(program.as_ref());
    vulkan_env_with(&mut cmd, layer, validation).args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {}: {e}", program.as_ref().display()));
    let run = finish(out);
    if !run.ok {
        // In the test's output even where the test prints only stdout and stderr.
        eprintln!("{}: {}", describe(program.as_ref(), args), run.status);
    }
    run
}

/// Panics with the report when `run` (of `what`, with `layer`) has
/// validation messages validation alone does not produce.
pub fn check_validation(what: &str, layer: Layer, validation: Validation, run: &Run) {
    if let Err(report) = validation::check(what, layer, validation, &[&run.stderr, &run.stdout]) {
        panic!("{report}(the run itself ended with {})", run.status);
    }
}

/// Runs `program args` with the Vulkan environment for `layer` plus `envs`
/// (and the validation layer, as `DYNABUF_TEST_VALIDATION` says: then its
/// messages are checked).
pub fn run_program(program: impl AsRef<Path>, args: &[&str], layer: Layer, envs: &[(&str, &str)]) -> Run {
    let validation = Validation::from_env();
    let run = run_unchecked(program.as_ref(), args, layer, validation, envs);
    check_validation(&describe(program.as_ref(), args), layer, validation, &run);
    run
}

/// The test client.
pub const CLIENT: &str = env!("CARGO_BIN_EXE_dynabuf-client");

/// Runs the test client.
pub fn client(args: &[&str], layer: Layer, envs: &[(&str, &str)]) -> Run {
    run_program(CLIENT, args, layer, envs)
}

/// Says a test is skipped, and why, in the test's output, and records it
/// in `DYNABUF_SKIP_LOG` (`scripts/test.sh` fails on a skip it does not
/// expect).
pub fn skip(test: &str, reason: &str) {
    println!("skipped: {test}: {reason}");
    record_skip(env!("CARGO_CRATE_NAME"), test, reason);
}
