//! The `dynabuf` command on the host (issue 10 part 4): `run` puts the
//! client under the layer with no environment of ours and summarises what
//! the layer counted (the control: a disabled layer, or none found, gives
//! no device lines), passes the exit status through and leaves no temp
//! file; `doctor` prints every check and finds the layer; `ls` lists
//! nothing for a process holding only a memfd (and, on a kernel with
//! udmabuf, the udmabuf it holds). The command is found where cargo built
//! it, next to the layer (`cargo build --workspace`).
//!
//! With `DYNABUF_TEST_VALIDATION=below` the validation layer is named in
//! `VK_INSTANCE_LAYERS` as a user would, and `run` puts dynabuf above it.

mod common;

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{check_validation, finish, require_layer, Run, CLIENT};
use dynabuf_client::env::{layer_dir, vulkan_env_with, Layer, Validation};

/// The built command, next to the layer.
fn dynabuf() -> PathBuf {
    require_layer();
    let exe = layer_dir().join("dynabuf");
    assert!(
        exe.is_file(),
        "{} is not built (cargo build --workspace builds it; scripts/test.sh does)",
        exe.display()
    );
    exe
}

/// A directory of this test's own, removed first.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dynabuf-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `exe args` with the tests' Vulkan environment but no layer named (the
/// validation layer alone where asked for: `run` adds dynabuf above it).
fn command(exe: &Path, args: &[&str], envs: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(exe);
    vulkan_env_with(&mut cmd, Layer::Off, Validation::from_env()).args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    finish(cmd.output().unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display())))
}

/// `dynabuf run ARGS -- dynabuf-client CLIENT_ARGS`, validation checked.
fn run_client(run_args: &[&str], client_args: &[&str], envs: &[(&str, &str)]) -> Run {
    let mut args = vec!["run"];
    args.extend(run_args);
    args.push("--");
    args.push(CLIENT);
    args.extend(client_args);
    let run = command(&dynabuf(), &args, envs);
    check_validation(&format!("dynabuf {}", args.join(" ")), Layer::On, Validation::from_env(), &run);
    run
}

/// The summary's device lines (`    devN NAME: K submits, ...`).
fn device_lines(run: &Run) -> Vec<&str> {
    run.stderr.lines().filter(|l| l.starts_with("    dev") && l.contains(" submit")).collect()
}

#[test]
fn run_summarises_what_the_layer_counted() {
    let run = run_client(&["--stats"], &["threads", "2", "5"], &[])
        .expect_ok("dynabuf run -- dynabuf-client threads 2 5");
    assert_eq!(run.value("submits").as_deref(), Some("10"), "{}", run.stdout);
    let devices = device_lines(&run);
    assert_eq!(devices.len(), 1, "one device expected:\n{}", run.stderr);
    assert!(devices[0].contains(": 10 submits, 0 synchronised"), "{}", run.stderr);
    assert!(run.stderr.contains("dynabuf run: summary, 1 device:"), "{}", run.stderr);
    for line in ["dma-bufs seen: 0", "acquires 0 (0 waited", "evictions 0, revalidations 0", "hazards: none"]
    {
        assert!(run.stderr.contains(line), "no {line:?} in:\n{}", run.stderr);
    }
    // --stats: every counter.
    assert!(run.stderr.contains(" submits=10 "), "{}", run.stderr);
    // One more submission, one more in the summary.
    let run =
        run_client(&[], &["threads", "1", "11"], &[]).expect_ok("dynabuf run -- dynabuf-client threads 1 11");
    assert!(device_lines(&run).first().is_some_and(|l| l.contains(": 11 submits")), "{}", run.stderr);
    assert!(!run.stderr.contains("counters:"), "only --stats prints every counter:\n{}", run.stderr);
}

#[test]
fn run_options_reach_the_layer_as_its_settings() {
    let run = run_client(&["--log", "info", "--sync", "off", "--hazards", "off"], &["compute"], &[])
        .expect_ok("dynabuf run --log info --sync off -- dynabuf-client compute");
    let layer: Vec<&str> = run.layer_lines();
    assert!(layer.iter().any(|l| l.contains("implicit sync off (DYNABUF_SYNC=off)")), "{layer:#?}");
    // A value the layer does not accept is refused before anything runs.
    let bad = command(&dynabuf(), &["run", "--evict", "sometimes", "--", CLIENT, "compute"], &[]);
    assert!(!bad.ok && bad.stdout.is_empty(), "{bad:?}");
    assert!(bad.stderr.contains("every:"), "the accepted values: {}", bad.stderr);
}

