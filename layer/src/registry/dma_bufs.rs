//! The process-wide view of dma-bufs: one entry per dma-buf (keyed by
//! its inode), each with its *attachments* (one per importing device and
//! memory object) and its *exporter*.

use std::collections::HashMap;

/// A dma-buf's key: `(st_dev, st_ino)` of any fd for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DmaBufKey {
    pub dev: u64,
    pub ino: u64,
}

impl std::fmt::Display for DmaBufKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "dma-buf {}:{}", self.dev, self.ino)
    }
}

/// One memory object of one device: the device by its handle value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AttachmentRef {
    pub device: u64,
    pub memory: u64,
}

/// What fdinfo says of the buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DmaBufInfo {
    pub size: u64,
    pub exporter: String,
    pub name: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DmaBuf {
    pub info: DmaBufInfo,
    pub attachments: Vec<AttachmentRef>,
    /// The memory object it was exported from, when this process exported it.
    pub exported_by: Option<AttachmentRef>,
}

impl DmaBuf {
    fn is_unused(&self) -> bool {
        self.attachments.is_empty() && self.exported_by.is_none()
    }
}

#[derive(Debug, Default)]
pub struct DmaBufRegistry {
    buffers: HashMap<DmaBufKey, DmaBuf>,
}

impl DmaBufRegistry {
    pub fn len(&self) -> usize {
        self.buffers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buffers.is_empty()
    }

    pub fn get(&self, key: DmaBufKey) -> Option<&DmaBuf> {
        self.buffers.get(&key)
    }

    fn entry(&mut self, key: DmaBufKey, info: DmaBufInfo) -> &mut DmaBuf {
        self.buffers.entry(key).or_insert_with(|| DmaBuf { info, attachments: Vec::new(), exported_by: None })
    }

    /// An import: `at` is attached to the buffer.
    pub fn attach(&mut self, key: DmaBufKey, info: DmaBufInfo, at: AttachmentRef) {
        let b = self.entry(key, info);
        if !b.attachments.contains(&at) {
            b.attachments.push(at);
        }
    }

    /// An export through `vkGetMemoryFdKHR`: `at` is the exporter.
    pub fn exported(&mut self, key: DmaBufKey, info: DmaBufInfo, at: AttachmentRef) {
        self.entry(key, info).exported_by = Some(at);
    }

    /// `at`'s memory is freed: it is no longer an attachment or exporter of
    /// `key`; a buffer nobody holds any more is forgotten.
    pub fn release(&mut self, key: DmaBufKey, at: AttachmentRef) {
        let Some(b) = self.buffers.get_mut(&key) else { return };
        b.attachments.retain(|a| *a != at);
        if b.exported_by == Some(at) {
            b.exported_by = None;
        }
        if b.is_unused() {
            self.buffers.remove(&key);
        }
    }

    /// Forgets everything of one device (at `vkDestroyDevice`).
    pub fn device_destroyed(&mut self, device: u64) {
        self.buffers.retain(|_, b| {
            b.attachments.retain(|a| a.device != device);
            if b.exported_by.is_some_and(|e| e.device == device) {
                b.exported_by = None;
            }
            !b.is_unused()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> DmaBufInfo {
        DmaBufInfo { size: 4096, exporter: "udmabuf".into(), name: None }
    }
    const K: DmaBufKey = DmaBufKey { dev: 9, ino: 100 };
    const A: AttachmentRef = AttachmentRef { device: 1, memory: 10 };
    const B: AttachmentRef = AttachmentRef { device: 2, memory: 20 };

    #[test]
    fn one_buffer_for_several_devices() {
        let mut r = DmaBufRegistry::default();
        r.attach(K, info(), A);
        r.attach(K, info(), B);
        r.attach(K, info(), B);
        assert_eq!(r.len(), 1);
        assert_eq!(r.get(K).unwrap().attachments, vec![A, B]);
        r.release(K, A);
        assert_eq!(r.get(K).unwrap().attachments, vec![B]);
        r.release(K, B);
        assert!(r.is_empty());
    }

    #[test]
    fn an_exported_buffer_lives_while_its_exporter_does() {
        let mut r = DmaBufRegistry::default();
        r.exported(K, info(), A);
        r.attach(K, info(), B);
        r.release(K, B);
        assert_eq!(r.get(K).unwrap().exported_by, Some(A));
        r.release(K, A);
        assert!(r.is_empty());
    }

    #[test]
    fn destroying_a_device_drops_only_its_part() {
        let mut r = DmaBufRegistry::default();
        let other = DmaBufKey { dev: 9, ino: 200 };
        r.attach(K, info(), A);
        r.attach(K, info(), B);
        r.exported(other, info(), A);
        r.device_destroyed(1);
        assert_eq!(r.get(K).unwrap().attachments, vec![B]);
        assert!(r.get(other).is_none());
    }
}
