//! The layer's bookkeeping: pure logic, no unsafe code, unit-tested alone.
//!
//! * [`memory`]: which `VkDeviceMemory` objects are external (imported from
//!   or exportable as an fd) and which buffers and images are bound to them;
//! * [`transfers`]: queue-family ownership transfers to and from
//!   `VK_QUEUE_FAMILY_FOREIGN_EXT`/`VK_QUEUE_FAMILY_EXTERNAL`, recorded per
//!   command buffer: the points where a shared resource changes hands.
//!
//! Handles are ash's plain `Copy` types; nothing here calls Vulkan.

#![forbid(unsafe_code)]

pub mod caps;
pub mod contents;
pub mod dma_bufs;
pub mod dynamic;
pub mod hazards;
pub mod images;
pub mod memory;
pub mod planes;
pub mod span;
pub mod transfers;
pub mod usage_index;

pub use dma_bufs::{AttachmentRef, DmaBufInfo, DmaBufKey, DmaBufRegistry};
pub use hazards::HazardTracker;
pub use images::ImageInfo;
pub use memory::{CopyExtent, DmaBufRef, ExternalKind, ExternalMemory, MemoryTable, Resource, Span};
pub use planes::Planes;
pub use transfers::{CommandEvent, CommandLog, Direction, OwnershipTransfer};
