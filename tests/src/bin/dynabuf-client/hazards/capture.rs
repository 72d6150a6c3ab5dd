//! What the layer tells the application's debug messengers: two
//! messengers (one that takes every severity and type, one that takes
//! errors only), each message whose `pMessageIdName` starts with
//! `DYNABUF-` recorded, and printed once the client is gone (so reports
//! made while the device is destroyed are in).

use ash::vk;
use dynabuf_client::vulkan::Client;
use dynabuf_client::Result;
use std::ffi::{c_void, CStr};
use std::sync::Mutex;

use crate::robustness::say;

/// Which messenger heard a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Messenger {
    /// Every severity and type.
    All = 1,
    /// `ERROR` severity only (every type).
    ErrorsOnly = 2,
}

/// One message from the layer.
#[derive(Clone, Debug)]
struct Report {
    messenger: Messenger,
    id: String,
    number: i32,
    severity: vk::DebugUtilsMessageSeverityFlagsEXT,
    types: vk::DebugUtilsMessageTypeFlagsEXT,
    message: String,
    /// Type, handle and name of each object.
    objects: Vec<(vk::ObjectType, u64, Option<String>)>,
}

static REPORTS: Mutex<Vec<Report>> = Mutex::new(Vec::new());

/// A C string the layer passed, if any.
///
/// # Safety
/// `p` is null or a NUL-terminated string alive for the call.
unsafe fn text(p: *const std::ffi::c_char) -> Option<String> {
    // SAFETY: as the caller promises.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

unsafe extern "system" fn callback(
    severity: vk::DebugUtilsMessageSeverityFlagsEXT,
    types: vk::DebugUtilsMessageTypeFlagsEXT,
    data: *const vk::DebugUtilsMessengerCallbackDataEXT<'_>,
    user: *mut c_void,
) -> vk::Bool32 {
    if data.is_null() {
        return vk::FALSE;
    }
    // SAFETY: the callback data the spec promises, alive for the call.
    let data = unsafe { &*data };
    // SAFETY: NUL-terminated strings or null, as the spec promises.
    let Some(id) = (unsafe { text(data.p_message_id_name) }) else {
        return vk::FALSE;
    };
    if !id.starts_with("DYNABUF-") {
        return vk::FALSE;
    }
    let objects = if data.p_objects.is_null() {
        Vec::new()
    } else {
        // SAFETY: `object_count` elements, as the spec promises.
        unsafe { std::slice::from_raw_parts(data.p_objects, data.object_count as usize) }
            .iter()
            // SAFETY: a name or null.
            .map(|o| (o.object_type, o.object_handle, unsafe { text(o.p_object_name) }))
            .collect()
    };
    let report = Report {
        messenger: if user as usize == Messenger::ErrorsOnly as usize {
            Messenger::ErrorsOnly
        } else {
            Messenger::All
        },
        id,
        number: data.message_id_number,
        severity,
        types,
        // SAFETY: as above.
        message: unsafe { text(data.p_message) }.unwrap_or_default(),
        objects,
    };
    REPORTS.lock().unwrap_or_else(|p| p.into_inner()).push(report);
    vk::FALSE
}

/// Creates the two messengers on the client's instance.
pub(crate) fn install(c: &Client) -> Result<()> {
    let all_severities = vk::DebugUtilsMessageSeverityFlagsEXT::VERBOSE
        | vk::DebugUtilsMessageSeverityFlagsEXT::INFO
        | vk::DebugUtilsMessageSeverityFlagsEXT::WARNING
        | vk::DebugUtilsMessageSeverityFlagsEXT::ERROR;
    let all_types = vk::DebugUtilsMessageTypeFlagsEXT::GENERAL
        | vk::DebugUtilsMessageTypeFlagsEXT::VALIDATION
        | vk::DebugUtilsMessageTypeFlagsEXT::PERFORMANCE;
    for (messenger, severities) in [
        (Messenger::All, all_severities),
        (Messenger::ErrorsOnly, vk::DebugUtilsMessageSeverityFlagsEXT::ERROR),
    ] {
        let info = vk::DebugUtilsMessengerCreateInfoEXT::default()
            .message_severity(severities)
            .message_type(all_types)
            .pfn_user_callback(Some(callback))
            .user_data(messenger as usize as *mut c_void);
        c.add_messenger(&info)?;
    }
    Ok(())
}

fn severity_name(s: vk::DebugUtilsMessageSeverityFlagsEXT) -> String {
    match s {
        vk::DebugUtilsMessageSeverityFlagsEXT::ERROR => "error".into(),
        vk::DebugUtilsMessageSeverityFlagsEXT::WARNING => "warning".into(),
        vk::DebugUtilsMessageSeverityFlagsEXT::INFO => "info".into(),
        vk::DebugUtilsMessageSeverityFlagsEXT::VERBOSE => "verbose".into(),
        other => format!("{:#x}", other.as_raw()),
    }
}

fn types_name(t: vk::DebugUtilsMessageTypeFlagsEXT) -> String {
    let names = [
        (vk::DebugUtilsMessageTypeFlagsEXT::GENERAL, "general"),
        (vk::DebugUtilsMessageTypeFlagsEXT::VALIDATION, "validation"),
        (vk::DebugUtilsMessageTypeFlagsEXT::PERFORMANCE, "performance"),
    ];
    let parts: Vec<&str> = names.iter().filter(|(f, _)| t.contains(*f)).map(|(_, n)| *n).collect();
    if parts.is_empty() {
        format!("{:#x}", t.as_raw())
    } else {
        parts.join("+")
    }
}

/// Prints one line per message the every-severity messenger heard:
/// `hazard=ID severity=S types=T number=N message_starts_with_id=B
/// objects=TYPE:NAME|0xHANDLE,...` (the message itself on stderr), then
/// `errors_only=N` (what the errors-only messenger heard) and `hazards=N`.
pub(crate) fn print_reports() {
    let reports = REPORTS.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut all = 0;
    for r in reports.iter().filter(|r| r.messenger == Messenger::All) {
        all += 1;
        let objects: Vec<String> = r
            .objects
            .iter()
            .map(|(ty, handle, name)| {
                let what = name.clone().unwrap_or_else(|| format!("{handle:#x}"));
                format!("{ty:?}:{}", what.replace([' ', ','], "_"))
            })
            .collect();
        say(&format!(
            "hazard={} severity={} types={} number={} message_starts_with_id={} objects={}",
            r.id,
            severity_name(r.severity),
            types_name(r.types),
            r.number,
            r.message.starts_with(&r.id),
            objects.join(",")
        ));
        eprintln!("client: messenger heard: {}", r.message);
    }
    let errors_only: Vec<&str> =
        reports.iter().filter(|r| r.messenger == Messenger::ErrorsOnly).map(|r| r.id.as_str()).collect();
    say(&format!("errors_only={} errors_only_ids={}", errors_only.len(), errors_only.join(",")));
    say(&format!("hazards={all}"));
}
