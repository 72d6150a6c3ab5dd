//! Where the freshly built layer and the lavapipe driver are, and the
//! environment a child process needs to run under the layer, exactly as a
//! user would set it: `VK_LAYER_PATH` at the built manifest,
//! `VK_INSTANCE_LAYERS` naming the layer, `VK_DRIVER_FILES` at lavapipe.
//!
//! With `DYNABUF_TEST_VALIDATION=below` (read here, in the test process)
//! every child also runs the Khronos validation layer *below* dynabuf, so
//! validation sees exactly what dynabuf sends the driver; [`validation`]
//! reads its messages and says which ones validation alone would not
//! produce. Skipped tests are recorded with [`record_skip`].

pub mod validation;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The layer's name.
pub const LAYER_NAME: &str = "VK_LAYER_DYNABUF_dmabuf";
/// The manifest the layer's build writes next to the library.
pub const MANIFEST: &str = "VkLayer_dynabuf.json";

/// The directory holding the built layer and its manifest:
/// `DYNABUF_LAYER_DIR` if set, else the cargo profile directory this
/// executable was built into (`target/<profile>`).
pub fn layer_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("DYNABUF_LAYER_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    exe.ancestors()
        .skip(1)
        .take(3)
        .find(|d| d.join(MANIFEST).is_file())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| exe.parent().map(Path::to_path_buf).unwrap_or_default())
}

/// Whether the layer has been built where [`layer_dir`] looks.
pub fn layer_built() -> bool {
    layer_dir().join(MANIFEST).is_file() && layer_dir().join("libVkLayer_dynabuf.so").is_file()
}

/// The driver manifest to use: `DYNABUF_TEST_ICD` if set, else lavapipe's.
pub fn driver_files() -> Option<PathBuf> {
    if let Some(icd) = std::env::var_os("DYNABUF_TEST_ICD") {
        return Some(PathBuf::from(icd));
    }
    let dir = Path::new("/usr/share/vulkan/icd.d");
    let mut found: Vec<_> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("lvp_icd")))
        .collect();
    found.sort();
    found.into_iter().next()
}

/// Whether a child runs with the layer enabled through the environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    On,
    Off,
}

/// The Khronos validation layer's name.
pub const VALIDATION_LAYER: &str = "VK_LAYER_KHRONOS_validation";
/// Its manifest's file name.
pub const VALIDATION_MANIFEST: &str = "VkLayer_khronos_validation.json";
/// The test knob that runs children with the validation layer.
pub const VALIDATION_KNOB: &str = "DYNABUF_TEST_VALIDATION";

/// Whether children run with the Khronos validation layer
/// (`DYNABUF_TEST_VALIDATION`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validation {
    /// No validation layer (unset, empty or `off`): the default.
    Off,
    /// `below`: validation below dynabuf for [`Layer::On`]
    /// (`VK_INSTANCE_LAYERS=VK_LAYER_DYNABUF_dmabuf:VK_LAYER_KHRONOS_validation`,
    /// the first named is nearest the application), validation alone for
    /// [`Layer::Off`] (the control).
    Below,
    /// `alone`: validation alone for every child, also where a test asks
    /// for the layer. Only for re-measuring [`validation::ALLOWLIST`]:
    /// tests that check the layer's work fail by design in this mode, each
    /// naming the messages validation alone reported for its clients.
    Alone,
}

impl Validation {
    /// `DYNABUF_TEST_VALIDATION` of this (the test) process. Panics on a
    /// value it does not know, so a typo cannot turn validation off.
    pub fn from_env() -> Validation {
        let value = std::env::var(VALIDATION_KNOB).unwrap_or_default();
        match value.trim() {
            "" | "off" => Validation::Off,
            "below" => Validation::Below,
            "alone" => Validation::Alone,
            other => panic!("{VALIDATION_KNOB}={other:?}: expected `off`, `below` or `alone`"),
        }
    }

    /// Whether the validation layer runs in children.
    pub fn enabled(self) -> bool {
        self != Validation::Off
    }
}

/// The directories the loader searches for explicit layers when
/// `VK_LAYER_PATH` is not set. The tests always set it (at the built
/// layer), and then the loader searches nothing else, so the validation
/// layer's own directory has to be added to it.
fn system_explicit_layer_dirs() -> Vec<PathBuf> {
    let data_dirs = std::env::var("XDG_DATA_DIRS")
        .ok()
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "/usr/local/share:/usr/share".into());
    let mut dirs: Vec<PathBuf> =
        std::env::split_paths(&data_dirs).map(|d| d.join("vulkan/explicit_layer.d")).collect();
    dirs.push(PathBuf::from("/etc/vulkan/explicit_layer.d"));
    dirs
}

/// The directory holding the Khronos validation layer's manifest, if the
/// layer is installed (Debian: package `vulkan-validationlayers`).
pub fn validation_layer_dir() -> Option<PathBuf> {
    system_explicit_layer_dirs().into_iter().find(|d| d.join(VALIDATION_MANIFEST).is_file())
}

/// The settings file's text: see [`validation_settings_dir`]. A test that
/// points `VK_LAYER_SETTINGS_PATH` at a file of its own puts these lines in
/// it too when validation runs.
pub const VALIDATION_SETTINGS: &str = "\
# Written by dynabuf's tests (DYNABUF_TEST_VALIDATION): the Khronos validation
# layer logs to each process's own stderr; every other setting keeps its default.
khronos_validation.debug_action = VK_DBG_LAYER_ACTION_LOG_MSG
khronos_validation.log_filename = /proc/self/fd/2
";