#[test]
fn control_a_disabled_or_missing_layer_gives_no_device_lines() {
    let run = run_client(&[], &["compute"], &[("DYNABUF_DISABLE", "1")]).expect_ok("disabled");
    assert_eq!(run.value("matches_cpu").as_deref(), Some("true"));
    assert!(device_lines(&run).is_empty(), "{}", run.stderr);
    assert!(run.stderr.contains("the layer was disabled"), "{}", run.stderr);

    // The command alone, away from the build tree, with nothing installed
    // where the loader looks: it says so and runs nothing.
    let dir = scratch("no-layer");
    let lonely = dir.join("bin/dynabuf");
    std::fs::create_dir_all(lonely.parent().unwrap()).unwrap();
    std::fs::copy(dynabuf(), &lonely).unwrap();
    let empty = dir.to_str().unwrap();
    let mut cmd = Command::new(&lonely);
    cmd.args(["run", "--", CLIENT, "compute"]).env_remove("VK_LAYER_PATH").env_remove("VK_ADD_LAYER_PATH");
    for var in ["HOME", "XDG_CONFIG_HOME", "XDG_CONFIG_DIRS", "XDG_DATA_HOME", "XDG_DATA_DIRS"] {
        cmd.env(var, empty);
    }
    let run = finish(cmd.output().unwrap());
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(run.status, "exit status: 2", "{run:?}");
    assert!(run.stderr.contains("cannot find the layer"), "{}", run.stderr);
    assert!(run.stdout.is_empty() && device_lines(&run).is_empty(), "{run:?}");
}

#[test]
fn run_passes_the_exit_status_through_and_leaves_no_temp_file() {
    let tmp = scratch("tmp");
    let tmp_env = [("TMPDIR", tmp.to_str().unwrap())];
    // The client's own failure (a usage error exits 1).
    let run = run_client(&[], &["no-such-subcommand"], &tmp_env);
    assert_eq!(run.status, "exit status: 1", "{run:?}");
    let sh = |script: &str| command(&dynabuf(), &["run", "--", "sh", "-c", script], &tmp_env);
    assert_eq!(sh("exit 7").status, "exit status: 7");
    assert_eq!(sh("exit 0").status, "exit status: 0");
    let killed = sh("kill -KILL $$");
    assert_eq!(killed.status, "exit status: 137", "{killed:?}");
    assert!(killed.stderr.contains("killed by signal 9 (SIGKILL)"), "{}", killed.stderr);
    // Not found: 127, as a shell says.
    let missing = command(&dynabuf(), &["run", "--", "/nonexistent/app"], &tmp_env);
    assert_eq!(missing.status, "exit status: 127", "{missing:?}");
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().flatten().map(|e| e.path()).collect();
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(left.is_empty(), "dynabuf run left {left:?}");
}

