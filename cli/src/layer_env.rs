//! Finding the layer and the loader environment that enables it for one
//! child process: no install and nothing for the user to remember.
//!
//! The manifest is looked for, in order: next to this executable (a build
//! tree: `target/<profile>/VkLayer_dynabuf.json`, which the layer's
//! build.rs writes there), in the prefix this executable was installed into
//! (`PREFIX/bin/dynabuf` → `PREFIX/share/vulkan/explicit_layer.d/`, where
//! `scripts/install.sh` writes it), then in the loader's own search
//! directories (an install elsewhere). A manifest whose library is missing
//! is passed over.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The layer's name.
pub const LAYER_NAME: &str = "VK_LAYER_DYNABUF_dmabuf";
/// The manifest's file name, in a build tree and where installed.
pub const MANIFEST: &str = "VkLayer_dynabuf.json";

/// Where a manifest was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Next to this executable (a build tree).
    BesideExe,
    /// The prefix this executable is installed in.
    InstallPrefix,
    /// One of the loader's search directories.
    LoaderSearchPath,
}

impl Source {
    pub fn describe(self) -> &'static str {
        match self {
            Source::BesideExe => "next to the dynabuf executable",
            Source::InstallPrefix => "in the prefix dynabuf is installed in",
            Source::LoaderSearchPath => "in the loader's search path (installed)",
        }
    }
}

/// A usable manifest: its library exists.
#[derive(Clone, Debug)]
pub struct Found {
    pub manifest: PathBuf,
    pub library: PathBuf,
    pub source: Source,
}

impl Found {
    fn dir(&self) -> &Path {
        self.manifest.parent().unwrap_or(Path::new("."))
    }
}

/// The loader's explicit-layer search directories on Linux, in its order
/// (`$XDG_CONFIG_HOME`, `$XDG_CONFIG_DIRS`, `/etc`, `$XDG_DATA_HOME`,
/// `$XDG_DATA_DIRS`, each with `vulkan/explicit_layer.d`), as the
/// environment `env` gives them.
pub fn loader_search_dirs(env: impl Fn(&str) -> Option<OsString>) -> Vec<PathBuf> {
    let var = |k: &str| env(k).filter(|v| !v.is_empty());
    let home = var("HOME").map(PathBuf::from);
    let mut bases: Vec<PathBuf> = Vec::new();
    match (var("XDG_CONFIG_HOME"), &home) {
        (Some(d), _) => bases.push(d.into()),
        (None, Some(h)) => bases.push(h.join(".config")),
        (None, None) => {}
    }
    let config_dirs = var("XDG_CONFIG_DIRS").unwrap_or_else(|| "/etc/xdg".into());
    bases.extend(std::env::split_paths(&config_dirs));
    bases.push("/etc".into());
    match (var("XDG_DATA_HOME"), &home) {
        (Some(d), _) => bases.push(d.into()),
        (None, Some(h)) => bases.push(h.join(".local/share")),
        (None, None) => {}
    }
    let data_dirs = var("XDG_DATA_DIRS").unwrap_or_else(|| "/usr/local/share:/usr/share".into());
    bases.extend(std::env::split_paths(&data_dirs));
    bases.into_iter().filter(|b| b.is_absolute()).map(|b| b.join("vulkan/explicit_layer.d")).collect()
}

/// The library a manifest names, resolved against the manifest's directory
/// (relative paths) or as given (absolute; a bare file name is left to the
/// dynamic linker, so it is taken as found).
fn library_of(manifest: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(manifest).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    let library = json.get("layer")?.get("library_path")?.as_str()?;
    let path = Path::new(library);
    if path.components().count() == 1 {
        return Some(path.to_path_buf());
    }
    let full = if path.is_absolute() {
        path.to_path_buf()
    } else {
        manifest.parent()?.join(path.strip_prefix("./").unwrap_or(path))
    };
    full.is_file().then_some(full)
}

/// The manifest at `path`, if it is one with its library.
fn usable(path: PathBuf, source: Source) -> Option<Found> {
    if !path.is_file() {
        return None;
    }
    let library = library_of(&path)?;
    Some(Found { manifest: path, library, source })
}

/// Candidates next to `exe` (a build tree, an install prefix).
fn beside(exe: &Path) -> Vec<(PathBuf, Source)> {
    let Some(dir) = exe.parent() else { return Vec::new() };
    let mut out = vec![(dir.join(MANIFEST), Source::BesideExe)];
    if let Some(prefix) = dir.parent() {
        out.push((prefix.join("share/vulkan/explicit_layer.d").join(MANIFEST), Source::InstallPrefix));
    }
    out
}

/// The layer's manifest as `run` uses it: next to this executable first,
/// then where the loader looks (with the user's `VK_LAYER_PATH` and
/// `VK_ADD_LAYER_PATH`).
pub fn find() -> Option<Found> {
    let exe = std::env::current_exe().ok();
    let near = exe.as_deref().map(beside).unwrap_or_default();
    near.into_iter().chain(find_installed_candidates()).find_map(|(p, s)| usable(p, s))
}

/// Where the loader looks under `env`: `VK_ADD_LAYER_PATH`, then
/// `VK_LAYER_PATH` if set (it replaces the standard directories), else the
/// standard directories.
pub fn effective_search_dirs(env: impl Fn(&str) -> Option<OsString>) -> Vec<PathBuf> {
    let split = |v: Option<OsString>| -> Vec<PathBuf> {
        v.filter(|v| !v.is_empty()).map(|v| std::env::split_paths(&v).collect()).unwrap_or_default()
    };
    let mut dirs = split(env("VK_ADD_LAYER_PATH"));
    match env("VK_LAYER_PATH").filter(|v| !v.is_empty()) {
        Some(p) => dirs.extend(split(Some(p))),
        None => dirs.extend(loader_search_dirs(&env)),
    }
    dirs
}

