//! `/sys/kernel/debug/dma_buf/bufinfo`: the kernel's list of every dma-buf
//! with its exporter and the devices attached to it (debugfs, readable by
//! root where debugfs is mounted). The one place userspace can see which
//! devices the kernel attached to a buffer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

/// The default path of the list.
pub const BUFINFO: &str = "/sys/kernel/debug/dma_buf/bufinfo";

/// One dma-buf of the list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BufInfo {
    pub size: u64,
    pub exporter: String,
    /// `dev_name()` of each attached device (e.g. `0000:00:02.0`, `vgem`).
    pub attached: Vec<String>,
}

/// Parses the list: per inode, the buffer. A buffer's line is
/// `size\tflags\tmode\tcount\texp_name\tino\tname`, followed by fence lines,
/// `\tAttached Devices:`, one `\t<device>` line each, and `Total N devices
/// attached`.
pub fn parse(text: &str) -> HashMap<u64, BufInfo> {
    let mut out = HashMap::new();
    let mut current: Option<(u64, BufInfo)> = None;
    let mut in_devices = false;
    for line in text.lines() {
        if let Some(device) = line.strip_prefix('\t') {
            if device == "Attached Devices:" {
                in_devices = true;
            } else if in_devices {
                if let Some((_, b)) = current.as_mut() {
                    b.attached.push(device.trim().to_string());
                }
            }
            continue;
        }
        in_devices = false;
        let fields: Vec<&str> = line.split('\t').collect();
        let parsed = (fields.len() >= 6)
            .then(|| Some((fields[0].trim().parse().ok()?, fields[5].trim().parse().ok()?)))
            .flatten();
        if let Some((size, ino)) = parsed {
            if let Some((i, b)) = current.take() {
                out.insert(i, b);
            }
            current =
                Some((ino, BufInfo { size, exporter: fields[4].trim().to_string(), attached: Vec::new() }));
        }
    }
    if let Some((i, b)) = current {
        out.insert(i, b);
    }
    out
}

/// The dma-buf with inode `ino`, if the list can be read and holds it.
/// A list that could not be opened (no debugfs, not root) is not tried
/// again by this process.
pub fn read(ino: u64) -> Option<BufInfo> {
    static UNREADABLE: AtomicBool = AtomicBool::new(false);
    if UNREADABLE.load(Ordering::Relaxed) {
        return None;
    }
    let Ok(text) = std::fs::read_to_string(BUFINFO) else {
        UNREADABLE.store(true, Ordering::Relaxed);
        return None;
    };
    parse(&text).remove(&ino)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The format of Linux 6.12's `dma_buf_debug_show`.
    const SAMPLE: &str = "\nDma-buf Objects:\n\
size    \tflags   \tmode    \tcount   \texp_name\tino     \tname\n\
00004096\t00000002\t00080007\t00000003\tdrm\t00000042\t\n\
\tAttached Devices:\n\
Total 0 devices attached\n\n\
00065536\t00000002\t00080007\t00000004\tudmabuf\t00000043\tframes\n\
\tfence: vgem vgem-timeline seq 1 unsignalled\n\
\tAttached Devices:\n\
\t0000:00:02.0\n\
\tvgem\n\
Total 2 devices attached\n\n\
\nTotal 2 objects, 69632 bytes\n";

    #[test]
    fn buffers_exporters_and_attached_devices_are_read() {
        let list = parse(SAMPLE);
        assert_eq!(list.len(), 2);
        assert_eq!(list[&42], BufInfo { size: 4096, exporter: "drm".into(), attached: vec![] });
        assert_eq!(list[&43].exporter, "udmabuf");
        assert_eq!(list[&43].attached, vec!["0000:00:02.0".to_string(), "vgem".to_string()]);
        assert!(parse("garbage\n\tAttached Devices:\n\tx\n").is_empty());
    }
}
