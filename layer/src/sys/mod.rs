//! Raw kernel interfaces (dma-buf, sync_file, DRM, udmabuf, vgem). Empty
//! until the kernel-tier work lands; every unsafe system call lives here.
