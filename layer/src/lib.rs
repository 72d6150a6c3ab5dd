//! # dynabuf: dynamic dma-buf attachments and implicit sync for Vulkan
//!
//! dynabuf is a Vulkan layer (`VK_LAYER_DYNABUF_dmabuf`). It sits between an
//! application and its driver, watches every dma-buf the application imports
//! or exports, and gives those buffers what Vulkan leaves to each application:
//! an attachment registry, implicit synchronisation through sync_file fences,
//! and dynamic (evictable, transparently re-validated) attachments. The design
//! is in `layer/DESIGN.md`, next to this crate.
//!
//! Modules, by floor: a module uses only modules on its floor's left or
//! below it, never above.
//!
//! 1. bottom: [`log`], [`settings`], [`hazard`], [`lock_order`], [`fault`],
//!    [`sys`] (kernel interfaces), [`registry`] (pure bookkeeping), [`views`]
//!    (read-only views of application structures), [`stats`] (counters,
//!    per-dma-buf aggregates, histograms, the stats file's documents);
//! 2. [`dispatch`]: per-instance and per-device state keyed by dispatch key,
//!    the next layer's function tables and safe call-down wrappers;
//! 3. [`sync`]: implicit sync and dynamic attachments, one behaviour per file
//!    (`plan`, `acquire`, `release`, `evict`, `revalidate`, `submit`,
//!    `waiter`, `strategy`);
//! 4. [`hooks`]: what the layer does at each intercepted call (`probe`,
//!    `attach`, `memory`, `command`, `queue`, ...);
//! 5. [`entry`]: the three exported loader symbols, the name→hook table and
//!    the `extern "system"` trampolines.
//!
//! Unsafe code lives in `entry`, `dispatch`, `sys` and `views`; the others
//! forbid it. No panic crosses into the application: every trampoline runs
//! its hook under [`entry::guard`], which turns a panic into a log line and
//! an error result.

// The library must be named libVkLayer_dynabuf.so, after the layer.
#![allow(non_snake_case)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![warn(missing_debug_implementations)]

#[macro_use]
pub mod log;
pub mod dispatch;
pub mod entry;
pub mod fault;
pub mod hazard;
pub mod hooks;
pub mod lock_order;
pub mod registry;
pub mod settings;
pub mod stats;
pub mod sync;
pub mod sys;
pub mod views;

/// The layer's name as the loader and applications see it.
pub const LAYER_NAME: &std::ffi::CStr = c"VK_LAYER_DYNABUF_dmabuf";
