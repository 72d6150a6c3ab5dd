//! An ordinary Vulkan client: one instance, one device with one compute
//! queue family, an allocator. Layers come from the environment (the way a
//! user enables dynabuf) or, for in-process comparisons, by name.

use std::ffi::{c_char, c_void, CStr, CString};
use std::mem::ManuallyDrop;
use std::sync::Mutex;

use ash::vk;
use gpu_allocator::vulkan::{Allocator, AllocatorCreateDesc};

use crate::{Context, Error, Result};

/// How to build a [`Client`].
#[derive(Clone, Debug, Default)]
pub struct ClientOptions {
    /// Layers enabled by name in `VkInstanceCreateInfo` (on top of any the
    /// environment enables).
    pub layers: Vec<CString>,
    /// How many queues to ask for from the compute family (clamped to what
    /// the family has).
    pub queues: u32,
    /// Enable no device extensions (also set by `DYNABUF_CLIENT_BARE=1`).
    pub bare: bool,
    /// More device extensions to enable where the device offers them.
    pub extra_extensions: Vec<CString>,
    /// Enable the `timelineSemaphore` feature (Vulkan 1.2).
    pub timeline: bool,
    /// Instance extensions to enable.
    pub instance_extensions: Vec<CString>,
    /// Layer settings passed in a `VkLayerSettingsCreateInfoEXT`
    /// (`VK_EXT_layer_settings`) at `vkCreateInstance`; none: no structure.
    pub layer_settings: Vec<LayerSetting>,
    /// Enable the instance extension `VK_EXT_debug_utils` (an error where
    /// it is not offered): the client can then create messengers
    /// ([`Client::add_messenger`]) and name objects ([`Client::name`]).
    pub debug_utils: bool,
    /// Enable the `dynamicRendering` feature (Vulkan 1.3).
    pub dynamic_rendering: bool,
    /// Enable `VK_EXT_external_memory_acquire_unmodified` (and
    /// `VK_EXT_queue_family_foreign`) where the device lists them (through
    /// dynabuf it always lists the first).
    pub acquire_unmodified: bool,
    /// Device extensions to enable whether or not the device lists them
    /// (for tests of what `vkCreateDevice` says then).
    pub required_extensions: Vec<CString>,
}

/// One `VkLayerSettingEXT`.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerSetting {
    pub layer: CString,
    pub name: CString,
    pub value: SettingValue,
}

/// A layer setting's value, by `VkLayerSettingTypeEXT`.
#[derive(Clone, Debug, PartialEq)]
pub enum SettingValue {
    Bool32(vk::Bool32),
    Int32(i32),
    Int64(i64),
    Uint32(u32),
    Uint64(u64),
    Float32(f32),
    String(CString),
}

impl SettingValue {
    /// `TYPE` and `VALUE` as written on a command line: `bool32`, `int32`,
    /// `int64`, `uint32`, `uint64`, `float32` or `string`.
    pub fn parse(ty: &str, value: &str) -> Result<SettingValue> {
        let bad = |e: &dyn std::fmt::Display| Error(format!("{ty} value {value:?}: {e}"));
        Ok(match ty {
            "bool32" => SettingValue::Bool32(value.parse::<u32>().map_err(|e| bad(&e))?),
            "int32" => SettingValue::Int32(value.parse().map_err(|e| bad(&e))?),
            "int64" => SettingValue::Int64(value.parse().map_err(|e| bad(&e))?),
            "uint32" => SettingValue::Uint32(value.parse().map_err(|e| bad(&e))?),
            "uint64" => SettingValue::Uint64(value.parse().map_err(|e| bad(&e))?),
            "float32" => SettingValue::Float32(value.parse().map_err(|e| bad(&e))?),
            "string" => SettingValue::String(CString::new(value).map_err(|e| bad(&e))?),
            other => return Err(Error(format!("unknown setting type {other:?}"))),
        })
    }

    /// The type and a pointer to the value (`string`: to `string_ptr`).
    fn raw(&self, string_ptr: &*const c_char) -> (vk::LayerSettingTypeEXT, *const c_void) {
        use vk::LayerSettingTypeEXT as T;
        match self {
            SettingValue::Bool32(v) => (T::BOOL32, (v as *const u32).cast()),
            SettingValue::Int32(v) => (T::INT32, (v as *const i32).cast()),
            SettingValue::Int64(v) => (T::INT64, (v as *const i64).cast()),
            SettingValue::Uint32(v) => (T::UINT32, (v as *const u32).cast()),
            SettingValue::Uint64(v) => (T::UINT64, (v as *const u64).cast()),
            SettingValue::Float32(v) => (T::FLOAT32, (v as *const f32).cast()),
            SettingValue::String(_) => (T::STRING, (string_ptr as *const *const c_char).cast()),
        }
    }
}