/// A directory holding a `vk_layer_settings.txt` for the validation layer
/// (`VK_LAYER_SETTINGS_PATH`): its messages go to each process's own
/// stderr (`/proc/self/fd/2`, which the validation layer opens anew in
/// every process) instead of stdout, where the clients print the
/// `key=value` lines and line protocols the tests read. One log file per
/// spawn would not do: a client's own children (`pingpong` spawns its
/// peer) inherit the environment and would truncate and overwrite each
/// other's messages; a pipe keeps every process's. Debian 12's validation
/// layer (1.3.239) reads `log_filename` only from this file, not from the
/// environment. Everything else keeps validation's defaults (errors only;
/// the default checks). dynabuf reads only `dynabuf_dmabuf.*` keys from
/// the same file, so it changes nothing for the layer under test.
pub fn validation_settings_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // One directory per user, written anew by every test process: the
        // text never changes, and a rename replaces it whole under readers.
        // SAFETY: getuid cannot fail and touches no memory.
        let uid = unsafe { libc::getuid() };
        let dir = std::env::temp_dir().join(format!("dynabuf-test-validation-{uid}"));
        let file = dir.join("vk_layer_settings.txt");
        let fresh = dir.join(format!("vk_layer_settings.txt.{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .and_then(|_| std::fs::write(&fresh, VALIDATION_SETTINGS))
            .and_then(|_| std::fs::rename(&fresh, &file))
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", file.display()));
        dir
    })
    .clone()
}

/// What `VK_INSTANCE_LAYERS` names for `layer` under `validation` (the
/// first named is nearest the application); `None`: no layer.
pub fn instance_layers(layer: Layer, validation: Validation) -> Option<String> {
    match (layer, validation) {
        (Layer::On, Validation::Off) => Some(LAYER_NAME.to_string()),
        (Layer::On, Validation::Below) => Some(format!("{LAYER_NAME}:{VALIDATION_LAYER}")),
        (Layer::Off, Validation::Off) => None,
        (_, Validation::Below | Validation::Alone) => Some(VALIDATION_LAYER.to_string()),
    }
}

/// Sets up `cmd`'s Vulkan environment: lavapipe (or `DYNABUF_TEST_ICD`),
/// the built layer on `VK_LAYER_PATH`, and `VK_INSTANCE_LAYERS` when
/// `layer` is on, with the validation layer as `DYNABUF_TEST_VALIDATION`
/// says. Any `DYNABUF_*` of the parent is removed (but the test knobs this
/// process interprets), so each test says what it sets. Mesa's implicit
/// device-select layer is turned off so the layer under test is the only
/// one (with validation: the only two).
pub fn vulkan_env(cmd: &mut Command, layer: Layer) -> &mut Command {
    vulkan_env_with(cmd, layer, Validation::from_env())
}

/// As [`vulkan_env`], with the validation mode given. Panics, naming the
/// package, when validation is asked for and not installed: a run that
/// silently went without validation would pass vacuously.
pub fn vulkan_env_with(cmd: &mut Command, layer: Layer, validation: Validation) -> &mut Command {
    const KEPT: &[&str] = &["DYNABUF_LAYER_DIR", "DYNABUF_TEST_ICD", VALIDATION_KNOB];
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("DYNABUF_") && !KEPT.iter().any(|kept| k == *kept) {
            cmd.env_remove(k);
        }
    }
    if let Some(icd) = driver_files() {
        cmd.env("VK_DRIVER_FILES", icd);
    }
    let mut layer_path = vec![layer_dir()];
    if validation.enabled() {
        let dir = validation_layer_dir().unwrap_or_else(|| {
            panic!(
                "{VALIDATION_KNOB}: validation {validation:?} asked for, but the Khronos validation layer is \
                 not installed (no {VALIDATION_MANIFEST} in {:?}): install the package \
                 vulkan-validationlayers (scripts/setup-host.sh does)",
                system_explicit_layer_dirs()
            )
        });
        layer_path.push(dir);
        cmd.env("VK_LAYER_SETTINGS_PATH", validation_settings_dir());
    }
    let layer_path = std::env::join_paths(layer_path).expect("layer directories without ':'");
    cmd.env("VK_LAYER_PATH", layer_path).env("NODEVICE_SELECT", "1").env_remove("VK_LOADER_DEBUG");
    match instance_layers(layer, validation) {
        Some(layers) => cmd.env("VK_INSTANCE_LAYERS", layers),
        None => cmd.env_remove("VK_INSTANCE_LAYERS"),
    }
}

/// Records a skipped test: one line `SUITE::TEST: REASON` appended to the
/// file `DYNABUF_SKIP_LOG` names (if set), so a run can count its skips
/// and `scripts/test.sh` can fail on one it does not expect. A failure to
/// write is said on stderr, never ignored silently.
pub fn record_skip(suite: &str, test: &str, reason: &str) {
    let Some(path) = std::env::var_os("DYNABUF_SKIP_LOG").filter(|p| !p.is_empty()) else {
        return;
    };
    let line = format!("{suite}::{test}: {}\n", reason.replace('\n', " "));
    // One write of the whole line with O_APPEND: concurrent tests' lines stay whole.
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = written {
        eprintln!("cannot record the skip of {suite}::{test} in {}: {e}", Path::new(&path).display());
    }
}

/// Sets this process's own Vulkan environment (for in-process clients such
/// as the benchmark, which enable the layer by name per instance).
pub fn set_process_env() {
    if let Some(icd) = driver_files() {
        std::env::set_var("VK_DRIVER_FILES", icd);
    }
    std::env::set_var("VK_LAYER_PATH", layer_dir());
    std::env::set_var("NODEVICE_SELECT", "1");
    std::env::remove_var("VK_INSTANCE_LAYERS");
}
