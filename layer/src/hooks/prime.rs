//! Whose buffer an import is (`sys::prime`), where the device has a DRM
//! node: the layer PRIME-imports the dma-buf into a DRM file of its own on
//! the node and closes it at once. Keeping the handle would keep the
//! kernel's attachment of the device to a foreign buffer (mapped, pinned)
//! for as long as the memory lives, which is exactly what a dynamic
//! attachment gives up when it is evicted.

use std::os::fd::AsFd;

use super::dma_bufs::Identified;
use crate::dispatch::Device;
use crate::sys::prime::{self, Whose};

/// Asks the kernel whose `id` is, for `dev`; `None` without a DRM node.
pub fn whose(dev: &Device, id: &Identified) -> Option<Whose> {
    let node = dev.state.drm.as_ref()?;
    let whose = prime::whose(node.path(), id.fd.as_fd(), &id.info.exporter, id.key.ino);
    log_debug!(
        "{}: {} (exporter {}) on {}: {whose:?}",
        dev.state.name,
        id.key,
        id.info.exporter,
        node.path().display()
    );
    Some(whose)
}

/// Why DYNABUF_ATTACH=auto keeps an import pinned, if it is the device's
/// own. Asked only under `auto` (the PRIME import and debugfs read cost an
/// ioctl or two and a read of every dma-buf in the system).
pub fn auto_keeps_pinned(dev: &Device, id: &Identified) -> Option<&'static str> {
    if crate::settings::get().attach != crate::settings::AttachMode::Auto {
        return None;
    }
    whose(dev, id).is_some_and(Whose::is_local).then_some(
        "it is the device's own buffer (PRIME self-import): DYNABUF_ATTACH=auto does not evict a local \
         buffer, there is nothing to gain",
    )
}
