//! Device creation and destruction: logging what the layer attached to, and
//! the statistics summary.

use crate::dispatch::Device;

pub fn created(dev: &Device) {
    log_info!(
        "attached to device {:#x} ({}){}",
        ash::vk::Handle::as_raw(dev.handle),
        dev.state.name,
        if dev.state.stats.is_some() {
            ", statistics on"
        } else {
            ""
        }
    );
}

pub fn destroying(dev: &Device) {
    if let Some(stats) = &dev.state.stats {
        // Statistics were asked for: print them even when the log level
        // would hide info lines.
        let line = format!(
            "stats for device {:#x} ({}): {}",
            ash::vk::Handle::as_raw(dev.handle),
            dev.state.name,
            stats.line()
        );
        if crate::log::enabled(crate::config::LogLevel::Info) {
            log_info!("{line}");
        } else {
            crate::log::write(crate::config::LogLevel::Info, format_args!("{line}"));
        }
    }
    log_debug!(
        "detached from device {:#x} ({})",
        ash::vk::Handle::as_raw(dev.handle),
        dev.state.name
    );
}
