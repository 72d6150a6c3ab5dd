//! Device creation and destruction: logging what the layer attached to, and
//! the statistics summary.

use ash::vk::Handle;

use crate::dispatch::Device;
use crate::log::LogLevel;

pub fn created(dev: &Device) {
    let stats = if dev.state.stats.is_some() { ", statistics on" } else { "" };
    log_info!("attached to {} ({:#x}){stats}", dev.state.name, dev.handle.as_raw());
}

pub fn destroying(dev: &Device) {
    if let Some(stats) = &dev.state.stats {
        // Statistics were asked for: print them whatever the log level.
        crate::log::write(
            LogLevel::Info,
            format_args!("stats for {} ({:#x}): {}", dev.state.name, dev.handle.as_raw(), stats.line()),
        );
    }
    super::hazards::device_gone(dev);
    dev.state.shutdown_sync(dev);
    super::dma_bufs::device_gone(dev);
    log_debug!("detached from {} ({:#x})", dev.state.name, dev.handle.as_raw());
}
