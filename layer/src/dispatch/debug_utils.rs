//! `VK_EXT_debug_utils` as the layer sees it: the application's debug
//! messengers (per instance, shared with its devices) and the names it gave
//! objects, so the layer's hazard reports reach the application the way
//! validation messages do, naming objects as the application named them.
//!
//! The application's callback is called with none of the layer's ordered
//! locks held (the list is copied out first). One lock outside the lock
//! order, `calling`, is held (shared) across the callbacks: destroying a
//! messenger takes it exclusively after removing the messenger, so once
//! `vkDestroyDebugUtilsMessengerEXT` returns no call to it is still running
//! (its user data may be freed). A callback must not call Vulkan, so it
//! cannot come back for it.

use std::collections::HashMap;
use std::ffi::{c_void, CStr, CString};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, RwLock};

use ash::vk;

use crate::lock_order::{lock, Level};

/// One messenger the application created.
#[derive(Clone, Copy, Debug)]
struct Messenger {
    handle: vk::DebugUtilsMessengerEXT,
    severity: vk::DebugUtilsMessageSeverityFlagsEXT,
    types: vk::DebugUtilsMessageTypeFlagsEXT,
    callback: vk::PFN_vkDebugUtilsMessengerCallbackEXT,
    user_data: usize,
}

/// The messengers of one instance.
#[derive(Debug, Default)]
pub struct Messengers {
    list: Mutex<Vec<Messenger>>,
    /// `list.len()`, readable without the lock.
    count: AtomicUsize,
    /// Held shared across callbacks, exclusively by `destroyed`.
    calling: RwLock<()>,
}

/// An object a message is about, with the application's name for it.
#[derive(Clone, Debug)]
pub struct NamedObject {
    pub object_type: vk::ObjectType,
    pub handle: u64,
    pub name: Option<CString>,
}

impl Messengers {
    /// `vkCreateDebugUtilsMessengerEXT` succeeded.
    pub fn created(
        &self,
        handle: vk::DebugUtilsMessengerEXT,
        info: &vk::DebugUtilsMessengerCreateInfoEXT<'_>,
    ) {
        let mut list = lock(&self.list, Level::Leaf);
        list.retain(|m| m.handle != handle);
        list.push(Messenger {
            handle,
            severity: info.message_severity,
            types: info.message_type,
            callback: info.pfn_user_callback,
            user_data: info.p_user_data as usize,
        });
        self.count.store(list.len(), Ordering::Relaxed);
    }

    /// `vkDestroyDebugUtilsMessengerEXT`.
    pub fn destroyed(&self, handle: vk::DebugUtilsMessengerEXT) {
        {
            let mut list = lock(&self.list, Level::Leaf);
            list.retain(|m| m.handle != handle);
            self.count.store(list.len(), Ordering::Relaxed);
        }
        // Wait for callbacks that copied the list before the removal.
        drop(self.calling.write().unwrap_or_else(|p| p.into_inner()));
    }

    /// Whether the application has any messenger.
    pub fn any(&self) -> bool {
        self.count.load(Ordering::Relaxed) != 0
    }

    /// Sends one message (type VALIDATION) to every messenger whose filters
    /// take it.
    pub fn send(
        &self,
        severity: vk::DebugUtilsMessageSeverityFlagsEXT,
        id_name: &CStr,
        id_number: i32,
        message: &str,
        objects: &[NamedObject],
    ) {
        if !self.any() {
            return;
        }
        let kind = vk::DebugUtilsMessageTypeFlagsEXT::VALIDATION;
        let targets: Vec<Messenger> = lock(&self.list, Level::Leaf)
            .iter()
            .filter(|m| m.severity.contains(severity) && m.types.contains(kind))
            .copied()
            .collect();
        if targets.is_empty() {
            return;
        }
        let message = CString::new(message.replace('\0', " ")).unwrap_or_default();
        let infos: Vec<vk::DebugUtilsObjectNameInfoEXT<'_>> = objects
            .iter()
            .map(|o| vk::DebugUtilsObjectNameInfoEXT {
                object_type: o.object_type,
                object_handle: o.handle,
                p_object_name: o.name.as_ref().map_or(std::ptr::null(), |n| n.as_ptr()),
                ..Default::default()
            })
            .collect();
        let data = vk::DebugUtilsMessengerCallbackDataEXT {
            p_message_id_name: id_name.as_ptr(),
            message_id_number: id_number,
            p_message: message.as_ptr(),
            object_count: infos.len() as u32,
            p_objects: infos.as_ptr(),
            ..Default::default()
        };
        crate::lock_order::assert_unlocked("a debug messenger callback");
        let _calling = self.calling.read().unwrap_or_else(|p| p.into_inner());
        let live: Vec<vk::DebugUtilsMessengerEXT> =
            lock(&self.list, Level::Leaf).iter().map(|m| m.handle).collect();
        for m in targets.into_iter().filter(|m| live.contains(&m.handle)) {
            let Some(callback) = m.callback else { continue };
            // SAFETY: the application gave this callback and user data for
            // exactly this use, and the messenger is live: it was in the
            // list after `calling` was taken, and `destroyed` waits for
            // `calling` after removing it. `data` and everything it points
            // to (the message, the ID name, the object infos and their
            // names) live across the call.
            unsafe { callback(severity, kind, &data, m.user_data as *mut c_void) };
        }
    }
}

/// The names the application gave a device's objects
/// (`vkSetDebugUtilsObjectNameEXT`).
#[derive(Debug, Default)]
pub struct ObjectNames {
    names: Mutex<HashMap<(vk::ObjectType, u64), CString>>,
}

impl ObjectNames {
    /// The object types hazard reports name.
    const KEPT: [vk::ObjectType; 2] = [vk::ObjectType::DEVICE_MEMORY, vk::ObjectType::QUEUE];

    /// Records (or, with an empty name, forgets) an object's name; only
    /// memory and queues are kept (what hazard reports name).
    pub fn set(&self, info: &vk::DebugUtilsObjectNameInfoEXT<'_>, name: Option<&CStr>) {
        if !Self::KEPT.contains(&info.object_type) {
            return;
        }
        let key = (info.object_type, info.object_handle);
        let mut names = lock(&self.names, Level::Leaf);
        match name.filter(|n| !n.is_empty()) {
            Some(n) => {
                names.insert(key, n.to_owned());
            }
            None => {
                names.remove(&key);
            }
        }
    }

    /// The object is gone (freed memory).
    pub fn forget(&self, object_type: vk::ObjectType, handle: u64) {
        lock(&self.names, Level::Leaf).remove(&(object_type, handle));
    }

    /// The object with its name, if it has one.
    pub fn named(&self, object_type: vk::ObjectType, handle: u64) -> NamedObject {
        let name = lock(&self.names, Level::Leaf).get(&(object_type, handle)).cloned();
        NamedObject { object_type, handle, name }
    }
}
