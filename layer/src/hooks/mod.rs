//! What the layer does at each intercepted call, in safe Rust. The
//! trampolines in [`crate::entry`] turn the raw arguments into references and
//! slices, find the [`Device`](crate::dispatch::Device), and call in here; the
//! hooks record what they need and call down through the device's safe
//! wrappers.
//!
//! Each hook's fast path (no external memory on the device, no recorded
//! ownership transfer) is one relaxed atomic load before calling down.

#![forbid(unsafe_code)]

pub mod acquire_unmodified;
pub mod attach;
pub mod command;
pub mod cpu_access;
pub mod device;
pub mod dma_bufs;
pub mod extensions;
pub mod hazards;
pub mod memory;
pub mod prime;
pub mod probe;
pub mod queue;
pub mod remap_probe;
pub mod resource;
pub mod usage;