/// Device extensions the client enables when the device offers them.
const WANTED_DEVICE_EXTENSIONS: &[&CStr] = &[
    ash::khr::external_memory_fd::NAME,
    ash::ext::external_memory_dma_buf::NAME,
    ash::khr::external_semaphore_fd::NAME,
];

/// One instance + device + allocator.
pub struct Client {
    pub entry: ash::Entry,
    pub instance: ash::Instance,
    pub physical: vk::PhysicalDevice,
    pub device: ash::Device,
    /// The compute-capable queue family.
    pub family: u32,
    pub queues: Vec<vk::Queue>,
    /// Device extensions enabled.
    pub extensions: Vec<CString>,
    pub memory_fd: Option<ash::khr::external_memory_fd::Device>,
    pub allocator: ManuallyDrop<Mutex<Allocator>>,
    /// `VK_EXT_debug_utils`, when [`ClientOptions::debug_utils`] asked for it.
    pub debug_utils: Option<DebugUtils>,
}

/// `VK_EXT_debug_utils`' functions, and the messengers the client created
/// (destroyed after the device, so they hear what a layer says while the
/// device goes away).
pub struct DebugUtils {
    pub instance: ash::ext::debug_utils::Instance,
    pub device: ash::ext::debug_utils::Device,
    messengers: Mutex<Vec<vk::DebugUtilsMessengerEXT>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("device", &self.device.handle()).field("family", &self.family).finish()
    }
}

impl Client {
    pub fn new(opts: &ClientOptions) -> Result<Self> {
        // SAFETY: loads the system's libvulkan.so.1, the real loader; no
        // other code runs at load time that could observe a half-set state.
        let entry = unsafe { ash::Entry::load() }.ctx("loading libvulkan.so.1")?;
        let app = vk::ApplicationInfo::default()
            .application_name(c"dynabuf-client")
            .api_version(vk::API_VERSION_1_3);
        let layer_ptrs: Vec<_> = opts.layers.iter().map(|l| l.as_ptr()).collect();
        let mut extension_ptrs: Vec<_> = opts.instance_extensions.iter().map(|e| e.as_ptr()).collect();
        if opts.debug_utils
            && !opts.instance_extensions.iter().any(|e| e.as_c_str() == ash::ext::debug_utils::NAME)
        {
            // SAFETY: a loaded entry; the query has no other precondition.
            let offered = unsafe { entry.enumerate_instance_extension_properties(None) }
                .ctx("vkEnumerateInstanceExtensionProperties")?;
            if !offered.iter().any(|e| e.extension_name_as_c_str() == Ok(ash::ext::debug_utils::NAME)) {
                return Err(Error("VK_EXT_debug_utils is not offered".into()));
            }
            extension_ptrs.push(ash::ext::debug_utils::NAME.as_ptr());
        }
        let string_ptrs: Vec<*const c_char> = opts
            .layer_settings
            .iter()
            .map(|s| match &s.value {
                SettingValue::String(v) => v.as_ptr(),
                _ => std::ptr::null(),
            })
            .collect();
        let settings: Vec<vk::LayerSettingEXT<'_>> = opts
            .layer_settings
            .iter()
            .zip(&string_ptrs)
            .map(|(s, string_ptr)| {
                let (ty, p_values) = s.value.raw(string_ptr);
                vk::LayerSettingEXT {
                    p_layer_name: s.layer.as_ptr(),
                    p_setting_name: s.name.as_ptr(),
                    ty,
                    value_count: 1,
                    p_values,
                    ..Default::default()
                }
            })
            .collect();
        let mut layer_settings = vk::LayerSettingsCreateInfoEXT::default().settings(&settings);
        let mut info = vk::InstanceCreateInfo::default()
            .application_info(&app)
            .enabled_layer_names(&layer_ptrs)
            .enabled_extension_names(&extension_ptrs);
        if !settings.is_empty() {
            info = info.push_next(&mut layer_settings);
        }
        // SAFETY: a valid create info whose pointers outlive the call.
        let instance = unsafe { entry.create_instance(&info, None) }.ctx("vkCreateInstance")?;
        // A clone of the entry keeps libvulkan loaded for the destroy below
        // when the device cannot be made (`with_instance` drops its own).
        match Self::with_instance(entry.clone(), instance.clone(), opts) {
            Ok(c) => Ok(c),
            Err(e) => {
                // SAFETY: nothing was created from the instance that still lives.
                unsafe { instance.destroy_instance(None) };
                Err(e)
            }
        }
    }

