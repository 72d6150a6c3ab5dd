//! Settings from every place Vulkan tools put them, through the real
//! loader on lavapipe: the application's `VkLayerSettingsCreateInfoEXT`
//! (`VK_EXT_layer_settings`), `vk_layer_settings.txt` and the environment,
//! with the Khronos layers' precedence (environment, then file, then
//! application). Each case has its control: the same run without the
//! source, or with a lower source saying the opposite. With
//! `DYNABUF_TEST_VALIDATION=below` the validation layer runs below dynabuf
//! and any message it has for these runs fails them.

mod common;

use std::path::PathBuf;

use common::{check_validation, run_unchecked, Layer, Run, CLIENT};
use dynabuf_client::env::{Validation, VALIDATION_SETTINGS};

/// A directory of this test's own: a `vk_layer_settings.txt` with `lines`
/// (plus the validation layer's, when it runs), and an empty data home so
/// that a Vulkan Configurator file in the user's home, which the Khronos
/// search takes first, stays out of it.
struct SettingsDir {
    dir: PathBuf,
    path: String,
    data: String,
}

impl SettingsDir {
    fn new(name: &str, lines: &str) -> SettingsDir {
        let dir = std::env::temp_dir().join(format!("dynabuf-layer-settings-{name}-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let validation = if Validation::from_env().enabled() { VALIDATION_SETTINGS } else { "" };
        std::fs::write(dir.join("vk_layer_settings.txt"), format!("{validation}{lines}")).unwrap();
        let path = dir.to_string_lossy().into_owned();
        let data = dir.join("data").to_string_lossy().into_owned();
        SettingsDir { dir, path, data }
    }

    /// The environment that points the layers at it.
    fn env(&self) -> [(&str, &str); 2] {
        [("VK_LAYER_SETTINGS_PATH", &self.path), ("XDG_DATA_HOME", &self.data)]
    }
}

impl Drop for SettingsDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The client with `settings` in its `VkLayerSettingsCreateInfoEXT` and
/// `envs` in its environment, under the layer. With validation below, the
/// same client also runs under validation alone, the control: the layer
/// must add no message to what validation says alone. (Debian 12's
/// validation, 1.3.239, predates `VK_EXT_layer_settings` and reports the
/// application's structure as an unknown `VkInstanceCreateInfo` pNext,
/// `VUID-VkInstanceCreateInfo-pNext-pNext`, with or without dynabuf: that
/// is the application's doing, so it is compared run by run here rather
/// than allowed for every client.)
fn run(settings: &[&str], envs: &[(&str, &str)]) -> Run {
    let args: Vec<&str> = std::iter::once("layer-settings").chain(settings.iter().copied()).collect();
    let validation = Validation::from_env();
    let run = run_unchecked(CLIENT, &args, Layer::On, validation, envs);
    let what = format!("dynabuf-client {}", args.join(" "));
    if validation == Validation::Below {
        let alone = run_unchecked(CLIENT, &args, Layer::Off, Validation::Below, envs);
        let count = |run: &Run, id: &str| run.validation_messages().iter().filter(|m| m.id == id).count();
        for m in run.validation_messages() {
            assert!(
                count(&run, &m.id) <= count(&alone, &m.id),
                "{what}: validation below dynabuf reported {} {}x, validation alone {}x:\n{}\n--- alone:\n{}",
                m.id,
                count(&run, &m.id),
                count(&alone, &m.id),
                run.stderr,
                alone.stderr
            );
        }
    } else {
        check_validation(&what, Layer::On, validation, &run);
    }
    run.expect_ok(&what)
}

fn has_debug_lines(run: &Run) -> bool {
    run.layer_lines().iter().any(|l| l.starts_with("dynabuf: debug:"))
}

fn has_info_lines(run: &Run) -> bool {
    run.layer_lines().iter().any(|l| l.starts_with("dynabuf: info:"))
}

fn has_stats_line(run: &Run) -> bool {
    run.stderr.contains("submits=")
}

#[test]
fn the_loader_lists_vk_ext_layer_settings_for_the_layer_and_it_can_be_enabled() {
    let run = run(&["stats:bool32=1"], &[]);
    assert_eq!(run.value("layer_settings_extension").as_deref(), Some("listed"), "{}", run.stdout);
    // A loader that knows the extension enables it; an older one (Debian 12's
    // 1.3.239) refuses an instance extension it does not know, and the
    // client goes on without enabling it. The settings work either way.
    let enabled = run.value("layer_settings_enabled").unwrap_or_default();
    assert!(["true", "refused"].contains(&enabled.as_str()), "{}", run.stdout);
    assert!(has_stats_line(&run), "{}", run.stderr);
    // With the loader's filter of unknown instance extensions off, it is
    // enabled, goes down the chain unchanged, and the loader's terminator
    // keeps it from the driver, which does not offer it.
    let run = self::run(&["stats:bool32=1"], &[("VK_LOADER_DISABLE_INST_EXT_FILTER", "1")]);
    assert_eq!(run.value("layer_settings_enabled").as_deref(), Some("true"), "{}", run.stdout);
    assert_eq!(run.value("ok").as_deref(), Some("true"));
    assert!(has_stats_line(&run), "{}", run.stderr);
}

#[test]
fn a_later_instance_s_settings_win_and_devices_keep_what_they_decided() {
    // dev1 under stats=1 and log=info; then an instance with stats=0 and
    // log=warn, and one with no structure, each with a device, all alive.
    let run = run(&["stats:bool32=1", "log=info", "--then", "stats:bool32=0", "log=warn", "--then"], &[]);
    assert_eq!(run.value("instances").as_deref(), Some("3"), "{}", run.stdout);
    let lines = run.layer_lines();
    let count = |what: &str| lines.iter().filter(|l| l.contains(what)).count();
    // dev1 decided to count at its creation, and prints at its end;
    // dev2 and dev3 were created under stats=0 (dev3's instance changed
    // nothing), so they don't.
    assert_eq!(count("stats for dev1"), 1, "{}", run.stderr);
    assert_eq!(count("stats for "), 1, "{}", run.stderr);
    // The log level followed the second instance at once.
    assert_eq!(count("attached to dev1"), 1, "{}", run.stderr);
    assert_eq!(count("attached to dev"), 1, "{}", run.stderr);
    assert_eq!(count("loaded into instance"), 1, "{}", run.stderr);
}

#[test]
fn application_settings_take_effect() {
    let control = run(&[], &[]);
    assert!(!has_debug_lines(&control) && !has_stats_line(&control), "{}", control.stderr);
    let on = run(&["log=debug", "stats:bool32=1"], &[]);
    assert!(has_debug_lines(&on), "log=debug from the application:\n{}", on.stderr);
    assert!(has_stats_line(&on), "stats=1 from the application:\n{}", on.stderr);
    assert!(
        on.stderr.contains("setting log = \"debug\" (from application setting dynabuf_dmabuf.log)"),
        "where the value came from, at info:\n{}",
        on.stderr
    );
}

#[test]
fn application_values_of_each_type_reach_their_settings() {
    for stats in ["stats:uint32=1", "stats:int64=1", "stats=true", "stats:string=on"] {
        let run = run(&[stats], &[]);
        assert!(has_stats_line(&run), "{stats}:\n{}", run.stderr);
    }
    let off = run(&["stats:bool32=0", "log:string=info"], &[]);
    assert!(!has_stats_line(&off) && has_info_lines(&off), "{}", off.stderr);
}

#[test]
fn malformed_and_unknown_application_settings_are_reported_and_the_application_runs() {
    let run = run(&["log=loud", "fence_timeout_ms:int32=-1", "stats:float32=1", "colour=blue"], &[]);
    let warnings: Vec<&str> =
        run.layer_lines().into_iter().filter(|l| l.starts_with("dynabuf: warning:")).collect();
    for expected in [
        "ignoring application setting dynabuf_dmabuf.log=\"loud\": accepted values are off, error, warn, info, \
         debug, trace; using the default, warn",
        "ignoring application setting dynabuf_dmabuf.fence_timeout_ms=\"-1\"",
        "ignoring application setting dynabuf_dmabuf.stats=\"a floating-point value (FLOAT32)\"",
        "ignoring application setting dynabuf_dmabuf.colour: VK_LAYER_DYNABUF_dmabuf has no such setting",
    ] {
        assert!(warnings.iter().any(|w| w.contains(expected)), "no {expected:?} in:\n{}", run.stderr);
    }
    assert_eq!(warnings.len(), 4, "{}", run.stderr);
    assert!(!has_stats_line(&run));
}

#[test]
fn the_settings_file_wins_over_the_application() {
    let file = SettingsDir::new("file-wins", "dynabuf_dmabuf.log = info\ndynabuf_dmabuf.stats = 0\n");
    let run = run(&["log=debug", "stats:bool32=1"], &file.env());
    assert!(has_info_lines(&run) && !has_debug_lines(&run), "log=info from the file:\n{}", run.stderr);
    assert!(!has_stats_line(&run), "stats=0 from the file:\n{}", run.stderr);
    assert!(
        run.stderr.contains("application setting dynabuf_dmabuf.stats overridden by dynabuf_dmabuf.stats"),
        "{}",
        run.stderr
    );
    // The control: the same file without those keys leaves the application's.
    let other = SettingsDir::new("file-silent", "dynabuf_dmabuf.sync = auto\n");
    let run = self::run(&["log=debug", "stats:bool32=1"], &other.env());
    assert!(has_debug_lines(&run) && has_stats_line(&run), "{}", run.stderr);
}

#[test]
fn the_environment_wins_over_the_file_and_the_application() {
    let file = SettingsDir::new("env-wins", "dynabuf_dmabuf.log = error\ndynabuf_dmabuf.stats = 0\n");
    let mut envs = file.env().to_vec();
    envs.extend([("DYNABUF_LOG", "debug"), ("DYNABUF_STATS", "1")]);
    let run = run(&["log=off", "stats:bool32=0"], &envs);
    assert!(has_debug_lines(&run), "DYNABUF_LOG=debug over the file and the application:\n{}", run.stderr);
    assert!(has_stats_line(&run), "DYNABUF_STATS=1 over both:\n{}", run.stderr);
    assert!(run.stderr.contains("setting log = \"debug\" (from DYNABUF_LOG)"), "{}", run.stderr);
    // The Khronos library's names for the same variables.
    let mut envs = file.env().to_vec();
    envs.extend([("VK_DYNABUF_DMABUF_LOG", "debug"), ("VK_DMABUF_STATS", "1")]);
    let run = self::run(&["log=off", "stats:bool32=0"], &envs);
    assert!(has_debug_lines(&run) && has_stats_line(&run), "{}", run.stderr);
}
