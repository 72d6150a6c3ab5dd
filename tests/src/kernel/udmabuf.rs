//! udmabuf: the layer's `sys::udmabuf` (a dma-buf from a sealed memfd),
//! which the tests and the demo use to get real dma-bufs without a GPU.

pub use dynabuf::sys::udmabuf::*;
