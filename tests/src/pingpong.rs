//! Two processes passing one dma-buf back and forth: the first exports it
//! from its device and sends the fd over a unix socket (SCM_RIGHTS); each
//! frame, each side's GPU acquires the buffer from FOREIGN, adds 1 to every
//! value and releases it, then passes a token. Neither side does any
//! sync-file work; both verify every frame.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use ash::vk;
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};

use crate::compute::{Kernel, Shader};
use crate::dmabuf::{foreign_job, import_fd, AcquireKind};
use crate::external::ExternalBuffer;
use crate::vulkan::{Client, ClientOptions};
use crate::{Context, Error, Result};

pub const LEN: u32 = 1024;

pub fn send_fd(sock: &UnixStream, fd: RawFd) -> Result<()> {
    let fds = [fd];
    let iov = [std::io::IoSlice::new(b"F")];
    sendmsg::<()>(sock.as_raw_fd(), &iov, &[ControlMessage::ScmRights(&fds)], MsgFlags::empty(), None)
        .ctx("sendmsg")?;
    Ok(())
}

pub fn recv_fd(sock: &UnixStream) -> Result<OwnedFd> {
    let mut byte = [0u8; 1];
    let mut iov = [std::io::IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg =
        recvmsg::<()>(sock.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::empty()).ctx("recvmsg")?;
    for c in msg.cmsgs().ctx("cmsgs")? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: SCM_RIGHTS gave this process a new fd it owns.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err(Error("no fd in the message".into()))
}

fn token(sock: &mut UnixStream, frame: u32) -> Result<()> {
    sock.write_all(&frame.to_le_bytes()).ctx("send token")
}

fn await_token(sock: &mut UnixStream) -> Result<u32> {
    let mut b = [0u8; 4];
    sock.read_exact(&mut b).ctx("receive token")?;
    Ok(u32::from_le_bytes(b))
}

fn check(c: &Client, b: &ExternalBuffer, want_add: u32, who: &str, frame: u32) -> Result<()> {
    let v = b.host_access(c, None)?;
    match (0..LEN).find(|&i| v[i as usize] != i + want_add) {
        Some(i) => Err(Error(format!(
            "{who}, frame {frame}: data[{i}] = {}, expected {}",
            v[i as usize],
            i + want_add
        ))),
        None => Ok(()),
    }
}

/// One side: `first` exports and sends the buffer; the other receives it.
pub fn run(mut sock: UnixStream, frames: u32, first: bool) -> Result<()> {
    let c = Client::new(&ClientOptions::default())?;
    let dma_buf = vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT;
    let buffer = if first {
        let b = ExternalBuffer::exportable(&c, LEN, dma_buf)?;
        b.host_access(&c, Some(&(0..LEN).collect::<Vec<_>>()))?;
        let fd = b.export_fd(&c)?;
        send_fd(&sock, fd.as_raw_fd())?;
        b
    } else {
        let fd = recv_fd(&sock)?;
        import_fd(&c, fd.as_fd(), LEN)?
    };
    let kernel = Kernel::new(&c, Shader::Increment)?;
    let job = foreign_job(&c, &kernel, buffer.buffer, AcquireKind::Write, 1, LEN)?;
    let who = if first { "exporter" } else { "importer" };
    let outcome = (|| {
        for frame in 0..frames {
            if first {
                check(&c, &buffer, 2 * frame, who, frame)?;
                job.run(&c, c.queues[0])?;
                token(&mut sock, frame)?;
                let back = await_token(&mut sock)?;
                if back != frame {
                    return Err(Error(format!("token {back} for frame {frame}")));
                }
            } else {
                let got = await_token(&mut sock)?;
                if got != frame {
                    return Err(Error(format!("token {got} for frame {frame}")));
                }
                check(&c, &buffer, 2 * frame + 1, who, frame)?;
                job.run(&c, c.queues[0])?;
                token(&mut sock, frame)?;
            }
        }
        if first {
            check(&c, &buffer, 2 * frames, who, frames)?;
        }
        Ok(())
    })();
    job.destroy(&c);
    kernel.destroy(&c);
    buffer.destroy(&c);
    outcome
}