    fn with_instance(entry: ash::Entry, instance: ash::Instance, opts: &ClientOptions) -> Result<Self> {
        // SAFETY: a live instance.
        let physicals = unsafe { instance.enumerate_physical_devices() }.ctx("vkEnumeratePhysicalDevices")?;
        let physical = *physicals.first().ok_or_else(|| Error("no Vulkan physical device".into()))?;
        // SAFETY: a physical device of this instance.
        let families = unsafe { instance.get_physical_device_queue_family_properties(physical) };
        let (family, props) = families
            .iter()
            .enumerate()
            .find(|(_, f)| f.queue_flags.contains(vk::QueueFlags::COMPUTE))
            .ok_or_else(|| Error("no compute queue family".into()))?;
        let family = family as u32;
        let queue_count = opts.queues.clamp(1, props.queue_count);
        let priorities = vec![1.0f32; queue_count as usize];
        let queue_info =
            [vk::DeviceQueueCreateInfo::default().queue_family_index(family).queue_priorities(&priorities)];
        // SAFETY: a physical device of this instance.
        let available = unsafe { instance.enumerate_device_extension_properties(physical) }
            .ctx("vkEnumerateDeviceExtensionProperties")?;
        let bare = opts.bare || std::env::var_os("DYNABUF_CLIENT_BARE").is_some_and(|v| v == "1");
        let unmodified: &[&CStr] = if opts.acquire_unmodified {
            &[ash::ext::external_memory_acquire_unmodified::NAME, ash::ext::queue_family_foreign::NAME]
        } else {
            &[]
        };
        let mut extensions: Vec<CString> = WANTED_DEVICE_EXTENSIONS
            .iter()
            .copied()
            .chain(opts.extra_extensions.iter().map(CString::as_c_str))
            .chain(unmodified.iter().copied())
            .filter(|_| !bare)
            .filter(|w| available.iter().any(|a| a.extension_name_as_c_str() == Ok(*w)))
            .map(CString::from)
            .collect();
        for r in &opts.required_extensions {
            if !extensions.contains(r) {
                extensions.push(r.clone());
            }
        }
        let ext_ptrs: Vec<_> = extensions.iter().map(|e| e.as_ptr()).collect();
        let mut vk12 = vk::PhysicalDeviceVulkan12Features::default().timeline_semaphore(opts.timeline);
        let mut vk13 = vk::PhysicalDeviceVulkan13Features::default()
            .synchronization2(true)
            .dynamic_rendering(opts.dynamic_rendering);
        let mut info = vk::DeviceCreateInfo::default()
            .queue_create_infos(&queue_info)
            .enabled_extension_names(&ext_ptrs)
            .push_next(&mut vk13);
        if opts.timeline {
            info = info.push_next(&mut vk12);
        }
        // SAFETY: a valid create info whose pointers outlive the call.
        let device = unsafe { instance.create_device(physical, &info, None) }.ctx("vkCreateDevice")?;
        // SAFETY: queues that the create info asked for.
        let queues = (0..queue_count).map(|i| unsafe { device.get_device_queue(family, i) }).collect();
        let memory_fd = extensions
            .iter()
            .any(|e| e.as_c_str() == ash::khr::external_memory_fd::NAME)
            .then(|| ash::khr::external_memory_fd::Device::new(&instance, &device));
        let allocator = Allocator::new(&AllocatorCreateDesc {
            instance: instance.clone(),
            device: device.clone(),
            physical_device: physical,
            debug_settings: Default::default(),
            buffer_device_address: false,
            allocation_sizes: Default::default(),
        })
        .ctx("gpu-allocator")?;
        let debug_utils = opts.debug_utils.then(|| DebugUtils {
            instance: ash::ext::debug_utils::Instance::new(&entry, &instance),
            device: ash::ext::debug_utils::Device::new(&instance, &device),
            messengers: Mutex::new(Vec::new()),
        });
        Ok(Client {
            entry,
            instance,
            physical,
            device,
            family,
            queues,
            extensions,
            memory_fd,
            allocator: ManuallyDrop::new(Mutex::new(allocator)),
            debug_utils,
        })
    }

