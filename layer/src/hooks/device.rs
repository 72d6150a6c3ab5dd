//! Device creation and destruction: logging what the layer attached to, and
//! the statistics: the summary line and the stats file.

use ash::vk::Handle;

use crate::dispatch::Device;
use crate::log::LogLevel;

pub fn created(dev: &Device) {
    let stats = if dev.state.stats.is_some() { ", statistics on" } else { "" };
    log_info!("attached to {} ({:#x}){stats}", dev.state.name, dev.handle.as_raw());
    if let Some(path) = &dev.state.stats_file {
        let interval = std::time::Duration::from_millis(dev.state.stats_interval_ms);
        dev.state.start_stats_file(path.clone(), interval);
    }
}

pub fn destroying(dev: &Device) {
    super::hazards::device_going(dev);
    dev.state.shutdown_sync(dev);
    super::hazards::device_gone(dev);
    // After the device's last hazards and the engine's threads: their last
    // reports and fence waits count.
    dev.state.finish_stats_file();
    if let (Some(stats), true) = (&dev.state.stats, dev.state.stats_line) {
        // Statistics were asked for: print them whatever the log level.
        crate::log::write(
            LogLevel::Info,
            format_args!("stats for {} ({:#x}): {}", dev.state.name, dev.handle.as_raw(), stats.line()),
        );
    }
    super::dma_bufs::device_gone(dev);
    log_debug!("detached from {} ({:#x})", dev.state.name, dev.handle.as_raw());
}