#[test]
fn doctor_prints_every_check_and_finds_the_layer() {
    let run = command(&dynabuf(), &["doctor"], &[]);
    assert!(run.ok, "doctor must exit 0 whatever it finds: {run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    let (checks, last) = lines.split_at(lines.len().saturating_sub(1));
    for l in checks {
        assert!(l.starts_with("ok  ") || l.starts_with("no  "), "{l:?}");
        assert!(!l.starts_with("no  ") || l.contains("; fix: "), "a no without what to do: {l:?}");
    }
    for what in [
        "kernel:",
        "udmabuf:",
        "sync-file ioctls:",
        "DRM ",
        "debugfs bufinfo:",
        "Vulkan loader:",
        "Vulkan dev0 ",
        "layer for dynabuf run:",
        "layer installed:",
    ] {
        assert!(checks.iter().any(|l| l[4..].starts_with(what)), "no {what:?} line:\n{}", run.stdout);
    }
    let found = checks.iter().find(|l| l[4..].starts_with("layer for dynabuf run:")).unwrap();
    assert!(found.starts_with("ok  ") && found.contains(layer_dir().to_str().unwrap()), "{found}");
    let oks = checks.iter().filter(|l| l.starts_with("ok  ")).count();
    assert_eq!(last, [format!("{oks} ok, {} no", checks.len() - oks).as_str()]);
    // The same as JSON.
    let json = command(&dynabuf(), &["doctor", "--json"], &[]);
    let value: serde_json::Value = serde_json::from_str(&json.stdout).expect("doctor --json");
    assert_eq!(value.as_array().map(Vec::len), Some(checks.len()));
}

/// A `sleep` holding `fd` as its stdin, killed when dropped.
struct Holder(std::process::Child);

impl Holder {
    fn new(fd: OwnedFd) -> Holder {
        Holder(Command::new("sleep").arg("60").stdin(Stdio::from(fd)).spawn().expect("spawn sleep"))
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ls_json(pid: u32) -> serde_json::Value {
    let run = command(&dynabuf(), &["ls", "--json", "--pid", &pid.to_string()], &[]);
    assert!(run.ok, "{run:?}");
    serde_json::from_str(&run.stdout).expect("ls --json")
}

#[test]
fn ls_lists_nothing_for_a_process_holding_a_memfd_and_its_udmabuf_where_there_is_one() {
    use nix::sys::memfd::{memfd_create, MFdFlags};
    let memfd = memfd_create(c"dynabuf-cli-test", MFdFlags::MFD_CLOEXEC).unwrap();
    nix::unistd::ftruncate(&memfd, 65536).unwrap();
    let holder = Holder::new(memfd);
    let pid = holder.0.id();
    let target = std::fs::read_link(format!("/proc/{pid}/fd/0")).unwrap();
    assert!(target.to_string_lossy().starts_with("/memfd:"), "{target:?}");
    let listing = ls_json(pid);
    assert_eq!(listing["dma_bufs"], serde_json::json!([]), "{listing:#}");
    let text = command(&dynabuf(), &["ls", "--pid", &pid.to_string()], &[]);
    assert!(text.ok && text.stdout.lines().count() == 2, "header and footer only:\n{}", text.stdout);
    assert!(text.stdout.contains("0 dma-buf(s)"), "{}", text.stdout);
    drop(holder);

    if !dynabuf_client::kernel::udmabuf::available() {
        println!("no /dev/udmabuf here: the positive case runs in the kernel tier (kernel::cli::...)");
        return;
    }
    let (dmabuf, _memfd) = dynabuf_client::kernel::udmabuf::create(65536).unwrap();
    let ino = dynabuf::sys::dma_buf::identity(std::os::fd::AsFd::as_fd(&dmabuf)).unwrap().ino;
    let holder = Holder::new(dmabuf);
    let pid = holder.0.id();
    let listing = ls_json(pid);
    let bufs = listing["dma_bufs"].as_array().unwrap();
    assert_eq!(bufs.len(), 1, "{listing:#}");
    assert_eq!(bufs[0]["inode"], ino);
    assert_eq!(bufs[0]["size"], 65536);
    assert_eq!(bufs[0]["exporter"], "udmabuf");
    let me = bufs[0]["holders"].as_array().unwrap().iter().find(|h| h["pid"] == pid).cloned();
    assert_eq!(me.map(|h| h["fds"].clone()), Some(serde_json::json!([0])), "{listing:#}");
}

#[test]
fn the_installed_command_finds_the_layer_in_its_prefix() {
    let prefix = scratch("install");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/install.sh");
    let _ = dynabuf();
    let out = Command::new("bash")
        .arg(script)
        .args(["--prefix", prefix.to_str().unwrap(), "--from"])
        .arg(layer_dir())
        .output()
        .expect("run install.sh");
    assert!(out.status.success(), "install.sh: {}", String::from_utf8_lossy(&out.stderr));
    let installed = prefix.join("bin/dynabuf");
    assert!(installed.is_file(), "install.sh did not install the command");
    // Nothing points the loader at the prefix: the command finds the layer
    // from where it is installed (validation, where asked for, is in the
    // system's directories).
    let mut cmd = Command::new(&installed);
    vulkan_env_with(&mut cmd, Layer::Off, Validation::from_env())
        .args(["run", "--", CLIENT, "compute"])
        .env_remove("VK_LAYER_PATH")
        .env("HOME", &prefix)
        .env("XDG_DATA_HOME", prefix.join("nothing-here"));
    let run = finish(cmd.output().unwrap());
    check_validation("installed dynabuf run", Layer::On, Validation::from_env(), &run);
    let _ = std::fs::remove_dir_all(&prefix);
    assert!(run.ok, "{run:?}");
    let devices = device_lines(&run);
    assert!(devices.len() == 1 && devices[0].contains(": 1 submit,"), "{}", run.stderr);
}