    /// Whether the device has extension `name` enabled.
    pub fn has_extension(&self, name: &CStr) -> bool {
        self.extensions.iter().any(|e| e.as_c_str() == name)
    }

    /// The device's name.
    pub fn device_name(&self) -> String {
        // SAFETY: a physical device of this instance.
        let props = unsafe { self.instance.get_physical_device_properties(self.physical) };
        props.device_name_as_c_str().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    }

    /// The index of a memory type with `flags` among `type_bits`.
    pub fn memory_type(&self, type_bits: u32, flags: vk::MemoryPropertyFlags) -> Option<u32> {
        // SAFETY: a physical device of this instance.
        let props = unsafe { self.instance.get_physical_device_memory_properties(self.physical) };
        (0..props.memory_type_count).find(|&i| {
            type_bits & (1 << i) != 0 && props.memory_types[i as usize].property_flags.contains(flags)
        })
    }

    /// Creates a debug messenger (`VK_EXT_debug_utils`); the client
    /// destroys it after the device.
    pub fn add_messenger(&self, info: &vk::DebugUtilsMessengerCreateInfoEXT<'_>) -> Result<()> {
        let du = self.debug_utils.as_ref().ok_or_else(|| Error("VK_EXT_debug_utils not enabled".into()))?;
        // SAFETY: a valid create info; the instance has the extension enabled.
        let m = unsafe { du.instance.create_debug_utils_messenger(info, None) }
            .ctx("vkCreateDebugUtilsMessengerEXT")?;
        du.messengers.lock().map_err(|_| Error("messenger list poisoned".into()))?.push(m);
        Ok(())
    }

    /// Names an object of this device (`vkSetDebugUtilsObjectNameEXT`).
    pub fn name<H: vk::Handle>(&self, handle: H, name: &CStr) -> Result<()> {
        let du = self.debug_utils.as_ref().ok_or_else(|| Error("VK_EXT_debug_utils not enabled".into()))?;
        let info = vk::DebugUtilsObjectNameInfoEXT::default().object_handle(handle).object_name(name);
        // SAFETY: an object of this device and a NUL-terminated name.
        unsafe { du.device.set_debug_utils_object_name(&info) }.ctx("vkSetDebugUtilsObjectNameEXT")
    }

    /// Looks up a device function through `vkGetDeviceProcAddr`, the way an
    /// application would, and returns it as an address.
    pub fn device_proc_addr(&self, name: &CStr) -> Option<usize> {
        // SAFETY: a live device and a NUL-terminated name.
        let f =
            unsafe { (self.instance.fp_v1_0().get_device_proc_addr)(self.device.handle(), name.as_ptr()) };
        f.map(|f| f as usize)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // SAFETY: the client owns the device and instance; waiting for idle
        // first means no work still uses anything destroyed here, and the
        // allocator is dropped (freeing its memory) before the device.
        unsafe {
            let _ = self.device.device_wait_idle();
            ManuallyDrop::drop(&mut self.allocator);
            self.device.destroy_device(None);
            if let Some(du) = &self.debug_utils {
                for m in du.messengers.lock().map(|mut m| std::mem::take(&mut *m)).unwrap_or_default() {
                    du.instance.destroy_debug_utils_messenger(m, None);
                }
            }
            self.instance.destroy_instance(None);
        }
    }
}

/// The shared object that contains `addr` (through `dladdr`), to tell which
/// layer or driver a function pointer belongs to.
pub fn object_of(addr: usize) -> Option<String> {
    let mut info = libc::Dl_info {
        dli_fname: std::ptr::null(),
        dli_fbase: std::ptr::null_mut(),
        dli_sname: std::ptr::null(),
        dli_saddr: std::ptr::null_mut(),
    };
    // SAFETY: dladdr only reads the process's link map and fills `info`.
    let found = unsafe { libc::dladdr(addr as *const libc::c_void, &mut info) };
    if found == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: on success dli_fname is a NUL-terminated path owned by the loader.
    Some(unsafe { CStr::from_ptr(info.dli_fname) }.to_string_lossy().into_owned())
}
