//! # dynabuf: dynamic dma-buf attachments and implicit sync for Vulkan
//!
//! dynabuf is a Vulkan layer (`VK_LAYER_DYNABUF_dmabuf`). It sits between an
//! application and its driver, watches every dma-buf the application imports
//! or exports, and gives those buffers what Vulkan leaves to each application:
//! an attachment registry, implicit synchronisation through sync_file fences,
//! and dynamic (evictable, transparently re-validated) attachments. The full
//! model is in `DESIGN.md` (the team's shared design); this crate follows its
//! layout:
//!
//! * [`entry`]: the three exported loader symbols, the name→hook table and the
//!   `extern "system"` trampolines that turn raw Vulkan pointers into
//!   references before any hook logic runs (unsafe lives here);
//! * [`dispatch`]: per-instance and per-device state keyed by dispatch key,
//!   and safe wrappers that call down the chain (unsafe lives here);
//! * [`pnext`]: the pNext-chain walker (unsafe lives here);
//! * [`hooks`]: what the layer does at each intercepted call, in safe Rust;
//! * [`registry`]: the pure state the hooks keep (`#![forbid(unsafe_code)]`);
//! * [`config`], [`log`], [`stats`]: settings, logging and counters.
//!
//! No panic crosses into the application: every trampoline runs its hook
//! under [`entry::guard`], which turns a panic into a log line and an error
//! result.

// The library must be named libVkLayer_dynabuf.so, after the layer.
#![allow(non_snake_case)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![warn(missing_debug_implementations)]

#[macro_use]
pub mod log;
pub mod config;
pub mod dispatch;
pub mod entry;
pub mod fault;
pub mod hooks;
pub mod lock_order;
pub mod views;
pub mod registry;
pub mod stats;
pub mod sync;
pub mod sys;

/// The layer's name as the loader and applications see it.
pub const LAYER_NAME: &std::ffi::CStr = c"VK_LAYER_DYNABUF_dmabuf";
