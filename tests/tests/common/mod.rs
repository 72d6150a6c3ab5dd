//! Shared by the integration tests: run the client binary (or any program)
//! under the real loader with or without the layer, and read its output.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

pub use dynabuf_client::env::Layer;
use dynabuf_client::env::{layer_built, layer_dir, vulkan_env};

/// A finished child process.
#[derive(Debug)]
pub struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The value of `key=` on stdout (the first; several may share a line).
    pub fn value(&self, key: &str) -> Option<String> {
        let prefix = format!("{key}=");
        self.stdout.split_whitespace().find_map(|w| w.strip_prefix(&prefix)).map(str::to_string)
    }

    /// Panics with the child's output unless it exited 0.
    pub fn expect_ok(self, what: &str) -> Self {
        assert!(self.ok, "{what} failed\n--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr);
        self
    }

    /// The layer's own lines on stderr.
    pub fn layer_lines(&self) -> Vec<&str> {
        self.stderr.lines().filter(|l| l.starts_with("dynabuf:")).collect()
    }
}

fn finish(out: Output) -> Run {
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
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

/// Runs `program args` with the Vulkan environment for `layer` plus `envs`.
pub fn run_program(program: impl AsRef<Path>, args: &[&str], layer: Layer, envs: &[(&str, &str)]) -> Run {
    require_layer();
    let mut cmd = Command::new(program.as_ref());
    vulkan_env(&mut cmd, layer).args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {}: {e}", program.as_ref().display()));
    finish(out)
}

/// Runs the test client.
pub fn client(args: &[&str], layer: Layer, envs: &[(&str, &str)]) -> Run {
    run_program(env!("CARGO_BIN_EXE_dynabuf-client"), args, layer, envs)
}

/// Says a test is skipped, and why, in the test's output.
pub fn skip(test: &str, reason: &str) {
    println!("skipped: {test}: {reason}");
}
