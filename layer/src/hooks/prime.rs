//! Whose buffer an import is (`sys::prime`), where the device has a DRM
//! node: the layer PRIME-imports the dma-buf into the node, records the
//! verdict with the memory, and closes the GEM handle at once. Keeping it
//! would keep the kernel's attachment of the device to a foreign buffer
//! (mapped, pinned) for as long as the memory lives, which is exactly what
//! a dynamic attachment gives up when it is evicted.

use std::os::fd::AsFd;

use super::dma_bufs::Identified;
use crate::dispatch::Device;
use crate::sys::prime::{self, Whose};

/// Asks the kernel whose `id` is, for `dev`; `None` without a DRM node.
pub fn whose(dev: &Device, id: &Identified) -> Option<Whose> {
    let node = dev.state.drm.as_ref()?;
    let (handle, whose) = prime::whose(node, id.fd.as_fd(), &id.info.exporter, id.key.ino);
    if let Some(h) = handle {
        if let Err(e) = node.gem_close(h) {
            log_warn!("{}: closing the GEM handle of {}: {e}", dev.state.name, id.key);
        }
    }
    log_debug!(
        "{}: {} (exporter {}) on {}: {whose:?}",
        dev.state.name,
        id.key,
        id.info.exporter,
        node.path().display()
    );
    Some(whose)
}

/// Why DYNABUF_ATTACH=auto keeps an import pinned, if it is the device's own.
pub fn auto_keeps_pinned(whose: Option<Whose>) -> Option<&'static str> {
    let auto = crate::settings::get().attach == crate::settings::AttachMode::Auto;
    (auto && whose.is_some_and(Whose::is_local)).then_some(
        "it is the device's own buffer (PRIME self-import): DYNABUF_ATTACH=auto does not evict a local \
         buffer, there is nothing to gain",
    )
}
