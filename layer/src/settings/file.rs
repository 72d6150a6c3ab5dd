//! `vk_layer_settings.txt`: where it is found and what it says for this
//! layer. The search is the Khronos layers' (Vulkan-Utility-Libraries,
//! `LayerSettings::FindSettingsFile`, Linux), first found wins:
//!
//! 1. `$XDG_DATA_HOME/vulkan/settings.d/vk_layer_settings.txt` (or
//!    `$HOME/.local/share/...` without `XDG_DATA_HOME`), if it is a regular
//!    file: where Vulkan Configurator writes the settings it applies, so it
//!    wins over the variable below while Configurator is in use;
//! 2. `VK_LAYER_SETTINGS_PATH`, if that path exists: a directory holding
//!    `vk_layer_settings.txt`, or the file itself;
//! 3. `vk_layer_settings.txt` in the working directory.
//!
//! A line is `<key> = <value>`; `#` starts a comment. This layer's keys
//! are `dynabuf_dmabuf.<setting>` (the layer's name without `VK_LAYER_`,
//! lower case, as the library derives them); other layers' are skipped.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The prefix of this layer's keys in `vk_layer_settings.txt`.
pub const SETTINGS_FILE_PREFIX: &str = "dynabuf_dmabuf.";

/// The settings file's name.
const FILE_NAME: &str = "vk_layer_settings.txt";

/// What a path names, for [`locate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathKind {
    Missing,
    File,
    Directory,
    /// Exists, but is neither (a device, a socket).
    Other,
}

/// What `path` names on this system.
pub fn path_kind(path: &Path) -> PathKind {
    match std::fs::metadata(path) {
        Err(_) => PathKind::Missing,
        Ok(m) if m.is_file() => PathKind::File,
        Ok(m) if m.is_dir() => PathKind::Directory,
        Ok(_) => PathKind::Other,
    }
}

/// Where the settings file is, by the search above; `env` looks up a
/// variable (unset or empty: `None`) and `kind` says what a path names.
pub fn locate(env: impl Fn(&str) -> Option<String>, kind: impl Fn(&Path) -> PathKind) -> PathBuf {
    let env = |name: &str| env(name).filter(|v| !v.is_empty());
    let data_home = env("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| Path::new(&h).join(".local/share")));
    if let Some(home_file) = data_home.map(|d| d.join("vulkan/settings.d").join(FILE_NAME)) {
        if kind(&home_file) == PathKind::File {
            return home_file;
        }
    }
    if let Some(path) = env("VK_LAYER_SETTINGS_PATH").map(PathBuf::from) {
        match kind(&path) {
            PathKind::Missing => {}
            PathKind::Directory => return path.join(FILE_NAME),
            PathKind::File | PathKind::Other => return path,
        }
    }
    PathBuf::from(FILE_NAME)
}

/// Parses `vk_layer_settings.txt` text into this layer's `key → value`
/// pairs, keys without the prefix (other layers' keys and `#` comments are
/// skipped; a later line wins over an earlier one, as in the library).
pub fn parse_settings_file(text: &str) -> HashMap<String, String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter_map(|l| l.split_once('='))
        .filter_map(|(k, v)| {
            let k = k.trim().strip_prefix(SETTINGS_FILE_PREFIX)?;
            Some((k.to_string(), v.trim().to_string()))
        })
        .collect()
}

/// The process's settings file (its path) and this layer's pairs in it
/// (none if it can't be read).
pub fn load() -> (PathBuf, HashMap<String, String>) {
    let path = locate(|k| std::env::var(k).ok(), path_kind);
    let pairs = std::fs::read_to_string(&path).map(|t| parse_settings_file(&t)).unwrap_or_default();
    (path, pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        let pairs = pairs.to_vec();
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    fn fs_of(entries: &[(&'static str, PathKind)]) -> impl Fn(&Path) -> PathKind {
        let entries = entries.to_vec();
        move |p| entries.iter().find(|(n, _)| Path::new(n) == p).map_or(PathKind::Missing, |(_, k)| *k)
    }

    #[test]
    fn the_prefix_is_the_layer_name_as_the_khronos_library_derives_it() {
        let name = crate::LAYER_NAME.to_str().unwrap();
        let derived = format!("{}.", name.strip_prefix("VK_LAYER_").unwrap().to_ascii_lowercase());
        assert_eq!(derived, SETTINGS_FILE_PREFIX);
    }

    #[test]
    fn configurator_file_then_the_variable_then_the_working_directory() {
        let vkconfig = "/home/u/.local/share/vulkan/settings.d/vk_layer_settings.txt";
        let env = env_of(&[("HOME", "/home/u"), ("VK_LAYER_SETTINGS_PATH", "/etc/dynabuf")]);
        let fs = fs_of(&[(vkconfig, PathKind::File), ("/etc/dynabuf", PathKind::Directory)]);
        assert_eq!(locate(&env, &fs), Path::new(vkconfig));
        let fs = fs_of(&[("/etc/dynabuf", PathKind::Directory)]);
        assert_eq!(locate(&env, &fs), Path::new("/etc/dynabuf/vk_layer_settings.txt"));
        let fs = fs_of(&[("/etc/dynabuf", PathKind::File)]);
        assert_eq!(locate(&env, &fs), Path::new("/etc/dynabuf"));
        assert_eq!(locate(&env, fs_of(&[])), Path::new("vk_layer_settings.txt"));
    }

    #[test]
    fn xdg_data_home_replaces_home() {
        let env = env_of(&[("HOME", "/home/u"), ("XDG_DATA_HOME", "/data")]);
        let fs = fs_of(&[
            ("/data/vulkan/settings.d/vk_layer_settings.txt", PathKind::File),
            ("/home/u/.local/share/vulkan/settings.d/vk_layer_settings.txt", PathKind::File),
        ]);
        assert_eq!(locate(&env, &fs), Path::new("/data/vulkan/settings.d/vk_layer_settings.txt"));
        // A directory of that name is not the file.
        let fs = fs_of(&[("/data/vulkan/settings.d/vk_layer_settings.txt", PathKind::Directory)]);
        assert_eq!(locate(&env, &fs), Path::new("vk_layer_settings.txt"));
    }

    #[test]
    fn comments_other_layers_and_spaces() {
        let file = parse_settings_file(
            "# comment\nkhronos_validation.debug_action = VK_DBG_LAYER_ACTION_LOG_MSG\n\
             dynabuf_dmabuf.log = debug # trailing\ndynabuf_dmabuf.stats=1\ndynabuf_dmabuf.stats = 0\n",
        );
        assert_eq!(file.len(), 2);
        assert_eq!(file["log"], "debug");
        assert_eq!(file["stats"], "0");
    }
}