fn find_installed_candidates() -> Vec<(PathBuf, Source)> {
    effective_search_dirs(|k| std::env::var_os(k))
        .into_iter()
        .map(|d| (d.join(MANIFEST), Source::LoaderSearchPath))
        .collect()
}

/// The layer's manifest in the loader's standard directories (installed),
/// whatever `VK_LAYER_PATH` says.
pub fn find_installed() -> Option<Found> {
    loader_search_dirs(|k| std::env::var_os(k))
        .into_iter()
        .find_map(|d| usable(d.join(MANIFEST), Source::LoaderSearchPath))
}

/// Every place [`find`] looks, for the message when it finds nothing.
pub fn searched() -> Vec<PathBuf> {
    let exe = std::env::current_exe().ok();
    let near = exe.as_deref().map(beside).unwrap_or_default();
    near.into_iter().chain(find_installed_candidates()).map(|(p, _)| p).collect()
}

/// `dir` first in a `:`-separated list, the rest kept.
fn prepend_path(dir: &Path, existing: Option<&OsStr>) -> OsString {
    let mut dirs = vec![dir.to_path_buf()];
    if let Some(existing) = existing.filter(|e| !e.is_empty()) {
        dirs.extend(std::env::split_paths(existing).filter(|d| d != dir));
    }
    std::env::join_paths(dirs).unwrap_or_else(|_| dir.as_os_str().to_owned())
}

/// `VK_INSTANCE_LAYERS` with the layer first (nearest the application) and
/// the layers the user already listed after it, in their order.
pub fn instance_layers(existing: Option<&OsStr>) -> OsString {
    let existing = existing.map(|e| e.to_string_lossy().into_owned()).unwrap_or_default();
    let mut layers = vec![LAYER_NAME.to_string()];
    layers.extend(existing.split(':').filter(|l| !l.is_empty() && *l != LAYER_NAME).map(str::to_string));
    layers.join(":").into()
}

/// Sets `cmd`'s loader environment so that it loads the layer from
/// `found`, starting from `env` (this process's environment, or a changed
/// copy). A user's `VK_LAYER_PATH` (which replaces the loader's search
/// path) gets the manifest's directory first; otherwise it goes into
/// `VK_ADD_LAYER_PATH`, unless the loader searches there anyway.
pub fn enable(cmd: &mut Command, found: &Found, env: impl Fn(&str) -> Option<OsString>) {
    let dir = found.dir();
    if let Some(layer_path) = env("VK_LAYER_PATH").filter(|p| !p.is_empty()) {
        cmd.env("VK_LAYER_PATH", prepend_path(dir, Some(&layer_path)));
    } else if found.source != Source::LoaderSearchPath {
        cmd.env("VK_ADD_LAYER_PATH", prepend_path(dir, env("VK_ADD_LAYER_PATH").as_deref()));
    }
    cmd.env("VK_INSTANCE_LAYERS", instance_layers(env("VK_INSTANCE_LAYERS").as_deref()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layer_goes_first_and_the_users_layers_stay_after_it() {
        assert_eq!(instance_layers(None), LAYER_NAME);
        let user = OsString::from("VK_LAYER_KHRONOS_validation:VK_LAYER_DYNABUF_dmabuf:VK_LAYER_X");
        assert_eq!(
            instance_layers(Some(&user)),
            "VK_LAYER_DYNABUF_dmabuf:VK_LAYER_KHRONOS_validation:VK_LAYER_X"
        );
        let p = prepend_path(Path::new("/a"), Some(OsStr::new("/b:/a:/c")));
        assert_eq!(p, "/a:/b:/c");
        assert_eq!(prepend_path(Path::new("/a"), Some(OsStr::new(""))), "/a");
    }

    #[test]
    fn search_dirs_follow_the_loaders_order_and_defaults() {
        let env = |k: &str| match k {
            "HOME" => Some(OsString::from("/home/u")),
            "XDG_DATA_DIRS" => Some(OsString::from("/opt/share:relative")),
            _ => None,
        };
        let dirs = loader_search_dirs(env);
        let layer_path = |k: &str| match k {
            "VK_LAYER_PATH" => Some(OsString::from("/l1:/l2")),
            "VK_ADD_LAYER_PATH" => Some(OsString::from("/add")),
            _ => env(k),
        };
        let effective: Vec<PathBuf> = ["/add", "/l1", "/l2"].iter().map(PathBuf::from).collect();
        assert_eq!(effective_search_dirs(layer_path), effective);
        assert_eq!(effective_search_dirs(env)[0], Path::new("/home/u/.config/vulkan/explicit_layer.d"));
        let want: Vec<PathBuf> =
            ["/home/u/.config", "/etc/xdg", "/etc", "/home/u/.local/share", "/opt/share"]
                .iter()
                .map(|b| Path::new(b).join("vulkan/explicit_layer.d"))
                .collect();
        assert_eq!(dirs, want);
    }

    #[test]
    fn a_manifest_without_its_library_is_passed_over() {
        let dir = std::env::temp_dir().join(format!("dynabuf-cli-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let manifest = dir.join(MANIFEST);
        std::fs::write(&manifest, r#"{"layer": {"library_path": "./libVkLayer_dynabuf.so"}}"#).unwrap();
        assert!(usable(manifest.clone(), Source::BesideExe).is_none());
        std::fs::write(dir.join("libVkLayer_dynabuf.so"), b"").unwrap();
        let found = usable(manifest, Source::BesideExe).unwrap();
        assert_eq!(found.library, dir.join("libVkLayer_dynabuf.so"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
